"""Every feature evaluator on runs of the reduced CIFAR-10 protocol (issue: evaluation suite).

For each run directory given: weighted kNN (k=50, sigma=0.1), retrieval (500 queries per class from the held-out
split, gallery = the 10,000 training images), k-means clustering metrics, and t-SNE of the validation features
(PNG files in the run directory), then a table of the numbers. Runs come from relational_cifar10.py or
baselines_cifar10.py.

    python examples/benchmarks/eval_suite_cifar10.py RUN_DIR... [--tsne-points 10000] [--record]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--tsne-points", type=int, default=10000)
    p.add_argument("--record", action="store_true")
    a = p.parse_args()
    import ssltk
    from ssltk.eval.summary import describe_run

    evaluators = [("knn", {}), ("retrieval", {}), ("clustering", {}),
                  ("tsne", {"max_points": a.tsne_points, "groups": "cifar10"})]
    lines = []
    for run in a.runs:
        desc = describe_run(Path(run))
        parts = []
        for name, args in evaluators:
            t0 = time.perf_counter()
            m = ssltk.evaluate(name, run=run, evaluator_args=args).metrics
            dt = time.perf_counter() - t0
            if name == "knn":
                parts.append(f"kNN {m['accuracy']:.2f}")
            elif name == "retrieval":
                parts.append("retrieval@10/100/1000 " + "/".join(f"{m[f'accuracy@{k}']:.1f}" for k in (10, 100, 1000)))
            elif name == "clustering":
                parts.append(f"k-means NMI {m['nmi']:.1f} AMI {m['adjusted_nmi']:.1f} ARI {m['ari']:.1f}")
            else:
                parts.append(f"t-SNE {int(m['num_points'])} points ({dt:.0f} s)")
        lines.append(f"{desc['method']} ({desc['backbone']}, seed {desc['seed']}): " + "; ".join(parts))
        print(lines[-1], flush=True)
    if a.record:
        record("Feature evaluators on reduced CIFAR-10 runs (10k train / 10k val)",
               "python examples/benchmarks/eval_suite_cifar10.py " + " ".join(sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
