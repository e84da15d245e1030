"""Peak memory of one training step with and without `set_grad_checkpointing`, each in a fresh process.

    python benchmarks/grad_checkpointing_memory.py --model vit_betwixt_patch16_reg4_gap_256 --batch-size 16

On CPU the figure is the process's peak resident set (`resource.getrusage`), also shown above the level
reached once the model and the batch exist; on CUDA it is
`torch.cuda.max_memory_allocated`. Memory, not time: a busy machine does not change it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = """
import json, resource, sys
import torch
import visionzoo

name, batch, checkpointing, device = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
torch.manual_seed(0)
model = visionzoo.create_model(name).to(device).train()
model.set_grad_checkpointing(checkpointing)
size = model.pretrained_cfg.input_size[1:]
x = torch.randn(batch, 3, *size, device=device)
target = torch.randint(0, model.num_classes, (batch,), device=device)

def peak_mib():
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux

if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
before = peak_mib()
loss = torch.nn.functional.cross_entropy(model(x), target)
loss.backward()
if device == "cuda":
    torch.cuda.synchronize()
print(json.dumps({"checkpointing": checkpointing, "peak_mib": peak_mib(), "before_step_mib": before,
                  "loss": loss.item()}))
"""


def measure(model: str, batch_size: int, checkpointing: bool, device: str) -> dict:
    command = [sys.executable, "-c", _CHILD, model, str(batch_size), str(int(checkpointing)), device]
    out = subprocess.run(command,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_betwixt_patch16_reg4_gap_256")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    results = [measure(args.model, args.batch_size, flag, args.device) for flag in (False, True)]
    for r in results:
        step = r["peak_mib"] - r["before_step_mib"]
        print(f"{args.model} batch {args.batch_size} {args.device} checkpointing={r['checkpointing']!s:5}: "
              f"peak {r['peak_mib']:8.0f} MiB ({step:7.0f} MiB for the step), loss {r['loss']:.6f}")
    plain, ckpt = results
    plain_step = plain["peak_mib"] - plain["before_step_mib"]
    ckpt_step = max(ckpt["peak_mib"] - ckpt["before_step_mib"], 1)
    print(f"saving: {plain['peak_mib'] - ckpt['peak_mib']:.0f} MiB of peak "
          f"({1 - ckpt['peak_mib'] / plain['peak_mib']:.0%}); "
          f"{plain_step / ckpt_step:.1f}x less memory for the step")


if __name__ == "__main__":
    main()
