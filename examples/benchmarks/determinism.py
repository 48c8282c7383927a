"""What deterministic CPU training costs: training steps with PyTorch's deterministic algorithms on (what every CPU
fit now runs) against off, in one process, alternating rounds so that a shared machine's noise hits both alike.

    python examples/benchmarks/determinism.py [--objective relational] [--k 4] [--steps 15] [--rounds 3] [--record]

Each step is the trainer's: a batch of digits images, K views from the objective's own batched augmentation,
forward, backward and an Adam step, on Conv-4 (channels-last). The figure is off/on seconds per step.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report  # noqa: E402

from ssltk.data.recipes import objective_recipe  # noqa: E402
from ssltk.engine.build import build, build_objective, resolve  # noqa: E402
from ssltk.engine.process import deterministic_algorithms  # noqa: E402
from ssltk.interfaces import ViewBatch  # noqa: E402


def seconds_per_step(objective: str, objective_args: dict, k: int, batch: int, steps: int, deterministic: bool):
    torch.manual_seed(0)
    data = build(resolve("dataset", "digits"))
    spec = data.spec()
    backbone = build(resolve("backbone", "conv4")).to(memory_format=torch.channels_last)
    obj = build_objective(resolve("objective", objective, {"k": k, **objective_args}), backbone.num_features,
                          spec.num_classes)
    obj.setup(backbone, spec)
    augment = objective_recipe(obj, spec)
    opt = torch.optim.Adam(list(backbone.parameters()) + list(obj.parameters()), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    images = data.train.images
    with deterministic_algorithms(deterministic):
        times = []
        for i in range(steps + 2):  # two warm-up steps
            idx = torch.arange(i * batch, (i + 1) * batch) % len(images)
            t = time.perf_counter()
            views = augment(images[idx], obj.num_views, gen).contiguous(memory_format=torch.channels_last)
            out = obj(ViewBatch(views=views, num_views=obj.num_views, index=idx), backbone)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            times.append(time.perf_counter() - t)
    return statistics.median(times[2:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--objective", default="relational")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--record", action="store_true")
    a = p.parse_args()
    extra = {"hidden_dim": 64, "mpnn_hidden": 64} if a.objective == "structured-mi" else {}
    on, off = [], []
    for _ in range(a.rounds):
        off.append(seconds_per_step(a.objective, extra, a.k, a.batch, a.steps, False))
        on.append(seconds_per_step(a.objective, extra, a.k, a.batch, a.steps, True))
    m_on, m_off = statistics.median(on), statistics.median(off)
    lines = [f"deterministic algorithms off: {m_off * 1000:.1f} ms/step (rounds: "
             f"{', '.join(f'{x * 1000:.1f}' for x in off)})",
             f"deterministic algorithms on:  {m_on * 1000:.1f} ms/step (rounds: "
             f"{', '.join(f'{x * 1000:.1f}' for x in on)})",
             f"on / off time per step: {m_on / m_off:.3f}"]
    report(f"Cost of deterministic CPU training, {a.objective} K={a.k}, Conv-4, batch {a.batch}, "
           f"torch threads {torch.get_num_threads()}", lines, a.record)


if __name__ == "__main__":
    main()
