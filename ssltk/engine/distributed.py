"""The trainer's side of torch.distributed: process group from torchrun's environment, SyncBatchNorm, DDP.

``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; the trainer joins the group they
describe (NCCL on CUDA, gloo on the CPU) and wraps its :class:`~ssltk.engine.trainer.TrainStep` in
DistributedDataParallel. Nothing here launches processes: torchrun does, on one node or several.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import SsltkError


@dataclass
class ProcessGroupInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    initialised_here: bool = False
    active: bool = False  # training runs through DDP in this group


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_process_group(mode: str, device: torch.device, backend: str = "auto",
                       timeout_minutes: float = 30.0) -> ProcessGroupInfo:
    """Join torchrun's process group when ``mode`` is auto and the environment describes more than one process.

    ``mode`` off ignores the environment (each process trains alone); on requires it and joins even a group of
    one, so that a single process runs through DDP (to measure its overhead against a plain run).
    """
    import torch.distributed as dist

    if mode not in ("auto", "on", "off"):
        raise SsltkError(f"trainer.distributed must be auto, on or off, got {mode!r}")
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if mode == "off" or (mode == "auto" and not (launched_by_torchrun() and several)):
        return ProcessGroupInfo()
    if not launched_by_torchrun():
        raise SsltkError("trainer.distributed is on but RANK/WORLD_SIZE are not set; launch with torchrun "
                         "--nproc_per_node N -m ssltk fit ...")
    if not dist.is_available():
        raise SsltkError("this torch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    device = local_device(device, ProcessGroupInfo(local_rank=local_rank, active=True))
    if dist.is_initialized():
        return ProcessGroupInfo(dist.get_rank(), dist.get_world_size(), local_rank, dist.get_backend(), active=True)
    dist.init_process_group(backend=backend, timeout=_dt.timedelta(minutes=timeout_minutes),
                            device_id=device if device.type == "cuda" else None)
    return ProcessGroupInfo(dist.get_rank(), dist.get_world_size(), local_rank, backend, initialised_here=True,
                            active=True)


def local_device(device: torch.device, info: ProcessGroupInfo) -> torch.device:
    """Under torchrun, ``cuda`` means this process's GPU, cuda:LOCAL_RANK."""
    if info.active and device.type == "cuda" and device.index is None:
        return torch.device("cuda", info.local_rank % max(torch.cuda.device_count(), 1))
    return device


class ReducedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalisation over the global batch of all ranks, for devices PyTorch's SyncBatchNorm rejects (the CPU
    under gloo). Statistics are summed over ranks with the differentiable all-reduce of torch.distributed.nn, in
    two passes (mean, then centred squares) for the precision of a single-process BatchNorm. Parameters and buffers
    keep BatchNorm's names, so checkpoints load into a plain BatchNorm and back."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        from ..distributed import all_reduce_grad, is_distributed

        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = all_reduce_grad(torch.tensor([xf.numel() / xf.shape[1]], device=x.device))
        mean = all_reduce_grad(xf.sum(dims)) / count
        centred = xf - mean.view(shape)
        var = all_reduce_grad((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var * (count / (count - 1).clamp(min=1))
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``module`` normalising over the global batch: PyTorch's SyncBatchNorm on CUDA, and
    :class:`ReducedBatchNorm` elsewhere (PyTorch's rejects CPU tensors)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_reduced(module)


def _convert_reduced(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, ReducedBatchNorm):
        new = ReducedBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        ref = next(iter(module.state_dict().values()), None)
        return new.to(ref.device) if ref is not None else new
    for name, child in module.named_children():
        converted = _convert_reduced(child)
        if converted is not child:
            setattr(module, name, converted)
    return module


def wrap_ddp(module: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """The training step under DistributedDataParallel (gradients averaged over ranks in backward)."""
    from torch.nn.parallel import DistributedDataParallel

    if not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters)
