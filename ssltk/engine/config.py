"""A run's configuration: how to train (:class:`TrainerConfig`) and what to measure at the end (:class:`EvalConfig`).

Plain dataclasses that the command line, ``ssltk.fit`` and a run's ``config.yaml`` fill; nothing here trains.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, List, Optional

from ..errors import SsltkError, check_at_least
from ..values import Options, is_option_value, parse_duration
from .optim import SCHEDULES, optimizer_class

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainerConfig:
    """How to train. The defaults are the relational paper's (Adam 1e-3, batch 64, 200 epochs, no schedule), with
    the objective's own where it has them; the quickstart (``ssltk fit`` without ``--data``) trains 4 epochs.

    Args:
        epochs: training epochs.
        batch_size: images per step (each yields the objective's K views).
        lr: learning rate.
        weight_decay: L2 weight decay of the optimizer.
        weight_decay_end: if set, the weight decay follows a cosine from ``weight_decay`` to this value over the run,
            stepped every iteration (DINO: 0.04 to 0.4); groups with their own decay (biases, norms) keep it.
        optimizer: adam, adamw, sgd, lars (timm's LARS) or a torch.optim class path (torch.optim.RMSprop).
        optimizer_args: further options of the optimizer's constructor (betas, trust_coeff, nesterov, ...).
        momentum: momentum of SGD and LARS (ignored by optimizers without one).
        schedule: constant, step (divided by 10 at each of ``milestones``) or cosine; stepped every iteration.
        milestones: where the step schedule divides the learning rate by 10, as fractions of the epochs (the
            papers' 50% and 75% by default; SeLa's CIFAR code: 0.6 and 0.8 of 400 epochs).
        warmup_epochs: linear warmup of the learning rate over this many epochs (fractions allowed), then the schedule.
        grad_clip: clip the global gradient norm to this value (0: off).
        device: auto (CUDA when present, else CPU), cpu, cuda or cuda:N.
        seed: seeds initialisation, shuffling, augmentation and every epoch's random draws.
        run_dir: where config, metrics, checkpoints and results go (default runs/<objective>-<time>).
        checkpoint_every: write a checkpoint every N epochs (and always after the last).
        keep_checkpoints: how many epoch checkpoints to keep.
        log_every: steps between metrics.jsonl step records (0: epoch records only).
        progress: show the progress bar and per-epoch lines.
        data_on_device: hold the uint8 training images on the training device.
        amp: mixed precision on CUDA (ignored on the CPU).
        amp_dtype: bf16, or fp16 with a gradient scaler (whose state is checkpointed).
        channels_last: channels-last memory format for the backbone and views.
        compile: wrap the training step in torch.compile.
        compile_mode: torch.compile's mode: ``default``, ``reduce-overhead`` (the forward and backward replayed as
            CUDA graphs: one launch instead of hundreds for a small backbone, where a step is bound by kernel
            launches, not arithmetic; the augmentation and the optimizer stay eager), ``max-autotune`` or
            ``max-autotune-no-cudagraphs``. Only with ``compile``.
        compile_augment: run the recipes' colour operations through torch.compile (fused loops: on the CPU the
            batched photometric half of a streamed step is then several times cheaper; needs a C++ compiler).
        stream_decode: where a streamed set's JPEGs are decoded: ``workers`` (torchvision.io, libjpeg-turbo, in the
            DataLoader workers, with the crops) or ``device`` (the workers read bytes and draw crop boxes; the
            training device decodes the step in one batch, nvjpeg on CUDA, and crops there:
            :mod:`ssltk.data.device_decode`). In-memory sets are decoded once when loaded and refuse ``device``.
        probe_every: every N iterations train a linear probe for one epoch on labelled training images and log its
            training accuracy (paper 003, Figure 3); 0 disables it.
        probe_size: labelled images the probe uses (None: the whole training split).
        knn_every: every N epochs score weighted kNN (k=50, sigma=0.1) of the frozen backbone on the held-out split
            and log it (event "knn"); 0 disables it. Evaluation mode and no random draws: training is unchanged.
        knn_k, knn_sigma: the monitor's neighbours and temperature: 50 and 0.1 as paper 004; 200 and 0.1 as the peers'
            CIFAR-10 benchmarks report it (lightly, solo-learn), so that numbers compare with theirs.
        loggers: experiment loggers besides metrics.jsonl (csv, tensorboard, wandb, or a plugin's).
        max_time: stop before this much wall time has passed (a duration: ``3600``, ``90s``, ``20m``, ``1h30m`` or
            ``DD:HH:MM:SS``), after the last epoch that fits, with a checkpoint, the exit status 3 and the resume
            command printed; ``ssltk fit --resume RUN`` continues it exactly. For a GPU lent by the slice, or a
            cluster job that is requeued. The stop is at an epoch boundary: it is made when the time left is less
            than the longest epoch so far plus a tenth, so an epoch longer than the whole limit still runs once.
        distributed: auto (join torchrun's process group when launched by torchrun with more than one process),
            on (require it) or off.
        backend: process-group backend: auto (nccl on CUDA, gloo on the CPU), nccl or gloo.
        sync_batchnorm: under torchrun, BatchNorm statistics over the global batch (SyncBatchNorm on CUDA, an
            all-reduced BatchNorm on the CPU); off, each rank normalises over its own part of the batch.
        find_unused_parameters: DDP's option for objectives whose parameters do not all receive a gradient.
    """

    epochs: int = 200
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    weight_decay_end: Optional[float] = None
    optimizer: str = "adam"
    optimizer_args: Options = None
    momentum: float = 0.9
    schedule: str = "constant"
    milestones: List[float] = field(default_factory=lambda: [0.5, 0.75])
    warmup_epochs: float = 0.0
    grad_clip: float = 0.0
    device: str = "auto"
    seed: int = 0
    run_dir: Optional[str] = None
    checkpoint_every: int = 1
    keep_checkpoints: int = 2
    log_every: int = 20
    progress: bool = True
    data_on_device: bool = True
    amp: bool = True
    amp_dtype: str = "bf16"
    channels_last: bool = True
    compile: bool = False
    compile_mode: str = "default"
    compile_augment: bool = False
    stream_decode: str = "workers"
    probe_every: int = 0
    probe_size: Optional[int] = None
    knn_every: int = 0
    knn_k: int = 50
    knn_sigma: float = 0.1
    loggers: List[str] = field(default_factory=list)
    max_time: Optional[str] = None
    distributed: str = "auto"
    backend: str = "auto"
    sync_batchnorm: bool = False
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        # epochs 0 is the random-weights baseline's; the Trainer refuses it for objectives that train
        check_at_least(1, "trainer.", batch_size=self.batch_size, keep_checkpoints=self.keep_checkpoints,
                       probe_size=self.probe_size)
        check_at_least(0, "trainer.", epochs=self.epochs, seed=self.seed, checkpoint_every=self.checkpoint_every,
                       log_every=self.log_every, probe_every=self.probe_every, knn_every=self.knn_every)
        check_at_least(1, "trainer.", knn_k=self.knn_k)
        if not (isinstance(self.knn_sigma, (int, float)) and math.isfinite(self.knn_sigma) and self.knn_sigma > 0):
            raise SsltkError(f"--trainer.knn_sigma must be a finite number > 0, got {self.knn_sigma!r}")
        if not isinstance(self.loggers, (list, tuple)) or not all(isinstance(n, str) for n in self.loggers):
            raise SsltkError(f"--trainer.loggers must be a list of logger names, got {self.loggers!r}")
        for name in ("lr", "weight_decay", "momentum", "warmup_epochs", "grad_clip"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                raise SsltkError(f"--trainer.{name} must be a finite number {'> 0' if name == 'lr' else '>= 0'}, "
                                 f"got {value!r}")
        if self.weight_decay_end is not None and not (isinstance(self.weight_decay_end, (int, float))
                                                      and math.isfinite(self.weight_decay_end)
                                                      and self.weight_decay_end >= 0):
            raise SsltkError(f"--trainer.weight_decay_end must be a finite number >= 0, got {self.weight_decay_end!r}")
        optimizer_class(self.optimizer)  # a clear error for an unknown name or class path
        if self.optimizer_args is not None and not isinstance(self.optimizer_args, dict):
            raise SsltkError(f"--trainer.optimizer_args must be a mapping, got {self.optimizer_args!r}")
        for key, value in (self.optimizer_args or {}).items():
            if not is_option_value(value):
                raise SsltkError(f"--trainer.optimizer_args.{key} must be a number, string, boolean or a list of "
                                 f"them, got {value!r}")
        _one_of(self, "schedule", SCHEDULES)
        if not isinstance(self.milestones, (list, tuple)) or not all(
                isinstance(m, (int, float)) and 0 < m < 1 for m in self.milestones):
            raise SsltkError(f"--trainer.milestones must be fractions of the epochs in (0, 1), got {self.milestones!r}")
        _one_of(self, "amp_dtype", ("bf16", "fp16"))
        _one_of(self, "compile_mode", COMPILE_MODES)
        if self.max_time is not None:
            parse_duration(self.max_time)
        _one_of(self, "stream_decode", ("workers", "device"))
        _one_of(self, "distributed", ("auto", "on", "off"))
        _one_of(self, "backend", ("auto", "nccl", "gloo"))


@dataclass
class EvalConfig:
    """What ``fit`` measures when training ends: linear evaluation of the trained backbone and of random weights.

    Args:
        linear: run the linear protocol on the trained backbone.
        random_baseline: also evaluate the backbone at its initial (random) weights.
        epochs: epochs of the linear classifier (paper: 100).
        split: auto (held-out validation split if any, else test), val or test.
    """

    linear: bool = True
    random_baseline: bool = True
    epochs: int = 100
    split: str = "auto"

    def __post_init__(self) -> None:
        check_at_least(1, "evaluate.", epochs=self.epochs)
        _one_of(self, "split", ("auto", "val", "test"), prefix="evaluate")


def _one_of(cfg: Any, name: str, choices: tuple, prefix: str = "trainer") -> None:
    if getattr(cfg, name) not in choices:
        raise SsltkError(f"--{prefix}.{name} must be one of {', '.join(choices)}, got {getattr(cfg, name)!r}")


def from_mapping(cls: type, values: Any, section: str) -> Any:
    """``cls`` (:class:`TrainerConfig` or :class:`EvalConfig`) from a config section, unknown options named."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise SsltkError(f"{section} must be a mapping of options, got {values!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SsltkError(f"unknown {section} option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    return cls(**values)
