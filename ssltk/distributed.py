"""Collectives for objectives and whole-dataset passes under ``torchrun`` (torch.distributed; gloo or NCCL).

Everything here is a thin layer over PyTorch's own collectives and is the identity in a single process, so an
objective can call it unconditionally. The differentiable gathers go through ``torch.distributed.nn.functional``,
whose backward sums each rank's gradient contributions back to the rank that owns the rows; with DDP then
averaging parameter gradients over ranks, a loss that is the mean over this rank's share of a global batch gets the
gradient of the mean over the whole batch, as one process holding the whole batch would.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator, Tuple

import torch
from torch import Tensor

# whether whole-dataset passes are sharded over ranks here: a context variable, so a thread or task that did not
# enter sharded_passes() never sees another's setting
_sharded_passes: ContextVar[bool] = ContextVar("ssltk_sharded_passes", default=False)


def world() -> Tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_distributed() -> bool:
    return world()[1] > 1


def all_gather_grad(x: Tensor) -> Tensor:
    """Every rank's ``x`` concatenated along dim 0 in rank order, with gradients flowing back to their owners.
    All ranks must pass the same shape."""
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    with _public_autograd_collectives():
        return torch.cat(all_gather(x.contiguous()), 0)


def all_reduce_grad(x: Tensor) -> Tensor:
    """The sum of ``x`` over ranks, differentiable (its backward sums the gradients of every rank)."""
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_reduce

    with _public_autograd_collectives():
        return all_reduce(x)


@contextmanager
def _public_autograd_collectives() -> Iterator[None]:
    # torch.distributed.nn.functional warns that it is deprecated in favour of the private
    # torch.distributed._functional_collectives; the public module is kept until its replacement is public
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="torch.distributed")
        warnings.filterwarnings("ignore", message=".*torch.distributed.nn.functional.*deprecated", category=FutureWarning)
        yield


@torch.no_grad()
def all_gather_uneven(x: Tensor) -> Tensor:
    """Every rank's ``x`` (row counts may differ) concatenated along dim 0 in rank order; no gradient."""
    if not is_distributed():
        return x
    import torch.distributed as dist

    rank, size = world()
    count = torch.tensor([x.shape[0]], device=x.device)
    counts = [torch.zeros_like(count) for _ in range(size)]
    dist.all_gather(counts, count)
    counts = [int(c.item()) for c in counts]
    padded = x.new_zeros((max(counts),) + tuple(x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts)], 0)


def gather_view_major(z: Tensor, num_views: int) -> Tuple[Tensor, int]:
    """Features of K views of this rank's M images (view-major, K*M x D) -> the same layout for the global batch of
    all ranks' images (K * M * world x D), and the global index of this rank's first image. Rank r's images are
    images r*M .. (r+1)*M - 1 of the global batch, the order in which the engine slices the global batch."""
    rank, size = world()
    if size == 1:
        return z, 0
    m = z.shape[0] // num_views
    everything = all_gather_grad(z)  # (world * K * M, D), rank-major
    per_rank = everything.view(size, num_views, m, *z.shape[1:])
    return per_rank.transpose(0, 1).reshape(num_views * size * m, *z.shape[1:]), rank * m


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` as rank ``src`` has it, on every rank (picklable Python objects: paths, small configs)."""
    if not is_distributed():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def broadcast_tensor(x: Tensor, src: int = 0) -> Tensor:
    """``x`` as rank ``src`` has it, on every rank (same shape and dtype everywhere)."""
    if is_distributed():
        import torch.distributed as dist

        dist.broadcast(x, src=src)
    return x


def barrier() -> None:
    if is_distributed():
        import torch.distributed as dist

        dist.barrier()


def shard_bounds(n: int) -> Tuple[int, int]:
    """This rank's contiguous rows [start, stop) of n rows split as evenly as possible, lower ranks first."""
    rank, size = world()
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


@contextmanager
def sharded_passes(enabled: bool = True) -> Iterator[None]:
    """Inside the block, whole-dataset feature extraction splits the images over ranks and gathers the features,
    so every rank must enter it together (the trainer does so around its epoch-start and final passes).
    ``enabled=False`` turns it off for an inner block (a rank's own share of a pass)."""
    token = _sharded_passes.set(enabled)
    try:
        yield
    finally:
        _sharded_passes.reset(token)


def passes_are_sharded() -> bool:
    return _sharded_passes.get() and is_distributed()
