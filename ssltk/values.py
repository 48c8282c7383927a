"""Types for free-form option values read from configuration files.

A value typed ``Any`` lets jsonargparse resolve a ``class_path`` inside it, which imports that module while the
file is parsed (the hardening issue's config payload). Free-form options are therefore typed as plain data: JSON
scalars and lists of them, which no parser can turn into an import.
"""
import re
from typing import Dict, List, Optional, Union

Scalar = Union[bool, int, float, str, None]
#: an option's value: a scalar or a list of scalars (an optimizer's ``betas``, a milestone list)
OptionValue = Union[Scalar, List[Scalar]]
#: a mapping of free-form options (``--trainer.optimizer_args``)
Options = Optional[Dict[str, OptionValue]]

_SCALARS = (bool, int, float, str, type(None))


def is_option_value(value: object) -> bool:
    """Whether ``value`` is an :data:`OptionValue` (what a value read from Python, not a parser, is checked with)."""
    return isinstance(value, _SCALARS) or (isinstance(value, (list, tuple)) and all(isinstance(v, _SCALARS)
                                                                                   for v in value))


_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(value: Union[str, int, float], option: str = "--trainer.max_time") -> float:
    """Seconds in a duration: a number of seconds, ``90s``, ``20m``, ``1h30m``, ``2d``, or ``[DD:]HH:MM:SS`` (the
    form SLURM and Lightning's ``max_time`` use). Anything else is one line naming the option."""
    text = str(value).strip().lower()
    seconds: Optional[float] = None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        seconds = float(text)
    elif re.fullmatch(r"(\d+:)?\d+:\d{1,2}:\d{1,2}", text):
        parts = [float(p) for p in text.split(":")]
        seconds = sum(p * f for p, f in zip(reversed(parts), (1, 60, 3600, 86400)))
    elif text and re.fullmatch(r"(\d+(\.\d+)?[dhms])+", text):
        seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([dhms])", text))
    if seconds is None or seconds <= 0:
        from .errors import SsltkError

        raise SsltkError(f"{option} must be a positive duration (3600, 90s, 20m, 1h30m, 2d or DD:HH:MM:SS), "
                         f"got {value!r}")
    return seconds
