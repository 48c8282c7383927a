"""Relational reasoning on real CIFAR-10 images against random weights (issue: core engine, "Real data").

Protocol: Conv-4, batch 64, K=4, 20 epochs of self-supervised training on a fixed 10,000-image subset of the CIFAR-10
training images in ../shared/datasets; linear evaluation (frozen backbone, Adam 1e-3, 100 epochs, batch 128) trained
on those 10,000 images and tested on 10,000 other training images held out as validation. The random-weights
baseline is the same Conv-4 at its initial weights, evaluated by the same protocol.

    python examples/benchmarks/relational_cifar10.py [--epochs 20] [--k 4] [--seeds 0] [--augment NAME] [--record]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import extract_cifar10, record, reduced_cifar10_fit  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--backbone", default="conv4")
    p.add_argument("--train-size", type=int, default=10000)
    p.add_argument("--val-size", type=int, default=10000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--augment", default=None,
                   help="augmentation recipe, e.g. per-image-contrastive for the papers' per-image pipeline")
    p.add_argument("--data", default=None, help="an extracted train/ folder; extracted to a temp dir otherwise")
    p.add_argument("--out", default=None, help="run directories go here (a temp dir otherwise)")
    p.add_argument("--record", action="store_true", help="append the figures to RESULTS.md")
    a = p.parse_args()
    root = Path(a.data) if a.data else extract_cifar10()
    out = Path(a.out) if a.out else Path(root).parent / "runs"
    rel, rnd, lines = [], [], []
    for seed in a.seeds:
        t0 = time.perf_counter()
        res = reduced_cifar10_fit("relational", {"k": a.k}, root, out / f"relational-seed{seed}", seed, a.epochs,
                                  a.batch, a.backbone, a.train_size, a.val_size, augment=a.augment)
        dt = time.perf_counter() - t0
        rel.append(res.metrics["linear"]["accuracy"])
        rnd.append(res.metrics["linear_random"]["accuracy"])
        line = (f"seed {seed}: relational {rel[-1]:.2f}  random {rnd[-1]:.2f}  gain {rel[-1] - rnd[-1]:+.2f} points  "
                f"(fit + both evaluations {dt / 60:.1f} min)")
        print(line, flush=True)
        lines.append(line)
    if len(a.seeds) > 1:
        sd = lambda v: statistics.stdev(v)
        lines.append(f"mean over {len(a.seeds)} seeds: relational {statistics.mean(rel):.2f} +- {sd(rel):.2f}  "
                     f"random {statistics.mean(rnd):.2f} +- {sd(rnd):.2f}")
        print(lines[-1])
    if a.record:
        cmd = "python examples/benchmarks/relational_cifar10.py " + " ".join(sys.argv[1:])
        recipe = f", augmentation {a.augment}" if a.augment else ""
        record(f"Relational vs random weights, {a.backbone}, CIFAR-10 {a.train_size} train / {a.val_size} val, "
               f"K={a.k}, {a.epochs} epochs{recipe}", cmd, lines)


if __name__ == "__main__":
    main()
