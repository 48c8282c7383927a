"""The peers' methods (BYOL, MoCo v3, DINO, SwAV, Barlow Twins, VICReg) beside SimCLR, relational reasoning and random
weights on the reduced CIFAR-10 protocol the baselines use (issue: the methods researchers reach for).

Conv-4, a fixed 10,000-image subset of the CIFAR-10 training JPEGs in ../shared/datasets, 20 epochs at batch 64 for
every method, each method's own optimiser defaults and views; then linear evaluation (Adam 1e-3, 100 epochs, batch
128) and weighted kNN as the peers report it (k = 200, temperature 0.1, the monitor at the last epoch) on a disjoint
10,000-image validation split. Conditions that differ from each paper, for every method alike: batch 64 without
rescaling the learning rate, warmup capped at half of the 20 epochs, Conv-4's 64 features, blur dropped at 32 px.
Heads narrowed for a CPU, named in the table: DINO 2,048 outputs (lightly's CIFAR-10 benchmark), Barlow Twins and
VICReg 2,048-wide projectors (solo-learn's CIFAR setting). SwAV runs twice: with the paper's epsilon 0.05, with which
it collapses to uniform predictions here (its loss reaches ln 3000 within 3 epochs), and with 0.02, whose sharper
codes keep it from collapsing. Finished runs are reused and unfinished ones resume.

    python examples/benchmarks/peers_cifar10.py [--methods ...] [--seeds 0 1 2] [--data DIR] [--out DIR] [--record]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_run_arguments, data_and_runs, epoch_records, record, reduced_cifar10_fit  # noqa: E402

METHODS = {"random": {}, "relational": {"k": 4}, "simclr": {}, "byol": {}, "mocov3": {},
           "dino": {"out_dim": 2048}, "swav": {}, "swav-eps0.02": {"epsilon": 0.02},
           "barlowtwins": {"proj_dim": 2048}, "vicreg": {"proj_dim": 2048}}


def objective_of(row: str) -> str:
    """A row's objective: its name up to a variant suffix (``swav-eps0.02`` is ``swav`` with other options)."""
    return row.split("-eps")[0]
KNN = {"knn_k": 200, "knn_sigma": 0.1}


def knn_accuracy(run: Path):
    from ssltk.engine.metrics import read_metrics

    knn = read_metrics(run, "knn")
    return knn[-1]["knn_accuracy"] if knn else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=20)
    add_run_arguments(p)
    a = p.parse_args()
    import ssltk
    from ssltk.eval.results import read_results
    from ssltk.eval.summary import format_mean_std

    unknown = sorted({objective_of(m) for m in a.methods} - set(ssltk.list_objectives()))
    if unknown:
        p.error(f"not registered objectives: {', '.join(unknown)}")
    root, out = data_and_runs(a)
    rows = {}
    for method in a.methods:
        for seed in a.seeds:
            run = out / f"{method}-seed{seed}"
            if "linear" not in read_results(run):
                t0 = time.perf_counter()
                trainer = dict(KNN, knn_every=a.epochs) if method != "random" else {}
                reduced_cifar10_fit(objective_of(method), METHODS.get(method, {}), root, run, seed, a.epochs,
                                    random_baseline=False, trainer=trainer)
                print(f"{method} seed {seed}: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
            rows.setdefault(method, []).append(run)
    lines = ["| method | options | linear | kNN k=200 | seeds | training views/s | training min |", "|---|---|---|---|---|---|---|"]
    for method, runs in rows.items():
        linear = [read_results(r)["linear"]["accuracy"] for r in runs]
        knn = [k for k in map(knn_accuracy, runs) if k is not None]
        if method == "random":  # no training: kNN of the untouched weights, scored the same way
            knn = [random_knn(r) for r in runs]
        epochs = [e for r in runs for e in epoch_records(r)] if method != "random" else []
        vps = sorted(e["views_per_s"] for e in epochs)
        speed = f"{vps[len(vps) // 2]:,.0f}" if vps else "-"
        minutes = f"{sum(e['seconds'] for e in epochs) / 60 / len(runs):.1f}" if epochs else "-"
        opts = " ".join(f"{k}={v}" for k, v in METHODS.get(method, {}).items()) or "-"
        lines.append(f"| {method} | {opts} | {format_mean_std(linear)} | "
                     f"{format_mean_std(knn) if knn else '-'} | {len(runs)} | {speed} | {minutes} |")
    print("\n".join(lines))
    if a.record:
        record(f"The peers' methods beside SimCLR, relational and random weights: conv4, CIFAR-10 10k train / 10k val, "
               f"{a.epochs} epochs, batch 64, seeds {' '.join(map(str, a.seeds))}",
               "python examples/benchmarks/peers_cifar10.py " + " ".join(sys.argv[1:]), lines)


def random_knn(run: Path) -> float:
    """kNN (k = 200, t = 0.1) of the random-weights run's backbone on the same validation split."""
    from ssltk.api import load_backbone
    from ssltk.engine.build import build
    from ssltk.engine.rundir import read_stored_config
    from ssltk.eval.knn import KNNEval
    import torch

    data = build(read_stored_config(run)["data"])
    backbone = load_backbone(run / "backbone.safetensors")
    return KNNEval(k=200, sigma=0.1).evaluate(backbone, data, device=torch.device("cpu")).metrics["accuracy"]


if __name__ == "__main__":
    main()
