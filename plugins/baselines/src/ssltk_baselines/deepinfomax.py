"""Deep InfoMax, local variant (Hjelm et al. 2019), as in the relational-reasoning benchmark (paper 000, A.5).

Objective: alpha * global MI (0 here) + beta * local MI + gamma * prior matching, with alpha = 0, beta = 1,
gamma = 0.1. The local map M is the output of the backbone's first block *before* its pooling, as in the authors'
encoder (``methods/deepinfomax.py``: conv -> BN -> ReLU of Conv-4's first block, 8 x 32 x 32 on CIFAR; the stem of
the ResNets): the first entry of ``probe_layers()`` (or ``local_layer``), read at the input of its last module when
that module is a pooling layer. Training images are only flipped, the benchmark's recipe for Deep InfoMax
(``datamanager.py``).
The local critic scores [global; local] at every location with 1x1 convolutions (256, 256, 1); positives pair
an image's global vector with its own local map, negatives with another image's (the batch rolled by one). MI is
estimated with the Jensen-Shannon bound in its softplus form, E_P[-sp(-T)] - E_N[sp(T)] (DIM eq. 4).

Prior matching pushes the global vector y itself towards U(0, 1)^D with a discriminator trained adversarially (the
public relational code never trains it: **pitfall**, shared/reference/implementation-notes.md). The prior is
matched on y, as in that code, not on sigmoid(y): Conv-4 and the ResNets end in ReLU and average pooling, so y >=
0 and sigmoid(y) lies in [0.5, 1), a set U(0, 1) puts only half its mass on. The discriminator then wins by
looking below 0.5, and the encoder's only way to reduce its loss is to shrink y towards 0 (measured with the
sigmoid: d_loss 0.75 -> 0.0009 over 20 epochs on CIFAR-10, linear accuracy 31.2% against 28.0% for random weights;
matched on y: 36.3 +- 0.4 over three seeds). A non-negative y can reach [0, 1], and so can any backbone whose
output is unbounded. Both players share the engine's single optimizer and backward pass: the discriminator's loss
sees a detached encoder output, and the encoder's loss sees the discriminator through detached parameters, so each
gradient reaches only its own player. Adam 1e-4.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ssltk import CropFlipAugment, DataSpec, Objective, ObjectiveOutput, ViewBatch

from .jsd import jsd_mi


class LocalCritic(nn.Module):
    """DIM's concat-and-convolve local critic: 1x1 convolutions (hidden, hidden, 1) on [global; local] at every location.

    A 1x1 convolution is a linear map per location, so the first layer on the concatenation splits into
    W_g y + W_l m: the global half is computed once per image instead of once per location and pairing, and the
    local half once per map rather than once for positives and again for negatives. Layers run as matrix products
    on channels-last maps, which the CPU's GEMM handles about twice as fast as NCHW 1x1 convolutions (measured on
    Conv-4's 8 x 16 x 16 map, batch 64: 0.17 s against 0.31 s per forward and backward).
    """

    def __init__(self, local_channels: int, global_dim: int, hidden: int = 256):
        super().__init__()
        self.local_channels, self.global_dim = local_channels, global_dim
        self.first = nn.Linear(global_dim + local_channels, hidden)
        self.rest = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, y: Tensor, local: Tensor, shifts: tuple = (0,)) -> list:
        """Scores of y_i against local_{i - s} for each shift s, as (B, H, W) maps; shift 0 gives the positives."""
        w_global, w_local = self.first.weight.split([self.global_dim, self.local_channels], dim=1)
        g = F.linear(y, w_global, self.first.bias)[:, None, None, :]
        m = F.linear(local.permute(0, 2, 3, 1), w_local)
        return [self.rest(m.roll(s, dims=0) + g).squeeze(-1) for s in shifts]


POOLS = (nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


class DeepInfoMaxObjective(Objective):
    """Deep InfoMax, local (alpha 0, beta 1, gamma 0.1): local JSD MI plus adversarial prior matching."""

    trainer_defaults = {"lr": 1e-4}

    def __init__(self, in_dim: int, alpha: float = 0.0, beta: float = 1.0, gamma: float = 0.1,
                 local_layer: Optional[str] = None, hidden: int = 256):
        super().__init__(in_dim)
        if alpha != 0.0:
            raise ValueError("only the local variant (alpha = 0) is implemented, as in the paper's benchmark")
        self.beta, self.gamma, self.local_layer, self.hidden = beta, gamma, local_layer, hidden
        self.critic: Optional[nn.Module] = None
        self.discriminator = nn.Sequential(nn.Linear(in_dim, 1000), nn.ReLU(), nn.Linear(1000, 200), nn.ReLU(),
                                           nn.Linear(200, 1))
        self._hooked: Optional[int] = None
        self._captured: dict = {}

    @property
    def num_views(self) -> int:
        # DIM encodes each image once: its positives are its own local features, not another view's. (The engine's
        # default of two views doubled the work per epoch and counted two augmentations of an image as a batch.)
        return 1

    def augmentation(self, spec: DataSpec):
        return CropFlipAugment(padding=0).configure(spec)  # a crop of the whole image: a flip alone

    def _build_critic(self, channels: int) -> None:
        self.critic = LocalCritic(channels, self.in_dim, self.hidden)

    def _hook(self, backbone: nn.Module) -> None:
        if self._hooked == id(backbone):
            return
        from ssltk import resolve_layer

        layers = dict(getattr(backbone, "probe_layers", dict)())
        name = self.local_layer or next(iter(layers), None)
        if name is None:
            raise ValueError(f"{type(backbone).__name__} names no probe layers; set --objective.local_layer")
        layer = resolve_layer(backbone, name)
        last = list(layer.children())[-1] if isinstance(layer, nn.Sequential) and len(layer) else None
        if isinstance(last, POOLS):  # the map before the block's pooling, as the authors' encoder reads it
            last.register_forward_pre_hook(lambda m, i: self._captured.__setitem__("local", i[0]))
        else:
            layer.register_forward_hook(lambda m, i, o: self._captured.__setitem__("local", o))
        self._hooked = id(backbone)  # an id, not the module: a module attribute would become a submodule

    def setup(self, backbone: nn.Module, spec: DataSpec) -> None:
        """Find the local map's width with one dry forward pass and build the critic for it."""
        if self.critic is not None:
            return
        self._hook(backbone)
        from ssltk import eval_mode

        param = next(backbone.parameters())
        with eval_mode(backbone), torch.no_grad():
            backbone(torch.zeros(2, spec.channels, spec.image_size, spec.image_size, device=param.device))
        self._build_critic(self._captured.pop("local").shape[1])
        self.critic.to(param.device)

    def forward(self, batch: ViewBatch, backbone: nn.Module) -> ObjectiveOutput:
        self._hook(backbone)
        y = backbone(batch.views)
        local = self._captured.pop("local")
        if self.critic is None:
            raise RuntimeError("call setup(backbone, spec) before the first step (the engine does)")
        pos, neg = self.critic(y, local, shifts=(0, 1))
        mi = jsd_mi(pos, neg)
        # prior matching: D learns real U(0,1) samples against y (detached), the encoder learns to fool a copy of
        # D whose parameters are detached
        fake = y
        real = torch.rand_like(fake)
        d_real, d_fake = self.discriminator(real), self.discriminator(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        g_logits = functional_call(self.discriminator, frozen, (fake,))
        g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
        loss = -self.beta * mi + self.gamma * g_loss + d_loss
        return ObjectiveOutput(loss, {"local_mi": mi.detach(), "d_loss": d_loss.detach()})
