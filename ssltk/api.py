"""The Python API: ``ssltk.fit`` and ``ssltk.evaluate`` run the same engine as the CLI."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from .engine.build import Spec, build, check_config, import_class, registry_name, resolve, trust_named
from .engine.checkpoint import load_state_strict, read_safetensors
from .engine.heartbeat import heartbeat
from .engine.rundir import RunLock
from .engine.config import EvalConfig, TrainerConfig
from .engine.rundir import read_run_config
from .engine.process import resolve_device
from .engine.trainer import FitResult, Trainer
from .errors import SsltkError
from .interfaces import EvalResult
from .registries import EVALUATORS
from .zoo import is_kept_name, resolve_weights

Component = Union[str, type, Spec]


def make_config(objective: Component, backbone: Component = "conv4", data: Component = "digits",
                trainer: Optional[Union[TrainerConfig, Dict[str, Any]]] = None,
                evaluate: Optional[Union[EvalConfig, Dict[str, Any]]] = None,
                objective_args: Optional[Dict[str, Any]] = None, backbone_args: Optional[Dict[str, Any]] = None,
                data_args: Optional[Dict[str, Any]] = None, augment: Optional[Component] = None,
                augment_args: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The resolved run configuration, the same structure ``ssltk fit --print_config`` shows."""
    as_dict = lambda c, cls: dataclasses.asdict(c) if dataclasses.is_dataclass(c) else dataclasses.asdict(cls(**(c or {})))
    objective_spec = trust_named(resolve("objective", objective, objective_args))
    own = dict(getattr(import_class(objective_spec["class_path"]), "trainer_defaults", {}) or {})
    return {
        "objective": objective_spec,
        "backbone": trust_named(resolve("backbone", backbone, backbone_args)),
        "data": trust_named(resolve("dataset", data, data_args)),
        "augment": trust_named(resolve("augmentation", augment, augment_args)) if augment is not None else None,
        "trainer": as_dict({**own, **_as_plain(trainer)}, TrainerConfig),
        "evaluate": as_dict(evaluate, EvalConfig),
    }


def fit(objective: Optional[Component] = None, backbone: Component = "conv4", data: Component = "digits",
        trainer: Optional[Union[TrainerConfig, Dict[str, Any]]] = None,
        evaluate: Optional[Union[EvalConfig, Dict[str, Any]]] = None, *,
        objective_args: Optional[Dict[str, Any]] = None, backbone_args: Optional[Dict[str, Any]] = None,
        data_args: Optional[Dict[str, Any]] = None, augment: Optional[Component] = None,
        augment_args: Optional[Dict[str, Any]] = None, resume: Optional[Union[str, Path]] = None,
        config: Optional[Dict[str, Any]] = None, overwrite: bool = False) -> FitResult:
    """Train ``objective`` on ``backbone`` over ``data``; each may be a registry name, class, class path or spec.

    ``resume=RUN_DIR`` continues a run from its last checkpoint with the run's own ``config.yaml``; ``trainer``
    values given here override it where they do not change what the run computes (a larger ``epochs``, the
    device), and anything else is refused. A new run never replaces an existing one unless ``overwrite=True``.
    """
    if resume is not None:
        cfg = read_run_config(Path(resume))
        cfg["trainer"] = {**cfg.get("trainer", {}), **_as_plain(trainer), "run_dir": str(resume)}
        return Trainer(cfg, resume=True).fit()
    if config is None:
        if objective is None:
            raise SsltkError("fit needs an objective (a registry name such as 'relational', or a class)")
        config = make_config(objective, backbone, data, trainer, evaluate, objective_args, backbone_args, data_args,
                             augment, augment_args)
    else:  # often read from a file by the caller: held to the same rule as a run's config.yaml
        config = check_config(config, "the config passed to ssltk.fit")
    return Trainer(config, overwrite=overwrite).fit()


def _as_plain(cfg: Any) -> Dict[str, Any]:
    if cfg is None:
        return {}
    if dataclasses.is_dataclass(cfg):
        default = dataclasses.asdict(type(cfg)())
        return {k: v for k, v in dataclasses.asdict(cfg).items() if v != default[k]}
    return dict(cfg)


def load_backbone(weights: Union[str, Path], backbone: Optional[Component] = None,
                  backbone_args: Optional[Dict[str, Any]] = None) -> torch.nn.Module:
    """A backbone from a ``.safetensors`` file, or from the kept weights of a reproduced cell by name
    (``"rr-table2/supervised/conv4-cifar10"``, see :mod:`ssltk.zoo`); the file's own metadata names its class unless
    ``backbone`` is given."""
    weights = resolve_weights(weights)
    tensors, meta = read_safetensors(weights)
    if backbone is None:
        if not meta.get("backbone"):
            raise SsltkError(f"{weights} does not say which backbone it holds; pass --backbone NAME")
        # the file's own word: only a registered backbone is built from it
        spec = resolve("backbone", meta["backbone"], trusted=False, where=f"{weights} (its ssltk metadata)")
    else:
        spec = resolve("backbone", backbone, backbone_args)
    # the file's tensors replace every weight: the starting weights a run named need not exist any more
    init = {k: v for k, v in (spec.get("init_args") or {}).items() if k != "weights"}
    model = build({**spec, "init_args": init})
    load_state_strict(model, tensors, str(weights))
    return model


def evaluate(name: str = "linear", *, run: Optional[Union[str, Path]] = None, weights: Optional[Union[str, Path]] = None,
             backbone: Optional[Component] = None, data: Optional[Component] = None,
             data_args: Optional[Dict[str, Any]] = None, device: str = "auto",
             evaluator_args: Optional[Dict[str, Any]] = None, out_dir: Optional[Union[str, Path]] = None) -> EvalResult:
    """Run evaluator ``name`` on a run directory (its final backbone and its data) or on a ``.safetensors`` backbone."""
    starting = isinstance(backbone, dict) and (backbone.get("init_args") or {}).get("weights")
    if run is None and weights is None and not starting:
        raise SsltkError("evaluate needs a run directory (--run), a backbone file (--weights), or a backbone with "
                         "starting weights (--backbone NAME --backbone.weights FILE)")
    evaluator = EVALUATORS.create(name, **(evaluator_args or {}))  # its options are checked before any file is read
    run_cfg = read_run_config(Path(run)) if run is not None else None
    if weights is not None and is_kept_name(weights):
        # results go beside the caller, never into the installed package that holds the kept files
        out_dir = out_dir if out_dir is not None else Path("eval-" + str(weights).replace("/", "-"))
        weights = resolve_weights(weights)
    if weights is None and run is not None:
        weights = Path(run) / "backbone.safetensors"
    if data is None and run_cfg is None:
        raise SsltkError("evaluate needs --data when no run directory is given")
    data_spec = resolve("dataset", data, data_args) if data is not None else run_cfg["data"]
    if backbone is None and run_cfg is not None:
        backbone = run_cfg["backbone"]
    model = load_backbone(weights, backbone) if weights is not None else build(resolve("backbone", backbone))
    dev = resolve_device(device)
    target = Path(out_dir) if out_dir is not None else (
        Path(run) if run is not None else Path(weights if weights is not None else starting).parent)
    key = name
    if run_cfg is not None and data is not None and data_spec != run_cfg["data"]:
        # domain transfer / grain: the same protocol on other data, kept apart from the run's own numbers
        key = f"{name}@{registry_name('dataset', data_spec['class_path'])}"
    # owning the target before computing: a result that cannot be written is refused before, not lost after
    with RunLock(target, purpose="write results"), heartbeat(f"evaluating {key}"):
        return evaluator.evaluate(model.to(dev), build(data_spec), device=dev, run_dir=target, name=key)
