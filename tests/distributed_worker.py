"""Run under ``torchrun`` by tests/test_distributed.py (and alone, as the single-process reference).

    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_worker.py grads OBJECTIVE OUT
    python tests/distributed_worker.py grads OBJECTIVE OUT          # one process, the union of the shards
    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_worker.py grads simclr OUT nogather
    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_worker.py sinkhorn OUT

``grads``: one training step of the real trainer (DDP-wrapped step, synchronised BatchNorm) on a fixed global batch
of views; each rank takes its consecutive part of it, as the trainer slices a global batch. Every rank writes its
backbone gradients to OUT/grads-rank{r}.safetensors.
``sinkhorn``: SeLa's labels for fixed logits, each rank holding its contiguous rows; rank 0 writes them all.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

import ssltk
from ssltk import ViewBatch
from ssltk.distributed import all_gather_uneven, shard_bounds, world
from ssltk.engine.trainer import Trainer

IMAGES, VIEWS = 8, 4  # the global batch: 8 images, K = 4 views (2 for SimCLR)


def grads(objective: str, out: Path, gather: bool = True) -> None:
    k = 2 if objective == "simclr" else VIEWS
    args = {"k": k, "gather_pairs": gather} if objective == "relational" else {"gather_negatives": gather}
    config = ssltk.api.make_config(objective, "conv4", "digits", objective_args=args, data_args={"train_size": 64},
                                   trainer={"batch_size": IMAGES, "sync_batchnorm": True, "channels_last": False,
                                            "progress": False, "device": "cpu"})
    trainer = Trainer(config)
    trainer._build()
    rank, size = world()
    g = torch.Generator().manual_seed(123)
    shape = (trainer.spec.channels, trainer.spec.image_size, trainer.spec.image_size)
    views = torch.randn(k, IMAGES, *shape, generator=g)
    m = IMAGES // size
    mine = views[:, rank * m : (rank + 1) * m].reshape(k * m, *shape)
    batch = ViewBatch(views=mine, num_views=k, index=torch.arange(rank * m, (rank + 1) * m))
    out_ = trainer._forward(batch)
    out_.loss.backward()
    tensors = {name: p.grad.clone() for name, p in trainer.backbone.named_parameters() if p.grad is not None}
    tensors["loss"] = out_.loss.detach().reshape(1)
    save_file(tensors, str(out / f"grads-rank{rank}.safetensors"))
    if trainer.group.initialised_here:
        torch.distributed.destroy_process_group()


def sinkhorn(out: Path) -> None:
    from ssltk_sela.sinkhorn import sinkhorn_labels

    torch.distributed.init_process_group("gloo")
    logits = reference_logits()
    start, stop = shard_bounds(logits.shape[0])
    res = sinkhorn_labels(logits[start:stop], lam=25.0, distributed=True)
    labels = all_gather_uneven(res.labels)
    if world()[0] == 0:
        save_file({"labels": labels, "iterations": torch.tensor([res.iterations])}, str(out / "labels.safetensors"))
    torch.distributed.destroy_process_group()


def reference_logits() -> torch.Tensor:
    """Logits of 1,001 samples (an odd count: the two shards differ in size) over 10 clusters."""
    g = torch.Generator().manual_seed(7)
    return torch.randn(1001, 10, generator=g) * 3


def ema_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def ema_batches(steps: int = 4, batch: int = 8):
    g = torch.Generator().manual_seed(5)
    return torch.randn(steps, batch, 6, generator=g), torch.randn(steps, batch, 3, generator=g)


def ema_steps(net: torch.nn.Module, model: torch.nn.Module, part) -> "ssltk.MomentumEncoder":
    """SGD steps on the given part of each batch, the momentum copy updated after each (as the trainer's hook)."""
    from ssltk import MomentumEncoder

    target = MomentumEncoder(net, base=0.9)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = ema_batches()
    for s in range(x.shape[0]):
        xs, ys = part(x[s]), part(y[s])
        loss = (model(xs) - ys).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        target.update(net, (s + 1) / x.shape[0])
    return target


def ema(out: Path) -> None:
    """Each rank steps on its half of every batch under DDP and updates its own momentum copy."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    net = ema_net()
    target = ema_steps(net, DDP(net), lambda t: t.chunk(world)[rank])
    save_file({k: v.contiguous() for k, v in target.state_dict().items()}, str(out / f"ema-rank{rank}.safetensors"))
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "grads":
        grads(rest[0], Path(rest[1]), gather=rest[2:] != ["nogather"])
    elif mode == "sinkhorn":
        sinkhorn(Path(rest[0]))
    elif mode == "ema":
        ema(Path(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode}")
