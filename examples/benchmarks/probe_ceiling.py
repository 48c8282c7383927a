"""The linear probe of a finished run against the best linear classifier on the same frozen features.

A check on cells that read below the paper (paper 000, Table 2, B.1; the probe of A.3: Adam 1e-3, 100 epochs, no
augmentation). It separates the backbone from the probe. Suppose a multinomial logistic regression, fitted to
convergence (full-batch L-BFGS on standardised features, its L2 strength chosen on a 5,000-image slice of the training
split), scores no more than the A.3 probe. Then the probe's optimisation is not what is missing, and the frozen
features are. The paper ran the A.3 probe, not this one. This is a diagnostic, not a protocol: its figure is never a
table cell. It trains nothing; it reads finished runs of ``ssltk reproduce``, each with its stored config (the data and
its validation split).

    python examples/benchmarks/probe_ceiling.py RUN_DIR [RUN_DIR ...] [--record]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finished_run, report, runs_arguments  # noqa: E402

L2 = (1e-5, 1e-4, 1e-3, 1e-2)
HOLD_OUT = 5000


def fit_logistic(x, y, classes: int, l2: float, iters: int = 300):
    """Weights and bias of softmax regression minimising mean cross-entropy + l2 * ||W||^2 (L-BFGS, full batch)."""
    import torch
    import torch.nn.functional as F

    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=iters, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-7, tolerance_change=1e-10)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def ceiling(run: Path) -> dict:
    """Top-1 of the tuned logistic regression on the run's validation split, beside the stored A.3 probe."""
    import torch

    from ssltk.eval.features import extract_features
    from ssltk.eval.linear import topk_accuracy

    probe, backbone, data = finished_run(run)
    device = torch.device("cpu")
    tr = extract_features(backbone, data.train.images, data.mean, data.std, device)
    va = extract_features(backbone, data.val.images, data.mean, data.std, device)
    ytr, yva = data.train.labels.long(), data.val.labels.long()
    mu, sd = tr.mean(0), tr.std(0).clamp_min(1e-6)
    tr, va = (tr - mu) / sd, (va - mu) / sd
    classes = int(ytr.max()) + 1
    # the L2 strength is chosen on a fixed slice of the training split: the validation split only scores
    perm = torch.randperm(tr.shape[0], generator=torch.Generator().manual_seed(0))
    fit_i, sel_i = perm[HOLD_OUT:], perm[:HOLD_OUT]
    scores = {}
    for l2 in L2:
        w, b = fit_logistic(tr[fit_i], ytr[fit_i], classes, l2)
        scores[l2] = topk_accuracy(tr[sel_i] @ w + b, ytr[sel_i])
    best = max(L2, key=lambda k: scores[k])
    w, b = fit_logistic(tr, ytr, classes, best)
    return {"l2": best, "train": topk_accuracy(tr @ w + b, ytr), "val": topk_accuracy(va @ w + b, yva),
            "probe_train": probe["train_accuracy"], "probe_val": probe["accuracy"], "dim": tr.shape[1]}


def main() -> None:
    a = runs_arguments(__doc__, "finished run folders with a linear probe result")
    lines = ["top-1 (%) on the run's own train / validation splits, frozen backbone in eval mode:"]
    for run in a.runs:
        r = ceiling(run.resolve())
        lines.append(f"  {run}: A.3 probe {r['probe_train']:.2f} / {r['probe_val']:.2f}; tuned logistic regression "
                     f"(L-BFGS, l2 {r['l2']:g}, {r['dim']} features) {r['train']:.2f} / {r['val']:.2f}; "
                     f"ceiling - probe on validation {r['val'] - r['probe_val']:+.2f}")
    report("Linear probe against a converged logistic regression on the same features (probe_ceiling.py)", lines,
           a.record)


if __name__ == "__main__":
    main()
