"""SeLa on real CIFAR-10 images (issue: SeLa plugin, "Real data").

Reduced protocol: Conv-4, SeLa [K x T] (default [128 x 10]), 20 epochs on a fixed 10,000-image subset of the
CIFAR-10 training JPEGs in ../shared/datasets, batch 64, the paper's CIFAR optimiser (SGD 0.03, momentum 0.9,
weight decay 5e-4) and label schedule. Then, on the 10,000 held-out validation images: linear evaluation (paper 002
protocol) and weighted kNN (k=50, sigma=0.1) of the SeLa backbone and of random weights; NMI / adjusted NMI / ARI
of the final self-labels and of the initial random labels against the true classes of the training images; and
label transfer: a fresh Conv-4 trained from scratch on the exported self-labels, linear-evaluated the same way.

    python examples/benchmarks/sela_cifar10.py [--epochs 20] [--clusters 128] [--heads 10] [--record]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_run_arguments, data_and_runs, record, reduced_cifar10_fit  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--clusters", type=int, default=128)
    p.add_argument("--heads", type=int, default=10)
    p.add_argument("--label-steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    add_run_arguments(p)
    a = p.parse_args()
    import ssltk
    from ssltk.eval.clustering import clustering_scores
    from ssltk_sela import balanced_random_labels, export_labels
    from ssltk_sela.labels import load_label_file

    root, out = data_and_runs(a)
    lines = []
    t0 = time.perf_counter()
    run = out / f"sela-seed{a.seed}"
    res = reduced_cifar10_fit("sela", {"clusters": a.clusters, "heads": a.heads, "label_steps": a.label_steps},
                              root, run, a.seed, a.epochs)
    knn = ssltk.evaluate("knn", run=run).metrics["accuracy"]
    lines.append(f"SeLa [{a.clusters} x {a.heads}] conv4, {a.epochs} epochs: linear {res.metrics['linear']['accuracy']:.2f}"
                 f" (random weights {res.metrics['linear_random']['accuracy']:.2f}); weighted kNN {knn:.2f}"
                 f"  [{(time.perf_counter() - t0) / 60:.1f} min]")
    print(lines[-1], flush=True)
    rand_run = out / f"random-seed{a.seed}"
    if not (rand_run / "backbone.safetensors").is_file():
        reduced_cifar10_fit("random", {}, root, rand_run, a.seed, 0, random_baseline=False)
    knn_rand = ssltk.evaluate("knn", run=rand_run).metrics["accuracy"]
    lines.append(f"random weights: weighted kNN {knn_rand:.2f}")
    print(lines[-1], flush=True)
    labels_file = export_labels(run)
    labels = load_label_file(labels_file)
    truth = ssltk.DATASETS.create("imagefolder", root=str(root), size=32, val_size=10000,
                                                   train_size=10000, split_seed=0, stats="cifar10").train.labels
    init = balanced_random_labels(labels.shape[1], a.clusters, a.heads, a.seed)
    final_s = [clustering_scores(labels[t], truth) for t in range(labels.shape[0])]
    init_s = clustering_scores(init[0], truth)
    best = max(range(len(final_s)), key=lambda t: final_s[t]["nmi"])
    mean_nmi = sum(s["nmi"] for s in final_s) / len(final_s)
    lines.append(f"self-labels vs true classes (10,000 training images): NMI head 0 {final_s[0]['nmi']:.2f}, "
                 f"mean over heads {mean_nmi:.2f}, best head {best} NMI {final_s[best]['nmi']:.2f} "
                 f"AMI {final_s[best]['adjusted_nmi']:.2f} ARI {final_s[best]['ari']:.2f}; initial random labels "
                 f"NMI {init_s['nmi']:.2f} AMI {init_s['adjusted_nmi']:.2f} ARI {init_s['ari']:.2f}")
    print(lines[-1], flush=True)
    t1 = time.perf_counter()
    tr = reduced_cifar10_fit("sela-transfer", {"labels": str(labels_file)}, root, out / f"sela-transfer-seed{a.seed}",
                             a.seed, a.epochs, random_baseline=False)
    lines.append(f"label transfer (fresh conv4, {a.epochs} epochs on the exported labels): linear "
                 f"{tr.metrics['linear']['accuracy']:.2f} vs the SeLa backbone's {res.metrics['linear']['accuracy']:.2f}"
                 f" (difference {tr.metrics['linear']['accuracy'] - res.metrics['linear']['accuracy']:+.2f})"
                 f"  [{(time.perf_counter() - t1) / 60:.1f} min]")
    print(lines[-1], flush=True)
    if a.record:
        record(f"SeLa [{a.clusters} x {a.heads}], conv4, CIFAR-10 10k train / 10k val, {a.epochs} epochs",
               "python examples/benchmarks/sela_cifar10.py " + " ".join(sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
