"""Checkpoints without pickle: safetensors for every tensor, JSON (in the safetensors metadata) for the rest.

Loading a checkpoint therefore never runs code. Writes are atomic: the file is written beside its destination,
flushed to disk, then renamed over it, so a crash mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from ..errors import SsltkError
from .filemode import plain_file_mode

META_KEY = "ssltk"


def save_safetensors(tensors: Dict[str, Tensor], meta: Dict[str, Any], path: Path) -> None:
    """Write tensors plus JSON-able ``meta`` atomically; the one writer behind every ssltk safetensors file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared storage and non-contiguous tensors; a copy per tensor sidesteps both
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={META_KEY: json.dumps(meta)})
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, plain_file_mode())  # mkstemp creates 0600; a run's files share the mode open() gives
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, (OSError, SafetensorError)):  # a full disk (os error 28), a read-only folder, ...
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SsltkError(f"cannot write {path} ({detail}); nothing was replaced, so the files written before "
                             "it are intact") from None
        raise


def read_safetensors(path: Path) -> Tuple[Dict[str, Tensor], Dict[str, Any]]:
    """Tensors and ssltk metadata of a safetensors file (metadata is {} for files written by other tools)."""
    path = Path(path)
    if not path.is_file():
        raise SsltkError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:
        raise SsltkError(f"cannot read safetensors file {path}: {exc}") from None
    if META_KEY not in meta:
        return tensors, {}
    try:
        parsed = json.loads(meta[META_KEY])
    except ValueError as exc:
        raise SsltkError(f"{path}: its ssltk metadata is not valid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise SsltkError(f"{path}: its ssltk metadata must be a JSON object, got {type(parsed).__name__}")
    return tensors, parsed


def _split_optimizer_state(state: Dict[str, Any]) -> Tuple[Dict[str, Tensor], Dict[str, Any]]:
    tensors: Dict[str, Tensor] = {}
    plain: Dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for pid, slots in state["state"].items():
        plain["state"][str(pid)] = {}
        for name, value in slots.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer/{pid}/{name}"] = value
            else:
                plain["state"][str(pid)][name] = value
    return tensors, plain


def _join_optimizer_state(tensors: Dict[str, Tensor], plain: Dict[str, Any]) -> Dict[str, Any]:
    state: Dict[int, Dict[str, Any]] = {int(pid): dict(slots) for pid, slots in plain["state"].items()}
    for key, value in tensors.items():
        _, pid, name = key.split("/", 2)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_training_state(path: Path, modules: Dict[str, nn.Module], optimizer: torch.optim.Optimizer,
                        scheduler: Optional[Any], meta: Dict[str, Any]) -> None:
    """Model weights and buffers, optimizer and scheduler state, and ``meta`` (epoch, step, ...) in one file."""
    tensors: Dict[str, Tensor] = {}
    for prefix, module in modules.items():
        for k, v in module.state_dict().items():
            tensors[f"{prefix}.{k}"] = v
    opt_tensors, opt_plain = _split_optimizer_state(optimizer.state_dict())
    tensors.update(opt_tensors)
    full_meta = dict(meta, optimizer=opt_plain, scheduler=scheduler.state_dict() if scheduler is not None else None)
    save_safetensors(tensors, full_meta, path)


def load_training_state(path: Path, modules: Dict[str, nn.Module], optimizer: torch.optim.Optimizer,
                        scheduler: Optional[Any]) -> Dict[str, Any]:
    tensors, meta = read_safetensors(path)
    for prefix, module in modules.items():
        sub = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        load_state_strict(module, sub, f"{path} [{prefix}]")
    opt = {k: v for k, v in tensors.items() if k.startswith("optimizer/")}
    try:
        optimizer.load_state_dict(_join_optimizer_state(opt, meta["optimizer"]))
        _match_param_strides(optimizer)
        if scheduler is not None and meta.get("scheduler") is not None:
            scheduler.load_state_dict(meta["scheduler"])
        int(meta["epoch"]), int(meta["global_step"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SsltkError(f"{path} is not a complete ssltk training checkpoint ({type(exc).__name__}: {exc})") from None
    return meta


def _match_param_strides(optimizer: torch.optim.Optimizer) -> None:
    """Give each per-parameter state tensor its parameter's memory format. A checkpoint stores contiguous tensors
    while channels-last parameters start with channels-last moments; the fused CUDA optimizers refuse the mix
    ("must have same dtype, device, and layout", found by the first GPU run). Values are copied unchanged."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for name, value in optimizer.state.get(p, {}).items():
                if isinstance(value, Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    optimizer.state[p][name] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def load_state_strict(module: nn.Module, state: Dict[str, Tensor], where: str) -> None:
    """Load weights, turning missing keys, unexpected keys and shape mismatches into one readable error."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items() if k in state and state[k].shape != v.shape]
    if wrong:
        k, got, want = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise SsltkError(f"{where}: shape mismatch for {k!r}: checkpoint {got}, model {want}{more}; "
                         f"does the checkpoint belong to {type(module).__name__}?")
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}" + (f" (+{len(missing) - 3})" if len(missing) > 3 else ""))
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}" + (f" (+{len(unexpected) - 3})" if len(unexpected) > 3 else ""))
        raise SsltkError(f"{where}: keys do not match {type(module).__name__}: {'; '.join(parts)}")
    module.load_state_dict(state)


def save_backbone(path: Path, backbone: nn.Module, spec: Optional[Dict[str, Any]] = None) -> None:
    """The final backbone weights; ``spec`` (class_path and init_args) lets ``ssltk eval`` rebuild it alone."""
    meta = {"backbone": spec, "num_features": int(getattr(backbone, "num_features", 0))}
    save_safetensors(dict(backbone.state_dict()), meta, path)


def read_weights(path: Path) -> Dict[str, Tensor]:
    """A state dict from a local weights file: safetensors, or a PyTorch/timm checkpoint (``.pth``, ``.pt``,
    ``.bin``) read with ``torch.load(weights_only=True)``, whose unpickler admits tensors and plain containers only,
    so the file cannot run code. A checkpoint that nests its weights under ``state_dict`` or ``model`` is unwrapped."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SsltkError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return read_safetensors(path)[0]
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SsltkError(f"cannot read {path} as a weights-only PyTorch checkpoint: {str(exc).splitlines()[0]}") \
            from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise SsltkError(f"{path} does not hold a state dict of tensors")
    return state
