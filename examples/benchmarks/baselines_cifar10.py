"""Every baseline and relational reasoning on one budget (issue: baseline plugins, "Real data").

The reduced CIFAR-10 protocol for all: Conv-4, a fixed 10,000-image subset of the CIFAR-10 training JPEGs in
../shared/datasets, 20 epochs at batch 64 for every method (SimCLR's paper batch is 128), each method's own
optimiser defaults and views (relational with K=4 as in the core issue's runs), then linear evaluation
(Adam 1e-3, 100 epochs, batch 128) on a disjoint
10,000-image validation split. Runs that already finished (a results.json with a linear accuracy) are reused and
unfinished ones resume from their last checkpoint, so the script can be stopped and restarted. The table is rendered by ``ssltk table``'s code.

    python examples/benchmarks/baselines_cifar10.py [--methods ...] [--seeds 0 1 2] [--record]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_run_arguments, data_and_runs, record, reduced_cifar10_fit  # noqa: E402

METHODS = {"relational": {"k": 4}, "simclr": {}, "rotationnet": {}, "deepcluster": {}, "deepinfomax": {},
           "supervised": {}, "random": {}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=list(METHODS),
                   help="registered objectives (installed plugins too, e.g. byol from examples/plugins)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--no-train", action="store_true",
                   help="table only the runs that already finished (for a partial record while others still run)")
    add_run_arguments(p)
    a = p.parse_args()
    import ssltk
    from ssltk.eval.results import read_results

    unknown = sorted(set(a.methods) - set(ssltk.list_objectives()))
    if unknown:
        p.error(f"not registered objectives: {', '.join(unknown)}")
    from ssltk.eval.summary import results_table

    root, out = data_and_runs(a)
    runs, timings = [], []
    for seed in a.seeds:
        for method in a.methods:
            run = out / f"{method}-seed{seed}"
            if "linear" not in read_results(run):
                if a.no_train:
                    continue
                t0 = time.perf_counter()
                reduced_cifar10_fit(method, METHODS.get(method, {}), root, run, seed, a.epochs,
                                    random_baseline=method == "relational")
                minutes = (time.perf_counter() - t0) / 60
                timings.append(f"{method} seed {seed}: fit + linear evaluation {minutes:.1f} min")
                print(timings[-1], flush=True)
            runs.append(run)
    table = results_table(runs, "linear.accuracy", baseline_metric=None)
    print(table)
    if a.record:
        partial = " (finished runs only)" if a.no_train else ""
        record(f"Baselines and relational, conv4, CIFAR-10 10k train / 10k val, {a.epochs} epochs, "
               f"seeds {' '.join(map(str, a.seeds))}{partial}",
               "python examples/benchmarks/baselines_cifar10.py " + " ".join(sys.argv[1:]), table.splitlines() + timings)


if __name__ == "__main__":
    main()
