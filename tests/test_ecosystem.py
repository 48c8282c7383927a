"""Fitting the ecosystem: experiment loggers, export to timm / Hugging Face / TorchScript / ONNX, starting weights,
top-5 accuracy and the online kNN monitor."""
import json
import time

import pytest
import torch
from safetensors.torch import save_file

import ssltk
from ssltk.cli import main

FAST = {"data_args": {"train_size": 128}, "evaluate": {"epochs": 2}}


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("logged") / "run"
    ssltk.fit("relational", objective_args={"k": 2}, trainer={
        "epochs": 2, "batch_size": 32, "run_dir": str(run), "progress": False, "log_every": 2, "knn_every": 1,
        "loggers": ["csv", "tensorboard"]}, **FAST)
    return run


def test_tensorboard_scalars_equal_the_metrics_records(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logged_run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    recs = records(logged_run)
    assert {r["event"] for r in recs} == {"step", "epoch", "knn", "eval"}
    checked = 0
    for rec in recs:
        prefix = "/".join(str(rec[k]) for k in ("event", "name") if k in rec)
        for key, value in rec.items():
            if key in ("event", "epoch", "step", "time", "name") or not isinstance(value, (int, float)):
                continue
            events = [e for e in acc.Scalars(f"{prefix}/{key}") if e.step == rec["step"]]
            assert len(events) == 1 and events[0].value == pytest.approx(value, rel=1e-6), (rec, key)
            checked += 1
    assert checked > 20
    assert "config/text_summary" in acc.Tags()["tensors"]  # the run's config, as text


def test_csv_files_hold_every_record(logged_run):
    import csv

    recs = records(logged_run)
    for kind in ("step", "epoch", "knn", "eval"):
        with open(logged_run / f"metrics-{kind}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        mine = [r for r in recs if r["event"] == kind]
        assert len(rows) == len(mine)
        assert [float(r["step"]) for r in rows] == [float(m["step"]) for m in mine]


def test_csv_files_are_rebuilt_from_the_record_a_resume_continues(logged_run, tmp_path):
    import csv

    from ssltk.loggers import CSVLogger

    (tmp_path / "metrics-knn.csv").write_text("stale\n")
    kept = (logged_run / "metrics.jsonl").read_text()
    (tmp_path / "metrics.jsonl").write_text(kept + '{"event": "ep')  # a line torn by the kill
    logger = CSVLogger()
    logger.start(tmp_path, {}, step=0)
    logger.close()
    for kind in ("step", "epoch", "knn", "eval"):
        with open(tmp_path / f"metrics-{kind}.csv", newline="") as fh:
            assert len(list(csv.DictReader(fh))) == len([r for r in records(logged_run) if r["event"] == kind])


def test_knn_monitor_and_top5_are_logged_and_training_is_unchanged(logged_run, tmp_path):
    knn = [r for r in records(logged_run) if r["event"] == "knn"]
    assert [r["epoch"] for r in knn] == [1, 2] and all(0 <= r["knn_accuracy"] <= r["knn_accuracy_top5"] for r in knn)
    results = json.loads((logged_run / "results.json").read_text())
    assert results["linear"]["accuracy"] <= results["linear"]["accuracy_top5"]
    # the same run without monitor and loggers: the same weights, bit for bit
    plain = ssltk.fit("relational", objective_args={"k": 2}, trainer={
        "epochs": 2, "batch_size": 32, "run_dir": str(tmp_path / "plain"), "progress": False, "log_every": 2},
        data_args=FAST["data_args"], evaluate={"linear": False})
    a = ssltk.load_backbone(logged_run / "backbone.safetensors").state_dict()
    for k, v in plain.backbone.state_dict().items():
        assert torch.equal(a[k], v.cpu()), k


def test_wandb_logs_offline_without_network(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    ssltk.fit("random", trainer={"run_dir": str(run), "progress": False, "batch_size": 32, "loggers": ["wandb"]},
              **FAST)
    offline = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1
    # wandb's own log (protobuf records written by its core service; no Python reader ships with it) holds each
    # tag and its value as JSON text. The service process may still be writing it when finish() has returned (seen
    # on a loaded machine: the file held only its header), so wait for it a little.
    deadline = time.monotonic() + 30
    while b"RandomWeights" not in offline[0].read_bytes() and time.monotonic() < deadline:
        time.sleep(0.5)
    data = offline[0].read_bytes()
    evals = [r for r in records(run) if r["event"] == "eval"]
    assert {r["name"] for r in evals} == {"linear", "linear_random"}
    for rec in evals:
        assert f"eval/{rec['name']}/accuracy".encode() in data
        assert json.dumps(rec["accuracy"]).encode() in data
    assert b"RandomWeights" in data  # the run's config


def test_unknown_or_duplicate_logger_is_refused_before_training(tmp_path, capsys):
    for loggers, expect in (("[tensorbored]", "did you mean 'tensorboard'"), ("[csv, csv]", "names a logger twice")):
        assert main(["fit", "--objective", "relational", "--trainer.loggers", loggers, "--trainer.run_dir",
                     str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expect in err[0], err
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def timm_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("timm") / "run"
    ssltk.fit("random", "timm:resnet18", trainer={"run_dir": str(run), "progress": False, "batch_size": 32},
              data_args={"train_size": 64}, evaluate={"epochs": 1})
    return run


def test_export_to_timm_loads_in_timm_with_the_same_features(timm_run, tmp_path):
    import timm

    assert main(["export", "--run", str(timm_run), "--to", "timm", "--out", str(tmp_path / "t")]) == 0
    model = timm.create_model("resnet18", pretrained=True, num_classes=0,
                              pretrained_cfg_overlay=dict(file=str(tmp_path / "t" / "model.safetensors"))).eval()
    ours = ssltk.load_backbone(timm_run / "backbone.safetensors").eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), ours(x), atol=1e-5, rtol=1e-5)


def test_export_to_timm_needs_a_timm_backbone(finished_conv4_run, tmp_path, capsys):
    assert main(["export", "--run", str(finished_conv4_run), "--to", "timm", "--out", str(tmp_path / "t")]) == 2
    assert "needs a timm:NAME backbone" in capsys.readouterr().err


@pytest.fixture(scope="module")
def finished_conv4_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("conv4") / "run"
    ssltk.fit("random", trainer={"run_dir": str(run), "progress": False, "batch_size": 32},
              data_args={"train_size": 64}, evaluate={"epochs": 1})
    return run


def test_export_hf_folder_with_model_card(finished_conv4_run, tmp_path):
    out = tmp_path / "hf"
    assert main(["export", "--run", str(finished_conv4_run), "--to", "hf", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "ssltk" and cfg["num_features"] == 64 and "linear" in cfg["results"]
    card = (out / "README.md").read_text()
    acc = json.loads((finished_conv4_run / "results.json").read_text())["linear"]["accuracy"]
    assert "library_name: ssltk" in card and f"{acc:.2f}" in card and "random" in card
    ours = ssltk.load_backbone(finished_conv4_run / "backbone.safetensors").eval()
    again = ssltk.load_backbone(out / "model.safetensors").eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(again(x), ours(x))


def test_export_torchscript_and_onnx_give_the_same_features(finished_conv4_run, tmp_path):
    import onnxruntime

    ours = ssltk.load_backbone(finished_conv4_run / "backbone.safetensors").eval()
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ours(x)
    assert main(["export", "--run", str(finished_conv4_run), "--to", "torchscript", "--out", str(tmp_path)]) == 0
    scripted = torch.jit.load(str(tmp_path / "backbone.pt"))
    torch.testing.assert_close(scripted(x), want, atol=1e-5, rtol=1e-5)
    assert main(["export", "--run", str(finished_conv4_run), "--to", "onnx", "--out", str(tmp_path)]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "backbone.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})[0]  # batch 5 through a model traced at batch 2
    torch.testing.assert_close(torch.from_numpy(got), want, atol=1e-4, rtol=1e-4)


def test_backbone_weights_start_training_and_evaluation(finished_conv4_run, tmp_path, capsys):
    weights = finished_conv4_run / "backbone.safetensors"
    res = ssltk.fit("random", backbone_args={"weights": str(weights)}, trainer={
        "run_dir": str(tmp_path / "run"), "progress": False, "batch_size": 32}, data_args={"train_size": 64},
        evaluate={"linear": False})
    start = ssltk.load_backbone(weights).state_dict()
    for k, v in res.backbone.state_dict().items():
        assert torch.equal(start[k], v.cpu()), k
    # evaluation from starting weights alone, and a mismatch as one line
    assert main(["eval", "knn", "--backbone", "conv4", "--backbone.weights", str(weights), "--data", "digits",
                 "--data.train_size", "64", "--out", str(tmp_path / "ev")]) == 0
    capsys.readouterr()
    assert main(["eval", "knn", "--backbone", "resnet8", "--backbone.weights", str(weights), "--data", "digits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "keys do not match ResNet8" in err[0]


def test_weights_only_checkpoints_cannot_run_code(tmp_path):
    import os
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    with open(tmp_path / "evil.pth", "wb") as fh:
        pickle.dump({"conv.weight": Payload()}, fh)
    with pytest.raises(ssltk.SsltkError, match="weights-only"):
        ssltk.create_backbone("conv4", weights=str(tmp_path / "evil.pth"))
    assert not (tmp_path / "pwned").exists()
    save_file({"x": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ssltk.SsltkError, match="keys do not match"):
        ssltk.create_backbone("conv4", weights=str(tmp_path / "x.safetensors"))


def test_the_hf_export_publishes_no_path_of_this_machine(finished_conv4_run, tmp_path):
    out = tmp_path / "hf"
    assert main(["export", "--run", str(finished_conv4_run), "--to", "hf", "--out", str(out)]) == 0
    published = (out / "config.json").read_text() + (out / "README.md").read_text()
    assert str(finished_conv4_run) not in published and str(tmp_path) not in published
    assert "/tmp" not in published and "<local path>" in published


def test_the_knn_monitor_shows_on_the_console(tmp_path, capsys):
    ssltk.fit("relational", objective_args={"k": 2}, trainer={
        "epochs": 1, "batch_size": 32, "run_dir": str(tmp_path), "progress": True, "knn_every": 1}, **FAST)
    err = capsys.readouterr().err
    assert "epoch 1/1  kNN accuracy" in err, err
