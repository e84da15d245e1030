"""Progress of an epoch for the person watching: a tqdm bar with loss, lr and updates on a terminal,
otherwise a line every `log_every` updates."""

from __future__ import annotations

import sys
import time

import torch


class TrainProgress:
    """A tqdm bar per epoch with loss, lr and images/s on a terminal; otherwise a line every `log_every`."""

    def __init__(self, epoch: int, epochs: int, total: int, done: int, log_every: int, enabled: bool):
        self.label = f"epoch {epoch + 1}/{epochs}"
        self.total, self.done, self.log_every = total, done, log_every
        self.enabled = enabled
        self.start, self.start_done = time.perf_counter(), done
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=self.label, unit="step", file=sys.stderr,
                            dynamic_ncols=True, leave=False)

    def update(self, loss: torch.Tensor, lr: float) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            if self.done % 10 == 0 or self.done == self.total:  # .item() waits for the device: not every step
                self.bar.set_postfix_str(f"loss {loss.item():.4f} lr {lr:.3g}", refresh=False)
        elif self.done % self.log_every == 0 or self.done == self.total:
            rate = (self.done - self.start_done) / max(time.perf_counter() - self.start, 1e-9)
            print(f"{self.label}: update {self.done}/{self.total}, loss {loss.item():.4f}, lr {lr:.3g}, "
                  f"{rate:.2f} updates/s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
