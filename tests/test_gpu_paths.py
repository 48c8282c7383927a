"""The CUDA-only code paths, exercised on the CPU where PyTorch allows it (CI never has a GPU).

- bf16 autocast (``SSLTK_CPU_AMP=1`` turns it on for the CPU): one training step's loss within 2% of fp32, and the
  evaluators' features within 3% of their largest magnitude; fp16 runs through the gradient scaler;
- ``torch.compile`` of the training step: weights after a compiled SGD epoch within 1e-4 of the eager epoch's, and a
  machine that cannot compile gets one line;
- device strings other than the bare type (``cpu:0``) go through the trainer's device handling.
"""
import pytest
import torch

import ssltk
from ssltk.errors import SsltkError
from helpers import built_trainer, step_loss


def test_bf16_training_step_on_the_cpu_is_within_two_percent_of_fp32(tmp_path, monkeypatch):
    fp32 = built_trainer(tmp_path / "fp32")
    assert not fp32.amp  # the CPU default: no autocast
    monkeypatch.setenv("SSLTK_CPU_AMP", "1")
    bf16 = built_trainer(tmp_path / "bf16")
    assert bf16.amp and bf16.amp_dtype == torch.bfloat16 and not bf16.scaler.is_enabled()
    a, b = step_loss(fp32), step_loss(bf16)
    assert torch.isfinite(b) and abs(a.item() - b.item()) <= 0.02 * abs(a.item())
    bf16.optimizer_step(b)
    assert all(torch.isfinite(p).all() for p in bf16.params)


def test_fp16_on_the_cpu_goes_through_the_gradient_scaler(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLTK_CPU_AMP", "1")
    t = built_trainer(tmp_path, amp_dtype="fp16", grad_clip=1.0)
    assert t.scaler.is_enabled() and t.amp_dtype == torch.float16
    before = [p.detach().clone() for p in t.params]
    t.optimizer_step(step_loss(t))
    assert t.scaler.get_scale() > 0 and any(not torch.equal(p, q) for p, q in zip(t.params, before))


def test_bf16_features_on_the_cpu_are_within_three_percent(monkeypatch):
    from ssltk.eval.features import extract_features

    torch.manual_seed(0)
    bb = ssltk.create_backbone("conv4")
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    args = (images, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    fp32 = extract_features(bb, *args, amp=True)  # amp asked for, but off on the CPU by default
    monkeypatch.setenv("SSLTK_CPU_AMP", "1")
    bf16 = extract_features(bb, *args, amp=True)
    assert not torch.equal(fp32, bf16)  # the bf16 path really ran
    assert (fp32 - bf16.float()).abs().max() <= 0.03 * fp32.abs().max()


def test_compiled_training_step_matches_the_eager_one(tmp_path):
    # SGD, not Adam: Adam normalises gradient differences of 1e-7 on near-zero gradients into full steps (2e-3
    # after two steps of lr 1e-3), while SGD keeps weight differences proportional to gradient differences
    kw = dict(objective_args={"k": 2}, data_args={"train_size": 64}, evaluate={"linear": False})
    opt = {"optimizer": "sgd", "lr": 0.05, "epochs": 1, "batch_size": 32, "progress": False}
    eager = ssltk.fit("relational", trainer={**opt, "run_dir": str(tmp_path / "eager")}, **kw)
    compiled = ssltk.fit("relational", trainer={**opt, "run_dir": str(tmp_path / "comp"), "compile": True}, **kw)
    for (name, a), b in zip(eager.backbone.state_dict().items(), compiled.backbone.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=name)


def test_a_step_that_cannot_compile_is_one_line(tmp_path):
    t = built_trainer(tmp_path, compile=True)

    def broken(batch):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nlong compiler log ...")

    t._forward = broken
    with pytest.raises(SsltkError, match="torch.compile cannot compile the training step on cpu .*InvalidCxxCompiler"
                                         ".*run without --trainer.compile") as info:
        t._compiled_forward(None)
    assert "\n" not in str(info.value)


def test_a_device_with_an_index_runs(tmp_path):
    res = ssltk.fit("random", trainer={"device": "cpu:0", "run_dir": str(tmp_path), "progress": False,
                                       "batch_size": 32}, data_args={"train_size": 64}, evaluate={"epochs": 1})
    assert 0 <= res.metrics["linear"]["accuracy"] <= 100


def test_compile_mode_is_checked_and_the_cpu_keeps_the_unfused_optimizer(tmp_path):
    with pytest.raises(SsltkError, match="compile_mode"):
        built_trainer(tmp_path / "bad", compile_mode="fast")
    t = built_trainer(tmp_path / "cpu")
    assert not t.optimizer.param_groups[0].get("fused")  # CPU numerics stay those of the bit-exact resume tests


def test_gpu_suite_all_parts_smoke_within_budget(tmp_path):
    import json
    import subprocess
    import sys
    import time
    from pathlib import Path

    from PIL import Image

    # a small labelled folder stands in for CIFAR-10: the smoke check needs no shared archive
    data = tmp_path / "train"
    for i in range(400):
        (data / f"c{i % 4}").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), ((i * 37) % 256, (i * 11) % 256, i % 256)).save(data / f"c{i % 4}" / f"{i}.png")
    suite = Path(__file__).resolve().parents[1] / "examples" / "benchmarks" / "gpu_suite.py"
    t0 = time.time()
    ran = subprocess.run([sys.executable, str(suite), "--part", "all", "--smoke", "--budget", "200", "--out",
                          str(tmp_path / "out"), "--work", str(tmp_path / "work"), "--data", str(data)],
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert time.time() - t0 < 200
    out = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert out == sorted(f"{p}.{ext}" for p in ("tests", "throughput", "sinkhorn", "protocol")
                         for ext in ("json", "md"))
    figures = {p: json.loads((tmp_path / "out" / f"{p}.json").read_text()) for p in ("tests", "sinkhorn", "protocol")}
    assert figures["tests"]["smoke_ok"] == 2 and figures["sinkhorn"]["one_head_s"] > 0
    assert figures["protocol"]["extrapolated_minutes"] > 0
    assert "CPU smoke check" in (tmp_path / "out" / "throughput.md").read_text()
    refused = subprocess.run([sys.executable, str(suite), "--record-from", str(tmp_path / "out")],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "never recorded" in refused.stderr


def test_gpu_suite_peers_part_smoke_trains_a_method_and_resumes_it(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    data = tmp_path / "train"
    for i in range(400):  # the smoke run trains 256 and holds 128 out
        (data / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), ((i * 37) % 256, (i * 11) % 256, i % 256)).save(data / f"c{i % 3}" / f"{i}.png")
    suite = Path(__file__).resolve().parents[1] / "examples" / "benchmarks" / "gpu_suite.py"
    argv = [sys.executable, str(suite), "--part", "peers", "--method", "byol", "--smoke", "--budget", "300",
            "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"), "--data", str(data)]
    ran = subprocess.run(argv, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    figures = json.loads((tmp_path / "out" / "peers.json").read_text())
    assert figures["method"] == "byol" and figures["epochs_done"] == 2 and "knn_accuracy" in figures
    again = subprocess.run(argv, capture_output=True, text=True)  # a finished run is picked up, not retrained
    assert again.returncode == 0 and json.loads((tmp_path / "out" / "peers.json").read_text())["epochs_done"] == 2
