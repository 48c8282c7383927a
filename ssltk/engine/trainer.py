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
import datetime as _dt
import math
import time
from pathlib import Path
from typing import Any, Dict, List

import torch
from torch import nn

from .. import distributed as dist_util
from ..errors import Interrupted, SsltkError, warn
from ..data.recipes import objective_recipe
from ..interfaces import FitContext, ObjectiveOutput, ViewBatch, ViewGroup
from .build import build, build_objective, import_class, registry_name, registry_source
from .checkpoint import save_backbone
from .precision import amp_enabled, autocast
from .optim import LRSchedule, WeightDecaySchedule, build_optimizer, collect_groups
from .distributed import convert_sync_batchnorm, init_process_group, local_device, wrap_ddp
from ..loggers import create_loggers
from .preflight import check_backbone_input
from .heartbeat import heartbeat
from .progress import EpochMeter, TrainProgress
from .step import FitResult, TrainStep, epoch_seed
from .time_limit import TimeLimit
from .batches import TrainFeatures, ViewSource, rank_seed
from .config import EvalConfig, TrainerConfig, from_mapping
from .monitors import KNNMonitor, ProbeMonitor
from .process import deterministic_algorithms, resolve_device, terminate_as_interrupt
from .metrics import MetricsLog, truncate_metrics
from .rundir import RunLock, checkpoint_files, claim_run_dir, restore_latest, save_epoch_checkpoint, write_yaml
from .batches import HostBatches  # noqa: F401  (here before 0.2: code written against it keeps working)
from .rundir import read_run_config  # noqa: F401  (likewise)


class Trainer:
    """Runs one fit from a resolved config (``objective``, ``backbone``, ``data`` specs, ``trainer``, ``evaluate``)."""

    def __init__(self, config: Dict[str, Any], resume: bool = False, overwrite: bool = False):
        self.config = config
        self.cfg = from_mapping(TrainerConfig, config.get("trainer"), "trainer")
        self.eval_cfg = from_mapping(EvalConfig, config.get("evaluate"), "evaluate")
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
        self.run_dir = Path(dist_util.broadcast_object(str(self._run_dir())))
        self.global_step = 0

    # setup ----------------------------------------------------------------------------------------------------------
    def _run_dir(self) -> Path:
        if self.cfg.run_dir:
            return Path(self.cfg.run_dir)
        name = registry_name("objective", self.config["objective"]["class_path"])
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return Path("runs") / f"{name}-{stamp}"

    def _build(self) -> None:
        """Data, model, views and optimizer, in that order; every attribute of a fit is set here or in __init__."""
        torch.manual_seed(self.cfg.seed)
        self._build_data()
        self._check_before_training()
        # reseed after loading: decoding image folders through DataLoader workers draws from the global generator,
        # and the initial weights must be those of the seed alone (the random-weights baseline rebuilds them)
        torch.manual_seed(self.cfg.seed)
        self._build_model()
        self._build_views()
        self._build_optimizer()
        # monitors read the backbone with generators of their own: training is the same with or without them
        self.step_monitors = [ProbeMonitor(self.images, self.labels, self.spec, self.device, self.cfg.probe_size,
                                           self.cfg.seed, self.cfg.probe_every)] if self.cfg.probe_every > 0 else []
        self.epoch_monitors = [KNNMonitor(self.data, self.device, self.cfg.knn_every, self.cfg.epochs,
                                         self.cfg.knn_k, self.cfg.knn_sigma)] \
            if self.cfg.knn_every else []

    def _build_data(self) -> None:
        data_name = registry_name("dataset", self.config["data"]["class_path"])
        with heartbeat(f"loading {data_name}", enabled=self.cfg.progress and self.rank == 0):
            self.data = build(self.config["data"])
            self.train_set = self.data.train
            self.spec = self.data.spec()

    def _build_model(self) -> None:
        cfg = self.cfg
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
        self._compiled_ok = False

    def _build_views(self) -> None:
        cfg = self.cfg
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
        low = int(getattr(self.backbone, "min_size", 1) or 1)
        for i, g in enumerate(groups):
            g.augmentation.compiled = bool(cfg.compile_augment)
            side = getattr(g.augmentation, "size", None)
            if side is not None and int(side) < low:
                raise SsltkError(f"{type(self.objective).__name__}'s view group {i} makes {side} px views, and the "
                                 f"backbone needs at least {low} px (set the objective's local views off, e.g. "
                                 "--objective.num_local 0, or choose a smaller backbone)")
        if cfg.batch_size % self.world_size:
            raise SsltkError(f"batch size {cfg.batch_size} (the global batch) does not split over "
                             f"{self.world_size} processes; use a multiple of {self.world_size}")
        self.views = ViewSource(self.train_set, groups, self.spec.image_size, cfg, self.device, self.rank,
                                self.world_size)
        self.images = self.views.images
        self.labels = self.train_set.labels.to(self.device)
        self.steps_per_epoch = len(self.train_set) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise SsltkError(f"batch size {cfg.batch_size} is larger than the {len(self.train_set)} training images")

    def _build_optimizer(self) -> None:
        cfg = self.cfg
        self.params = [p for p in self.step_module.parameters() if p.requires_grad]
        groups = collect_groups(self.objective.param_groups(self.backbone), self.params,
                                type(self.objective).__name__)
        self.optimizer = build_optimizer(cfg.optimizer, groups, cfg.lr, cfg.weight_decay, cfg.momentum,
                                         cfg.optimizer_args, fused=self.cuda)
        self.schedule = LRSchedule(cfg.schedule, cfg.epochs, self.steps_per_epoch, cfg.warmup_epochs,
                                   cfg.milestones)
        self.decay_schedule = None
        if cfg.weight_decay_end is not None:
            self.decay_schedule = WeightDecaySchedule(cfg.weight_decay, cfg.weight_decay_end,
                                                      cfg.epochs * self.steps_per_epoch)
            self.decay_schedule.mark(self.optimizer)
        self.amp_dtype = torch.float16 if cfg.amp_dtype == "fp16" else torch.bfloat16
        self.amp = amp_enabled(cfg.amp, self.device)
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp and cfg.amp_dtype == "fp16")

    @property
    def run_linear(self) -> bool:
        """Whether fit ends with the linear evaluation: asked for, and the data has labels to score."""
        return bool(self.eval_cfg.linear and self.data.labelled)

    def _check_before_training(self) -> None:
        """What would fail or mislead only after training, said before training starts; it changes nothing."""
        if self.eval_cfg.linear and not self.data.labelled:
            warn("the data has no labels (an unlabelled folder): the linear evaluation at the end of fit is skipped")
        if self.run_linear:
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
        """What an objective's whole-dataset passes (DeepCluster's clustering, SeLa's labels) may use of the fit."""
        def reset_optimizer_state(params) -> None:
            for p in params:
                self.optimizer.state.pop(p, None)

        features = TrainFeatures(self.images, self.backbone, self.groups[0].augmentation, self.spec, self.device,
                                 self.world_size, self.cfg.amp)
        return FitContext(num_train=len(self.labels), num_classes=self.spec.num_classes, seed=self.cfg.seed,
                          device=self.device, epochs=self.cfg.epochs, steps_per_epoch=self.steps_per_epoch,
                          train_labels=self.labels, extract_features=features, data_spec=self.spec,
                          rank=self.rank, world_size=self.world_size, reset_optimizer_state=reset_optimizer_state)

    # checkpoints ----------------------------------------------------------------------------------------------------
    def _modules(self) -> Dict[str, nn.Module]:
        return {"backbone": self.backbone, "objective": self.objective}

    def _ckpt_path(self, epoch: int) -> Path:
        return self.run_dir / "checkpoints" / f"epoch-{epoch:04d}.safetensors"

    def _save(self, epoch: int, step: int) -> Path:
        meta = {"epoch": epoch, "global_step": step, "seed": self.cfg.seed}
        if self.scaler.is_enabled():
            meta["grad_scaler"] = self.scaler.state_dict()
        return save_epoch_checkpoint(self.run_dir, self._ckpt_path(epoch), self._modules(), self.optimizer, meta,
                                     self.cfg.keep_checkpoints)

    def _restore(self) -> int:
        meta = restore_latest(self.run_dir, self._modules(), self.optimizer)
        if meta is None:
            return 0
        if self.scaler.is_enabled() and meta.get("grad_scaler"):
            self.scaler.load_state_dict(meta["grad_scaler"])
        self.global_step = int(meta["global_step"])
        return int(meta["epoch"])

    # loop -----------------------------------------------------------------------------------------------------------
    def fit(self) -> FitResult:
        # on the CPU every kernel runs its deterministic variant, so a resumed run equals an uninterrupted one even
        # for a plugin's own indexing (a gather's backward otherwise sums in thread order)
        with deterministic_algorithms(self.device.type == "cpu"), terminate_as_interrupt():
            try:
                return self._fit()
            finally:
                if self.group.initialised_here:
                    import torch.distributed as dist

                    dist.destroy_process_group()

    def _fit(self) -> FitResult:
        self._build()  # errors in the data or the components leave every directory untouched
        with RunLock(self.run_dir) if self.rank == 0 else contextlib.nullcontext():
            try:
                return self._owned_fit()
            except KeyboardInterrupt as exc:
                raise Interrupted(self.run_dir, checkpoint_files(self.run_dir), str(exc) or "interrupted") from None

    def _owned_fit(self) -> FitResult:
        stored = claim_run_dir(self.run_dir, self.config, self.resume, self.overwrite, self.rank,
                               dist_util.broadcast_object)
        if self.rank == 0 and not self.resume:
            write_yaml(self.run_dir / "config.yaml", self.config)
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
        seed = epoch_seed(self.cfg.seed, epoch)
        torch.manual_seed(seed)
        gen = torch.Generator(device=self.device).manual_seed(rank_seed(seed, self.rank))
        order = torch.Generator().manual_seed(seed)
        self.step_module.train()
        self.objective.on_epoch_start(ctx, epoch)
        weights = self.objective.sampling_weights()
        if weights is None:
            perm = self.objective.epoch_order(torch.randperm(len(self.labels), generator=order), epoch, seed)
        else:
            perm = torch.multinomial(weights.detach().double().cpu(), len(self.labels), replacement=True,
                                     generator=order)
        steps = self.views.epoch(perm, self.steps_per_epoch, seed, gen)
        meter = EpochMeter(self.device)
        for i, (idx, made) in enumerate(steps):
            out, loss = self._step(idx, made)
            meter.add(loss, out.logs, sum(v.shape[0] for v in made))
            if self.rank == 0:
                for monitor in self.step_monitors:
                    monitor.after_step(self.backbone, epoch, self.global_step, log)
            self._report_step(epoch, i, loss, out, meter, log, progress)
        self._end_epoch(epoch, meter, log, progress)

    def _step(self, idx: torch.Tensor, made: List[torch.Tensor]):
        """One optimizer step on one batch of views: forward under autocast, backward, schedule, hooks."""
        several = len(self.groups) > 1
        labels = self.labels[idx.to(self.device)] if getattr(self.objective, "uses_labels", False) else None
        batch = ViewBatch(views=made[0], num_views=int(self.groups[0].num_views), index=idx, labels=labels,
                          groups=made if several else None,
                          group_views=[g.num_views for g in self.groups] if several else None)
        total_steps = self.cfg.epochs * self.steps_per_epoch
        self.objective.on_step_start(self.global_step, self.global_step / total_steps)
        with autocast(self.device, self.amp, self.amp_dtype):
            out = self._compiled_forward(batch) if self.cfg.compile else self._forward(batch)
        loss = out.loss.float()
        self.schedule.apply(self.optimizer, self.global_step)
        if self.decay_schedule is not None:
            self.decay_schedule.apply(self.optimizer, self.global_step)
        self.optimizer_step(loss)
        self.global_step += 1
        self.objective.after_optimizer_step(self.backbone, self.global_step, self.global_step / total_steps)
        return out, loss

    def _report_step(self, epoch: int, i: int, loss: torch.Tensor, out: ObjectiveOutput, meter: "EpochMeter",
                     log: MetricsLog, progress: TrainProgress) -> None:
        """A step record every ``log_every`` steps and the progress bar (or line) when due; the loss is read from the
        device only then, since reading it every step would synchronise a GPU each step."""
        cfg = self.cfg
        log_step = bool(cfg.log_every) and self.global_step % cfg.log_every == 0
        refresh = progress.due(time.perf_counter() - meter.t_mark)
        if not (log_step or refresh or i + 1 == self.steps_per_epoch):
            return
        last_loss = loss.item()
        self._check_finite(last_loss, epoch, i)
        vps = meter.rate_since_mark()
        if log_step:
            log.write(event="step", epoch=epoch + 1, step=self.global_step, loss=last_loss,
                      views_per_s=round(vps, 1), lr=self.optimizer.param_groups[0]["lr"],
                      **{k_: float(torch.as_tensor(v).float().item()) for k_, v in out.logs.items()})
        progress.update(epoch, last_loss, vps, advance=i + 1 - progress.position(epoch, self.steps_per_epoch))

    def _end_epoch(self, epoch: int, meter: "EpochMeter", log: MetricsLog, progress: TrainProgress) -> None:
        """The epoch record (averaged over every rank's part of the batches), the monitors and the checkpoint."""
        if self.world_size > 1:
            self._sync_buffers()
        dt = time.perf_counter() - meter.t_epoch
        n = self.steps_per_epoch
        keys = sorted(meter.logs_sum)
        sums = torch.stack([meter.loss_sum] + [meter.logs_sum[k_] for k_ in keys])
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(sums)
            sums /= self.world_size
        mean_loss = sums[0].item() / n
        self._check_finite(mean_loss, epoch, n - 1)
        means = {k_: v.item() / n for k_, v in zip(keys, sums[1:])}
        log.write(event="epoch", epoch=epoch + 1, step=self.global_step, loss=mean_loss,
                  views_per_s=round(meter.seen / dt, 1), seconds=round(dt, 2), **means)
        extra = "".join(f"  {k_} {v:.3f}" for k_, v in means.items())
        progress.epoch_done(epoch, mean_loss, meter.seen / dt, dt, extra)
        if self.rank == 0:
            for monitor in self.epoch_monitors:
                monitor.after_epoch(self.backbone, epoch, self.global_step, log, progress)
        cfg = self.cfg
        last = epoch + 1 == cfg.epochs
        if self.rank == 0 and (last or (cfg.checkpoint_every and (epoch + 1) % cfg.checkpoint_every == 0)):
            self._save(epoch + 1, self.global_step)

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
        self.objective.before_optimizer_step(self.backbone, self.global_step)
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
        if self.run_linear:
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
