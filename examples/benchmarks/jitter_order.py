"""Time of the batched colour jitter with an order per view (torchvision's semantics) against one order per batch.

The contrastive and SeLa recipes draw a permutation of the four jitter operations for every view, as torchvision's
``ColorJitter`` does for every image (``ssltk.data.augment.jitter_per_view``). This script prices that against the
shared order the recipes used before: the same views, factors and buffers go through ``color_jitter`` with a
(B, 4) order tensor and with one order list, alternately, and the best of the rounds is kept for each. The figure is
the ratio per-view / shared at a few (views, side) shapes: below 1 the per-view order is the faster.

    python examples/benchmarks/jitter_order.py [--rounds 3] [--repeats 10] [--record]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report  # noqa: E402

from ssltk.data.augment import color_jitter, jitter_orders  # noqa: E402

# a CPU chunk of the CIFAR recipe (about 4 MiB of 32 px views), an STL-10-sized batch, and ImageNet-sized views
SHAPES = ((340, 32), (256, 96), (64, 224))


def seconds_per_call(fn, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--record", action="store_true", help="append the figures to examples/benchmarks/RESULTS.md")
    args = p.parse_args()
    lines = [f"torch threads: {torch.get_num_threads()}; best of {args.rounds} rounds of {args.repeats} calls"]
    for n, side in SHAPES:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(n, 3, side, side, generator=g)
        factors = [torch.rand(n, generator=g) * 1.6 + 0.2 for _ in range(3)] + [torch.rand(n, generator=g) * 0.4 - 0.2]
        buffers = (torch.empty_like(x), torch.empty_like(x))
        per_view = jitter_orders(n, g, "cpu")
        shared = torch.randperm(4, generator=g).tolist()
        runs = {"shared": [], "per-view": []}
        for _ in range(args.rounds):  # alternated, so that a noisy neighbour slows both alike
            for name, order in (("shared", shared), ("per-view", per_view)):
                color_jitter(x, *factors, order, buffers=buffers)  # warm-up
                runs[name].append(seconds_per_call(lambda: color_jitter(x, *factors, order, buffers=buffers),
                                                   args.repeats))
        a, b = min(runs["shared"]), min(runs["per-view"])
        lines.append(f"{n} views of {side} px: one order per batch {a * 1e3:.1f} ms, an order per view "
                     f"{b * 1e3:.1f} ms, ratio per-view / shared {b / a:.2f}")
    report("Colour jitter: an order per view against one per batch, device cpu", lines, args.record)


if __name__ == "__main__":
    main()
