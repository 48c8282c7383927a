"""Component specs: ``{"class_path": ..., "init_args": {...}}``, the form jsonargparse writes in ``config.yaml``.

Registry names (``relational``, ``conv4``, ``timm:resnet18``), dotted class paths and classes all resolve to a spec,
so the Python API, the CLI and saved configs share one way of building components.

Trust: a spec read from a file (a run's ``config.yaml``, a ``--config`` file, a weights file's metadata) may name only
classes that a registry holds (built-ins, installed plugins, classes registered from Python). Any other class path is
refused *before its module is imported*, since importing or calling an arbitrary class path runs code. Importing a
class path that no registry holds is an explicit act of the user: typing it on the command line or in a Python call,
``--trust CLASS_PATH``, or :func:`trust_class_path`.
"""
from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any, Dict, Optional, Set, Union

from ..errors import SsltkError
from ..registries import ALL_REGISTRIES

Spec = Dict[str, Any]

# class paths the user named on purpose in this process (command line, Python call, --trust)
_TRUSTED: Set[str] = set()


class BadComponentOption(SsltkError, ValueError):
    """A component's constructor refused an option value: still a ValueError for Python callers, and one line on
    the command line."""


class UntrustedClassError(SsltkError):
    """A file named a class path that no registry holds."""


def trust_class_path(*paths: str) -> None:
    """Allow building these class paths from files (a run's config, weights metadata) although no registry holds
    them. Registering the class (``ssltk.register_objective("name")(Cls)``) is the other way."""
    _TRUSTED.update(paths)


def trust_named(spec: Optional[Spec]) -> Optional[Spec]:
    """``spec``, whose class path the user named on purpose (a Python call, the command line), trusted from now on in
    this process, so that the files written from it (a run's ``config.yaml``) can be read back. Callers that take a
    user's own words call it; :func:`resolve` itself changes nothing."""
    if spec is not None and isinstance(spec.get("class_path"), str):
        trust_class_path(spec["class_path"])
    return spec


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _registered(path: str, kind: Optional[str] = None) -> Optional[type]:
    # by class path, never by import: classes registered from a script may live in a module that cannot be imported
    # by name, and an unregistered path must not be imported at all
    registries = [ALL_REGISTRIES[kind]] if kind else list(ALL_REGISTRIES.values())
    # targets() loads the plugins first: they register on first lookup, and a fresh process may build before any
    targets = [t for registry in registries for t in registry.targets() if isinstance(t, type)]
    for target in targets:
        if class_path(target) == path:
            return target
    # an alias such as jsonargparse writes (``ssltk.backbones.Conv4``, re-exported by its package): looked up only in
    # a module that is already imported, and without attribute hooks, so nothing runs
    module, _, name = path.rpartition(".")
    obj = vars(sys.modules[module]).get(name) if module in sys.modules else None
    return obj if any(obj is t for t in targets) else None


def _untrusted_message(path: str, kind: Optional[str], where: str) -> str:
    what = f"a registered {kind}" if kind else "registered"
    return (f"{where} names {path!r}, which is not {what}; ssltk builds only registered classes from files. If you "
            f"trust it, pass --trust {path} (Python: ssltk.trust_class_path({path!r})) or register the class")


def import_class(path: str, *, kind: Optional[str] = None, where: str = "the configuration",
                 named_by_user: bool = False) -> type:
    """The class a path names: a registered one, one the user trusted explicitly, or (``named_by_user``) one the
    user names in this very call (a Python argument, the command line); otherwise refused unimported."""
    if not isinstance(path, str) or not path:
        raise SsltkError(f"{where}: class_path must be a non-empty string, got {path!r}")
    found = _registered(path)
    if found is not None:
        return found
    if path not in _TRUSTED and not named_by_user:
        raise UntrustedClassError(_untrusted_message(path, kind, where))
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


def resolve(kind: str, value: Union[str, type, Spec], init_args: Optional[Dict[str, Any]] = None, *,
            trusted: bool = True, where: str = "the configuration") -> Spec:
    """Turn a registry name, a class path, a class or a spec into a spec for the registry ``kind``.

    ``trusted`` says the value comes from the user directly (a Python call, the command line), so a class path that
    no registry holds may be imported; pass ``trusted=False`` for anything read from a file.
    """
    registry = ALL_REGISTRIES[kind]
    args: Dict[str, Any] = {}
    if isinstance(value, dict):
        if not isinstance(value.get("class_path"), str):
            raise SsltkError(f"{where}: the {kind} needs a class_path (a registry name or class path), got {value!r}")
        init = value.get("init_args") or {}
        if not isinstance(init, dict):
            raise SsltkError(f"{where}: init_args of the {kind} must be a mapping, got {init!r}")
        args.update(init)
        value = value["class_path"]
    if isinstance(value, type):
        cls = value
    elif isinstance(value, str) and (value in registry or "." not in value):
        cls, fixed = registry.resolve(value)  # raises with suggestions for unknown names
        args = {**fixed, **args}
    elif isinstance(value, str):
        if not trusted and _registered(value, kind) is None and _registered(value) is not None:
            raise SsltkError(f"{where} names {value!r} as a {kind}, but it is registered as another kind")
        cls = import_class(value, kind=kind, where=where, named_by_user=trusted)
    else:
        raise SsltkError(f"{where}: cannot use {value!r} as a {kind}")
    if registry.base is not None and not (isinstance(cls, type) and issubclass(cls, registry.base)):
        raise SsltkError(f"{where}: {value!r} is not a {registry.base.__name__}")
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
    except ValueError as exc:  # a constructor's own check of its options: one line, naming it
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BadComponentOption(f"cannot build {cls.__name__}: {detail}") from None


def build_objective(spec: Spec, in_dim: int, num_classes: int) -> Any:
    """An objective with the engine-supplied ``in_dim`` and, where its constructor asks for it and the spec leaves it
    unset, the dataset's ``num_classes``."""
    cls = import_class(spec["class_path"])
    extra: Dict[str, Any] = {"in_dim": int(in_dim)}
    if "num_classes" in inspect.signature(cls.__init__).parameters \
            and (spec.get("init_args") or {}).get("num_classes") is None:
        if num_classes < 1:
            raise SsltkError(f"{registry_name('objective', spec['class_path'])} sizes itself by the number of "
                             "classes, and the data has no labels (an unlabelled folder): set "
                             "--objective.num_classes, or use labelled data")
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


# the components of a run configuration and the registry each is chosen from
COMPONENT_KINDS = {"objective": "objective", "backbone": "backbone", "data": "dataset", "augment": "augmentation"}


def check_config(cfg: Any, where: str, required=("objective", "backbone", "data")) -> Dict[str, Any]:
    """A run configuration read from a file, checked before anything is built: a mapping whose components name
    registered classes (see the module docstring) and whose trainer and evaluate sections are mappings. Returns it
    with every component as a resolved spec."""
    if cfg is None:
        raise SsltkError(f"{where} is empty")
    if not isinstance(cfg, dict):
        raise SsltkError(f"{where} must hold a mapping of options, got {type(cfg).__name__}")
    out = dict(cfg)
    for key, kind in COMPONENT_KINDS.items():
        if out.get(key) is not None:
            out[key] = resolve(kind, out[key], trusted=False, where=where)
        elif key in required:
            raise SsltkError(f"{where} names no {key}")
    for key in ("trainer", "evaluate"):
        if out.get(key) is not None and not isinstance(out[key], dict):
            raise SsltkError(f"{where}: {key} must be a mapping of options, got {out[key]!r}")
    for key, value in out.items():
        _refuse_nested_specs(value.get("init_args") if key in COMPONENT_KINDS and value else value, key, where)
    return out


def _refuse_nested_specs(value: Any, path: str, where: str) -> None:
    """A file's option values are plain data: a mapping with a ``class_path`` (or ``init_args``) below a component
    would reach a parser or constructor that may import it (the hardening issue's config payload), so it is
    refused, naming the field, whatever the field's type."""
    if isinstance(value, dict):
        if "class_path" in value or "init_args" in value:
            raise SsltkError(f"{where}: {path} holds a class_path; option values read from a file are plain data "
                             "(numbers, strings, lists), and only the objective, backbone, data and augment name "
                             "classes")
        for k, v in value.items():
            _refuse_nested_specs(v, f"{path}.{k}", where)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _refuse_nested_specs(v, f"{path}[{i}]", where)


def registry_source(kind: str, name: str) -> Optional[str]:
    """Who registered ``name`` (``plugin baselines (ssltk-baselines 0.1.0)``, ``python``), for error messages."""
    try:
        return ALL_REGISTRIES[kind].entry(name).source
    except SsltkError:
        return None
