"""Component specs: ``{"class_path": ..., "init_args": {...}}``, the form jsonargparse writes in ``config.yaml``.

Registry names (``relational``, ``conv4``, ``timm:resnet18``), dotted class paths and classes all resolve to a spec,
so the Python API, the CLI and saved configs share one way of building components.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Dict, Optional, Union

from ..errors import SsltkError
from ..registries import ALL_REGISTRIES

Spec = Dict[str, Any]


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _registered(path: str) -> Optional[type]:
    # classes registered from a script may live in a module that cannot be imported by name
    for registry in ALL_REGISTRIES.values():
        for entry in registry._entries.values():
            if isinstance(entry.target, type) and class_path(entry.target) == path:
                return entry.target
    return None


def import_class(path: str) -> type:
    found = _registered(path)
    if found is not None:
        return found
    module, _, name = path.rpartition(".")
    if not module:
        raise SsltkError(f"{path!r} is not a dotted class path")
    try:
        obj = importlib.import_module(module)
    except ImportError as exc:
        raise SsltkError(f"cannot import {module!r} for {path!r}: {exc}") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise SsltkError(f"{module!r} has no attribute {name!r}")
        obj = getattr(obj, part)
    return obj  # type: ignore[return-value]


def resolve(kind: str, value: Union[str, type, Spec], init_args: Optional[Dict[str, Any]] = None) -> Spec:
    """Turn a registry name, a class path, a class or a spec into a spec for the registry ``kind``."""
    registry = ALL_REGISTRIES[kind]
    args: Dict[str, Any] = {}
    if isinstance(value, dict):
        args.update(value.get("init_args") or {})
        value = value["class_path"]
    if isinstance(value, type):
        cls = value
    elif isinstance(value, str) and (value in registry or "." not in value):
        cls, fixed = registry.resolve(value)  # raises with suggestions for unknown names
        args = {**fixed, **args}
    elif isinstance(value, str):
        cls = import_class(value)
    else:
        raise SsltkError(f"cannot use {value!r} as a {kind}")
    if registry.base is not None and not (isinstance(cls, type) and issubclass(cls, registry.base)):
        raise SsltkError(f"{value!r} is not a {registry.base.__name__}")
    args.update(init_args or {})
    return {"class_path": class_path(cls), "init_args": args}


def build(spec: Spec, **extra: Any) -> Any:
    """Instantiate a spec; ``extra`` adds arguments the engine supplies (``in_dim`` for objectives)."""
    cls = import_class(spec["class_path"])
    args = {**(spec.get("init_args") or {}), **extra}
    try:
        return cls(**args)
    except TypeError as exc:
        raise SsltkError(f"cannot build {cls.__name__}: {exc}") from None


def build_objective(spec: Spec, in_dim: int, num_classes: int) -> Any:
    """An objective with the engine-supplied ``in_dim`` and, where its constructor asks for it and the spec leaves it
    unset, the dataset's ``num_classes``."""
    cls = import_class(spec["class_path"])
    extra: Dict[str, Any] = {"in_dim": int(in_dim)}
    if "num_classes" in inspect.signature(cls.__init__).parameters \
            and (spec.get("init_args") or {}).get("num_classes") is None:
        extra["num_classes"] = int(num_classes)
    return build(spec, **extra)


def registry_name(kind: str, cls_path: str) -> str:
    """The registry name of a class path, for display (falls back to the class name)."""
    try:
        cls = import_class(cls_path)
    except SsltkError:
        cls = None
    for entry in ALL_REGISTRIES[kind].entries():
        if entry.target is cls:
            return entry.name
    return cls_path.rsplit(".", 1)[-1]
