"""The interfaces the engine knows: Backbone, Head, Objective and Evaluator (see shared/DESIGN.md), and the
Logger that a run's records go to.

The engine never names a method. It builds a Backbone, builds an Objective with ``in_dim=backbone.num_features``,
asks the Objective how many views it wants and how to augment them, and calls it on each batch of views.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

import torch
from torch import Tensor, nn


class Backbone(nn.Module):
    """An encoder f_theta mapping images (B, C, H, W) to pooled representations (B, num_features)."""

    num_features: int
    #: the smallest square input, in pixels, this backbone takes: its total stride, below which its last feature map
    #: holds padding rather than image (or a pooling layer fails); the trainer refuses smaller data before training
    min_size: int = 1

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map before pooling (B, C', H', W'), for methods that need spatial features."""
        raise NotImplementedError(f"{type(self).__name__} does not expose a feature map")

    def probe_layers(self) -> Dict[str, nn.Module]:
        """Intermediate layers, by name, whose outputs linear probes can read (paper 004, Table 2: conv1-conv5).

        Backbones override this with their natural stages; any module path of ``named_modules()`` also works."""
        return {}

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - every backbone overrides it
        raise NotImplementedError

    def load_weights(self, path: Optional[str]) -> None:
        """Start from a local weights file (``--backbone.weights FILE``: safetensors or a weights-only PyTorch
        checkpoint; nothing downloads) or from kept weights by name (``--backbone.weights
        rr-table2/supervised/conv4-cifar10``, :mod:`ssltk.zoo`). Keys and shapes must match; a mismatch is one
        readable error."""
        if path is None:
            return
        from .engine.checkpoint import load_state_strict, read_weights
        from .zoo import resolve_weights

        load_state_strict(self, self.adapt_state_dict(read_weights(resolve_weights(path))), str(path))

    def adapt_state_dict(self, state: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Rename a foreign checkpoint's keys to this backbone's (the timm adapter maps timm's own); identity here."""
        return state


class Head(nn.Module):
    """A small network on top of representations (relation module, projection MLP, classifier)."""

    in_dim: int
    out_dim: int


@dataclass
class ViewBatch:
    """K augmented views of a mini-batch of B images, stored view-major.

    ``views[k * B + n]`` is view k of image n, i.e. [view_1 batch; view_2 batch; ...; view_K batch], the layout
    of the relational-reasoning code (shared/reference/implementation-notes.md).
    ``labels`` holds class ids, or -1 where the label is hidden from the objective.
    """

    views: Tensor
    num_views: int
    index: Tensor
    labels: Optional[Tensor] = None
    #: for an objective with several view groups (:meth:`Objective.view_groups`): each group's views, view-major
    #: within the group, in the order the groups were declared; ``views``/``num_views`` are then the first group's
    groups: Optional[List[Tensor]] = None
    group_views: Optional[List[int]] = None

    @property
    def batch_size(self) -> int:
        return self.views.shape[0] // self.num_views

    def view(self, k: int) -> Tensor:
        b = self.batch_size
        return self.views[k * b : (k + 1) * b]

    def group(self, g: int) -> Tensor:
        """All views of group ``g`` ((k_g * B, C, S_g, S_g)); group 0 is ``views`` for single-size objectives."""
        return self.views if g == 0 and self.groups is None else self.groups[g]

    @property
    def num_groups(self) -> int:
        return 1 if self.groups is None else len(self.groups)

    def same_size_views(self, groups: Optional[int] = None) -> Tensor:
        """The views of the first ``groups`` groups (all by default) as one tensor, group after group: the two global
        views of the BYOL-family recipes, one group each. The groups must share their view size."""
        if self.groups is None:
            return self.views
        return torch.cat(self.groups[:groups])


@dataclass
class ViewGroup:
    """``num_views`` views of each image made by ``augmentation`` (a configured recipe, whose ``size`` sets the
    group's view size): a multi-crop objective declares several (SwAV and DINO: 2 x 224 + 6 x 96 on ImageNet)."""

    num_views: int
    augmentation: Any


@dataclass
class ObjectiveOutput:
    """The loss to minimise and scalars to log (tensors are detached and averaged by the trainer)."""

    loss: Tensor
    logs: Dict[str, Any] = field(default_factory=dict)


@dataclass
class DataSpec:
    """What an objective needs to know about the data to pick its augmentation."""

    image_size: int
    channels: int
    mean: tuple
    std: tuple
    num_classes: int


@dataclass
class FitContext:
    """Handed to objectives at fit and epoch start.

    ``extract_features(backbone)`` runs the backbone over the whole (un-augmented, normalised) training set in
    evaluation mode and returns (N, D) features in dataset order: the engine's hook for whole-dataset passes
    (DeepCluster's k-means, SeLa's label optimisation). Under torchrun the pass is split over the ranks and every
    rank receives all N rows; ``extract_features(gather=False)`` returns only this rank's contiguous rows
    (``ssltk.distributed.shard_bounds(N)``), for computations that are themselves distributed (SeLa's Sinkhorn).
    ``extract_features(augment=True, seed=S)`` passes one view of every image through the objective's own
    augmentation instead, drawn from ``S`` and each image's place in the dataset, so that the views are the same
    however the pass is split between processes (SeLa's label step over augmented images).

    ``reset_optimizer_state(params)`` drops the optimizer's running state (Adam's moments, SGD's momentum) for
    parameters an objective has just re-initialised, so that their next step starts afresh as a new optimizer's
    would (DeepCluster's classifier). It is ``None`` where no optimizer exists (contract tests).
    """

    num_train: int
    num_classes: int
    seed: int
    device: torch.device
    epochs: int
    steps_per_epoch: int
    train_labels: Tensor
    extract_features: Callable[..., Tensor]
    data_spec: Optional[DataSpec] = None
    rank: int = 0
    world_size: int = 1
    reset_optimizer_state: Optional[Callable[[Iterable[Tensor]], None]] = None


class Objective(nn.Module):
    """A self-supervised (or supervised) training objective; it owns its heads.

    Subclasses take ``in_dim`` (the backbone's feature size, linked automatically by the CLI) as their first
    constructor argument; the remaining arguments are the method's hyper-parameters with the paper's defaults.
    An objective whose constructor has a ``num_classes`` argument left at ``None`` receives the dataset's number of
    classes from the engine (classifier heads, DeepCluster's k = 10 x classes).
    """

    #: whether the objective reads ``ViewBatch.labels`` (supervised and semi-supervised methods)
    uses_labels: bool = False
    #: False for objectives that leave the backbone untouched (the random-weights lower bound): no training steps run
    trains: bool = True
    #: the method's own optimisation defaults (``TrainerConfig`` fields, e.g. SGD 0.1 with a step schedule for the
    #: supervised baseline); values the user gives on the command line, in a config or in Python take precedence
    trainer_defaults: Dict[str, Any] = {}

    def __init__(self, in_dim: int):
        super().__init__()
        self.in_dim = in_dim

    @property
    def num_views(self) -> int:
        return 2

    def augmentation(self, spec: DataSpec) -> Optional[Callable[..., Tensor]]:
        """The batched augmentation that makes each view, or None (the default) for the engine's default recipe,
        the relational/SimCLR one (:func:`ssltk.data.recipes.objective_recipe` resolves it)."""
        return None

    def view_groups(self, spec: DataSpec) -> Optional[List["ViewGroup"]]:
        """Groups of views of different sizes or recipes (multi-crop), or None, the default: one group of
        :attr:`num_views` views made by :meth:`augmentation`. With groups, the batch's ``groups`` holds one tensor
        per group and ``views``/``num_views`` the first group's."""
        return None

    def forward(self, batch: ViewBatch, backbone: Backbone) -> ObjectiveOutput:  # pragma: no cover
        raise NotImplementedError

    def setup(self, backbone: "Backbone", spec: DataSpec) -> None:
        """Called once the backbone is built and on its device, before the optimizer exists: the place to create
        heads whose shape depends on the backbone's inner layers (Deep InfoMax's local critic)."""

    def on_fit_start(self, ctx: FitContext) -> None:
        """Called once before the first epoch, also when resuming: then before the checkpoint is restored, so that
        state created here (buffers sized from the data) is overwritten by the checkpoint's."""

    def on_epoch_start(self, ctx: FitContext, epoch: int) -> None:
        """Called at the start of every epoch (0-based), after the backbone is in training mode."""

    def param_groups(self, backbone: "Backbone") -> Optional[List[Dict[str, Any]]]:
        """Optimizer parameter groups over the backbone's and the objective's trainable parameters, or None (the
        default) for one group. Each group is a dict with ``params`` and any optimizer option (``weight_decay``), plus
        ``lr_scale``, a multiple of ``--trainer.lr`` (a predictor trained faster). Parameters no group names form a
        default group. ``ssltk.no_decay_groups(...)`` gives the usual split without weight decay on
        normalisation layers and biases. Called once, after :meth:`setup`."""
        return None

    def on_step_start(self, step: int, progress: float) -> None:
        """Called before every training step's forward with ``step``, the number of steps taken so far (0-based
        index of this one), and ``progress`` = step / total steps: the place for a schedule of the objective's own
        that its forward reads (DINO's teacher-temperature warmup, a layer frozen for the first epoch). A schedule
        must be a function of these arguments, which a resumed run recomputes, or state saved in the objective.
        Write values the forward reads into buffers in place (``buf.fill_(v)``) rather than into Python
        attributes, so that a compiled step is not re-specialised at every step."""

    def before_optimizer_step(self, backbone: "Backbone", step: int) -> None:
        """Called after the backward pass (and gradient clipping), before the optimizer step, ``step`` as in
        :meth:`on_step_start`: the place to drop gradients (``p.grad = None``) of parameters held fixed for a while,
        as DINO's last layer and SwAV's prototypes are during the first epoch. Under torchrun the gradients are
        already averaged over the ranks here."""

    def after_optimizer_step(self, backbone: "Backbone", step: int, progress: float) -> None:
        """Called after every optimizer step with the online backbone, ``step`` the number of steps taken so far
        (1-based) and ``progress`` the fraction of the run's steps done (step / total steps, 1.0 after the last): a
        momentum encoder's update (``ssltk.MomentumEncoder``: BYOL, MoCo, DINO) or a per-step schedule of the
        objective's own. State kept here must live in the objective's parameters, buffers or submodules, which
        checkpoints save, so that a resumed run continues it exactly."""

    def epoch_order(self, perm: Tensor, epoch: int, seed: int) -> Tensor:
        """The order in which this epoch's images are batched, given the engine's seeded permutation ``perm`` (the
        identity by default). An objective that needs certain images in the same mini-batch (the semi-supervised
        relational variant's same-class partners) rearranges it here; the result must be a permutation of ``perm``
        and depend only on its arguments, so that a resumed epoch batches the same images. Called after
        :meth:`on_epoch_start` when :meth:`sampling_weights` is None."""
        return perm

    def sampling_weights(self) -> Optional[Tensor]:
        """Per-training-image weights for this epoch's batches, drawn with replacement (DeepCluster's uniform
        sampling over clusters); None, the default, keeps the plain seeded permutation. Read after
        :meth:`on_epoch_start`."""
        return None


@dataclass
class EvalResult:
    """Numbers an evaluator measured, and the files (plots, tables) it wrote."""

    metrics: Dict[str, float]
    artifacts: Dict[str, Path] = field(default_factory=dict)


class Evaluator:
    """Measures a trained backbone on labelled data; configured through its constructor arguments."""

    def evaluate(
        self, backbone: Backbone, data: Any, *, device: torch.device, run_dir: Optional[Path] = None
    ) -> EvalResult:  # pragma: no cover - interface
        raise NotImplementedError


class Logger:
    """Base class of registered loggers. The constructor checks that the logger can run (its package is installed)
    before any training time is spent; :meth:`start` opens it in the run directory."""

    def start(self, run_dir: Path, config: Dict[str, Any], step: int) -> None:
        """Called once before training, with the global ``step`` the run starts from (0, or a resume's)."""

    def log(self, record: Dict[str, Any]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Called once when the run ends, also when it fails."""
