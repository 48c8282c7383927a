"""Plugin discovery through the ``ssltk`` entry-point group, managed by pluggy.

Entry points are loaded one at a time: a plugin whose import (or registration) raises is recorded with its error and
shown by ``ssltk plugins``, and every other plugin still loads. ``SSLTK_PLUGINS=a,b`` restricts loading to the named
entry points (an empty value loads none), like llm's ``LLM_LOAD_PLUGINS``.
"""
from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Dict, List, Optional

import pluggy

from . import hookspecs
from .registries import ALL_REGISTRIES, SUBCOMMANDS

ENTRY_POINT_GROUP = "ssltk"

# hook name -> registry kind it fills
_HOOKS = {
    "ssltk_register_objectives": "objective",
    "ssltk_register_backbones": "backbone",
    "ssltk_register_heads": "head",
    "ssltk_register_evaluators": "evaluator",
    "ssltk_register_datasets": "dataset",
    "ssltk_register_augmentations": "augmentation",
    "ssltk_add_subcommands": "subcommand",
}


@dataclass
class PluginInfo:
    """What ``ssltk plugins`` reports for one entry point."""

    name: str
    distribution: str
    version: str
    registered: Dict[str, List[str]] = field(default_factory=dict)
    error: Optional[str] = None


class _Register:
    """The callback handed to hook implementations; it records what each plugin registered."""

    def __init__(self, registry, info: PluginInfo, kind: str):
        self._registry, self._info, self._kind = registry, info, kind

    def __call__(self, name, target=None, **kwargs):
        if target is None:
            return lambda obj: self(name, obj, **kwargs) or obj
        self._registry.register(name, target, **kwargs)
        self._info.registered.setdefault(self._kind, []).append(name)
        return target

    def prefix(self, prefix: str, target, arg_name: str):
        self._registry.register_prefix(prefix, target, arg_name)
        self._info.registered.setdefault(self._kind, []).append(f"{prefix}:*")


class _State:
    pm: Optional[pluggy.PluginManager] = None
    infos: Dict[str, PluginInfo] = {}
    loading = False


def _dist_of(ep) -> tuple:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "?", "?"
    return dist.metadata["Name"], dist.version


def _selected(name: str) -> bool:
    only = os.environ.get("SSLTK_PLUGINS")
    if only is None:
        return True
    return name in {n.strip() for n in only.split(",") if n.strip()}


def load_plugins(force: bool = False) -> pluggy.PluginManager:
    """Load every entry point of the ``ssltk`` group once and run their registration hooks."""
    if _State.pm is not None and not force:
        return _State.pm
    if _State.loading:  # a registry lookup made while plugins are importing: answer with what is loaded so far
        return _State.pm  # type: ignore[return-value]
    _State.loading = True
    try:
        pm = pluggy.PluginManager("ssltk")
        pm.add_hookspecs(hookspecs)
        infos: Dict[str, PluginInfo] = {}
        eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name != "builtins", e.name))
        seen = set()
        for ep in eps:
            if ep.name in seen or not _selected(ep.name):
                continue
            seen.add(ep.name)
            dist, version = _dist_of(ep)
            info = infos[ep.name] = PluginInfo(ep.name, dist, version)
            try:
                module = ep.load()
                pm.register(module, name=ep.name)
            except Exception as exc:  # a broken plugin must not take the others down
                info.error = _one_line(exc)
                continue
            _run_registration(pm, ep.name, info)
        _State.pm, _State.infos = pm, infos
        return pm
    finally:
        _State.loading = False


def _run_registration(pm: pluggy.PluginManager, plugin_name: str, info: PluginInfo) -> None:
    plugin = pm.get_plugin(plugin_name)
    for hook_name, kind in _HOOKS.items():
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            registry = SUBCOMMANDS if kind == "subcommand" else ALL_REGISTRIES[kind]
            registry.current_source = f"plugin {plugin_name}"
            try:
                impl.function(register=_Register(registry, info, kind))
            except Exception as exc:
                info.error = f"{hook_name}: {_one_line(exc)}"
            finally:
                registry.current_source = "python"


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    where = traceback.extract_tb(exc.__traceback__)
    loc = f" ({where[-1].filename}:{where[-1].lineno})" if where else ""
    return (text[0] if text else type(exc).__name__) + loc


def plugin_infos() -> List[PluginInfo]:
    load_plugins()
    return list(_State.infos.values())


def reset_plugins() -> None:
    """Forget loaded plugins (tests use this after changing ``sys.path`` or ``SSLTK_PLUGINS``)."""
    for reg in list(ALL_REGISTRIES.values()) + [SUBCOMMANDS]:
        for entry in list(reg._entries.values()):
            if entry.source.startswith("plugin "):
                reg.unregister(entry.name)
        for prefix, fam in list(reg._families.items()):
            if fam.source.startswith("plugin "):
                del reg._families[prefix]
    _State.pm, _State.infos = None, {}
    importlib.invalidate_caches()  # new dist-info folders on sys.path become visible to entry_points()
