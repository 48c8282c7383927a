import math

import pytest
import torch

from ssltk.errors import SsltkError
from ssltk.testing import check_objective
from ssltk_structured_mi import MPNN, RelationCritic, StructuredMI, gumbel_softmax, nwj_bound
from ssltk_structured_mi.interpret import optimise_masks, save_grid


@pytest.mark.parametrize("variant", ["izx", "ixa", "ixaz"])
def test_contract(variant):
    check_objective("structured-mi", "conv4", objective_args={"variant": variant, "k": 2})


@pytest.mark.parametrize("variant", ["izx", "ixa", "ixaz"])
def test_logs_name_each_term(variant):
    from ssltk.testing import build_pair, make_batch

    bb, obj = build_pair("structured-mi", "conv4", objective_args={"variant": variant, "k": 3})
    out = obj(make_batch(obj, 4), bb)
    assert ("nwj_z" in out.logs) == (variant != "ixa") and ("nwj_a" in out.logs) == (variant != "izx")


def test_feature_size_must_be_s_times_d():
    with pytest.raises(SsltkError, match="S x D = 8 x 8 = 64"):
        StructuredMI(512)
    StructuredMI(512, dim=64, k=2)  # 8 entities of 64 features


def test_mpnn_shape_and_permutation_equivariance():
    torch.manual_seed(0)
    net = MPNN(entities=5, dim=3, relation_types=2, hidden=16).eval()
    z = torch.randn(4, 5, 3)
    out = net(z)
    assert out.shape == (4, 5, 5, 2)
    assert torch.equal(out[:, range(5), range(5)], torch.zeros(4, 5, 2))
    perm = torch.tensor([3, 0, 4, 1, 2])
    out_p = net(z[:, perm])
    assert torch.allclose(out_p, out[:, perm][:, :, perm], atol=1e-5)


def test_gumbel_softmax_soft_and_hard():
    logits = torch.randn(200, 3, requires_grad=True)
    soft = gumbel_softmax(logits, tau=0.5)
    assert torch.allclose(soft.sum(-1), torch.ones(200), atol=1e-6)
    hard = gumbel_softmax(logits, tau=0.5, hard=True, generator=torch.Generator().manual_seed(1))
    assert set(hard.detach().unique().tolist()) == {0.0, 1.0} and torch.equal(hard.detach().sum(-1), torch.ones(200))
    # straight-through: the gradient of the hard sample is the soft sample's
    w = torch.randn(200, 3)
    (hard * w).sum().backward()
    g_hard = logits.grad.clone()
    logits.grad = None
    soft_same = gumbel_softmax(logits, tau=0.5, generator=torch.Generator().manual_seed(1))
    (soft_same * w).sum().backward()
    assert torch.allclose(g_hard, logits.grad)
    # the samples follow softmax(logits): frequencies of the argmax
    fixed = torch.tensor([[2.0, 0.0, -1.0]]).expand(20000, 3)
    freq = gumbel_softmax(fixed, 1.0, hard=True, generator=torch.Generator().manual_seed(2)).mean(0)
    assert torch.allclose(freq, torch.softmax(fixed[0], 0), atol=0.02)


def test_relation_critic_is_its_defining_sum():
    torch.manual_seed(0)
    s, k = 3, 2
    critic = RelationCritic(s, k)
    h, a = torch.rand(2, s, s, k), torch.rand(2, s, s, k)
    got = critic(h, a)
    for p in range(2):
        want = 0.0
        for kk in range(k):
            hf, af = h[p, :, :, kk].flatten(), a[p, :, :, kk].flatten()
            want += sum(hf[i] * critic.w[i, j, kk] * af[j] for i in range(s * s) for j in range(s * s))
        assert torch.allclose(got[p], want, atol=1e-6)


def test_nwj_bound_recovers_gaussian_mutual_information():
    g = torch.Generator().manual_seed(0)
    n, rho = 400_000, 0.8
    x = torch.randn(n, generator=g, dtype=torch.float64)
    y = rho * x + math.sqrt(1 - rho ** 2) * torch.randn(n, generator=g, dtype=torch.float64)
    y_neg = y[torch.randperm(n, generator=g)]

    def critic(a, b):  # log p(b | a) / p(b) + 1, the optimal NWJ critic
        var = 1 - rho ** 2
        return -(b - rho * a) ** 2 / (2 * var) - 0.5 * math.log(var) + b ** 2 / 2 + 1

    true_mi = -0.5 * math.log(1 - rho ** 2)
    est = nwj_bound(critic(x, y), critic(x, y_neg), clamp=1e9).item()
    assert abs(est - true_mi) < 0.03, (est, true_mi)
    # any other critic gives a lower value: it is a lower bound
    assert nwj_bound(0.5 * critic(x, y), 0.5 * critic(x, y_neg)).item() < est


def test_mask_optimisation_lowers_the_bound(tmp_path):
    import ssltk

    torch.manual_seed(0)
    backbone = ssltk.create_backbone("conv4")
    x = torch.randn(4, 3, 16, 16)
    res = optimise_masks(backbone, x, entities=8, iterations=30, lr=0.1, log_every=5)
    hist = res["loss_history"]
    assert res["masks"].shape == (4, 8, 16, 16) and hist[-1] < hist[0]
    assert ((res["masks"] >= 0) & (res["masks"] <= 1)).all()
    save_grid(tmp_path / "m.png", (torch.rand(4, 3, 16, 16) * 255).to(torch.uint8), res["masks"])
    from PIL import Image

    assert Image.open(tmp_path / "m.png").size[0] > 9 * 16


def test_interpret_subcommand_on_a_run(tmp_path):
    import subprocess
    import sys

    from safetensors.torch import load_file

    run = tmp_path / "run"
    fit = [sys.executable, "-m", "ssltk", "fit", "--objective", "structured-mi", "--objective.k", "2",
           "--data", "digits", "--data.train_size", "128", "--trainer.epochs", "1", "--trainer.batch_size", "32",
           "--trainer.run_dir", str(run), "--evaluate.linear", "false", "--trainer.progress", "false"]
    assert subprocess.run(fit, capture_output=True, text=True).returncode == 0
    proc = subprocess.run([sys.executable, "-m", "ssltk", "interpret", "--run", str(run), "--batch", "3",
                           "--iterations", "4", "--log_every", "2"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    saved = load_file(str(run / "interpret" / "masks.safetensors"))
    assert saved["masks"].shape == (3, 8, 32, 32) and saved["images"].shape == (3, 3, 32, 32)
    assert (run / "interpret" / "masks.png").is_file()


def test_edge_projection_equals_the_concatenation():
    from ssltk_structured_mi.mpnn import NRIMLP, complete_graph

    torch.manual_seed(0)
    mlp = NRIMLP(3 * 6, 10, 5).eval()
    nodes, send_recv = torch.randn(2, 4, 6), complete_graph(4)
    extra = torch.randn(2, 12, 6)
    send, recv = send_recv
    concat = mlp(torch.cat([nodes[:, send], nodes[:, recv], extra], -1))
    assert torch.allclose(mlp.forward_edges(nodes, send, recv, extra), concat, atol=1e-5)
