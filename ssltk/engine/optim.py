"""Optimizers, parameter groups and per-iteration learning-rate schedules.

- ``--trainer.optimizer`` names ``adam``, ``adamw``, ``sgd``, ``lars`` or any ``torch.optim`` class path. ``lars``
  is timm's maintained implementation (``timm.optim.Lars``, You et al. 2017), which leaves the layer-wise trust
  ratio out for parameters without weight decay, as SimCLR and BYOL do for biases and normalisation layers.
  A class path from a file is looked up inside ``torch.optim`` only, never imported, so a saved config cannot name
  arbitrary code.
- An objective may declare parameter groups (:meth:`ssltk.Objective.param_groups`): each a dict with ``params`` and
  any optimizer option (``weight_decay=0.0``), plus ``lr_scale`` (a multiple of ``--trainer.lr``, e.g. a faster
  predictor). Trainable parameters that no group names join a default group. :func:`no_decay_groups` builds the
  usual "no weight decay on normalisation layers and biases" split.
- :class:`LRSchedule` is a pure function of the global step: linear warmup over ``warmup_epochs``, then constant,
  step (divided by 10 at 50% and 75% of the epochs; paper 000, A.4-A.6) or a cosine stepped every iteration (SGDR,
  Loshchilov & Hutter 2017, without restarts). Nothing of it needs checkpointing: a resumed run recomputes it.
- :class:`WeightDecaySchedule` (``--trainer.weight_decay_end``) moves the weight decay of the groups that use the
  run's own along a cosine from ``--trainer.weight_decay`` to the end value over the run (DINO, Caron et al. 2021,
  section 3 and appendix: 0.04 to 0.4); groups that set their own decay (no decay on biases) keep it. It is a pure
  function of the step as well.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from ..errors import SsltkError, warn
from ..momentum import cosine_momentum

BUILTIN_OPTIMIZERS = ("adam", "adamw", "sgd", "lars")
SCHEDULES = ("constant", "step", "cosine")


def optimizer_class(name: str) -> type:
    """The optimizer class for a built-in name or a ``torch.optim`` class path (``torch.optim.RMSprop``)."""
    if name == "adam":
        return torch.optim.Adam
    if name == "adamw":
        return torch.optim.AdamW
    if name == "sgd":
        return torch.optim.SGD
    if name == "lars":
        from timm.optim import Lars

        return Lars
    prefix = "torch.optim."
    cls = vars(torch.optim).get(name[len(prefix):]) if name.startswith(prefix) else None
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise SsltkError(f"unknown optimizer {name!r}; use {', '.join(BUILTIN_OPTIMIZERS)} or a torch.optim class "
                         "path such as torch.optim.RMSprop")
    return cls


def build_optimizer(name: str, groups: List[Dict[str, Any]], lr: float, weight_decay: float, momentum: float,
                    extra: Optional[Dict[str, Any]] = None, fused: bool = False) -> torch.optim.Optimizer:
    """An optimizer over ``groups``; every group keeps ``base_lr`` (its ``lr_scale`` times ``lr``) for the schedule.

    ``weight_decay`` and ``momentum`` are passed where the class accepts them (Adam has no momentum argument);
    ``extra`` holds further constructor options (``betas``, ``trust_coeff``, ...). ``fused`` asks for the class's
    fused kernel (one launch for all parameters) where it has one and ``extra`` does not choose: the trainer sets
    it on CUDA only, so CPU numerics are unchanged."""
    cls = optimizer_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    kwargs: Dict[str, Any] = {"lr": lr}
    if "weight_decay" in accepted:
        kwargs["weight_decay"] = weight_decay
    if "momentum" in accepted:
        kwargs["momentum"] = momentum
    if fused and "fused" in accepted and not {"fused", "foreach"} & set(extra or {}):
        kwargs["fused"] = True
    kwargs.update(extra or {})
    unknown = sorted(k for k in kwargs if k not in accepted)
    if unknown:
        raise SsltkError(f"{cls.__name__} does not take {', '.join(unknown)} (check --trainer.optimizer_args)")
    prepared = []
    for group in groups:
        group = dict(group)
        scale = float(group.pop("lr_scale", 1.0))
        group["lr"] = lr * scale
        prepared.append(group)
    try:
        opt = cls(prepared, **kwargs)
    except (TypeError, ValueError) as exc:
        raise SsltkError(f"cannot build {cls.__name__}: {exc}") from None
    for group in opt.param_groups:
        group["base_lr"] = group["lr"]
    return opt


def collect_groups(declared: Optional[Sequence[Dict[str, Any]]], trainable: Sequence[nn.Parameter],
                   who: str) -> List[Dict[str, Any]]:
    """Check an objective's declared groups against the trainable parameters: each belongs to at most one group,
    each is trainable; the ones left out form a default group (last, so declared groups keep their order)."""
    if declared is None:
        return [{"params": list(trainable)}]
    ids = {id(p) for p in trainable}
    seen: set = set()
    groups = []
    for i, group in enumerate(declared):
        if not isinstance(group, dict) or "params" not in group:
            raise SsltkError(f"{who}.param_groups(): group {i} must be a dict with 'params'")
        params = list(group["params"])
        for p in params:
            if id(p) in seen:
                raise SsltkError(f"{who}.param_groups(): a parameter is in two groups (group {i})")
            if id(p) not in ids:
                raise SsltkError(f"{who}.param_groups(): group {i} holds a parameter the optimizer does not train "
                                 "(frozen, or not part of the backbone or the objective)")
            seen.add(id(p))
        if params:
            groups.append({**group, "params": params})
    rest = [p for p in trainable if id(p) not in seen]
    if rest:
        groups.append({"params": rest})
    return groups


def no_decay_groups(*modules: nn.Module, weight_decay: Optional[float] = None) -> List[Dict[str, Any]]:
    """Two groups over the trainable parameters of ``modules``: weights of dimension >= 2 (convolutions, linear
    layers) with the run's weight decay (or ``weight_decay``), and biases and normalisation parameters (dimension
    < 2) with none, the convention of SimCLR, BYOL and the LARS papers."""
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                (decay if p.dim() >= 2 else no_decay).append(p)
    first: Dict[str, Any] = {"params": decay}
    if weight_decay is not None:
        first["weight_decay"] = weight_decay
    return [first, {"params": no_decay, "weight_decay": 0.0}]


class LRSchedule:
    """The learning-rate factor of every step: ``factor(step)`` for the 0-based index of the step about to run."""

    def __init__(self, kind: str, epochs: int, steps_per_epoch: int, warmup_epochs: float = 0.0,
                 milestones: Sequence[float] = (0.5, 0.75)):
        if kind not in SCHEDULES:
            raise SsltkError(f"unknown schedule {kind!r}; use {', '.join(SCHEDULES)}")
        self.kind, self.epochs, self.steps_per_epoch = kind, epochs, steps_per_epoch
        self.total = max(1, epochs * steps_per_epoch)
        self.warmup = int(round(warmup_epochs * steps_per_epoch))
        if self.warmup > self.total // 2 and epochs > 0:
            # a short trial run of a method whose warmup is longer than the run itself: warm up over half of it
            warn(f"--trainer.warmup_epochs {warmup_epochs:g} is more than half of this {epochs}-epoch run; warming "
                 f"up over its first {self.total // 2} of {self.total} steps instead")
            self.warmup = self.total // 2
        self.milestones = [max(1, int(epochs * m)) for m in milestones]

    def factor(self, step: int) -> float:
        if step < self.warmup:  # linear from lr / warmup up to lr, so the first step is not taken at lr 0
            return (step + 1) / self.warmup
        if self.kind == "step":
            epoch = step // self.steps_per_epoch
            return 0.1 ** sum(epoch >= m for m in self.milestones)
        if self.kind == "cosine":
            t = (step - self.warmup) / max(1, self.total - self.warmup)
            return 0.5 * (1.0 + math.cos(math.pi * t))
        return 1.0

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        f = self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * f



class WeightDecaySchedule:
    """wd(step) = end + (start - end) * (1 + cos(pi * step / total)) / 2 for the groups whose weight decay was the
    run's ``start`` when the optimizer was built; the others (a group declared with its own decay) keep theirs."""

    def __init__(self, start: float, end: float, total_steps: int):
        self.start, self.end, self.total = float(start), float(end), max(1, total_steps)

    def value(self, step: int) -> float:
        return cosine_momentum(step / self.total, self.start, self.end)

    def mark(self, optimizer: torch.optim.Optimizer) -> None:
        """Note which groups follow the schedule (kept in the group, so a restored optimizer keeps it too)."""
        for group in optimizer.param_groups:
            group["scheduled_decay"] = group.get("weight_decay", 0.0) == self.start

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        wd = self.value(step)
        for group in optimizer.param_groups:
            if group.get("scheduled_decay"):
                group["weight_decay"] = wd
