"""The supervised upper bound and the random-weights lower bound."""
import subprocess
import sys

import pytest
import torch
import yaml

import ssltk
from ssltk.engine.build import build, resolve
from ssltk.testing import build_pair, check_objective, make_batch


def test_supervised_labels_follow_the_view_major_layout():
    bb, obj = build_pair("supervised", objective_args={"k": 3})
    batch = make_batch(obj, batch_size=4)
    assert batch.views.shape[0] == 12
    with torch.no_grad():
        logits = obj.classifier(bb(batch.views))
    expected = torch.nn.functional.cross_entropy(logits, batch.labels.repeat(3))
    torch.testing.assert_close(obj(batch, bb).loss, expected)


def test_supervised_needs_labels_and_classes():
    bb, obj = build_pair("supervised")
    batch = make_batch(obj)
    batch.labels = None
    with pytest.raises(ValueError, match="labels"):
        obj(batch, bb)
    with pytest.raises(ValueError, match="num_classes"):
        ssltk.create_objective("supervised", in_dim=64)


def test_supervised_contract_with_k_views():
    check_objective("supervised", objective_args={"k": 2})


def test_trainer_defaults_are_the_papers_and_yield_to_the_user():
    cfg = ssltk.make_config("supervised")
    assert (cfg["trainer"]["optimizer"], cfg["trainer"]["lr"], cfg["trainer"]["schedule"]) == ("sgd", 0.1, "step")
    cfg = ssltk.make_config("supervised", trainer={"lr": 0.05})
    assert (cfg["trainer"]["optimizer"], cfg["trainer"]["lr"]) == ("sgd", 0.05)
    assert ssltk.make_config("relational")["trainer"]["optimizer"] == "adam"


def test_cli_applies_objective_defaults_under_user_options(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ssltk", "fit", "--objective", "supervised", "--data", "digits",
                           "--data.train_size", "128", "--trainer.batch_size", "32", "--trainer.progress", "false",
                           "--evaluate.linear", "false", "--trainer.epochs", "1", "--trainer.lr", "0.02",
                           "--trainer.run_dir", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    trainer = yaml.safe_load((tmp_path / "config.yaml").read_text())["trainer"]
    assert (trainer["optimizer"], trainer["lr"], trainer["schedule"]) == ("sgd", 0.02, "step")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["objective"]["init_args"]["num_classes"] is None


def test_random_saves_the_seeded_initial_backbone(tmp_path):
    res = ssltk.fit("random", data_args={"train_size": 64}, trainer={"run_dir": str(tmp_path), "seed": 3,
                                                                     "progress": False, "epochs": 5},
                    evaluate={"linear": False})
    saved = ssltk.load_backbone(tmp_path / "backbone.safetensors")
    torch.manual_seed(3)
    fresh = build(resolve("backbone", "conv4"))
    for (name, a), b in zip(saved.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    assert not (tmp_path / "checkpoints").exists()  # not one step was taken, even with epochs set
    assert res.backbone is not None
