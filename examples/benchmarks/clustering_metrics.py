"""Clustering metrics: scikit-learn's NMI, adjusted NMI and ARI (what ``ssltk eval clustering`` now uses) against the
hand-written versions they replaced, read from git history at the commit given, on the same labels in one run.

    python examples/benchmarks/clustering_metrics.py [--baseline 186d779] [--record]

Cases: the issue's (10,000 samples, 500 clusters x 100 classes) and a SeLa-sized one (50,000 samples, as CIFAR's
training set, 3,000 clusters as SeLa's ImageNet heads, 100 classes). Labels are random with a planted agreement, so
the scores are neither 0 nor 1. Reports seconds for each, their ratio and the largest difference in the scores.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, report  # noqa: E402

from ssltk.eval.clustering import clustering_scores  # noqa: E402


def previous_implementation(commit: str) -> types.ModuleType:
    """ssltk/eval/clustering.py as it was at ``commit``, loaded as a module of its own."""
    source = subprocess.run(["git", "show", f"{commit}:ssltk/eval/clustering.py"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    module = types.ModuleType("clustering_before", "the hand-written metrics")
    module.__dict__["__package__"] = "ssltk.eval"  # its relative imports resolve against the installed package
    exec(compile(source, f"{commit}:ssltk/eval/clustering.py", "exec"), module.__dict__)
    return module


def labels(n: int, clusters: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    pred = np.where(rng.random(n) < 0.5, truth * (clusters // classes) + rng.integers(0, clusters // classes, n),
                    rng.integers(0, clusters, n))
    return pred, truth


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", default="186d779", help="a commit whose clustering.py has the hand-written metrics")
    p.add_argument("--record", action="store_true")
    a = p.parse_args()
    old = previous_implementation(a.baseline)
    warm = labels(200, 20, 10)  # imports and first-call costs (scikit-learn's metrics import takes about 1 s)
    clustering_scores(*warm)
    old.clustering_scores(*warm)
    lines = []
    for n, clusters, classes in [(10_000, 500, 100), (50_000, 3_000, 100)]:
        pred, truth = labels(n, clusters, classes)
        new_scores, t_new = timed(clustering_scores, pred, truth)
        old_scores, t_old = timed(old.clustering_scores, pred, truth)
        diff = max(abs(new_scores[k] - old_scores[k]) for k in new_scores)
        lines.append(f"N={n:,}, {clusters} clusters x {classes} classes: hand-written {t_old:.3f} s, scikit-learn "
                     f"{t_new:.3f} s, speed-up {t_old / t_new:.1f}x; scores NMI {new_scores['nmi']:.3f} AMI "
                     f"{new_scores['adjusted_nmi']:.3f} ARI {new_scores['ari']:.3f} (%), largest difference "
                     f"{diff:.1e} points")
    report(f"Clustering metrics, scikit-learn against the hand-written versions of {a.baseline}", lines, a.record)


if __name__ == "__main__":
    main()
