"""Typed registries of named components (objectives, backbones, heads, evaluators, datasets).

Modelled on timm's model registry: ``register`` is a decorator, ``get`` suggests close matches for an unknown name,
``list`` accepts shell wildcards and sorts naturally, ``create`` instantiates. A registry may also hold *prefix
families* such as ``timm:NAME``, where everything after the colon is passed to a factory as an argument.
"""
from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, List, Optional, Tuple, TypeVar

from .errors import SsltkError, UnknownNameError

T = TypeVar("T")


def _natural_key(name: str) -> list:
    # resnet8 < resnet32 < resnet56, as a person would sort them
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", name)]


@dataclass
class Entry:
    """One registered component and where it came from."""

    name: str
    target: Any
    source: str = "python"
    defaults: Dict[str, Any] = field(default_factory=dict)


@dataclass
class PrefixFamily:
    """Names of the form ``prefix:ARG``; ``arg_name`` receives ARG when the class is built."""

    prefix: str
    target: Any
    arg_name: str
    source: str = "python"


class Registry(Generic[T]):
    """A registry for one kind of component.

    ``base`` is the interface that registered classes must subclass (checked on registration), so a plugin that
    registers the wrong kind of thing fails loudly at load time rather than at training time.
    """

    def __init__(self, kind: str, base: Optional[type] = None):
        self.kind = kind
        self.base = base
        self._entries: Dict[str, Entry] = {}
        self._families: Dict[str, PrefixFamily] = {}
        self._before_lookup: Optional[Callable[[], None]] = None
        self.current_source = "python"

    # registration -------------------------------------------------------------------------------------------------
    def register(self, name: str, target: Any = None, *, override: bool = False, **defaults: Any):
        """Register ``target`` under ``name``; without ``target`` this returns a decorator."""

        def deco(obj: Any) -> Any:
            self._add(name, obj, override=override, defaults=defaults)
            return obj

        return deco if target is None else deco(target)

    def register_prefix(self, prefix: str, target: Any, arg_name: str) -> None:
        """Register a family: ``get('prefix:x')`` resolves to ``target`` with ``arg_name=x``."""
        self._families[prefix] = PrefixFamily(prefix, target, arg_name, self.current_source)

    def _add(self, name: str, obj: Any, *, override: bool, defaults: Dict[str, Any]) -> None:
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if self.base is not None and isinstance(obj, type) and not issubclass(obj, self.base):
            raise TypeError(f"{self.kind} {name!r}: {obj.__qualname__} does not subclass {self.base.__name__}")
        old = self._entries.get(name)
        if old is not None and not override and old.target is not obj:
            raise SsltkError(
                f"{self.kind} {name!r} is already registered by {old.source}; pass override=True to replace it"
            )
        self._entries[name] = Entry(name, obj, self.current_source, dict(defaults))

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def unregister_family(self, prefix: str) -> None:
        self._families.pop(prefix, None)

    def drop(self, source_matches: Callable[[str], bool]) -> None:
        """Unregister every name and family whose source matches (forgetting a loaded plugin's registrations)."""
        for name in [n for n, e in self._entries.items() if source_matches(e.source)]:
            del self._entries[name]
        for prefix in [p for p, f in self._families.items() if source_matches(f.source)]:
            del self._families[prefix]

    def source_of(self, name: str) -> Optional[str]:
        """Who registered ``name`` (``PREFIX:*`` for a family), without loading plugins; None when nobody has."""
        if name.endswith(":*"):
            fam = self._families.get(name[:-2])
            return fam.source if fam is not None else None
        entry = self._entries.get(name)
        return entry.source if entry is not None else None

    def targets(self) -> List[Any]:
        """Every registered class or factory, names and families alike (plugins loaded first)."""
        self._ensure_loaded()
        return [e.target for e in self._entries.values()] + [f.target for f in self._families.values()]

    def set_loader(self, loader: Optional[Callable[[], Any]]) -> None:
        """Call ``loader()`` before every lookup (the plugin loader: it loads the installed plugins once)."""
        self._before_lookup = loader

    # lookup -------------------------------------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._before_lookup is not None:
            self._before_lookup()

    def names(self) -> List[str]:
        self._ensure_loaded()
        return sorted(self._entries, key=_natural_key)

    def list(self, pattern: str = "*") -> List[str]:
        """Names matching a shell wildcard (``resnet*``), naturally sorted; families show as ``prefix:*``."""
        self._ensure_loaded()
        names = list(self._entries) + [f"{p}:*" for p in self._families]
        return sorted((n for n in names if fnmatch.fnmatchcase(n, pattern)), key=_natural_key)

    def __contains__(self, name: str) -> bool:
        try:
            self.resolve(name)
            return True
        except UnknownNameError:
            return False

    def resolve(self, name: str) -> Tuple[Any, Dict[str, Any]]:
        """Return ``(target, fixed_kwargs)`` for a name, including ``prefix:arg`` family names."""
        self._ensure_loaded()
        if name in self._entries:
            entry = self._entries[name]
            return entry.target, dict(entry.defaults)
        if ":" in name:
            prefix, arg = name.split(":", 1)
            fam = self._families.get(prefix)
            if fam is not None and arg:
                return fam.target, {fam.arg_name: arg}
        raise UnknownNameError(self._unknown_message(name))

    def get(self, name: str) -> Any:
        return self.resolve(name)[0]

    def entry(self, name: str) -> Entry:
        self._ensure_loaded()
        if name not in self._entries:
            raise UnknownNameError(self._unknown_message(name))
        return self._entries[name]

    def entries(self) -> List[Entry]:
        self._ensure_loaded()
        return [self._entries[n] for n in self.names()]

    def families(self) -> List[PrefixFamily]:
        self._ensure_loaded()
        return list(self._families.values())

    def create(self, name: str, **kwargs: Any) -> T:
        target, fixed = self.resolve(name)
        fixed.update(kwargs)
        return target(**fixed)

    def _unknown_message(self, name: str) -> str:
        known = list(self._entries) + [f"{p}:" for p in self._families]
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        msg = f"unknown {self.kind} {name!r}"
        if close:
            msg += "; did you mean " + ", ".join(repr(c) for c in close) + "?"
        elif known:
            msg += "; available: " + ", ".join(sorted(known, key=_natural_key))
        return msg
