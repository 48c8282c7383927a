"""The CLI: listing, config handling, and one-line errors for bad input."""
import json

import pytest
import torch
import yaml
from safetensors.torch import save_file

from ssltk.cli import main
from helpers import FAST_FIT, error_lines, ssltk


def test_list_and_patterns(capsys):
    assert main(["list", "objectives"]) == 0
    assert "relational" in capsys.readouterr().out
    assert main(["list", "backbones", "resnet*"]) == 0
    out = capsys.readouterr().out.split("\n")
    assert [ln.split()[0] for ln in out if ln] == ["resnet8", "resnet18-cifar", "resnet32", "resnet34", "resnet56"]
    assert main(["list", "datasets"]) == 0
    assert {"digits", "cifar10", "imagefolder"} <= {ln.split()[0] for ln in capsys.readouterr().out.splitlines()}
    assert main(["list", "evaluators"]) == 0
    assert "linear" in capsys.readouterr().out
    assert main(["list", "objectivs"]) == 2
    assert "did you mean 'objectives'" in capsys.readouterr().err


def test_print_config_maps_names_and_nested_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--objective", "relational", "--objective.k", "8", "--backbone", "timm:resnet18",
              "--trainer.epochs", "3", "--print_config"])
    assert info.value.code == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["objective"]["class_path"].endswith("RelationalObjective")
    assert cfg["objective"]["init_args"]["k"] == 8
    assert cfg["backbone"]["class_path"].endswith("TimmBackbone")
    assert cfg["backbone"]["init_args"]["model_name"] == "resnet18"
    assert cfg["trainer"]["epochs"] == 3
    assert cfg["data"]["class_path"].endswith("Digits")  # the offline default


def test_config_file_with_registry_names(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("objective:\n  class_path: relational\n  init_args: {k: 3}\nbackbone: resnet8\n"
                   "data: {class_path: digits, init_args: {train_size: 128}}\n"
                   f"trainer: {{epochs: 1, batch_size: 32, run_dir: {tmp_path / 'run'}, progress: false}}\n"
                   "evaluate: {linear: false}\n")
    assert main(["fit", "--config", str(cfg), "--trainer.seed", "3"]) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["backbone"]["class_path"].endswith("ResNet8")
    assert saved["objective"]["init_args"]["k"] == 3 and saved["trainer"]["seed"] == 3
    # the saved config re-runs as is (into another directory)
    assert main(["fit", "--config", str(tmp_path / "run" / "config.yaml"), "--trainer.run_dir",
                 str(tmp_path / "again")]) == 0
    metrics = [json.loads(ln) for ln in (tmp_path / "again" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["event"] == "epoch" and metrics[-1]["epoch"] == 1


@pytest.mark.parametrize("args,expect", [
    (["fit", "--objective", "relationa"], "did you mean 'relational'"),
    (["fit", "--objective", "relational", "--backbone", "resnet33"], "'resnet32'"),
    (["fit", "--objective", "relational", "--data", "cifar"], "did you mean 'cifar10'"),
    (["fit", "--objective", "relational", "--data", "imagefolder", "--data.root", "/no/such/folder"],
     "image folder not found: /no/such/folder"),
    (["fit", "--objective", "relational", "--data", "cifar10", "--data.root", "/no/such/folder"],
     "cifar-10-batches-py"),
    (["fit", "--objective", "relational", "--trainer.epoch", "3"], "did you mean --trainer.epochs"),
    (["fit", "--objective", "relational", "--objective.kk", "3"], "--objective.kk is not an option"),
    (["fit", "--objective", "relational", "--trainer.epochs", "many"], "trainer.epochs"),
    (["fit", "--objective", "relational", "--objective.aggregation", "prod", "--data.train_size", "64",
      "--trainer.epochs", "1"], "unknown aggregation 'prod'"),
    (["fti"], "did you mean fit"),
    (["eval", "linaer", "--run", "x"], "did you mean 'linear'"),
])
def test_bad_input_exits_with_one_line(args, expect):
    proc = ssltk(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ssltk: error: ") and expect in lines[0], lines[0]


def test_config_key_that_does_not_exist(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("objective: relational\ntrainer: {epocs: 3}\n")
    proc = ssltk("fit", "--config", str(cfg))
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1 and "epocs" in lines[0], proc.stderr


def test_checkpoint_with_wrong_shapes(tmp_path):
    from ssltk.engine.checkpoint import save_backbone
    import ssltk as api

    conv4 = api.create_backbone("conv4")
    save_backbone(tmp_path / "conv4.safetensors", conv4, {"class_path": "ssltk.backbones.Conv4", "init_args": {}})
    proc = ssltk("eval", "linear", "--weights", str(tmp_path / "conv4.safetensors"), "--backbone", "resnet8",
                 "--data", "digits")
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1 and "do not match ResNet8" in lines[0], proc.stderr
    # same names, other shapes: a Conv4 file whose first conv is widened
    state = {k: v.clone() for k, v in conv4.state_dict().items()}
    state["features.0.0.weight"] = torch.zeros(8, 3, 5, 5)
    save_file(state, str(tmp_path / "wide.safetensors"))
    proc = ssltk("eval", "linear", "--weights", str(tmp_path / "wide.safetensors"), "--backbone", "conv4",
                 "--data", "digits")
    lines = error_lines(proc)
    assert proc.returncode == 2 and len(lines) == 1 and "shape mismatch for 'features.0.0.weight'" in lines[0]


def test_fit_then_eval_linear_on_run_and_on_weights(tmp_path):
    run = tmp_path / "run"
    proc = ssltk("fit", "--objective", "relational", "--objective.k", "2", *FAST_FIT, "--trainer.epochs", "1",
                 "--trainer.run_dir", str(run))
    assert proc.returncode == 0, proc.stderr
    proc = ssltk("eval", "linear", "--run", str(run), "--epochs", "5")
    assert proc.returncode == 0, proc.stderr
    assert "accuracy:" in proc.stdout
    results = json.loads((run / "results.json").read_text())
    assert results["linear"]["epochs"] == 5 and 0 <= results["linear"]["accuracy"] <= 100
    # a bare backbone file knows its own class; data must be named
    proc = ssltk("eval", "linear", "--weights", str(run / "backbone.safetensors"), "--data", "digits", "--epochs", "2",
                 "--out", str(tmp_path / "ev"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ev" / "results.json").is_file()


def test_refuses_to_overwrite_a_run(tmp_path):
    run = tmp_path / "run"
    args = ["fit", "--objective", "relational", "--objective.k", "2", *FAST_FIT, "--trainer.epochs", "1",
            "--trainer.run_dir", str(run)]
    assert ssltk(*args).returncode == 0
    proc = ssltk(*args)
    assert proc.returncode == 2 and "--resume" in proc.stderr


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "fit" in out and "eval" in out and "plugins" in out
    assert main(["--version"]) == 0


def test_help_answers_for_registry_names_and_list_takes_a_plain_word(capsys):
    from ssltk.cli import main

    for argv, expect in ((["fit", "--objective.help", "relational"], "--objective.k"),
                         (["fit", "--data", "imagefolder", "--data.help"], "ImageFolder"),
                         (["fit", "--data.help=cifar10"], "Cifar10")):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0 and expect in capsys.readouterr().out, argv
    assert main(["list", "backbones", "res"]) == 0
    out = capsys.readouterr().out
    assert "resnet32" in out and "conv4" not in out
    assert "(Caron et al. 2018; paper 000, A.5)." in (main(["list", "objectives", "deepcluster"]) == 0 and
                                                        capsys.readouterr().out)
