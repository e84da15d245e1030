"""The model card (README.md) of a model folder: the Hugging Face Hub's YAML front matter, then what the
model is, how to load it, how it was trained and how it measured.

The front matter is made with `huggingface_hub.ModelCardData` (library, tags, licence, datasets, and the
`model-index` of evaluation results), so the Hub reads it as it reads any card. The results are those of
`visionzoo validate --results-file` documents; nothing on the card is measured here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

TASK = "image-classification"
# the folder is the reference's Hub format: the Hub offers the reference's loading code for it
LIBRARY_NAME = "timm"


@dataclass(frozen=True)
class Provenance:
    """How the weights came to be: a visionzoo training run (its recipe, command, args.yaml, versions and
    the hash of its training data's file list), or a published tag."""

    source: str  # e.g. "visionzoo train run runs/digits" or "published weights timm/test_vit.r160_in1k"
    recipe: str | None = None
    command: str | None = None
    args_yaml: str | None = None
    visionzoo_version: str | None = None
    torch_version: str | None = None
    data: str | None = None
    data_sha256: str | None = None
    started_from: str | None = None


@dataclass(frozen=True)
class EvalRow:
    """One size's result of a `visionzoo validate` results file."""

    dataset: str
    img_size: int
    crop_pct: float
    interpolation: str
    top1: float
    top5: float
    count: int


def read_results_file(path: str | os.PathLike, dataset: str | None = None) -> tuple[str, list[EvalRow]]:
    """(the model it evaluated, its rows) of a JSON results file of `visionzoo validate`; `dataset` names
    the data (default: the name of the data folder it read). UserError for anything else."""
    path = Path(path)
    if path.suffix != ".json":
        raise UserError(f"--results {path}: give the .json file of `visionzoo validate --results-file`")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        model, data, rows = document["model"], document["data"], document["results"]
        name = dataset or Path(data.rstrip("/")).name or data
        parsed = [EvalRow(dataset=name, img_size=int(r["img_size"]), crop_pct=float(r["crop_pct"]),
                          interpolation=str(r["interpolation"]), top1=float(r["top1"]), top5=float(r["top5"]),
                          count=int(r["count"])) for r in rows]
    except FileNotFoundError:
        raise UserError(f"--results {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"--results {path} is not a results file of `visionzoo validate` ({error})") from None
    if not parsed:
        raise UserError(f"--results {path} holds no results")
    return str(model), parsed


def _eval_results(rows: Sequence[EvalRow]) -> list:
    from huggingface_hub import EvalResult

    results = []
    for row in rows:
        # per metric: the Hub groups the metrics of one task and dataset into one result
        preprocessing = {"img_size": row.img_size, "crop_pct": row.crop_pct,
                         "interpolation": row.interpolation, "images": row.count}
        common = dict(task_type=TASK, task_name="Image Classification", dataset_type=row.dataset,
                      dataset_name=row.dataset, metric_args=preprocessing)
        results.append(EvalResult(metric_type="accuracy", metric_name=f"top-1 accuracy @ {row.img_size}",
                                  metric_value=row.top1, **common))
        results.append(EvalResult(metric_type="top_5_accuracy",
                                  metric_name=f"top-5 accuracy @ {row.img_size}", metric_value=row.top5,
                                  **common))
    return results


def front_matter(name: str, license: str | None, datasets: Sequence[str], rows: Sequence[EvalRow]) -> str:
    """The card's YAML front matter (without the `---` lines)."""
    from huggingface_hub import ModelCardData

    data = ModelCardData(library_name=LIBRARY_NAME, pipeline_tag=TASK, tags=[TASK, "timm", "visionzoo"],
                         license=license or None, datasets=list(datasets) or None, model_name=name,
                         eval_results=_eval_results(rows) or None)
    return data.to_yaml()


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def render_card(name: str, load_name: str, config: dict, params: int, license: str | None,
                datasets: Sequence[str], rows: Sequence[EvalRow], provenance: Provenance | None) -> str:
    """The whole README.md: front matter, then the model, its use, its training and its results.

    `load_name` is what `create_model` takes to load it ('hf-hub:org/name' once pushed, else the folder).
    """
    cfg = config["pretrained_cfg"]
    names = config.get("label_names") or []
    descriptions = config.get("label_descriptions") or {}
    shown = [descriptions.get(n, n) for n in names[:10]]
    size = "x".join(map(str, cfg["input_size"][1:]))
    lines = ["---", front_matter(name, license, datasets, rows).rstrip("\n"), "---", f"# {name}", "",
             f"An image classifier: {config['architecture']} with {config['num_classes']} classes, "
             f"{params / 1e6:.2f}M parameters, for {size} inputs.", "", "## Use", "",
             "```python", "import visionzoo  # or: import timm, and timm.create_model(...) the same way", "",
             f"model = visionzoo.create_model({load_name!r}, pretrained=True).eval()",
             "```", "", f"```bash\nvisionzoo predict IMAGE --model {load_name}\n```", "",
             "## Model details", "",
             f"- **Architecture:** {config['architecture']}",
             f"- **Classes:** {config['num_classes']}" + (f" ({', '.join(shown)}"
                                                          + (", ..." if len(names) > 10 else "") + ")"
                                                          if shown else ""),
             f"- **Preprocessing:** {size} pixels, {cfg['interpolation']} resize, crop_pct {cfg['crop_pct']} "
             f"({cfg['crop_mode']}), mean {tuple(cfg['mean'])}, std {tuple(cfg['std'])}"]
    if license:
        lines.append(f"- **License:** {license}")
    if provenance is not None:
        lines += ["", "## Training", "", f"- **Source:** {provenance.source}"]
        for label, value in (("Started from", provenance.started_from), ("Recipe", provenance.recipe),
                             ("Training data", provenance.data),
                             ("Training data file list (sha256)", provenance.data_sha256),
                             ("visionzoo", provenance.visionzoo_version),
                             ("torch", provenance.torch_version)):
            if value:
                lines.append(f"- **{label}:** {value}")
        if provenance.command:
            lines += ["", "```bash", provenance.command, "```"]
        if provenance.args_yaml:
            lines += ["", "<details><summary>args.yaml</summary>", "", "```yaml",
                      provenance.args_yaml.rstrip(), "```", "", "</details>"]
    if rows:
        lines += ["", "## Evaluation", "", "Measured with `visionzoo validate`:", ""]
        lines += _table(["dataset", "size", "crop_pct", "interpolation", "images", "top-1", "top-5"],
                        [[r.dataset, r.img_size, r.crop_pct, r.interpolation, r.count, f"{r.top1:.3f}",
                          f"{r.top5:.3f}"] for r in rows])
    return "\n".join(lines) + "\n"
