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
    (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
    (["--batch_size", "-1"], "--batch_size must be an integer >= 1"),
    (["--sigma", "0"], "--sigma must be > 0"),
])
def test_bad_eval_options_are_refused(tmp_path, capsys, args, expect):
    evaluator = "knn" if args[0] == "--sigma" else "linear"
    assert main(["eval", evaluator, "--weights", str(tmp_path / "none.safetensors"), "--data", "digits", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], lines


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
