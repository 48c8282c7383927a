"""The contract suite over every registered objective and every built-in backbone."""
import tempfile
from pathlib import Path

import pytest
import torch

import ssltk
from ssltk.testing import check_hooks, check_objective


def _label_file() -> str:
    """Self-labels for the 256 images of the contract context, as ``ssltk sela-labels`` would export them."""
    from safetensors.torch import save_file

    path = Path(tempfile.mkdtemp(prefix="ssltk-contract-")) / "labels.safetensors"
    save_file({"labels": torch.stack([torch.arange(256) % 16, torch.arange(256).flip(0) % 16])}, str(path))
    return str(path)


# keep K small in the suite: the contract does not depend on the number of views
SMALL_ARGS = {"relational": {"k": 2}, "structured-mi": {"k": 2}, "sela": {"clusters": 16, "heads": 2},
              "sela-transfer": {"labels": _label_file()},
              # the peers' methods with narrow heads: the contract does not depend on their widths
              "byol": {"hidden_dim": 64}, "mocov3": {"hidden_dim": 64}, "barlowtwins": {"proj_dim": 64},
              "vicreg": {"proj_dim": 64}, "dino": {"out_dim": 128, "hidden_dim": 64, "num_local": 2},
              "swav": {"prototypes": 16, "hidden_dim": 64, "num_local": 2}}
MULTI_CROP = ("dino", "swav")
BACKBONES = ["conv4", "resnet8", "resnet32", "resnet56", "resnet34", "alexnet", "timm:resnet18"]
FEATURES = {"resnet34": 512, "alexnet": 4096, "timm:resnet18": 512}


def args_for(objective, backbone):
    args = dict(SMALL_ARGS.get(objective, {}))
    if objective == "structured-mi":  # S x D must equal the backbone's feature size: 8 entities of F/8 features
        args["dim"] = FEATURES.get(backbone, 64) // 8
    if objective in MULTI_CROP and backbone == "alexnet":  # its 32 px minimum leaves no room for 16 px local views
        args["num_local"] = 0
    return args


@pytest.mark.parametrize("objective", ssltk.list_objectives())
def test_objective_contract_on_conv4(objective):
    check_objective(objective, "conv4", objective_args=args_for(objective, "conv4"))


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("objective", ssltk.list_objectives())
def test_objective_works_with_every_backbone(objective, backbone):
    from ssltk.testing import build_pair, make_batch

    bb, obj = build_pair(objective, backbone, objective_args=args_for(objective, backbone))
    out = obj(make_batch(obj, batch_size=3), bb)
    assert torch.isfinite(out.loss)
    if not obj.trains:  # the random-weights lower bound leaves the backbone alone
        assert not out.loss.requires_grad
        return
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in bb.parameters())


@pytest.mark.parametrize("objective", ssltk.list_objectives())
def test_objective_hooks_contract(objective):
    check_hooks(objective, "conv4", objective_args=args_for(objective, "conv4"))


def test_hooks_contract_catches_state_outside_the_state_dict():
    class Drifting(ssltk.Objective):
        """Keeps a step counter as a plain attribute: a restored checkpoint would lose it."""

        def __init__(self, in_dim):
            super().__init__(in_dim)
            self.calls = 0

        def forward(self, batch, backbone):
            return ssltk.ObjectiveOutput(backbone(batch.views).mean() * (1 + self.calls))

        def after_optimizer_step(self, backbone, step, progress):
            self.calls += 1

    ssltk.register_objective("in-test-drifting")(Drifting)
    try:
        with pytest.raises(AssertionError, match="state kept outside the state dict"):
            check_hooks("in-test-drifting")
    finally:
        ssltk.OBJECTIVES.unregister("in-test-drifting")
