"""Time `create_model(..., checkpoint_path=...)` from a local safetensors file, against the reference.

    python benchmarks/load_time.py [--model vit_so400m_patch14_siglip_378.webli_ft_in1k] [--repeats 3]

Writes a random checkpoint of the model's shapes to a temp dir, then times each library loading it in a
fresh process (median of the repeats; interpreter and `import torch` excluded, library import included).
The reference (timm) is optional: it is skipped when not installed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

VISIONZOO = """
import time, torch
t = time.perf_counter()
import visionzoo
model = visionzoo.create_model({name!r}, checkpoint_path={path!r})
print(time.perf_counter() - t)
"""
REFERENCE = """
import time, torch
t = time.perf_counter()
import timm
model = timm.create_model({name!r}, pretrained=True, pretrained_cfg_overlay={{"file": {path!r}}})
print(time.perf_counter() - t)
"""


def random_checkpoint(name: str, path: Path) -> None:
    import visionzoo

    with torch.device("meta"):
        shapes = visionzoo.create_model(name).state_dict()
    save_file({k: torch.randn(v.shape) if v.is_floating_point() else torch.zeros(v.shape, dtype=v.dtype)
               for k, v in shapes.items()}, path)


def time_in_fresh_process(template: str, name: str, path: Path, repeats: int) -> list[float]:
    code = template.format(name=name, path=str(path))
    src = str(Path(__file__).resolve().parents[1] / "src")
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**__import__("os").environ, "PYTHONPATH": src})
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vit_so400m_patch14_siglip_378.webli_ft_in1k")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        random_checkpoint(args.model, path)
        print(f"{args.model}: checkpoint {path.stat().st_size / 2**20:.0f} MiB")
        ours = time_in_fresh_process(VISIONZOO, args.model, path, args.repeats)
        runs = ", ".join(f"{t:.2f}" for t in ours)
        print(f"visionzoo: median {statistics.median(ours):.2f} s  (runs: {runs})")
        try:
            import timm  # noqa: F401
        except ImportError:
            return
        reference = time_in_fresh_process(REFERENCE, args.model, path, args.repeats)
        print(f"reference: median {statistics.median(reference):.2f} s  "
              f"(runs: {', '.join(f'{t:.2f}' for t in reference)})")
        print(f"speed-up: {statistics.median(reference) / statistics.median(ours):.1f}x")


if __name__ == "__main__":
    main()
