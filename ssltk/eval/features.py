"""Whole-dataset feature extraction: the backbone in eval mode over un-augmented, normalised images."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..data.augment import EvalTransform


@torch.no_grad()
def extract_features(backbone: nn.Module, images: Tensor, mean: Sequence[float], std: Sequence[float],
                     device: torch.device, batch_size: int = 512, amp: bool = False) -> Tensor:
    """(N, D) float32 features of uint8 images (N, C, H, W), in order, on the CPU.

    The backbone is switched to eval mode (BatchNorm uses running statistics) and restored afterwards.
    """
    was_training = backbone.training
    backbone.eval()
    transform = EvalTransform(mean, std)
    out = []
    try:
        for start in range(0, images.shape[0], batch_size):
            x = transform(images[start : start + batch_size].to(device, non_blocking=True))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
                out.append(backbone(x).float().cpu())
    finally:
        backbone.train(was_training)
    return torch.cat(out) if out else torch.empty(0)
