"""Register your own objective from a Python script and train it through the ssltk engine.

    python examples/custom_objective.py [--epochs 5]

The objective below is a small but real method: a Barlow Twins-style redundancy reduction (Zbontar et al. 2021) on two
views. ``@ssltk.register_objective`` makes it a registry entry like any plugin's, so the same engine trains it from
the Python API (``ssltk.fit``) and from the CLI entry point (``ssltk.cli.main``), which a script can call directly.
"""
from __future__ import annotations

import argparse
import tempfile

import torch
from torch import nn

import ssltk
from ssltk.cli import main as ssltk_main


@ssltk.register_objective("barlow-mini")
class BarlowMini(ssltk.Objective):
    """Cross-correlation of two views' projections pushed to the identity (Barlow Twins, eq. 1)."""

    def __init__(self, in_dim: int, proj_dim: int = 64, lambd: float = 5e-3):
        super().__init__(in_dim)
        self.lambd = lambd
        self.projector = nn.Sequential(nn.Linear(in_dim, proj_dim), nn.BatchNorm1d(proj_dim), nn.ReLU(),
                                       nn.Linear(proj_dim, proj_dim))

    @property
    def num_views(self) -> int:
        return 2

    def forward(self, batch: ssltk.ViewBatch, backbone: nn.Module) -> ssltk.ObjectiveOutput:
        z1, z2 = self.projector(backbone(batch.view(0))), self.projector(backbone(batch.view(1)))
        z1 = (z1 - z1.mean(0)) / (z1.std(0) + 1e-5)
        z2 = (z2 - z2.mean(0)) / (z2.std(0) + 1e-5)
        c = z1.T @ z2 / z1.shape[0]
        on_diag = (torch.diagonal(c) - 1).pow(2).sum()
        off_diag = (c - torch.diag(torch.diagonal(c))).pow(2).sum()
        return ssltk.ObjectiveOutput(on_diag + self.lambd * off_diag, {"on_diag": on_diag.detach()})


def run(epochs: int = 5, out: str | None = None) -> dict:
    out = out or tempfile.mkdtemp(prefix="ssltk-custom-")
    # 1. the Python API
    result = ssltk.fit("barlow-mini", "conv4", "digits", trainer={"epochs": epochs, "run_dir": f"{out}/python"},
                       objective_args={"proj_dim": 64})
    print(f"python API: linear {result.metrics['linear']['accuracy']:.2f} vs random "
          f"{result.metrics['linear_random']['accuracy']:.2f}")
    # 2. the CLI, in this process, where the registration above is visible
    code = ssltk_main(["fit", "--objective", "barlow-mini", "--objective.proj_dim", "32", "--data", "digits",
                       "--trainer.epochs", str(epochs), "--trainer.run_dir", f"{out}/cli"])
    return {"python": result.metrics, "cli_exit": code, "out": out}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=5)
    run(p.parse_args().epochs)
