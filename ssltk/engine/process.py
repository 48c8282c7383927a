"""Process set-up for a fit: the device, deterministic kernels on the CPU, and SIGTERM turned into an interrupt.

(Not to be confused with :mod:`ssltk.distributed`, the collectives a plugin may call, or
:mod:`ssltk.engine.distributed`, the process group and DDP wrapping.)
"""
from __future__ import annotations

import contextlib
import signal
import threading

import torch

from ..errors import SsltkError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise SsltkError(f"bad device {name!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SsltkError(f"device {name!r} requested but CUDA is not available; use --trainer.device cpu or auto")
    if dev.type not in ("cpu", "cuda"):
        backend = getattr(torch.backends, dev.type, None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            raise SsltkError(f"device {name!r} is not available on this machine (PyTorch {torch.__version__}); use "
                             "--trainer.device cpu, cuda or auto")
    return dev


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool):
    """``torch.use_deterministic_algorithms`` for the duration (warning, not failing, on an op that has no
    deterministic variant), restored afterwards: it is process-wide state."""
    if not enabled:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM (a scheduler's stop, ``kill``) unwinds like Ctrl-C, so atomic writes remove their temporary files
    and the user is told where the run stands."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt("terminated")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
