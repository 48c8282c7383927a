import torch

from ssltk_relational.loss import focal_bce_with_logits


def test_focal_equals_eq7_eq8_written_out():
    logits = torch.tensor([2.0, -1.0, 0.3, -3.0, 0.0])
    t = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0])
    for gamma in (0.0, 1.0, 2.0, 3.5):
        expected = 0.0
        for l, ti in zip(logits.tolist(), t.tolist()):
            y = 1 / (1 + torch.exp(torch.tensor(-l))).item()
            w = 0.5 * ((1 - ti) * y + ti * (1 - y)) ** gamma
            expected += -w * (ti * torch.log(torch.tensor(y)) + (1 - ti) * torch.log(torch.tensor(1 - y))).item()
        expected /= len(t)
        assert abs(focal_bce_with_logits(logits, t, gamma).item() - expected) < 1e-6


def test_gamma_zero_is_half_bce_and_large_logits_are_finite():
    logits = torch.randn(100) * 50
    t = (torch.rand(100) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, t)
    assert torch.allclose(focal_bce_with_logits(logits, t, 0.0), 0.5 * bce)
    assert torch.isfinite(focal_bce_with_logits(logits, t, 2.0))


def test_focal_downweights_confident_pairs():
    t = torch.ones(2)
    easy, hard = torch.tensor([4.0, 4.0]), torch.tensor([0.0, 0.0])
    ratio_focal = focal_bce_with_logits(easy, t, 2.0) / focal_bce_with_logits(hard, t, 2.0)
    ratio_plain = focal_bce_with_logits(easy, t, 0.0) / focal_bce_with_logits(hard, t, 0.0)
    assert ratio_focal < ratio_plain
