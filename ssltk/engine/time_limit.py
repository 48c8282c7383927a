"""``--trainer.max_time``: a fit stops at the last epoch boundary that fits in its wall time (the GPU issue, item 2).

The clock is :func:`_clock`, one reading at the start and one per epoch end, so tests replace it with a fake one.
"""
from __future__ import annotations

import time
from typing import Optional

import torch

from ..values import parse_duration


def _clock() -> float:
    return time.monotonic()


class TimeLimit:
    """``--trainer.max_time`` at epoch boundaries: whether the next epoch would outlast the limit, judged from the
    longest epoch so far plus a tenth. Under torchrun every rank stops together (the decision is all-reduced)."""

    def __init__(self, max_time: Optional[str], world_size: int = 1, device: Optional[torch.device] = None):
        self.limit = parse_duration(max_time) if max_time is not None else None
        self.world_size, self.device = world_size, device
        self.start = self.last = _clock()
        self.longest = 0.0

    def stop_before_next(self) -> bool:
        if self.limit is None:
            return False
        now = _clock()
        self.longest, self.last = max(self.longest, now - self.last), now
        stop = (now - self.start) + 1.1 * self.longest > self.limit
        if self.world_size > 1:
            import torch.distributed as dist

            # NCCL reduces device tensors only
            flag = torch.tensor([1.0 if stop else 0.0],
                                device=self.device if dist.get_backend() == "nccl" else "cpu")
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop
