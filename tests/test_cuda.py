"""CUDA-only checks, run by ``pytest -m cuda`` on a lent GPU (the GPU suite's first part); skipped elsewhere.

Each compares a CUDA path with the CPU path that CI tests, or checks a property that only a GPU can break: the
batched augmentation's seeded draws, Sinkhorn's labels, the fused optimizer the trainer picks on CUDA, the CUDA-graph
step (``--trainer.compile_mode reduce-overhead``) against the eager one, and a resumed CUDA run against an
uninterrupted one.
"""
import pytest
import torch

import ssltk
from ssltk.engine.rundir import read_metrics

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

KW = dict(objective_args={"k": 4}, data_args={"train_size": 256}, evaluate={"linear": False})


def _fit(tmp_path, name, **trainer):
    opt = {"epochs": 2, "batch_size": 64, "device": "cuda", "progress": False, "run_dir": str(tmp_path / name)}
    return ssltk.fit("relational", trainer={**opt, **trainer}, **KW)


def test_augmentation_draws_are_seeded_on_cuda():
    from ssltk.data.recipes import ContrastiveAugment

    aug = ContrastiveAugment(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, device="cuda")
    a = aug(images, 4, torch.Generator(device="cuda").manual_seed(3))
    b = aug(images, 4, torch.Generator(device="cuda").manual_seed(3))
    c = aug(images, 4, torch.Generator(device="cuda").manual_seed(4))
    assert a.shape == (64, 3, 32, 32) and a.is_cuda and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sinkhorn_labels_on_cuda_agree_with_the_cpu():
    from ssltk_sela.sinkhorn import sinkhorn_labels

    logits = torch.randn(4096, 16, generator=torch.Generator().manual_seed(0)) * 2
    cpu = sinkhorn_labels(logits)
    gpu = sinkhorn_labels(logits.cuda())
    agree = (cpu.labels == gpu.labels.cpu()).float().mean().item()
    assert agree > 0.99, agree
    assert torch.bincount(gpu.labels, minlength=16).min() > 0


def test_the_trainer_uses_the_fused_optimizer_on_cuda(tmp_path):
    from helpers import built_trainer

    t = built_trainer(tmp_path, device="cuda")
    assert t.optimizer.param_groups[0]["fused"] is True


def test_cuda_graph_step_trains_like_the_eager_one(tmp_path):
    eager = _fit(tmp_path, "eager", amp=False)
    graphs = _fit(tmp_path, "graphs", amp=False, compile=True, compile_mode="reduce-overhead")
    losses = [[r["loss"] for r in read_metrics(tmp_path / n, "epoch")] for n in ("eager", "graphs")]
    assert all(abs(a - b) <= 0.02 * abs(a) for a, b in zip(*losses)), losses
    for (name, a), b in zip(eager.backbone.state_dict().items(), graphs.backbone.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, atol=5e-3, rtol=5e-2, msg=name)


def test_a_resumed_cuda_run_continues_the_uninterrupted_one(tmp_path):
    whole = _fit(tmp_path, "whole")
    _fit(tmp_path, "parts", epochs=1)
    resumed = ssltk.fit(resume=tmp_path / "parts", trainer={"epochs": 2})
    # cuDNN's fastest kernels are not bit-exact on CUDA (the CPU run is): equal up to their rounding
    for (name, a), b in zip(whole.backbone.state_dict().items(), resumed.backbone.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, atol=5e-3, rtol=5e-2, msg=name)
