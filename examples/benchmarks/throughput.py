"""Views per second of ssltk's relational training against the papers' own pipeline, in one run on one machine.

Both train relational reasoning with Conv-4, batch 64 and K views on the same CIFAR-10 images from ../shared/datasets
for the same number of steps:

- the papers' pipeline: ../shared/tools/reference_relational.py (K PIL augmentations per image in DataLoader
  workers, Python-loop aggregation), run as a subprocess; it prints its own views per second;
- ssltk: ``ssltk.fit`` with the same settings; views per second of its epoch, read from ``metrics.jsonl``.

It also prints ssltk's augmentation-only views per second and the image-folder decode rate (images per second with
DataLoader workers).

    python examples/benchmarks/throughput.py [--k 32] [--steps 20] [--workers 2] [--record]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, epoch_records, extract_cifar10, report  # noqa: E402

import ssltk  # noqa: E402
from ssltk.data.recipes import ContrastiveAugment  # noqa: E402
from ssltk.data.imagefolder import decode_folder, find_images  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "tools" / "reference_relational.py"


def reference_views_per_s(root: Path, n: int, k: int, batch: int, workers: int, script=REFERENCE) -> float:
    out = subprocess.run([sys.executable, str(script), str(root), "--n", str(n), "--K", str(k), "--batch",
                          str(batch), "--epochs", "1", "--workers", str(workers)], capture_output=True, text=True)
    m = re.search(r"views_per_s=([0-9.]+)", out.stdout)
    if out.returncode != 0 or m is None:
        sys.exit(f"reference pipeline failed: {out.stderr[-2000:]}")
    return float(m.group(1))


def ssltk_views_per_s(root: Path, n: int, k: int, batch: int, run_dir: Path) -> float:
    ssltk.fit("relational", "conv4", "imagefolder", objective_args={"k": k},
              data_args={"root": str(root), "size": 32, "train_size": n, "val_size": 0, "stats": "cifar10"},
              trainer={"epochs": 1, "batch_size": batch, "run_dir": str(run_dir), "progress": False,
                       "log_every": 0},
              evaluate={"linear": False})
    return float(epoch_records(run_dir)[-1]["views_per_s"])


def augmentation_views_per_s(images: torch.Tensor, k: int, batch: int, steps: int) -> float:
    aug = ContrastiveAugment(32, (0.491, 0.482, 0.447), (0.247, 0.243, 0.262))
    g = torch.Generator().manual_seed(0)
    aug(images[:batch], k, g)
    t0 = time.perf_counter()
    for i in range(steps):
        aug(images[(i * batch) % (len(images) - batch):][:batch], k, g)
    return steps * batch * k / (time.perf_counter() - t0)


def decode_images_per_s(root: Path, n: int, workers: int) -> float:
    paths, labels, classes = find_images(root)
    idx = torch.randperm(len(paths), generator=torch.Generator().manual_seed(0))[:n].tolist()
    t0 = time.perf_counter()
    decode_folder([paths[i] for i in idx], [labels[i] for i in idx], classes, 32, workers, False)
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data", default=None, help="an extracted train/ folder; extracted to a temp dir otherwise")
    p.add_argument("--record", action="store_true")
    a = p.parse_args()
    root = Path(a.data) if a.data else extract_cifar10()
    n = a.steps * a.batch
    ref = reference_views_per_s(root, n, a.k, a.batch, a.workers)
    with tempfile.TemporaryDirectory() as tmp:
        ours = ssltk_views_per_s(root, n, a.k, a.batch, Path(tmp) / "run")
    decode = decode_images_per_s(root, 5000, a.workers)
    imgs = ssltk.DATASETS.create("imagefolder", root=str(root), train_size=n, stats="cifar10").train.images
    aug = augmentation_views_per_s(imgs, a.k, a.batch, a.steps)
    lines = [
        f"papers' pipeline (reference_relational.py, {a.workers} workers): {ref:.0f} views/s",
        f"ssltk relational training step:                   {ours:.0f} views/s",
        f"ratio ssltk / papers' pipeline:                   {ours / ref:.2f}x",
        f"ssltk augmentation only (K={a.k}, batch {a.batch}):        {aug:.0f} views/s",
        f"image-folder decode ({a.workers} workers, 32 px):           {decode:.0f} images/s",
    ]
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    report(f"Throughput, relational Conv-4, K={a.k}, batch {a.batch}, {a.steps} steps, device {dev}", lines, a.record)


if __name__ == "__main__":
    main()
