"""User-facing progress (rich on a terminal, plain lines off one) and the running sums of an epoch."""
from __future__ import annotations

import sys
import time
from typing import Any, Dict, Optional

import torch

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .heartbeat import interval
from .metrics import MetricsLog  # noqa: F401  (here before ssltk.engine.metrics)


class TrainProgress:
    """A rich progress bar over all steps (epoch, loss, views/s, ETA) plus one summary line per epoch. Off a terminal
    (piped, in a log file) a plain line every :func:`ssltk.engine.heartbeat.interval` seconds takes the bar's place,
    so that a long epoch is never silent."""

    def __init__(self, total_steps: int, completed: int, epochs: int, enabled: bool = True):
        self.console = Console(file=sys.stderr)
        self.enabled = enabled
        self.epochs = epochs
        self.total_steps = total_steps
        self._completed = completed
        self.every = interval()
        self._last_line = time.monotonic()
        self._progress: Optional[Progress] = None
        if enabled and self.console.is_terminal:
            self._progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[vps]:.0f} views/s"),
                TimeRemainingColumn(), console=self.console, transient=True)
            self._task = self._progress.add_task("fit", total=total_steps, completed=completed, epoch=0,
                                                 epochs=epochs, loss=float("nan"), vps=0.0)
            self._progress.start()

    @property
    def live(self) -> bool:
        """Whether a live bar is shown (only on a terminal)."""
        return self._progress is not None

    def position(self, epoch: int, steps_per_epoch: int) -> int:
        """Steps of ``epoch`` already reported, so updates can come every few steps."""
        return self._completed - epoch * steps_per_epoch

    def due(self, since_update: float) -> bool:
        """Whether the loop should report now: every second to a live bar, every ``every`` seconds off a terminal."""
        if self._progress is not None:
            return since_update >= 1.0
        return self.enabled and self.every > 0 and time.monotonic() - self._last_line >= self.every

    def update(self, epoch: int, loss: float, views_per_s: float, advance: int = 1) -> None:
        self._completed += advance
        if self._progress is not None:
            self._progress.update(self._task, advance=advance, epoch=epoch + 1, loss=loss, vps=views_per_s)
        elif self.due(0.0):
            self._print(f"epoch {epoch + 1}/{self.epochs}  step {self._completed}/{self.total_steps}  "
                        f"loss {loss:.4f}  {views_per_s:.0f} views/s")

    def _print(self, line: str) -> None:
        if self.enabled:
            self.console.print(line, highlight=False, soft_wrap=True)
            self._last_line = time.monotonic()

    def epoch_done(self, epoch: int, loss: float, views_per_s: float, seconds: float, extra: str = "") -> None:
        self._print(f"epoch {epoch + 1}/{self.epochs}  loss {loss:.4f}  {views_per_s:.0f} views/s  "
                    f"{seconds:.1f}s{extra}")

    def note(self, line: str) -> None:
        """A line between the epoch lines (the online kNN monitor's accuracy), on the console as they are."""
        self._print(line)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class EpochMeter:
    """Running sums of an epoch, kept on the device (reading them every step would synchronise a GPU each step)."""

    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), device=device)
        self.logs_sum: Dict[str, torch.Tensor] = {}
        self.device = device
        self.seen = 0
        self.t_epoch = self.t_mark = time.perf_counter()
        self.views_mark = 0

    def add(self, loss: torch.Tensor, logs: Dict[str, Any], views: int) -> None:
        self.seen += views
        self.loss_sum += loss.detach()
        for key, val in logs.items():
            val = torch.as_tensor(val, device=self.device).detach().float()
            # a copy: under CUDA graphs the step's outputs are overwritten by the next replay
            self.logs_sum[key] = self.logs_sum[key] + val if key in self.logs_sum else val.clone()

    def rate_since_mark(self) -> float:
        """Views per second since the last report, which becomes the new mark."""
        now = time.perf_counter()
        vps = (self.seen - self.views_mark) / max(now - self.t_mark, 1e-9)
        self.t_mark, self.views_mark = now, self.seen
        return vps
