"""Linear evaluation on cached features against the per-epoch protocol (issue: evaluation suite, "linear").

Both runs use the same trained backbone, the same reduced CIFAR-10 split (10,000 train / 10,000 held-out validation
images from ../shared/datasets) and the same seed, so they see the same mini-batches in the same order; the only
difference is whether the frozen backbone's features are extracted once or recomputed for every mini-batch of
every epoch. Prints both accuracies, their difference and the time ratio, measured in this one process.

    python examples/benchmarks/linear_cache.py --run RUN_DIR [--epochs 100] [--record]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import extract_cifar10, record  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a run directory trained on the reduced CIFAR-10 protocol")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--data", default=None, help="an extracted train/ folder; extracted to a temp dir otherwise")
    p.add_argument("--record", action="store_true")
    a = p.parse_args()
    import ssltk
    from ssltk.eval.linear import LinearEval

    root = Path(a.data) if a.data else extract_cifar10()
    data = ssltk.DATASETS.create("imagefolder", root=str(root), size=32, val_size=10000, train_size=10000,
                                 split_seed=0, stats="cifar10")
    data.train  # decode once, outside the timings
    backbone = ssltk.load_backbone(Path(a.run) / "backbone.safetensors")
    dev = torch.device("cpu")
    lines = []
    res = {}
    for cached in (True, False):
        t0 = time.perf_counter()
        m = LinearEval(epochs=a.epochs, cached=cached).evaluate(backbone, data, device=dev).metrics
        res[cached] = (m["accuracy"], time.perf_counter() - t0)
        lines.append(f"{'cached features' if cached else 'backbone every epoch'}: accuracy {m['accuracy']:.2f}  "
                     f"time {res[cached][1]:.1f} s")
        print(lines[-1], flush=True)
    diff = res[True][0] - res[False][0]
    ratio = res[True][1] / res[False][1]
    lines.append(f"difference {diff:+.2f} points; cached takes {ratio:.3f} of the per-epoch time "
                 f"({1 / ratio:.1f}x faster)")
    print(lines[-1])
    if a.record:
        record(f"Linear evaluation: cached features vs backbone every epoch, {a.epochs} epochs, CIFAR-10 10k/10k",
               "python examples/benchmarks/linear_cache.py " + " ".join(sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
