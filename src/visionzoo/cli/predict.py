"""`visionzoo predict IMAGE ... --model NAME[.TAG]|FOLDER [--pretrained | --checkpoint PATH]`: top-K classes
per image, named as the weights name them, preprocessed as they were trained. `--model model.onnx|model.pt2`
runs an exported file, preprocessed as its metadata records."""

from __future__ import annotations

import argparse
import json

from .options import add_model_arguments, check_exported_file, positive_int, use_pretrained


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format Pillow reads)")
    add_model_arguments(parser, exported_files=True)
    parser.add_argument("--topk", type=positive_int, default=5, metavar="K",
                        help="how many classes to show (default 5)")
    parser.add_argument("--json", action="store_true",
                        help='a JSON list: {"image": PATH, '
                             '"topk": [{"index": I, "label": NAME, "prob": P}, ...]}')


def run(args: argparse.Namespace) -> int:
    from ..deploy.runners import load_runner
    from ..factory import create_model
    from ..prediction import check_images, predict, predict_with
    from ..runtime import resolve_device

    check_images(args.images)  # before loading the weights
    if check_exported_file(args):
        runner, metadata = load_runner(args.model)
        names = metadata.label_names or [f"class {i}" for i in range(metadata.num_classes)]
        predictions = predict_with(runner, metadata.data_config(), names, args.images, args.topk)
    else:
        device = resolve_device(args.device)
        pretrained = use_pretrained(args.model, args.pretrained, args.checkpoint)
        model = create_model(args.model, pretrained=pretrained, checkpoint_path=args.checkpoint).eval()
        predictions = predict(model.to(device), args.images, args.topk, device)
    if args.json:
        print(json.dumps(predictions, indent=2))
        return 0
    for prediction in predictions:
        print(prediction["image"])
        for item in prediction["topk"]:
            print(f"  {100 * item['prob']:6.2f}%  {item['label']} ({item['index']})")
    return 0
