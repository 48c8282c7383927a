"""``ssltk export``: a trained backbone in the layouts other code reads.

- ``timm``: for ``timm:NAME`` backbones, ``model.safetensors`` holding the timm model's own state dict (no ssltk
  prefix), which ``timm.create_model(NAME, pretrained=True, pretrained_cfg_overlay=dict(file=...),
  num_classes=0)`` loads as it loads a hub checkpoint.
- ``hf``: a Hugging Face style folder: ``config.json`` (what the backbone is, how it was trained), ``model.safetensors``
  (which ``ssltk.load_backbone`` also reads) and a model card, ``README.md``, generated from the run: method, data,
  budget and every result in ``results.json``. It can be pushed to a hub as it is.
- ``torchscript``: ``backbone.pt``, traced (``torch.jit`` is deprecated in recent PyTorch, but is still what many
  deployment stacks load).
- ``onnx``: ``backbone.onnx`` with a dynamic batch dimension (``pip install ssltk[onnx]``).

Each exported model gives the same features as the ssltk backbone; the tests check each format's output.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Dict, List

import torch

from . import __version__
from .errors import SsltkError

FORMATS = ("timm", "hf", "torchscript", "onnx")


def _example_input(config: Dict[str, Any], size: int = 0) -> torch.Tensor:
    data_args = (config.get("data") or {}).get("init_args") or {}
    side = size or int(data_args.get("size", 32))
    return torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))


def export_timm(backbone, out: Path) -> List[Path]:
    from .backbones.timm_adapter import TimmBackbone
    from .engine.checkpoint import save_safetensors

    if not isinstance(backbone, TimmBackbone):
        raise SsltkError(f"--to timm needs a timm:NAME backbone; this run's is {type(backbone).__name__} (use --to hf)")
    path = out / "model.safetensors"
    save_safetensors(dict(backbone.model.state_dict()), {"timm_model": backbone.model_name}, path)
    return [path]


def _without_local_paths(value: Any) -> Any:
    """A configuration to publish: every string that names a place on this machine (an absolute, home-relative or
    existing path: the data root, a run directory, a label file) becomes ``<local path>``."""
    if isinstance(value, dict):
        return {k: _without_local_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_local_paths(v) for v in value]
    if isinstance(value, str) and (value.startswith(("/", "~", "./", "../")) or
                                   (os.sep in value and os.path.exists(value))):
        return "<local path>"
    return value


def _model_card(run: Path, config: Dict[str, Any], results: Dict[str, Any], spec: Dict[str, Any]) -> str:
    from .engine.build import registry_name

    name = lambda kind, key: registry_name(kind, config[key]["class_path"]) if config.get(key) else "?"
    trainer = config.get("trainer") or {}
    rows = [f"| {key} | {metric} | {value:.2f} |" for key, values in sorted(results.items()) if isinstance(values, dict)
            for metric, value in values.items()
            if isinstance(value, (int, float)) and ("accuracy" in metric or metric in ("nmi", "adjusted_nmi", "ari"))]
    table = "\n".join(["| evaluation | metric | value |", "|---|---|---|", *rows]) if rows else "No evaluation yet."
    return f"""---
library_name: ssltk
tags: [self-supervised-learning, ssltk, {name('objective', 'objective')}]
---

# {name('objective', 'objective')} / {name('backbone', 'backbone')}

A {name('backbone', 'backbone')} backbone trained with the `{name('objective', 'objective')}` objective of
[ssltk](https://pypi.org/project/ssltk/) {__version__} on `{name('dataset', 'data')}`, exported from the run
`{_without_local_paths(run.name)}`.

- objective: `{config['objective']['class_path']}` {json.dumps(config['objective'].get('init_args') or {})}
- data: `{config['data']['class_path']}` {json.dumps((config.get('data') or {}).get('init_args') or {})}
- budget: {trainer.get('epochs')} epochs, batch {trainer.get('batch_size')}, {trainer.get('optimizer')} lr \
{trainer.get('lr')}, schedule {trainer.get('schedule')}, seed {trainer.get('seed')}

## Results

{table}

## Use

```python
import ssltk
backbone = ssltk.load_backbone("model.safetensors")   # {spec['class_path']}
features = backbone(images)                          # (N, {spec.get('num_features', '?')})
```
"""


def export_hf(backbone, out: Path, run: Path, config: Dict[str, Any]) -> List[Path]:
    from .engine.checkpoint import save_backbone
    from .eval.results import read_results

    spec = {**config["backbone"], "init_args": {k: v for k, v in (config["backbone"].get("init_args") or {}).items()
                                                if k != "weights"}}
    save_backbone(out / "model.safetensors", backbone, spec)
    results = read_results(run)
    config = _without_local_paths(config)  # the card and config.json are published; this machine's paths are not
    cfg = {"model_type": "ssltk", "architectures": [type(backbone).__name__], "ssltk_version": __version__,
           "backbone": spec, "num_features": int(backbone.num_features), "objective": config["objective"],
           "data": config["data"], "trainer": config.get("trainer"), "results": results}
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out / "README.md").write_text(_model_card(run, config, results, {**spec, "num_features": backbone.num_features}))
    return [out / "config.json", out / "model.safetensors", out / "README.md"]


def export_torchscript(backbone, out: Path, example: torch.Tensor) -> List[Path]:
    path = out / "backbone.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice; the format still loads
        traced = torch.jit.trace(backbone, example)
    traced.save(str(path))
    return [path]


def export_onnx(backbone, out: Path, example: torch.Tensor) -> List[Path]:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise SsltkError("--to onnx needs the onnx package: pip install 'ssltk[onnx]'") from None
    path = out / "backbone.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(backbone, (example,), str(path), input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}}, dynamo=False)
    return [path]


def export(run: Path, to: str, out: Path, size: int = 0) -> List[Path]:
    """Export the final backbone of ``run`` in format ``to`` into the folder ``out``; returns the files written.
    The locks of the run and of any run ``out`` lies in are held throughout: a training run is refused."""
    from .engine.rundir import writing_into
    from .engine.rundir import read_run_config

    if to not in FORMATS:
        raise SsltkError(f"unknown export format {to!r}; use one of {', '.join(FORMATS)}")
    config = read_run_config(run)
    weights = run / "backbone.safetensors"
    if not weights.is_file():
        raise SsltkError(f"{run} has no backbone.safetensors yet (the run has not finished)")
    with writing_into(run, out, purpose="export"):
        try:
            return _export(backbone_of(weights, config), to, out, run, config, size)
        except OSError as exc:  # a read-only or full folder, a path through a file
            raise SsltkError(f"cannot export into {out}: {exc.strerror or exc}; choose another --out") from None


def backbone_of(weights: Path, config: Dict[str, Any]):
    from .api import load_backbone

    return load_backbone(weights, config["backbone"]).eval()


def _export(backbone, to: str, out: Path, run: Path, config: Dict[str, Any], size: int) -> List[Path]:
    out.mkdir(parents=True, exist_ok=True)
    if to == "timm":
        return export_timm(backbone, out)
    if to == "hf":
        return export_hf(backbone, out, run, config)
    example = _example_input(config, size)
    return export_torchscript(backbone, out, example) if to == "torchscript" else export_onnx(backbone, out, example)


def cmd_export(argv: List[str]) -> int:
    """Export a run's backbone: ``ssltk export --run RUN --to timm|hf|torchscript|onnx --out DIR``."""
    from .parsers import command_parser, parse

    p = command_parser("ssltk export", cmd_export.__doc__)
    p.add_argument("--run", required=True, help="a finished run directory")
    p.add_argument("--to", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, help="the folder to write")
    p.add_argument("--size", type=int, default=0, help="image side of the traced example (default: the run's data)")
    a = parse(p, argv)
    for path in export(Path(a.run), a.to, Path(a.out), a.size):
        print(path)
    return 0
