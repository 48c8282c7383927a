"""Supervised runs: the run's own classifier against the linear probe on the same frozen backbone.

A check on the supervised upper bound of paper 000 (Table 10, B.6; Table 2): when a supervised cell reads below the
paper, this separates the two stages that produce its number. If the classifier trained with the backbone scores what
the separately trained probe of A.3 scores, the probe (Adam 1e-3, 100 epochs, no augmentation) is not what is
missing: the trained backbone itself is. It trains nothing; it reads finished runs of ``ssltk reproduce``, each with
its stored config (the data and its validation split) and last checkpoint (the classifier's weights).

    python examples/benchmarks/supervised_head_vs_probe.py RUN_DIR [RUN_DIR ...] [--record]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finished_run, report, runs_arguments  # noqa: E402


def head_and_probe(run: Path) -> dict:
    """Top-1 of the run's own Linear(D, C) on its train and validation splits, beside the stored probe results."""
    import torch

    from ssltk.engine.checkpoint import read_safetensors
    from ssltk.engine.rundir import checkpoint_files
    from ssltk.eval.features import extract_features
    from ssltk.eval.linear import topk_accuracy

    probe, backbone, data = finished_run(run)
    ckpts = checkpoint_files(run)
    if not ckpts:
        sys.exit(f"{run}: no checkpoints/epoch-*.safetensors to read the classifier from")
    tensors, _ = read_safetensors(ckpts[-1])
    if "objective.classifier.weight" not in tensors:  # what makes a run supervised here: a classifier on the labels
        sys.exit(f"{run}: its checkpoint holds no objective.classifier; not a supervised run")
    weight, bias = tensors["objective.classifier.weight"], tensors["objective.classifier.bias"]
    device = torch.device("cpu")
    own = {}
    for split, images in (("train", data.train), ("val", data.val)):
        feats = extract_features(backbone, images.images, data.mean, data.std, device)
        own[split] = topk_accuracy(feats @ weight.T + bias, images.labels)
    return {"own_train": own["train"], "own_val": own["val"], "probe_train": probe["train_accuracy"],
            "probe_val": probe["accuracy"]}


def main() -> None:
    a = runs_arguments(__doc__, "finished supervised run folders")
    lines = ["top-1 (%) on the run's own train / validation splits, frozen backbone in eval mode:"]
    gaps = []
    for run in a.runs:
        r = head_and_probe(run.resolve())
        gaps.append(r["probe_val"] - r["own_val"])
        lines.append(f"  {run}: own classifier {r['own_train']:.2f} / {r['own_val']:.2f}; "
                     f"linear probe {r['probe_train']:.2f} / {r['probe_val']:.2f}; "
                     f"probe - own on validation {gaps[-1]:+.2f}")
    lines.append(f"mean probe - own on validation over {len(gaps)} run(s): {sum(gaps) / len(gaps):+.2f}")
    report("Supervised runs: own classifier against the linear probe (supervised_head_vs_probe.py)", lines, a.record)


if __name__ == "__main__":
    main()
