"""Any timm model as a backbone (``timm:NAME``), and ResNet-34 (paper 000, STL-10 experiments) through it.

Weights are never downloaded: models start from their own random initialisation, so this works offline.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from torch import Tensor

from ..interfaces import Backbone
from ..errors import SsltkError
from ..values import OptionValue


_READS_FILES = {"checkpoint_path", "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"}


class TimmBackbone(Backbone):
    """Wraps ``timm.create_model(model_name, num_classes=0)``: pooled features of size ``model.num_features``."""

    def __init__(self, model_name: str = "resnet18", in_channels: int = 3, weights: Optional[str] = None,
                 **kwargs: OptionValue):
        super().__init__()
        import timm

        # options that make timm read a file or a download: a config or a weights file's metadata could otherwise
        # point ssltk at any path (the hardening issue); starting weights come only through ``weights``
        reading = sorted(set(kwargs) & _READS_FILES)
        if reading:
            raise SsltkError(f"timm:{model_name}: {', '.join(reading)} would make timm read a file or download; "
                             "give starting weights with --backbone.weights FILE instead")

        if not timm.list_models(model_name):
            close = timm.list_models(f"*{model_name}*")[:5]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise SsltkError(f"unknown timm model {model_name!r}{hint}")
        self.model_name = model_name
        self.model = timm.create_model(model_name, pretrained=False, num_classes=0, in_chans=in_channels, **kwargs)
        self.num_features = int(self.model.num_features)
        self.label = f"timm:{model_name}"  # how errors name it: one class serves every timm model
        info = getattr(self.model, "feature_info", None)  # the model's total stride, where timm records it
        self.min_size = int(info[-1]["reduction"]) if info and isinstance(info[-1], dict) and \
            "reduction" in info[-1] else 1
        self.load_weights(weights)

    def adapt_state_dict(self, state: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """A timm checkpoint names the model's own keys (``conv1.weight``) and may carry the classifier this
        feature extractor (``num_classes=0``) does not have; ssltk's own files are prefixed with ``model.``."""
        if any(k.startswith("model.") for k in state):
            return state
        own = self.model.state_dict()
        return {f"model.{k}": v for k, v in state.items() if k in own}

    def probe_layers(self):
        """The stages timm lists in ``feature_info`` (for ResNets: act1, layer1 ... layer4)."""
        info = getattr(self.model, "feature_info", None) or []
        names = [fi["module"] for fi in info if isinstance(fi, dict) and fi.get("module")]
        return {name: self.model.get_submodule(name) for name in names}

    def forward_features(self, x: Tensor) -> Tensor:
        return self.model.forward_features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ResNet34(TimmBackbone):
    """ResNet-34 in the standard ImageNet layout [3, 4, 6, 3] with 7x7 stem and max-pool: 512 features, ~21.3M params."""

    def __init__(self, in_channels: int = 3, weights: Optional[str] = None):
        super().__init__("resnet34", in_channels, weights=weights)
