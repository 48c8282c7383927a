"""The peers' methods (BYOL, MoCo v3, DINO, SwAV, Barlow Twins, VICReg) in the engine: the step hooks run in their
order, a layer frozen for the first epoch takes no step, and a run killed with SIGKILL resumes to the uninterrupted
run's checkpoint, every tensor equal (momentum targets, DINO's centre, SwAV's queue and prototypes)."""
import pytest
import torch

import ssltk
from helpers import FAST_FIT, kill_after_first_checkpoint, ssltk as run_cli

TINY = {
    "dino": ["--objective.out_dim", "64", "--objective.hidden_dim", "32", "--objective.num_local", "2",
             "--objective.warmup_teacher_temp_epochs", "2"],
    "swav": ["--objective.prototypes", "16", "--objective.hidden_dim", "32", "--objective.num_local", "2",
             "--objective.queue_length", "64", "--objective.queue_start_epoch", "0"],
    "byol": ["--objective.hidden_dim", "32"],
    "mocov3": ["--objective.hidden_dim", "32"],
    "barlowtwins": ["--objective.proj_dim", "32"],
    "vicreg": ["--objective.proj_dim", "32"],
}
SLOW = pytest.mark.slow  # the same resume path as DINO's and SwAV's, without state of their own


@pytest.mark.parametrize("method", ["dino", "swav", pytest.param("byol", marks=SLOW),
                                    pytest.param("mocov3", marks=SLOW), pytest.param("barlowtwins", marks=SLOW),
                                    pytest.param("vicreg", marks=SLOW)])
def test_killed_run_resumes_to_the_uninterrupted_checkpoint(method, tmp_path):
    from safetensors.torch import load_file

    import sys

    fit = ["fit", "--objective", method, *TINY[method], *FAST_FIT, "--trainer.epochs", "3"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    done = run_cli(*fit, "--trainer.run_dir", str(full))
    assert done.returncode == 0, done.stderr
    if not kill_after_first_checkpoint([sys.executable, "-m", "ssltk", *fit, "--trainer.run_dir", str(killed)],
                                       killed):
        pytest.skip("the run finished before it could be killed")
    resumed = run_cli("fit", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(str(full / "checkpoints" / "epoch-0003.safetensors"))
    b = load_file(str(killed / "checkpoints" / "epoch-0003.safetensors"))
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, differ[:5]
    state = {"dino": ("objective.center", "objective.teacher_backbone."), "swav": ("objective.queue",
                                                                                "objective.prototypes.weight")}
    for prefix in state.get(method, ()):
        key = next(k for k in a if k.startswith(prefix))
        assert a[key].abs().sum() > 0, f"{key} was never filled"


def test_hooks_run_in_order_and_dinos_last_layer_waits_one_epoch(tmp_path):
    calls = []

    class Recorder(ssltk.Objective):
        def __init__(self, in_dim):
            super().__init__(in_dim)
            self.lin = torch.nn.Linear(in_dim, 1)

        def forward(self, batch, backbone):
            calls.append("forward")
            return ssltk.ObjectiveOutput(self.lin(backbone(batch.views)).pow(2).mean())

        def on_step_start(self, step, progress):
            calls.append(("start", step))

        def before_optimizer_step(self, backbone, step):
            calls.append(("before", step, self.lin.weight.grad is not None))

        def after_optimizer_step(self, backbone, step, progress):
            calls.append(("after", step))

    ssltk.register_objective("in-test-recorder")(Recorder)
    try:
        ssltk.fit("in-test-recorder", data="digits", data_args={"train_size": 64}, evaluate={"linear": False},
                  trainer={"epochs": 1, "batch_size": 32, "progress": False, "run_dir": str(tmp_path / "r")})
    finally:
        ssltk.OBJECTIVES.unregister("in-test-recorder")
    assert calls == [("start", 0), "forward", ("before", 0, True), ("after", 1),
                     ("start", 1), "forward", ("before", 1, True), ("after", 2)]



def test_dinos_last_layer_takes_no_step_in_the_first_epoch_and_its_teacher_temperature_warms_up():
    from ssltk.testing import build_pair, make_batch

    bb, obj = build_pair("dino", objective_args={"out_dim": 32, "hidden_dim": 16, "num_local": 0,
                                                 "warmup_teacher_temp_epochs": 3})
    opt = torch.optim.AdamW([p for m in (bb, obj) for p in m.parameters() if p.requires_grad], lr=0.01,
                            weight_decay=0.04)
    temps, moved = [], []
    for step in range(2):  # one step per epoch in the contract context
        obj.on_step_start(step, step / 2)
        temps.append(float(obj.teacher_temp))
        before = obj.head.last_layer.weight.detach().clone()
        opt.zero_grad()
        obj(make_batch(obj, batch_size=4), bb).loss.backward()
        obj.before_optimizer_step(bb, step)
        opt.step()
        moved.append(not torch.equal(before, obj.head.last_layer.weight))
    assert moved == [False, True]
    obj.on_step_start(5, 0.9)
    assert temps == pytest.approx([0.04, 0.055]) and float(obj.teacher_temp) == pytest.approx(0.07)


def test_each_methods_objective_file_is_under_120_lines():
    import importlib

    for module in ("ssltk_momentum.byol", "ssltk_momentum.mocov3", "ssltk_momentum.dino", "ssltk_sela.swav",
                   "ssltk_decorrelation.barlow_twins", "ssltk_decorrelation.vicreg"):
        path = importlib.import_module(module).__file__
        lines = len(open(path, encoding="utf-8").read().splitlines())
        assert lines < 120, f"{path}: {lines} lines"
