"""Batched augmentation on the device, with per-sample random parameters.

The papers' code builds each view with a separate PIL call in DataLoader workers (paper 000, appendix D.1). Here all
K views of a batch are made with a handful of tensor operations: one ``grid_sample`` for every crop and flip, and
masked colour operations for jitter and grayscale. Every sample still gets its own crop box, flip, jitter factors
and grayscale draw, following torchvision's semantics for each transform (the recipe of paper 002, section 4 and
appendix A.3: RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3) -> HFlip 0.5 -> ColorJitter(0.8, 0.8, 0.8, 0.2) p=0.8 ->
Grayscale p=0.2 -> normalise).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

_GRAY = (0.2989, 0.587, 0.114)  # torchvision's luma weights, so jitter matches it


def _uniform(n: int, lo: float, hi: float, g: Optional[torch.Generator], device) -> Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def to_float(images: Tensor) -> Tensor:
    """uint8 (B, C, H, W) -> float in [0, 1]."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def grayscale(x: Tensor) -> Tensor:
    """Luma of RGB images with torchvision's weights, shape (B, 1, H, W)."""
    w = torch.tensor(_GRAY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def crop_boxes(n: int, height: int, width: int, scale: Tuple[float, float], ratio: Tuple[float, float],
               g: Optional[torch.Generator], device, attempts: int = 10) -> Tensor:
    """Per-sample RandomResizedCrop boxes (top, left, h, w) with torchvision's sampling: up to ``attempts`` draws of
    area and log-aspect, first valid one wins, otherwise the whole image clipped to the ratio range."""
    area = float(height * width)
    target = area * (torch.rand(n, attempts, generator=g, device=device) * (scale[1] - scale[0]) + scale[0])
    lr = (math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(torch.rand(n, attempts, generator=g, device=device) * (lr[1] - lr[0]) + lr[0])
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(ok.int(), dim=1)
    pick = torch.arange(n, device=device)
    w, h, found = w[pick, first], h[pick, first], ok.any(1)
    # fallback of torchvision: central crop of the whole image with the aspect clipped into the ratio range
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = float(width), float(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fw, fh = float(round(height * ratio[1])), float(height)
    else:
        fw, fh = float(width), float(height)
    w = torch.where(found, w, torch.full_like(w, fw))
    h = torch.where(found, h, torch.full_like(h, fh))
    u = torch.rand(n, 2, generator=g, device=device)
    top = torch.where(found, torch.floor(u[:, 0] * (height - h + 1)), torch.round((height - h) / 2))
    left = torch.where(found, torch.floor(u[:, 1] * (width - w + 1)), torch.round((width - w) / 2))
    return torch.stack([top, left, h, w], 1)


def resized_crop(x: Tensor, boxes: Tensor, size: int, flip: Optional[Tensor] = None) -> Tensor:
    """Crop each image to its box and resize to ``size`` (bilinear), mirroring where ``flip`` is true: one
    ``grid_sample`` for the whole batch."""
    n, _, height, width = x.shape
    top, left, h, w = boxes.unbind(1)
    sx = w / width
    sy = h / height
    cx = (left + w / 2) / width * 2 - 1
    cy = (top + h / 2) / height * 2 - 1
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx, cx
    theta[:, 1, 1], theta[:, 1, 2] = sy, cy
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _rgb_to_hsv(x: Tensor) -> Tensor:
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    dz = delta.clamp_min(1e-12)
    rc, gc, bc = (maxc - r) / dz, (maxc - g) / dz, (maxc - b) / dz
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def _hsv_to_rgb(x: Tensor) -> Tensor:
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = torch.stack(
        [torch.stack(c, 1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], 0
    )  # (6, B, 3, H, W)
    idx = i.unsqueeze(0).unsqueeze(2).expand(1, -1, 3, -1, -1)
    return rgb.gather(0, idx).squeeze(0)


def color_jitter(x: Tensor, brightness: Tensor, contrast: Tensor, saturation: Tensor, hue: Tensor,
                 order: Sequence[int]) -> Tensor:
    """torchvision's ColorJitter with one factor per sample (each a (B,) tensor), ops applied in ``order``
    (0 brightness, 1 contrast, 2 saturation, 3 hue), clamping to [0, 1] after each as torchvision does."""
    col = lambda t: t.view(-1, 1, 1, 1)
    rgb = x.shape[1] == 3
    for op in order:
        if op == 0:
            x = (x * col(brightness)).clamp_(0, 1)
        elif op == 1:
            gray = grayscale(x) if rgb else x
            mean = gray.mean(dim=(1, 2, 3), keepdim=True)
            x = (col(contrast) * x + (1 - col(contrast)) * mean).clamp_(0, 1)
        elif op == 2 and rgb:
            x = (col(saturation) * x + (1 - col(saturation)) * grayscale(x)).clamp_(0, 1)
        elif op == 3 and rgb:
            hsv = _rgb_to_hsv(x)
            hsv = torch.stack([(hsv[:, 0] + hue.view(-1, 1, 1)) % 1.0, hsv[:, 1], hsv[:, 2]], 1)
            x = _hsv_to_rgb(hsv).clamp_(0, 1)
    return x


class ContrastiveAugment:
    """The relational / SimCLR augmentation recipe for K views, batched with per-sample parameters.

    Calling it on uint8 images (B, C, H, W) returns float views (K*B, C, size, size), view-major, normalised with
    ``mean`` and ``std``. Passing a ``torch.Generator`` makes the views reproducible.
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float], scale: Tuple[float, float] = (0.08, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3), flip_p: float = 0.5,
                 jitter: Tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2), jitter_p: float = 0.8,
                 gray_p: float = 0.2):
        self.size, self.mean, self.std = size, tuple(mean), tuple(std)
        self.scale, self.ratio, self.flip_p = tuple(scale), tuple(ratio), flip_p
        self.jitter, self.jitter_p, self.gray_p = tuple(jitter), jitter_p, gray_p

    def __call__(self, images: Tensor, num_views: int = 1, generator: Optional[torch.Generator] = None) -> Tensor:
        dev = images.device
        x = to_float(images)
        b, c, h, w = x.shape
        x = x.repeat(num_views, 1, 1, 1)
        n = x.shape[0]
        boxes = crop_boxes(n, h, w, self.scale, self.ratio, generator, dev)
        flip = torch.rand(n, generator=generator, device=dev) < self.flip_p
        x = resized_crop(x, boxes, self.size, flip)
        if self.jitter_p > 0 and any(self.jitter):
            mask = torch.rand(n, generator=generator, device=dev) < self.jitter_p
            idx = mask.nonzero().squeeze(1)
            if idx.numel():
                m = idx.numel()
                bj, cj, sj, hj = self.jitter
                factors = [_uniform(m, max(0.0, 1 - v), 1 + v, generator, dev) for v in (bj, cj, sj)]
                hue = _uniform(m, -hj, hj, generator, dev)
                order = torch.randperm(4, generator=generator, device=dev).tolist()
                x[idx] = color_jitter(x[idx], *factors, hue, order)
        if self.gray_p > 0 and c == 3:
            gmask = (torch.rand(n, generator=generator, device=dev) < self.gray_p).view(-1, 1, 1, 1)
            x = torch.where(gmask, grayscale(x).expand(-1, 3, -1, -1), x)
        return normalize(x, self.mean, self.std)


class EvalTransform:
    """Evaluation-time transform: no augmentation, resize if needed, then normalise (the linear protocol)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], size: Optional[int] = None):
        self.mean, self.std, self.size = tuple(mean), tuple(std), size

    def __call__(self, images: Tensor) -> Tensor:
        x = to_float(images)
        if self.size is not None and x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return normalize(x, self.mean, self.std)
