"""What stops a run rather than let it report success on nothing: an epoch in which no training image could
be read, a loss or weights that stopped being finite, a validation set of which no image could be read. The
unreadable images a run skips are counted and named, as `validate` does.

The checks that every rank makes at the same points (the end of an epoch, before a checkpoint) agree over
the ranks, so that all of them stop together; the loss is watched on the device without waiting for it.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import torch

from ..errors import REFUSALS, DataError, TrainingError

SHOWN = 5  # unreadable images named in a note or an error


@dataclass
class EpochReading:
    """This rank's reading of the training images in an epoch: micro-batches that had an image to learn
    from, images that could not be read, and the first few of those by name."""

    used: int = 0
    unreadable: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, failures: list[tuple[int, str]], has_images: bool, name) -> None:
        """Count a micro-batch: its unreadable images as (dataset index, error), `name(index)` naming one."""
        self.used += has_images
        self.unreadable += len(failures)
        for index, error in failures[:max(0, SHOWN - len(self.examples))]:
            self.examples.append(f"{name(index)} ({error})")


def _all_ranks_sum(values: list[int], device: torch.device) -> list[int]:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return values
    total = torch.tensor(values, dtype=torch.int64, device=device)
    torch.distributed.all_reduce(total)
    return total.tolist()


def check_epoch_reading(reading: EpochReading, epoch: int, data: str,
                        device: torch.device) -> tuple[int, int]:
    """(micro-batches used, images unreadable) of the epoch over every rank. DataError when no micro-batch had
    an image: the run would report updates that learnt nothing."""
    used, unreadable = _all_ranks_sum([reading.used, reading.unreadable], device)
    if used == 0:
        example = f", e.g. {reading.examples[0]}" if reading.examples else ""
        raise DataError(f"no training image of {data} could be read in epoch {epoch + 1} ({unreadable} "
                        f"unreadable{example}); check the files of {{data}}")
    return used, unreadable


def note_unreadable(what: str, count: int, examples: list[str]) -> None:
    """One line on stderr: how many images of `what` were skipped, the first few named."""
    shown = "; ".join(examples[:SHOWN])
    more = f"; ... {count - len(examples[:SHOWN])} more" if count > len(examples[:SHOWN]) else ""
    print(f"note: skipped {count} unreadable {what} image(s): {shown}{more}", file=sys.stderr, flush=True)


def track_loss(first_bad: torch.Tensor, loss: torch.Tensor, step: int) -> torch.Tensor:
    """`first_bad` (the first update whose loss was not finite, -1 for none) after a micro-batch of update
    `step` whose loss is `loss`: computed on the device, read only at the checks."""
    return torch.where((first_bad < 0) & ~torch.isfinite(loss), torch.full_like(first_bad, step), first_bad)


def _finite(module: torch.nn.Module) -> bool:
    tensors = [t for t in module.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack([t.isfinite().all() for t in tensors]).all()) if tensors else True


def check_finite(first_bad: torch.Tensor, module: torch.nn.Module, step: int, epoch: int, lr: float,
                 output: str, saved_step: int | None) -> None:
    """TrainingError if a loss so far was not finite (on any rank), or the weights after update `step` are
    not: nothing more is written, and the last checkpoint stays as it was."""
    bad = first_bad.clone()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        bad = torch.where(bad < 0, torch.full_like(bad, 2**62), bad)
        torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MIN)
        bad = torch.where(bad == 2**62, torch.full_like(bad, -1), bad)
    bad_step = int(bad)
    if bad_step >= 0:
        what = f"the loss stopped being finite at update {bad_step + 1}"
    elif not _finite(module):  # weights an update made inf or nan; the loss that shows it is yet to come
        what = f"the weights stopped being finite by update {step}"
    else:
        return
    raise _diverged(what, epoch, lr, output, saved_step)


def check_val_outputs(loss: float, step: int, epoch: int, lr: float, output: str,
                      saved_step: int | None) -> None:
    """TrainingError if the validation loss is not finite: with finite logits it always is (a log-softmax),
    so the model's outputs are not, though its weights may still be."""
    if not math.isfinite(loss):
        raise _diverged(f"the model's outputs on the validation data are not finite after update {step}",
                        epoch, lr, output, saved_step)


def _diverged(what: str, epoch: int, lr: float, output: str, saved_step: int | None) -> TrainingError:
    kept = (f"the last checkpoint in {output} (update {saved_step}) is kept" if saved_step is not None
            else "no checkpoint had been written")
    return TrainingError(f"training diverged in epoch {epoch + 1}: {what} (learning rate {lr:.3g}); {kept}; "
                         "start a new run with a lower {lr}, or with {clip_grad} "
                         f"(see {REFUSALS})")


def check_val_reading(count: int, failures: list[tuple[int, str]], name, data: str) -> None:
    """DataError when no validation image could be read: its top-1 would be nan, and no epoch could be
    ranked best."""
    if count == 0:
        example = f", e.g. {name(failures[0][0])} ({failures[0][1]})" if failures else ""
        raise DataError(f"no image of the validation data {data} could be read ({len(failures)} unreadable"
                        f"{example}); check the files of {{val_data}}")
