"""The training loop shared by every objective.

One epoch: a seeded permutation of the training set, batches of uint8 images (held on the device when they fit),
K views made on the device by the objective's batched augmentation, ``objective(ViewBatch, backbone)``, one optimizer
step. Each epoch reseeds every random source from ``(seed, epoch)``, so a run resumed from an epoch checkpoint
continues exactly as the uninterrupted run would have.

The step runs through :class:`TrainStep`, one module holding backbone and objective. Under ``torchrun`` the
trainer joins the process group and wraps the step in DistributedDataParallel; ``batch_size`` stays the global
batch, and each step's global batch (the same slice of the same permutation as in one process) is cut into
world-size consecutive parts, rank r taking part r. The step count per epoch, the checkpoints and the seed schedule
are therefore those of a single-process run, which is what lets a checkpoint resume under another world size.
Only rank 0 writes the run directory.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from .. import distributed as dist_util
from ..errors import Interrupted, SsltkError, warn
from ..data.device_decode import check_device_decode
from ..data.recipes import objective_recipe
from ..data.stream import StreamGroup, StreamImages, epoch_batches
from ..interfaces import FitContext, ObjectiveOutput, ViewBatch, ViewGroup
from .build import build, build_objective, import_class, registry_name, registry_source
from .checkpoint import load_training_state, save_backbone, save_training_state
from .precision import amp_enabled, autocast
from .optim import LRSchedule, build_optimizer, collect_groups
from .distributed import convert_sync_batchnorm, init_process_group, local_device, wrap_ddp
from ..loggers import create_loggers
from .preflight import check_backbone_input
from .heartbeat import heartbeat
from .progress import MetricsLog, TrainProgress
from .time_limit import TimeLimit
from .config import EvalConfig, TrainerConfig
from .rundir import (RunLock, checkpoint_files, check_new_run, read_stored_config, remove_stale_temporaries,
                     resume_changes, truncate_metrics, write_yaml)
from .rundir import read_run_config  # noqa: F401  (its home before 0.2; code written against it keeps working)


@dataclass
class FitResult:
    run_dir: Path
    backbone: nn.Module
    objective: nn.Module
    metrics: Dict[str, Any] = field(default_factory=dict)
    rank: int = 0  # the process's rank under torchrun: only rank 0 reports
    #: the epoch a fit stopped after at ``--trainer.max_time`` (its checkpoint saved; resume continues it), or None
    stopped_at_epoch: Optional[int] = None


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


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 12_345) % (2**63 - 1)


class TrainStep(nn.Module):
    """Backbone plus objective as one module: the unit a DDP wrapper would hold."""

    def __init__(self, backbone: nn.Module, objective: nn.Module):
        super().__init__()
        self.backbone, self.objective = backbone, objective

    def forward(self, batch: ViewBatch) -> ObjectiveOutput:
        return self.objective(batch, self.backbone)


class Trainer:
    """Runs one fit from a resolved config (``objective``, ``backbone``, ``data`` specs, ``trainer``, ``evaluate``)."""

    def __init__(self, config: Dict[str, Any], resume: bool = False, overwrite: bool = False):
        self.config = config
        self.cfg = _make(TrainerConfig, config.get("trainer"), "trainer")
        self.eval_cfg = _make(EvalConfig, config.get("evaluate"), "evaluate")
        self.resume, self.overwrite = resume, overwrite
        objective_cls = import_class(config["objective"]["class_path"], kind="objective")
        if self.cfg.epochs < 1 and getattr(objective_cls, "trains", True):
            raise SsltkError(f"--trainer.epochs must be >= 1 for an objective that trains, got {self.cfg.epochs}")
        device = resolve_device(self.cfg.device)
        self.group = init_process_group(self.cfg.distributed, device, self.cfg.backend)
        self.rank, self.world_size = self.group.rank, self.group.world_size
        self.device = local_device(device, self.group)
        self.cuda = self.device.type == "cuda"
        # built now, so that an unknown name or a missing package is said before any training time is spent
        self.loggers = create_loggers(self.cfg.loggers) if self.rank == 0 else []
        if self.cuda:
            if self.device.index is None:  # set_device refuses a bare "cuda" (torch 2.11, the first GPU run)
                self.device = torch.device("cuda", torch.cuda.current_device())
            torch.cuda.set_device(self.device)

    # setup ----------------------------------------------------------------------------------------------------------
    def _run_dir(self) -> Path:
        if self.cfg.run_dir:
            return Path(self.cfg.run_dir)
        name = registry_name("objective", self.config["objective"]["class_path"])
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return Path("runs") / f"{name}-{stamp}"

    def _build(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        data_name = registry_name("dataset", self.config["data"]["class_path"])
        with heartbeat(f"loading {data_name}", enabled=cfg.progress and self.rank == 0):
            self.data = build(self.config["data"])
            train = self.data.train
            self.spec = self.data.spec()
        self._check_before_training()
        # reseed after loading: decoding image folders through DataLoader workers draws from the global generator,
        # and the initial weights must be those of the seed alone (the random-weights baseline rebuilds them)
        torch.manual_seed(cfg.seed)
        self.backbone = build(self.config["backbone"])
        if not hasattr(self.backbone, "num_features"):
            raise SsltkError(f"backbone {type(self.backbone).__name__} has no num_features")
        backbone_name = registry_name("backbone", self.config["backbone"]["class_path"])
        check_backbone_input(self.backbone, self.spec, getattr(self.backbone, "label", None) or backbone_name,
                             registry_source("backbone", backbone_name))
        self.objective = build_objective(self.config["objective"], self.backbone.num_features, self.spec.num_classes)
        self.backbone.to(self.device)
        sync_bn = cfg.sync_batchnorm and self.world_size > 1
        if sync_bn:
            self.backbone = convert_sync_batchnorm(self.backbone, self.device)
        self.objective.to(self.device)
        self.objective.setup(self.backbone, self.spec)
        self.objective.to(self.device)
        if sync_bn:
            self.objective = convert_sync_batchnorm(self.objective, self.device)
        if cfg.channels_last:  # faster convolutions on CUDA and, measured, on the CPU too
            self.backbone.to(memory_format=torch.channels_last)
        self.step_module = TrainStep(self.backbone, self.objective)
        wrapped = self.step_module
        if self.group.active:
            wrapped = wrap_ddp(self.step_module, self.device, cfg.find_unused_parameters)
        if cfg.compile:
            # graphs compiled for an earlier fit of this process (another objective on the same TrainStep code)
            # were seen to fail a later fit's compilation ("RuntimeError when making fake tensor call"): each
            # compiled fit starts from empty caches
            torch._dynamo.reset()
        self._forward = (torch.compile(wrapped, mode=None if cfg.compile_mode == "default" else cfg.compile_mode)
                         if cfg.compile else wrapped)
        if self.config.get("augment"):  # a recipe chosen by the user overrides the objective's own
            self.augment = build(self.config["augment"]).configure(self.spec)
        else:
            self.augment = objective_recipe(self.objective, self.spec)
        groups = self.objective.view_groups(self.spec)
        if groups is None:
            groups = [ViewGroup(int(self.objective.num_views), self.augment)]
        elif self.config.get("augment"):
            raise SsltkError(f"{type(self.objective).__name__} makes several view groups, each with its own recipe: "
                             "--augment cannot replace them (set the objective's own options instead)")
        self.groups: List[ViewGroup] = groups
        for g in groups:
            g.augmentation.compiled = bool(cfg.compile_augment)
        self.streaming = isinstance(train.images, StreamImages)
        if self.streaming:  # decoded by workers a batch at a time; the geometric half of each recipe runs there
            self.images = train.images
            self.stream_groups = [StreamGroup(g.num_views, g.augmentation.geometry(), self.spec.image_size)
                                  for g in groups]
            if cfg.stream_decode == "device":
                check_device_decode(self.device)
        elif cfg.stream_decode == "device":
            raise SsltkError("--trainer.stream_decode device decodes streamed images, but this training set is held "
                             "in memory (decoded once when loaded): pass --data.stream true, or leave it at workers")
        else:
            self.images = train.images.to(self.device) if cfg.data_on_device else train.images
            self.batches = HostBatches(self.images, self.device, cfg.batch_size // max(self.world_size, 1))
        self.labels = train.labels.to(self.device)
        if cfg.batch_size % self.world_size:
            raise SsltkError(f"batch size {cfg.batch_size} (the global batch) does not split over "
                             f"{self.world_size} processes; use a multiple of {self.world_size}")
        self.local_batch = cfg.batch_size // self.world_size
        self.steps_per_epoch = len(train) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise SsltkError(f"batch size {cfg.batch_size} is larger than the {len(train)} training images")
        self.params = [p for p in self.step_module.parameters() if p.requires_grad]
        groups = collect_groups(self.objective.param_groups(self.backbone), self.params,
                                type(self.objective).__name__)
        self.optimizer = build_optimizer(cfg.optimizer, groups, cfg.lr, cfg.weight_decay, cfg.momentum,
                                         cfg.optimizer_args, fused=self.cuda)
        self.schedule = LRSchedule(cfg.schedule, cfg.epochs, self.steps_per_epoch, cfg.warmup_epochs,
                                   cfg.milestones)
        self.amp_dtype = torch.float16 if cfg.amp_dtype == "fp16" else torch.bfloat16
        self.amp = amp_enabled(cfg.amp, self.device)
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp and cfg.amp_dtype == "fp16")

    def _check_before_training(self) -> None:
        """What would fail or mislead only after training, said before any training time is spent."""
        if self.eval_cfg.linear and not self.data.labelled:
            warn("the data has no labels (an unlabelled folder): the linear evaluation at the end of fit is skipped")
            self.eval_cfg.linear = False
        if self.eval_cfg.linear:
            self.data.eval_pair(self.eval_cfg.split)  # raises for a split the data does not have
            if self.spec.num_classes < 2:
                warn(f"the data has {self.spec.num_classes} class: linear evaluation accuracy will be 100% and "
                     "means nothing (set --evaluate.linear false, or use labelled data)")
        if self.cfg.knn_every:
            self.data.eval_pair("auto")  # the kNN monitor scores the held-out (or test) split: it must exist
        if self.cfg.lr > 1.0:
            warn(f"--trainer.lr {self.cfg.lr:g} is far above the usual range (1e-4 to 1); the loss will likely "
                 "diverge")

    def context(self) -> FitContext:
        def whole_train_features(backbone: Optional[nn.Module] = None, gather: bool = True, augment: bool = False,
                                 seed: int = 0) -> torch.Tensor:
            from ..eval.features import extract_features

            images = self.images
            if augment:  # one view of every image through the objective's own recipe, the same for any sharding
                from ..eval.features import augmented_features

                start, stop = dist_util.shard_bounds(len(images)) if self.world_size > 1 else (0, len(images))
                own = augmented_features(backbone or self.backbone, images, self.groups[0].augmentation, seed,
                                         self.device, start, stop, amp=self.cfg.amp)
                if gather and self.world_size > 1:
                    return dist_util.all_gather_uneven(own.to(self.device)).cpu()
                return own
            if not gather:
                start, stop = dist_util.shard_bounds(len(images))
                images = images[start:stop]
            with dist_util.sharded_passes() if gather else contextlib.nullcontext():
                return extract_features(backbone or self.backbone, images, self.spec.mean, self.spec.std,
                                        self.device, amp=self.cfg.amp)

        def reset_optimizer_state(params) -> None:
            for p in params:
                self.optimizer.state.pop(p, None)

        return FitContext(num_train=len(self.labels), num_classes=self.spec.num_classes, seed=self.cfg.seed,
                          device=self.device, epochs=self.cfg.epochs, steps_per_epoch=self.steps_per_epoch,
                          train_labels=self.labels, extract_features=whole_train_features, data_spec=self.spec,
                          rank=self.rank, world_size=self.world_size, reset_optimizer_state=reset_optimizer_state)

    # checkpoints ----------------------------------------------------------------------------------------------------
    def _modules(self) -> Dict[str, nn.Module]:
        return {"backbone": self.backbone, "objective": self.objective}

    def _ckpt_path(self, epoch: int) -> Path:
        return self.run_dir / "checkpoints" / f"epoch-{epoch:04d}.safetensors"

    def _save(self, epoch: int, step: int) -> Path:
        path = self._ckpt_path(epoch)
        meta = {"epoch": epoch, "global_step": step, "seed": self.cfg.seed}
        if self.scaler.is_enabled():
            meta["grad_scaler"] = self.scaler.state_dict()
        try:
            save_training_state(path, self._modules(), self.optimizer, None, meta)
        except SsltkError as exc:
            kept = checkpoint_files(self.run_dir)
            last = f"the last checkpoint, {kept[-1].name}, is intact" if kept else "no earlier checkpoint exists"
            raise SsltkError(f"{exc}; {last}: free space, then resume with `ssltk fit --resume {self.run_dir}`") \
                from None
        for old in checkpoint_files(self.run_dir)[: -max(1, self.cfg.keep_checkpoints)]:
            old.unlink(missing_ok=True)
        return path

    def _restore(self) -> int:
        ckpts = checkpoint_files(self.run_dir)
        if not ckpts:
            return 0
        meta = load_training_state(ckpts[-1], self._modules(), self.optimizer, None)
        if self.scaler.is_enabled() and meta.get("grad_scaler"):
            self.scaler.load_state_dict(meta["grad_scaler"])
        self.global_step = int(meta["global_step"])
        return int(meta["epoch"])

    # loop -----------------------------------------------------------------------------------------------------------
    def fit(self) -> FitResult:
        # on the CPU every kernel runs its deterministic variant, so a resumed run equals an uninterrupted one even
        # for a plugin's own indexing (a gather's backward otherwise sums in thread order)
        with deterministic_algorithms(self.device.type == "cpu"), _terminate_as_interrupt():
            try:
                return self._fit()
            finally:
                if self.group.initialised_here:
                    import torch.distributed as dist

                    dist.destroy_process_group()

    def _fit(self) -> FitResult:
        self._build()  # errors in the data or the components leave every directory untouched
        self.run_dir = Path(dist_util.broadcast_object(str(self._run_dir())))
        with RunLock(self.run_dir) if self.rank == 0 else contextlib.nullcontext():
            try:
                return self._owned_fit()
            except KeyboardInterrupt as exc:
                raise Interrupted(self.run_dir, checkpoint_files(self.run_dir), str(exc) or "interrupted") from None

    def _claim_run_dir(self) -> Optional[Dict[str, Any]]:
        """Rank 0 checks the directory before writing anything; every rank learns the verdict."""
        error, stored = None, None
        if self.rank == 0:
            try:
                if self.resume:
                    stored = read_stored_config(self.run_dir)
                    if stored is None:
                        raise SsltkError(f"not a run directory (no config.yaml): {self.run_dir}")
                    changes = resume_changes(stored, self.config)
                    if changes:
                        raise SsltkError(f"a resume cannot change what {self.run_dir} was trained with: "
                                         f"{'; '.join(changes)} (start a new run instead)")
                else:
                    check_new_run(self.run_dir, self.overwrite)
                remove_stale_temporaries(self.run_dir)
            except SsltkError as exc:
                error = str(exc)
        error = dist_util.broadcast_object(error)
        if error:
            raise SsltkError(error)
        return stored

    def _owned_fit(self) -> FitResult:
        stored = self._claim_run_dir()
        if self.rank == 0 and not self.resume:
            write_yaml(self.run_dir / "config.yaml", self.config)
        self.global_step = 0
        ctx = self.context()
        # before the restore: state an objective sizes from the data (SeLa's labels) is then overwritten in place
        self.objective.on_fit_start(ctx)
        start_epoch = self._restore() if self.resume else 0
        if self.resume and self.rank == 0:
            if start_epoch == 0:
                print(f"ssltk: no checkpoint in {self.run_dir}/checkpoints; starting from epoch 1")
            # only now, with the checkpoint read: the record then says what the continued run does
            truncate_metrics(self.run_dir / "metrics.jsonl", start_epoch, self.global_step)
            if stored != self.config:
                write_yaml(self.run_dir / "config.yaml", self.config)
        self.probe = None
        if self.cfg.probe_every > 0:
            from ..eval.probe import OnlineProbe

            self.probe = OnlineProbe(self.images, self.labels, self.spec.mean, self.spec.std, self.device,
                                     self.cfg.probe_size, seed=self.cfg.seed)
        for logger in self.loggers:
            logger.start(self.run_dir, self.config, self.global_step)
        log = MetricsLog(self.run_dir / "metrics.jsonl" if self.rank == 0 else None, self.loggers)
        total = self.cfg.epochs * self.steps_per_epoch
        progress = TrainProgress(total, start_epoch * self.steps_per_epoch, self.cfg.epochs,
                                 enabled=self.cfg.progress and self.rank == 0)
        last_epoch = self.cfg.epochs if getattr(self.objective, "trains", True) else start_epoch
        limit = TimeLimit(self.cfg.max_time, self.world_size, self.device)
        try:
            try:
                for epoch in range(start_epoch, last_epoch):
                    self._epoch(epoch, ctx, log, progress)
                    if epoch + 1 < last_epoch and limit.stop_before_next():
                        if self.rank == 0 and not self._ckpt_path(epoch + 1).is_file():
                            self._save(epoch + 1, self.global_step)
                        return FitResult(self.run_dir, self.backbone, self.objective, rank=self.rank,
                                         stopped_at_epoch=epoch + 1)
            finally:
                progress.close()
            return self._finish(log)
        finally:
            log.close()

    def _epoch(self, epoch: int, ctx: FitContext, log: MetricsLog, progress: TrainProgress) -> None:
        cfg = self.cfg
        seed = _epoch_seed(cfg.seed, epoch)
        torch.manual_seed(seed)
        # each rank augments its own images with its own stream; rank 0's is the single-process stream
        gen = torch.Generator(device=self.device).manual_seed((seed + 104_729 * self.rank) % (2**63 - 1))
        order = torch.Generator().manual_seed(seed)
        self.step_module.train()
        self.objective.on_epoch_start(ctx, epoch)
        weights = self.objective.sampling_weights()
        if weights is None:
            perm = self.objective.epoch_order(torch.randperm(len(self.labels), generator=order), epoch, seed)
        else:
            perm = torch.multinomial(weights.detach().double().cpu(), len(self.labels), replacement=True,
                                     generator=order)
        k = int(self.groups[0].num_views)
        several = len(self.groups) > 1
        if self.streaming:
            order = [perm[i * cfg.batch_size + self.rank * self.local_batch:][: self.local_batch]
                     for i in range(self.steps_per_epoch)]
            streamed = epoch_batches(self.images, order, self.stream_groups,
                                     (seed + 104_729 * self.rank) % (2**63 - 1), pin=self.cuda,
                                     decode_on=self.device if cfg.stream_decode == "device" else None)
        total_steps = cfg.epochs * self.steps_per_epoch
        use_labels = bool(getattr(self.objective, "uses_labels", False))
        t_epoch, seen = time.perf_counter(), 0
        # running sums stay on the device: reading them every step would synchronise a GPU each step
        loss_sum = torch.zeros((), device=self.device)
        logs_sum: Dict[str, torch.Tensor] = {}
        last_loss, t_mark, views_mark = float("nan"), t_epoch, 0
        for i in range(self.steps_per_epoch):
            if self.streaming:
                idx, parts = next(streamed)
                made = [grp.augmentation(part.to(self.device, non_blocking=True), grp.num_views, gen)
                        if sg.geometry is None else
                        grp.augmentation.photometric(part.to(self.device, non_blocking=True), gen)
                        for grp, sg, part in zip(self.groups, self.stream_groups, parts)]
            else:
                start = i * cfg.batch_size + self.rank * self.local_batch
                idx = perm[start : start + self.local_batch]
                imgs = self.batches(idx)
                made = [grp.augmentation(imgs, grp.num_views, gen) for grp in self.groups]
            if cfg.channels_last:
                made = [v.contiguous(memory_format=torch.channels_last) for v in made]
            views = made[0]
            labels = self.labels[idx.to(self.device)] if use_labels else None
            batch = ViewBatch(views=views, num_views=k, index=idx, labels=labels, groups=made if several else None,
                              group_views=[g.num_views for g in self.groups] if several else None)
            with autocast(self.device, self.amp, self.amp_dtype):
                out = self._compiled_forward(batch) if cfg.compile else self._forward(batch)
            loss = out.loss.float()
            self.schedule.apply(self.optimizer, self.global_step)
            self.optimizer_step(loss)
            self.global_step += 1
            self.objective.after_optimizer_step(self.backbone, self.global_step, self.global_step / total_steps)
            seen += sum(v.shape[0] for v in made)
            loss_sum += loss.detach()
            for key, val in out.logs.items():
                val = torch.as_tensor(val, device=self.device).detach().float()
                # a copy: under CUDA graphs the step's outputs are overwritten by the next replay
                logs_sum[key] = logs_sum[key] + val if key in logs_sum else val.clone()
            if self.probe is not None and self.global_step % cfg.probe_every == 0 and self.rank == 0:
                log.write(event="probe", epoch=epoch + 1, step=self.global_step,
                          probe_train_acc=self.probe(self.backbone, self.global_step))
            log_step = bool(cfg.log_every) and self.global_step % cfg.log_every == 0
            refresh = progress.due(time.perf_counter() - t_mark)
            if log_step or refresh or i + 1 == self.steps_per_epoch:
                last_loss = loss.item()
                self._check_finite(last_loss, epoch, i)
                now = time.perf_counter()
                vps = (seen - views_mark) / max(now - t_mark, 1e-9)
                t_mark, views_mark = now, seen
                if log_step:
                    log.write(event="step", epoch=epoch + 1, step=self.global_step, loss=last_loss,
                              views_per_s=round(vps, 1), lr=self.optimizer.param_groups[0]["lr"],
                              **{k_: float(torch.as_tensor(v).float().item()) for k_, v in out.logs.items()})
                progress.update(epoch, last_loss, vps, advance=i + 1 - progress.position(epoch, self.steps_per_epoch))
        if self.world_size > 1:
            self._sync_buffers()
        dt = time.perf_counter() - t_epoch
        n = self.steps_per_epoch
        sums = torch.stack([loss_sum] + [logs_sum[k_] for k_ in sorted(logs_sum)])
        if self.world_size > 1:  # the epoch record averages over every rank's part of the batches
            import torch.distributed as dist

            dist.all_reduce(sums)
            sums /= self.world_size
        mean_loss = sums[0].item() / n
        self._check_finite(mean_loss, epoch, n - 1)
        means = {k_: v.item() / n for k_, v in zip(sorted(logs_sum), sums[1:])}
        log.write(event="epoch", epoch=epoch + 1, step=self.global_step, loss=mean_loss,
                  views_per_s=round(seen / dt, 1), seconds=round(dt, 2), **means)
        extra = "".join(f"  {k_} {v:.3f}" for k_, v in means.items())
        progress.epoch_done(epoch, mean_loss, seen / dt, dt, extra)
        last = epoch + 1 == cfg.epochs
        if cfg.knn_every and (epoch + 1) % cfg.knn_every == 0 and self.rank == 0:
            self._knn_monitor(epoch, log, progress)
        if self.rank == 0 and (last or (cfg.checkpoint_every and (epoch + 1) % cfg.checkpoint_every == 0)):
            self._save(epoch + 1, self.global_step)

    def _knn_monitor(self, epoch: int, log: MetricsLog, progress: Optional[TrainProgress] = None) -> None:
        """Weighted kNN of the frozen backbone on the held-out split (lightly's online monitor; paper 004's
        protocol). Features are taken in evaluation mode without random draws, so training is unchanged."""
        from ..eval.knn import KNNEval

        metrics = KNNEval().evaluate(self.backbone, self.data, device=self.device).metrics
        log.write(event="knn", epoch=epoch + 1, step=self.global_step, knn_accuracy=metrics["accuracy"],
                  **({"knn_accuracy_top5": metrics["accuracy_top5"]} if "accuracy_top5" in metrics else {}))
        if progress is not None:
            progress.note(f"epoch {epoch + 1}/{self.cfg.epochs}  kNN accuracy {metrics['accuracy']:.2f}")

    def _compiled_forward(self, batch: ViewBatch) -> ObjectiveOutput:
        """The compiled step; compilation happens on its first call, where a machine that cannot compile (no C++
        compiler for the CPU backend, an unsupported GPU) fails with one line instead of a compiler log."""
        if getattr(self, "_compiled_ok", False):
            return self._forward(batch)
        try:
            out = self._forward(batch)
        except Exception as exc:  # torch._dynamo / inductor raise many types; all mean the same to the user
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise SsltkError(f"torch.compile cannot compile the training step on {self.device} "
                             f"({type(exc).__name__}: {first}); run without --trainer.compile") from None
        self._compiled_ok = True
        return out

    def optimizer_step(self, loss: torch.Tensor) -> None:
        """Backward and one optimizer step: loss scaling for fp16 (a no-op otherwise), then gradient clipping on
        the true gradients."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def _sync_buffers(self) -> None:
        """Rank 0's buffers on every rank. DDP broadcasts them before each forward, but each rank's last forward
        then updates its BatchNorm running statistics from its own part of the batch; whole-dataset passes (sharded
        over ranks) and the checkpoint (rank 0's) must all see the same model."""
        for buf in self.step_module.buffers():
            dist_util.broadcast_tensor(buf)

    def _check_finite(self, value: float, epoch: int, step: int) -> None:
        if not math.isfinite(value):
            ckpts = checkpoint_files(self.run_dir)
            where = (f"the last checkpoint, {ckpts[-1]}, is intact" if ckpts else "no checkpoint was written yet")
            raise SsltkError(f"loss is {value} at epoch {epoch + 1}, step {step + 1}; {where} "
                             "(try a lower --trainer.lr)")

    # end of training ------------------------------------------------------------------------------------------------
    def _finish(self, log: MetricsLog) -> FitResult:
        result = FitResult(self.run_dir, self.backbone, self.objective, rank=self.rank)
        if self.rank == 0:
            save_backbone(self.run_dir / "backbone.safetensors", self.backbone, self.config["backbone"])
        ev = self.eval_cfg
        if ev.linear:
            from ..eval.linear import LinearEval

            # every rank extracts its share of the features; the small classifier then trains on each (same seed,
            # same features, same result) and rank 0 alone writes it
            out_dir = self.run_dir if self.rank == 0 else None
            lin = LinearEval(epochs=ev.epochs, split=ev.split, seed=self.cfg.seed)
            with dist_util.sharded_passes():
                result.metrics["linear"] = lin.evaluate(self.backbone, self.data, device=self.device,
                                                        run_dir=out_dir, name="linear").metrics
                if ev.random_baseline:
                    torch.manual_seed(self.cfg.seed)  # the very initial weights of this run's backbone
                    rand = build(self.config["backbone"]).to(self.device)
                    result.metrics["linear_random"] = lin.evaluate(rand, self.data, device=self.device,
                                                                   run_dir=out_dir, name="linear_random").metrics
        for name, metrics in result.metrics.items():  # evaluation records, for the loggers as for the file
            log.write(event="eval", name=name, epoch=self.cfg.epochs, step=self.global_step,
                      **{k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        dist_util.barrier()
        return result


class HostBatches:
    """A step's images, gathered from where they are held and put on the training device.

    Images held on the device (the default) are indexed there. Images held on the host for a CUDA run are gathered
    into one of two pinned buffers and copied with ``non_blocking=True``, so the copy overlaps the previous step's
    kernels (a copy from pageable memory would block); a buffer is refilled only after the event recorded behind its
    last copy has completed.
    """

    def __init__(self, images: torch.Tensor, device: torch.device, batch: int):
        self.images, self.device = images, device
        self.staged = device.type == "cuda" and images.device.type == "cpu"
        if self.staged:
            self.buffers = [torch.empty((batch, *images.shape[1:]), dtype=images.dtype).pin_memory()
                            for _ in range(2)]
            self.events: List[Optional[Any]] = [None, None]
            self.turn = 0

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        if not self.staged:
            return self.images[idx.to(self.images.device)].to(self.device)
        i, self.turn = self.turn, self.turn ^ 1
        if self.events[i] is not None:
            self.events[i].synchronize()
        buf = self.buffers[i][: len(idx)]
        torch.index_select(self.images, 0, idx, out=buf)
        out = buf.to(self.device, non_blocking=True)
        self.events[i] = torch.cuda.Event()
        self.events[i].record()
        return out


def _make(cls: type, values: Any, section: str) -> Any:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise SsltkError(f"{section} must be a mapping of options, got {values!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SsltkError(f"unknown {section} option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    return cls(**values)


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
def _terminate_as_interrupt():
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


