"""Optimisation: optimizers as classes, LARS, parameter groups, per-iteration schedules with warmup, gradient
clipping, the fp16 gradient scaler, and the momentum encoder."""
import json
import math

import pytest
import torch
import yaml
from torch import nn

import ssltk
from ssltk.cli import main
from ssltk.engine.optim import LRSchedule, build_optimizer, collect_groups, no_decay_groups, optimizer_class
from ssltk.errors import SsltkError
from helpers import built_trainer, step_loss


def test_step_schedule_equals_the_per_epoch_multistep_it_replaces():
    epochs, spe = 8, 5
    sched = LRSchedule("step", epochs, spe)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    ref = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[4, 6], gamma=0.1)
    for epoch in range(epochs):
        for i in range(spe):
            assert sched.factor(epoch * spe + i) == pytest.approx(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()


def test_warmup_is_linear_then_cosine_per_step():
    sched = LRSchedule("cosine", epochs=4, steps_per_epoch=10, warmup_epochs=1)
    f = [sched.factor(s) for s in range(40)]
    assert f[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert f[10] == pytest.approx(1.0)
    assert f[25] == pytest.approx(0.5 * (1 + math.cos(math.pi * 15 / 30)))
    assert all(a > b for a, b in zip(f[10:], f[11:]))  # every iteration decays, not every epoch


def test_warmup_longer_than_the_run_is_capped_with_a_warning(capsys):
    sched = LRSchedule("cosine", epochs=1, steps_per_epoch=10, warmup_epochs=3)
    assert sched.warmup == 5 and "warming up over its first 5 of 10 steps" in capsys.readouterr().err


def test_optimizers_by_name_and_torch_class_path_only():
    from timm.optim import Lars

    assert optimizer_class("adamw") is torch.optim.AdamW and optimizer_class("lars") is Lars
    assert optimizer_class("torch.optim.RMSprop") is torch.optim.RMSprop
    for bad in ("os.system", "subprocess.Popen", "torch.optim.lr_scheduler", "torch.optim.Nope", "adamx"):
        with pytest.raises(SsltkError, match="unknown optimizer"):
            optimizer_class(bad)
    p = nn.Parameter(torch.ones(3))
    opt = build_optimizer("torch.optim.RMSprop", [{"params": [p]}], lr=0.01, weight_decay=0.0, momentum=0.5,
                          extra={"alpha": 0.9})
    assert opt.param_groups[0]["momentum"] == 0.5 and opt.param_groups[0]["alpha"] == 0.9
    with pytest.raises(SsltkError, match="does not take betaz"):
        build_optimizer("adam", [{"params": [p]}], 0.1, 0.0, 0.9, extra={"betaz": (0.9, 0.99)})


def test_lars_matches_its_formula_and_skips_groups_without_decay():
    """One LARS step (You et al. 2017, Algorithm 1) written out: the decay group's update is scaled by the trust
    ratio eta * ||w|| / (||g|| + wd ||w||); the group without weight decay takes a plain momentum-SGD step."""
    torch.manual_seed(0)
    w, b = nn.Parameter(torch.randn(4, 3)), nn.Parameter(torch.randn(4))
    w.grad, b.grad = torch.randn(4, 3), torch.randn(4)
    w0, b0, gw, gb = w.detach().clone(), b.detach().clone(), w.grad.clone(), b.grad.clone()
    lr, wd, eta = 0.5, 1e-2, 1e-3
    opt = build_optimizer("lars", [{"params": [w]}, {"params": [b], "weight_decay": 0.0}], lr, wd, 0.9,
                          extra={"trust_coeff": eta})
    opt.step()
    trust = eta * w0.norm() / (gw.norm() + wd * w0.norm())
    assert torch.allclose(w, w0 - lr * trust * (gw + wd * w0), atol=1e-6)
    assert torch.allclose(b, b0 - lr * gb, atol=1e-6)


def test_parameter_groups_are_checked_and_completed():
    a, b, c = (nn.Parameter(torch.zeros(2)) for _ in range(3))
    frozen = nn.Parameter(torch.zeros(2), requires_grad=False)
    groups = collect_groups([{"params": [b], "lr_scale": 10.0}], [a, b, c], "Mine")
    assert [len(g["params"]) for g in groups] == [1, 2] and groups[0]["lr_scale"] == 10.0
    opt = build_optimizer("sgd", groups, lr=0.1, weight_decay=0.0, momentum=0.0)
    assert [g["base_lr"] for g in opt.param_groups] == pytest.approx([1.0, 0.1])
    with pytest.raises(SsltkError, match="in two groups"):
        collect_groups([{"params": [a]}, {"params": [a]}], [a, b], "Mine")
    with pytest.raises(SsltkError, match="does not train"):
        collect_groups([{"params": [frozen]}], [a, b], "Mine")
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    decay, no_decay = no_decay_groups(net)
    assert [p.dim() for p in decay["params"]] == [2] and len(no_decay["params"]) == 3
    assert no_decay["weight_decay"] == 0.0


def test_lars_with_warmup_trains_and_logs_the_schedule_per_step(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", "--objective", "relational", "--objective.k", "2", "--data", "digits", "--data.train_size",
                 "128", "--trainer.batch_size", "32", "--trainer.epochs", "4", "--trainer.optimizer", "lars",
                 "--trainer.lr", "0.2", "--trainer.warmup_epochs", "2", "--trainer.schedule", "cosine",
                 "--trainer.log_every", "1", "--trainer.progress", "false", "--evaluate.linear", "false",
                 "--trainer.run_dir", str(run)]) == 0
    lrs = [r["lr"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["event"] == "step"]
    assert lrs[:8] == pytest.approx([0.2 * (i + 1) / 8 for i in range(8)])
    assert lrs[8:] == pytest.approx([0.1 * (1 + math.cos(math.pi * i / 8)) for i in range(8)])


def test_gradient_clipping_bounds_the_update(tmp_path):
    moved = {}
    for clip in (0.0, 1e-9):
        t = built_trainer(tmp_path / str(clip), optimizer="sgd", lr=0.1, momentum=0.0, grad_clip=clip)
        before = [p.detach().clone() for p in t.params]
        t.optimizer_step(step_loss(t))
        moved[clip] = max((p - q).abs().max().item() for p, q in zip(t.params, before))
    assert moved[0.0] > 1e-4 and moved[1e-9] < 1e-9


def test_fp16_gradient_scaler_path_and_its_checkpoint(tmp_path):
    # CUDA-only in training (fp16 autocast); the scaler's own code path is exercised here on the CPU
    t = built_trainer(tmp_path, grad_clip=1.0)
    assert not t.scaler.is_enabled()  # on the CPU, or with bf16, no loss scaling
    t.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    before = [p.detach().clone() for p in t.params]
    t.optimizer_step(step_loss(t))
    assert any(not torch.equal(p, q) for p, q in zip(t.params, before))
    path = t._save(1, 1)
    from ssltk.engine.checkpoint import read_safetensors

    assert read_safetensors(path)[1]["grad_scaler"]["scale"] == t.scaler.get_scale()
    t2 = built_trainer(tmp_path / "again")
    t2.scaler, t2.run_dir = torch.amp.GradScaler("cpu", init_scale=1.0), tmp_path
    t2._restore()
    assert t2.scaler.get_scale() == t.scaler.get_scale()


def test_momentum_encoder_follows_byols_schedule():
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = ssltk.MomentumEncoder(online, base=0.99)
    assert all(not p.requires_grad for p in ema.parameters())
    assert "module.0.weight" in ema.state_dict()
    start = ema.module[0].weight.detach().clone()
    with torch.no_grad():
        online[0].weight.add_(1.0)
    tau = ema.update(online, progress=0.25)
    assert tau == pytest.approx(1 - 0.01 * (math.cos(math.pi / 4) + 1) / 2)
    assert torch.allclose(ema.module[0].weight, tau * start + (1 - tau) * online[0].weight)
    assert ssltk.cosine_momentum(0.0) == pytest.approx(0.996) and ssltk.cosine_momentum(1.0) == 1.0
    out = ema(torch.randn(5, 3))
    assert not out.requires_grad


@pytest.mark.parametrize("objective,expect", [
    ("supervised", {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "schedule": "step"}),
    ("simclr", {"batch_size": 128, "optimizer": "adam"}),
])
def test_print_config_shows_the_objectives_defaults_and_round_trips(tmp_path, capsys, objective, expect):
    with pytest.raises(SystemExit):
        main(["fit", "--objective", objective, "--print_config"])
    printed = capsys.readouterr().out
    cfg = yaml.safe_load(printed)
    assert {k: cfg["trainer"][k] for k in expect} == expect
    (tmp_path / "run.yaml").write_text(printed)
    run = tmp_path / "run"
    assert main(["fit", "--config", str(tmp_path / "run.yaml"), "--trainer.epochs", "1", "--data.train_size", "128",
                 "--trainer.batch_size", "64", "--evaluate.linear", "false", "--trainer.progress", "false",
                 "--trainer.run_dir", str(run)]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())["trainer"]
    assert {k: saved[k] for k in expect if k != "batch_size"} == {k: v for k, v in expect.items() if k != "batch_size"}
    given = ("epochs", "batch_size", "run_dir", "progress")  # the overrides of this test's command line
    assert {k: v for k, v in saved.items() if k not in given} == \
        {k: v for k, v in cfg["trainer"].items() if k not in given}


def test_step_schedule_milestones_are_fractions_of_the_epochs():
    from ssltk.engine.optim import LRSchedule

    s = LRSchedule("step", epochs=10, steps_per_epoch=2, milestones=(0.6, 0.8))
    assert [s.factor(e * 2) for e in (5, 6, 8)] == [1.0, pytest.approx(0.1), pytest.approx(0.01)]
    with pytest.raises(ssltk.SsltkError, match="milestones"):
        ssltk.engine.trainer.TrainerConfig(milestones=[1.5])


def test_selas_probe_options_max_pooling_and_sgd_steps():
    from ssltk.eval.features import extract_layer_features
    from ssltk.eval.linear import LinearEval, train_linear

    bb = ssltk.create_backbone("conv4").eval()
    imgs = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    layer = bb.probe_layers()["block1"]
    avg = extract_layer_features(bb, layer, imgs, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"), 128)
    mx = extract_layer_features(bb, layer, imgs, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"), 128, pool="max")
    assert mx.shape == avg.shape and bool((mx >= avg - 1e-6).all()) and not torch.allclose(mx, avg)
    x, y = torch.randn(64, 5), torch.arange(64) % 3
    seen = []
    orig = torch.optim.SGD.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return orig(self, *a, **k)

    torch.optim.SGD.step = spy
    try:
        train_linear(x, y, 3, epochs=4, batch_size=64, lr=0.01, optimizer="sgd", milestones=[1, 3], lr_gamma=0.2)
    finally:
        torch.optim.SGD.step = orig
    assert seen == pytest.approx([0.01, 0.002, 0.002, 0.0004])
    with pytest.raises(ssltk.SsltkError, match="optimizer"):
        LinearEval(optimizer="lbfgs")


def test_weight_decay_schedule_is_a_cosine_over_the_run_for_the_runs_own_decay_only(tmp_path):
    from ssltk.engine.optim import WeightDecaySchedule

    s = WeightDecaySchedule(0.04, 0.4, 100)
    assert [s.value(i) for i in (0, 50, 100)] == pytest.approx([0.04, 0.22, 0.4])
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    opt = build_optimizer("adamw", no_decay_groups(model), lr=0.1, weight_decay=0.04, momentum=0.9)
    s.mark(opt)
    s.apply(opt, 50)
    assert [g["weight_decay"] for g in opt.param_groups] == pytest.approx([0.22, 0.0])
    t = built_trainer(tmp_path, optimizer="adamw", weight_decay=0.04, weight_decay_end=0.4)
    assert t.decay_schedule is not None and t.optimizer.param_groups[0]["scheduled_decay"]
    with pytest.raises(SsltkError, match="weight_decay_end"):
        ssltk.TrainerConfig(weight_decay_end=-1.0)
