"""Checks of a fit's components made before any training time is spent."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..errors import SsltkError


def check_backbone_input(backbone: nn.Module, spec, name: str, source: Optional[str] = None) -> None:
    """The data's image size against the backbone's ``min_size``, then one forward pass of two blank images in
    evaluation mode without gradients (no state or random draw changes): a backbone that fails on this input, or
    whose output is not (2, num_features), is one line naming it and the plugin that registered it (``source``),
    before any training time is spent."""
    origin = f", registered by {source}" if source else ""
    size, channels = int(spec.image_size), int(getattr(spec, "channels", 3) or 3)
    low = int(getattr(backbone, "min_size", 1) or 1)
    if size < low:
        raise SsltkError(f"backbone {name} needs images of at least {low} px, and the data gives {size} px "
                         f"(set --data.size {low} or more, or choose a smaller backbone)")
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            out = backbone(torch.zeros(2, channels, size, size))
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SsltkError(f"backbone {name} ({type(backbone).__module__}){origin} fails on {size} px images: "
                         f"{type(exc).__name__}: {first}") from None
    finally:
        backbone.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, int(backbone.num_features)):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise SsltkError(f"backbone {name} ({type(backbone).__module__}){origin} declares num_features "
                         f"{backbone.num_features} but returns {got} for 2 images")
