"""Label export and label transfer (paper 004, section 4.3).

``ssltk sela-labels --run RUN`` writes the final self-labels of a SeLa run (the (T, N) label buffer of its last
checkpoint, in training-set order) to ``RUN/self_labels.safetensors``, with the run's data spec as metadata. The
``sela-transfer`` objective then trains a fresh backbone from scratch on those labels with plain cross-entropy,
one linear head per clustering, exactly as supervised training on ground truth would. Its ``labels`` is such a file,
or the SeLa run itself, whose labels are then exported first: that is how a ``ssltk reproduce`` cell hands the run
of another cell to it (``from_run``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import torch
from torch import Tensor, nn

from ssltk import FitContext, ObjectiveOutput, SsltkError, ViewBatch

from .objective import SelaViews


def export_labels(run_dir: Path, out: Optional[Path] = None) -> Path:
    """The (T, N) self-labels of the last checkpoint of a SeLa run, as ``labels`` in a safetensors file."""
    from ssltk import checkpoint_files, read_run_config

    from ssltk import writing_into

    cfg = read_run_config(run_dir)
    out = out or run_dir / "self_labels.safetensors"
    # the run's lock, held from reading its last checkpoint to writing the file: a run that is training (whose
    # checkpoints are mid-way) is refused in one line
    with writing_into(run_dir, out.parent, purpose="export the self-labels of"):
        return _export(run_dir, cfg, checkpoint_files(run_dir), out)


def _export(run_dir: Path, cfg: dict, ckpts: list, out: Path) -> Path:
    from ssltk import read_safetensors, save_safetensors

    if not ckpts:
        raise SsltkError(f"{run_dir} has no checkpoint to take the labels from")
    tensors, meta = read_safetensors(ckpts[-1])
    if "objective.labels" not in tensors:
        raise SsltkError(f"{ckpts[-1]} holds no self-labels (objective.labels); is {run_dir} a SeLa run?")
    labels = tensors["objective.labels"].long()
    save_safetensors({"labels": labels.contiguous()}, {"data": cfg["data"], "epoch": meta.get("epoch"),
                                                       "source_run": str(run_dir)}, out)
    return out


def load_label_file(path: Path) -> Tensor:
    """The (T, N) labels of a label file, or of a SeLa run folder (exported on first use)."""
    from ssltk import read_safetensors

    path = Path(path)
    if path.is_dir():
        exported = path / "self_labels.safetensors"
        path = exported if exported.is_file() else export_labels(path)
    tensors, _ = read_safetensors(path)
    if "labels" not in tensors:
        raise SsltkError(f"{path} has no tensor named 'labels'")
    labels = tensors["labels"].long()
    return labels[None] if labels.dim() == 1 else labels


class LabelTransfer(SelaViews):
    """Label transfer (paper 004, section 4.3): cross-entropy of fresh heads on exported self-labels."""

    def __init__(self, in_dim: int, labels: str = "self_labels.safetensors"):
        """``labels``: a file written by ``ssltk sela-labels``, or a finished SeLa run folder."""
        super().__init__(in_dim)
        self.labels_path = labels
        table = load_label_file(Path(labels))
        self.register_buffer("targets", table)
        k = int(table.max().item()) + 1
        self.heads = nn.ModuleList(nn.Linear(in_dim, k) for _ in range(table.shape[0]))

    def on_fit_start(self, ctx: FitContext) -> None:
        if self.targets.shape[1] != ctx.num_train:
            raise SsltkError(f"{self.labels_path} labels {self.targets.shape[1]} images but this training split has "
                             f"{ctx.num_train}: use the data options of the run the labels came from")

    def forward(self, batch: ViewBatch, backbone: nn.Module) -> ObjectiveOutput:
        return ObjectiveOutput(self.heads_loss(self.heads, backbone(batch.views), self.targets, batch).mean())


def main(argv: List[str]) -> int:
    """Export a SeLa run's self-labels: ``ssltk sela-labels --run RUN [--out FILE]``."""
    from ssltk import command_parser, parse_command

    p = command_parser("ssltk sela-labels", main.__doc__)
    p.add_argument("--run", required=True)
    p.add_argument("--out", default=None)
    a = parse_command(p, argv)
    path = export_labels(Path(a.run), Path(a.out) if a.out else None)
    labels = load_label_file(path)
    counts = torch.bincount(labels[0])
    print(json.dumps({"labels": str(path), "heads": labels.shape[0], "images": labels.shape[1],
                      "clusters": int(labels.max()) + 1,
                      "head0_cluster_sizes": [int(counts.min()), int(counts.max())]}))
    return 0
