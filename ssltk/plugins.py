"""Plugin discovery through the ``ssltk`` entry-point group, managed by pluggy.

Entry points are loaded one at a time: a plugin whose import (or registration) raises, or exits, is recorded with
its error and shown by ``ssltk plugins``, and every other plugin still loads. The built-ins load first, then the
other entry points in the order their distributions were installed (the time of their metadata folder; then by
name), so the order never depends on what the file system lists first, and a plugin installed later cannot take a
name from one installed before it.

A plugin's registrations are staged and committed together once all of its hooks have run: a hook that fails
half-way leaves nothing registered. A name that is already taken is never replaced by a plugin; the plugin that
asks for it is refused as a whole, with a line naming both distributions, and the first owner keeps the name.

``SSLTK_PLUGINS=a,b`` restricts loading to the named third-party entry points (an empty value loads none); the
built-ins always load, and names that match no installed entry point are reported.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import signal
import threading
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Dict, List, Optional, Tuple

import pluggy

from . import hookspecs
from .errors import warn
from .registries import ALL_REGISTRIES, SUBCOMMANDS

ENTRY_POINT_GROUP = "ssltk"
BUILTINS = ("builtins", "ssltk")  # (entry point, distribution) of the engine's own registrations

# hook name -> registry kind it fills
_HOOKS = {
    "ssltk_register_objectives": "objective",
    "ssltk_register_backbones": "backbone",
    "ssltk_register_heads": "head",
    "ssltk_register_evaluators": "evaluator",
    "ssltk_register_datasets": "dataset",
    "ssltk_register_augmentations": "augmentation",
    "ssltk_register_loggers": "logger",
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

    @property
    def source(self) -> str:
        return f"plugin {self.name} ({self.distribution} {self.version})"


class _Register:
    """The callback handed to hook implementations. It only stages: :func:`_commit` registers a plugin's names
    once every one of its hooks has run."""

    def __init__(self, staged: List[Tuple[str, str, Any, Dict[str, Any]]], kind: str):
        self._staged, self._kind = staged, kind

    def __call__(self, name, target=None, **kwargs):
        if target is None:
            return lambda obj: self(name, obj, **kwargs) or obj
        kwargs.pop("override", None)  # a plugin never replaces a name another one owns
        self._staged.append((self._kind, name, target, kwargs))
        return target

    def prefix(self, prefix: str, target, arg_name: str):
        self._staged.append((self._kind, f"{prefix}:*", target, {"__family__": arg_name}))


class _State:
    pm: Optional[pluggy.PluginManager] = None
    infos: Dict[str, PluginInfo] = {}
    loading = False
    unknown: List[str] = []


def _dist_of(ep) -> tuple:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "?", "?"
    return dist.metadata["Name"], dist.version


def _is_builtin(ep) -> bool:
    return (ep.name, _dist_of(ep)[0]) == BUILTINS


def _wanted() -> Optional[set]:
    only = os.environ.get("SSLTK_PLUGINS")
    return None if only is None else {n.strip() for n in only.split(",") if n.strip()}


def _entry_points() -> list:
    """Each distinct entry point once (a distribution seen twice on sys.path lists its entry points twice)."""
    seen, out = set(), []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = (ep.name, _dist_of(ep)[0], ep.value)
        if key not in seen:
            seen.add(key)
            out.append(ep)
    return sorted(out, key=lambda e: (not _is_builtin(e), _installed_at(e), _dist_of(e)[0].lower(), e.name))


def _installed_at(ep) -> float:
    """When the entry point's distribution was installed: the modification time of its metadata folder."""
    path = getattr(getattr(ep, "dist", None), "_path", None)
    try:
        return os.stat(path).st_mtime if path is not None else float("inf")
    except OSError:
        return float("inf")


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
        eps = _entry_points()
        wanted = _wanted()
        if wanted is not None:
            _State.unknown = sorted(wanted - {ep.name for ep in eps})
            if _State.unknown:
                warn(f"SSLTK_PLUGINS names {', '.join(_State.unknown)}, which no installed plugin is called "
                     f"(installed: {', '.join(sorted({ep.name for ep in eps if not _is_builtin(ep)})) or 'none'})")
        for ep in eps:
            if wanted is not None and not _is_builtin(ep) and ep.name not in wanted:
                continue
            dist, version = _dist_of(ep)
            key = ep.name if ep.name not in infos else f"{ep.name} ({dist})"
            info = infos[key] = PluginInfo(key, dist, version)
            try:
                module = _guarded(ep.load, "at import")
                pm.register(module, name=key)
            except (Exception, SystemExit) as exc:  # a broken plugin, even one that exits, must not take others down
                info.error = _one_line(exc)
                continue
            _run_registration(pm, key, info)
        _State.pm, _State.infos = pm, infos
        return pm
    finally:
        _State.loading = False


class _RaisedInterrupt(Exception):
    """A plugin's own KeyboardInterrupt (no signal arrived): a broken plugin, reported like the others."""


@contextlib.contextmanager
def _real_interrupts():
    """Tell a real interrupt of this process (SIGINT delivered while plugins load) from a KeyboardInterrupt that a
    plugin raises itself: yields a function saying whether a SIGINT arrived. Off the main thread, where no handler
    can be set, every KeyboardInterrupt counts as real."""
    arrived = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: True
        return

    def on_sigint(signum, frame):
        arrived.append(signum)
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # the process was started to ignore Ctrl-C (nohup, a background job): no real interrupt can arrive, and a
        # handler of ours would let one stop a run that asked not to be stopped
        yield lambda: False
        return
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: bool(arrived)
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def _guarded(call, when: str):
    """``call()``, with a plugin's own KeyboardInterrupt turned into an ordinary error and the user's kept."""
    with _real_interrupts() as interrupted:
        try:
            return call()
        except KeyboardInterrupt:
            if interrupted():  # the user's Ctrl-C: stop, as everywhere else
                raise
            raise _RaisedInterrupt(f"raised KeyboardInterrupt {when}") from None


def _run_registration(pm: pluggy.PluginManager, plugin_name: str, info: PluginInfo) -> None:
    plugin = pm.get_plugin(plugin_name)
    staged: List[Tuple[str, str, Any, Dict[str, Any]]] = []
    for hook_name, kind in _HOOKS.items():
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                _guarded(lambda: impl.function(register=_Register(staged, kind)), "while registering")
            except (Exception, SystemExit) as exc:
                info.error = f"{hook_name}: {_one_line(exc)}; nothing of this plugin was registered"
                pm.unregister(plugin)
                return
    error = _commit(staged, info)
    if error:
        info.error = error
        pm.unregister(plugin)


def _registry(kind: str):
    return SUBCOMMANDS if kind == "subcommand" else ALL_REGISTRIES[kind]


def _owner(kind: str, name: str) -> Optional[str]:
    return _registry(kind).source_of(name)


def _commit(staged: List[Tuple[str, str, Any, Dict[str, Any]]], info: PluginInfo) -> Optional[str]:
    """Register every staged name, or none: the error of the first that cannot be, with both owners named."""
    names = set()
    for kind, name, target, kwargs in staged:
        owner = _owner(kind, name)
        if owner is not None or (kind, name) in names:
            return (f"{kind} {name!r} is already registered by {owner or 'this plugin itself'}; refused for "
                    f"{info.source}, which registers nothing")
        names.add((kind, name))
    done: List[Tuple[str, str]] = []
    try:
        for kind, name, target, kwargs in staged:
            reg = _registry(kind)
            reg.current_source = info.source
            try:
                if "__family__" in kwargs:
                    reg.register_prefix(name[:-2], target, kwargs["__family__"])
                else:
                    reg.register(name, target, **kwargs)
            finally:
                reg.current_source = "python"
            done.append((kind, name))
    except Exception as exc:
        for kind, name in done:
            reg = _registry(kind)
            if name.endswith(":*"):
                reg.unregister_family(name[:-2])
            else:
                reg.unregister(name)
        return f"{_one_line(exc)}; nothing of this plugin was registered"
    for kind, name in done:
        info.registered.setdefault(kind, []).append(name)
    return None


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    where = traceback.extract_tb(exc.__traceback__)
    loc = f" ({where[-1].filename}:{where[-1].lineno})" if where else ""
    return (text[0] if text else type(exc).__name__) + loc


def plugin_infos() -> List[PluginInfo]:
    load_plugins()
    return list(_State.infos.values())


def unknown_selected() -> List[str]:
    """Names in ``SSLTK_PLUGINS`` that match no installed entry point."""
    load_plugins()
    return list(_State.unknown)


def reset_plugins() -> None:
    """Forget loaded plugins (tests use this after changing ``sys.path`` or ``SSLTK_PLUGINS``)."""
    for reg in list(ALL_REGISTRIES.values()) + [SUBCOMMANDS]:
        reg.drop(lambda source: source.startswith("plugin "))
    _State.pm, _State.infos, _State.unknown = None, {}, []
    importlib.invalidate_caches()  # new dist-info folders on sys.path become visible to entry_points()


# the loader sits above the registries and fills them: every lookup loads the installed plugins first
for _reg in list(ALL_REGISTRIES.values()) + [SUBCOMMANDS]:
    _reg.set_loader(load_plugins)
