"""Bad input from the command line: one clear line and a non-zero exit before any training time is spent, or a
warning where the run is legitimate; never a traceback, never a damaged run.

Inputs from the hardening issue that need a run directory, a weights file or a signal are tried beside their
subject: read-only directories, broken ``config.yaml`` files and signals in ``test_rundir.py``, malformed weights
metadata in ``test_security.py``, duplicated metrics records in ``test_checkpoint.py``.
"""
import numpy as np
import pytest

from ssltk.cli import main

FIT = ["fit", "--objective", "relational", "--objective.k", "2", "--data", "digits", "--trainer.progress", "false"]


@pytest.mark.parametrize("args,expect", [
    (["--trainer.batch_size", "0"], "--trainer.batch_size must be an integer >= 1, got 0"),
    (["--trainer.batch_size", "-4"], "--trainer.batch_size must be an integer >= 1, got -4"),
    (["--trainer.lr", "-1"], "--trainer.lr must be a finite number > 0"),
    (["--trainer.lr", "nan"], "trainer.lr"),
    (["--trainer.epochs", "0"], "--trainer.epochs must be >= 1 for an objective that trains, got 0"),
    (["--trainer.epochs", "-2"], "--trainer.epochs must be an integer >= 0, got -2"),
    (["--data.train_size", "-5"], "--data.train_size must be a count >= 1"),
    (["--data.val_size", "-0.5"], "--data.val_size must be a count or a fraction >= 0"),
    (["--trainer.checkpoint_every", "-1"], "--trainer.checkpoint_every must be an integer >= 0, got -1"),
    (["--trainer.keep_checkpoints", "0"], "--trainer.keep_checkpoints must be an integer >= 1"),
    (["--trainer.optimizer", "adamx"], "unknown optimizer 'adamx'; use adam, adamw, sgd, lars"),
    (["--evaluate.split", "bogus"], "--evaluate.split must be one of auto, val, test, got 'bogus'"),
    (["--evaluate.epochs", "0"], "--evaluate.epochs must be an integer >= 1"),
    (["--evaluate.split", "test"], "Digits has no test split"),
])
def test_bad_fit_options_are_refused_before_training(tmp_path, capsys, args, expect):
    run = tmp_path / "run"
    assert main([*FIT, *args, "--trainer.run_dir", str(run)]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ssltk: error: ") and expect in lines[0], err
    assert not (run / "config.yaml").exists()  # nothing was written, so nothing was trained


@pytest.mark.parametrize("args,expect", [
    (["--trainer.device", "mps"], "device 'mps' is not available on this machine"),
    (["--data.size", "0"], "--data.size must be an integer >= 1, got 0"),
    (["--data.size", "-32"], "--data.size must be an integer >= 1, got -32"),
    (["--trainer.seed", "-1"], "--trainer.seed must be an integer >= 0, got -1"),
    (["--backbone", "alexnet", "--data.size", "8"], "backbone alexnet needs images of at least 32 px"),
    (["--backbone", "resnet34", "--data.size", "4"], "backbone timm:resnet34 needs images of at least 32 px"),
    (["--objective", "sela", "--objective.clusters", "0"], "cannot build SelaObjective: SeLa needs clusters >= 2"),
    (["--objective", "simclr", "--objective.temperature", "0"], "--objective.temperature must be > 0"),
])
def test_second_probe_inputs_are_one_line_before_training(tmp_path, capsys, args, expect):
    fit = FIT if "--objective" not in args else ["fit", "--data", "digits", "--trainer.progress", "false"]
    run = tmp_path / "run"
    assert main([*fit, *args, "--trainer.run_dir", str(run)]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ssltk: error: ") and expect in lines[0], lines
    assert not (run / "config.yaml").exists()


def test_a_backbone_whose_output_breaks_its_contract_is_named(tmp_path):
    import torch

    import ssltk
    from ssltk import Backbone
    from ssltk.errors import SsltkError

    class Liar(Backbone):
        num_features = 64

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 10)

        def forward(self, x):
            return self.lin(x.mean((2, 3)))

    class Raiser(Liar):
        def forward(self, x):
            raise RuntimeError("plugin bug")

    for name, cls, expect in (("in-test-liar", Liar, "declares num_features 64 but returns (2, 10)"),
                              ("in-test-raiser", Raiser, "fails on 32 px images: RuntimeError: plugin bug")):
        ssltk.BACKBONES.register(name, cls)
        try:
            with pytest.raises(SsltkError) as info:
                ssltk.fit("relational", name, trainer={"run_dir": str(tmp_path / name), "progress": False})
        finally:
            ssltk.BACKBONES.unregister(name)
        msg = str(info.value)
        assert expect in msg and f"backbone {name} (test_bad_inputs)" in msg and "\n" not in msg, msg
        assert "registered by python" in msg, msg  # the plugin that registered it


@pytest.mark.parametrize("args,expect", [
    (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
    (["--batch_size", "-1"], "--batch_size must be an integer >= 1"),
    (["--sigma", "0"], "--sigma must be > 0"),
])
def test_bad_eval_options_are_refused(tmp_path, capsys, args, expect):
    evaluator = "knn" if args[0] == "--sigma" else "linear"
    assert main(["eval", evaluator, "--weights", str(tmp_path / "none.safetensors"), "--data", "digits", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], lines


def test_retrieval_with_zero_neighbours_is_refused(tmp_path, capsys):
    assert main(["eval", "retrieval", "--weights", str(tmp_path / "none.safetensors"), "--data", "digits",
                 "--ks", "[0]"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--ks must list neighbour counts of at least 1, got [0]" in lines[0], lines


def test_a_huge_learning_rate_warns_first_and_names_no_missing_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    code = main([*FIT, "--data.train_size", "64", "--trainer.batch_size", "32", "--trainer.epochs", "2",
                 "--evaluate.linear", "false", "--trainer.lr", "1e30", "--trainer.run_dir", str(run)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[0].startswith("ssltk: warning: --trainer.lr 1e+30 is far above the usual range"), err
    assert code == 2 and "Traceback" not in err
    assert "no checkpoint was written yet" in lines[-1] or "epoch-0001.safetensors, is intact" in lines[-1], err


def test_one_class_with_a_validation_split_warns_before_training(tmp_path, capsys):
    from PIL import Image

    root = tmp_path / "one" / "only"
    root.mkdir(parents=True)
    for i in range(10):
        Image.fromarray(np.full((12, 12, 3), 20 * i, dtype=np.uint8)).save(root / f"{i}.png")
    code = main(["fit", "--objective", "random", "--data", "imagefolder", "--data.root", str(tmp_path / "one"),
                 "--data.size", "16", "--data.val_size", "0.2", "--trainer.batch_size", "4", "--evaluate.epochs", "1",
                 "--evaluate.random_baseline", "false", "--trainer.progress", "false",
                 "--trainer.run_dir", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "ssltk: warning: the data has 1 class: linear evaluation accuracy will be 100%" in captured.err


def test_knn_monitor_without_a_split_to_score_is_refused_before_training(image_tree, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", "--objective", "relational", "--objective.k", "2", "--data", "imagefolder", "--data.root",
                 str(image_tree), "--data.size", "16", "--evaluate.linear", "false", "--trainer.knn_every", "1",
                 "--trainer.run_dir", str(run)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "ImageFolder has no test split" in lines[0], lines
    assert not (run / "config.yaml").exists()


def test_a_full_disk_at_a_checkpoint_names_the_file_the_intact_checkpoint_and_the_resume(tmp_path, monkeypatch):
    import ssltk
    from ssltk.engine import checkpoint
    from ssltk.errors import SsltkError

    real, calls = checkpoint.save_file, []

    def disk_fills(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:  # the second checkpoint: the disk is full
            from safetensors import SafetensorError
            raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")
        return real(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", disk_fills)
    run = tmp_path / "run"
    with pytest.raises(SsltkError) as info:
        ssltk.fit("relational", objective_args={"k": 2}, data_args={"train_size": 64}, evaluate={"linear": False},
                  trainer={"epochs": 2, "batch_size": 32, "run_dir": str(run), "progress": False})
    msg = str(info.value)
    assert "epoch-0002.safetensors" in msg and "code: 28" in msg and "epoch-0001.safetensors, is intact" in msg
    assert f"ssltk fit --resume {run}" in msg and "\n" not in msg
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0001.safetensors"]


def test_weights_metadata_cannot_make_timm_read_another_path(tmp_path):
    import torch

    import ssltk
    from ssltk.engine.checkpoint import save_safetensors
    from ssltk.errors import SsltkError

    spec = {"class_path": "ssltk.backbones.timm_adapter.TimmBackbone",
            "init_args": {"model_name": "resnet18", "checkpoint_path": str(tmp_path / "elsewhere.pth")}}
    save_safetensors({"x": torch.zeros(1)}, {"backbone": spec}, tmp_path / "w.safetensors")
    with pytest.raises(SsltkError, match="checkpoint_path would make timm read a file"):
        ssltk.load_backbone(tmp_path / "w.safetensors")


def test_export_into_a_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    import ssltk

    run = tmp_path / "run"
    ssltk.fit("random", data_args={"train_size": 64}, evaluate={"linear": False},
              trainer={"run_dir": str(run), "progress": False, "batch_size": 32})
    (tmp_path / "afile").write_text("x")
    assert main(["export", "--run", str(run), "--to", "hf", "--out", str(tmp_path / "afile" / "exp")]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cannot export into" in lines[0], lines
