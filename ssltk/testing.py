"""The contract suite every objective passes (shared/DESIGN.md, "Tests").

Plugins call these from their own tests, and ssltk's test suite runs them over every registered objective and
backbone (as timm's tests run over every registered model):

- the loss is finite and a scalar;
- gradients reach the backbone;
- with the same seed the loss and gradients are identical on CPU;
- it works with every built-in backbone;
- its hooks (:func:`check_hooks`): declared parameter groups are valid, and after an optimizer step and
  ``after_optimizer_step`` the objective's state dict holds everything the next step depends on, so that a
  checkpoint resumes it exactly.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from .data.recipes import objective_recipe
from .engine.build import build, build_objective, import_class, resolve
from .interfaces import DataSpec, FitContext, Objective, ViewBatch

SMALL_SPEC = DataSpec(image_size=32, channels=3, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), num_classes=4)


def make_batch(objective: Objective, batch_size: int = 4, spec: DataSpec = SMALL_SPEC, seed: int = 0,
               image_size: Optional[int] = None) -> ViewBatch:
    """Random uint8 images through the objective's own augmentation, with labels 0..num_classes-1."""
    g = torch.Generator().manual_seed(seed)
    size = image_size or spec.image_size
    images = torch.randint(0, 256, (batch_size, spec.channels, size, size), generator=g, dtype=torch.uint8)
    labels = torch.arange(batch_size) % spec.num_classes
    groups = objective.view_groups(spec)
    if groups is not None:  # multi-crop: one tensor per group, as the engine batches them
        made = [grp.augmentation(images, int(grp.num_views), g) for grp in groups]
        return ViewBatch(views=made[0], num_views=int(groups[0].num_views), index=torch.arange(batch_size),
                         labels=labels, groups=made, group_views=[int(grp.num_views) for grp in groups])
    k = int(objective.num_views)
    views = objective_recipe(objective, spec)(images, k, g)
    return ViewBatch(views=views, num_views=k, index=torch.arange(batch_size), labels=labels)


def contract_context(backbone: torch.nn.Module, num_train: int = 256, seed: int = 0,
                     spec: DataSpec = SMALL_SPEC) -> FitContext:
    """A FitContext over ``num_train`` seeded random images (labels 0..C-1), as the engine would hand it over."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (num_train, spec.channels, spec.image_size, spec.image_size), generator=g,
                           dtype=torch.uint8)

    def features(model: Optional[torch.nn.Module] = None, gather: bool = True, augment: bool = False,
                 seed: int = 0) -> torch.Tensor:
        from .data.recipes import ContrastiveAugment
        from .eval.features import extract_features

        transform = None
        if augment:  # the engine passes the objective's own recipe; a contract test gets the contrastive one
            recipe, gen = ContrastiveAugment(spec.image_size, spec.mean, spec.std), torch.Generator().manual_seed(seed)
            transform = lambda x: recipe(x, 1, gen)  # noqa: E731
        return extract_features(model or backbone, images, spec.mean, spec.std, torch.device("cpu"),
                                transform=transform)

    return FitContext(num_train=num_train, num_classes=spec.num_classes, seed=seed, device=torch.device("cpu"),
                      epochs=1, steps_per_epoch=1, train_labels=torch.arange(num_train) % spec.num_classes,
                      extract_features=features, data_spec=spec)


def build_pair(objective: str, backbone: str = "conv4", seed: int = 0, objective_args: Optional[dict] = None,
               backbone_args: Optional[dict] = None) -> Tuple[torch.nn.Module, Objective]:
    """Backbone and objective built as the engine builds them, with ``on_fit_start`` already called."""
    torch.manual_seed(seed)
    bb = build(resolve("backbone", backbone, backbone_args))
    obj = build_objective(resolve("objective", objective, objective_args), bb.num_features, SMALL_SPEC.num_classes)
    obj.setup(bb, SMALL_SPEC)
    obj.on_fit_start(contract_context(bb, seed=seed))
    return bb, obj


def loss_and_grads(objective: str, backbone: str = "conv4", seed: int = 0, batch_size: int = 4,
                   objective_args: Optional[dict] = None, spec: DataSpec = SMALL_SPEC):
    bb, obj = build_pair(objective, backbone, seed, objective_args)
    bb.train()
    obj.train()
    batch = make_batch(obj, batch_size, spec, seed)
    torch.manual_seed(seed)
    out = obj(batch, bb)
    if out.loss.requires_grad:  # the random-weights objective returns a constant
        out.loss.backward()
    grads = [p.grad.detach().clone() if p.grad is not None else None for p in bb.parameters()]
    return out, grads


def check_objective(objective: str, backbone: str = "conv4", batch_size: int = 4,
                    objective_args: Optional[dict] = None, spec: DataSpec = SMALL_SPEC) -> None:
    """Assert the contract for one objective on one backbone; raises AssertionError naming what failed."""
    out, grads = loss_and_grads(objective, backbone, 0, batch_size, objective_args, spec)
    assert out.loss.dim() == 0, f"{objective}: loss must be a scalar, got shape {tuple(out.loss.shape)}"
    assert torch.isfinite(out.loss), f"{objective}: loss is not finite ({out.loss.item()})"
    reached = [g for g in grads if g is not None and g.abs().sum() > 0]
    if not import_class(resolve("objective", objective, objective_args)["class_path"]).trains:
        # the random-weights lower bound: by contract it must leave the backbone exactly as initialised
        assert not reached, f"{objective}: declares trains=False but its loss sends gradients to the backbone"
        return
    assert reached, f"{objective}: no gradient reaches the {backbone} backbone"
    out2, grads2 = loss_and_grads(objective, backbone, 0, batch_size, objective_args, spec)
    assert torch.equal(out.loss, out2.loss), f"{objective}: loss differs between two runs with the same seed"
    for g1, g2 in zip(grads, grads2):
        assert (g1 is None) == (g2 is None) and (g1 is None or torch.equal(g1, g2)), \
            f"{objective}: gradients differ between two runs with the same seed"


def check_hooks(objective: str, backbone: str = "conv4", batch_size: int = 4,
                objective_args: Optional[dict] = None, spec: DataSpec = SMALL_SPEC) -> None:
    """Assert the step-hook contract: valid parameter groups; after one optimizer step and the hook, a fresh pair
    loaded from the state dicts computes the same loss as the original (state a hook keeps is checkpointed)."""
    from .engine.optim import build_optimizer, collect_groups

    bb, obj = build_pair(objective, backbone, 0, objective_args)
    trainable = [p for m in (bb, obj) for p in m.parameters() if p.requires_grad]
    groups = collect_groups(obj.param_groups(bb), trainable, objective)
    named = sum(len(g["params"]) for g in groups)
    assert named == len({id(p) for p in trainable}), f"{objective}: parameter groups miss or repeat parameters"
    opt = build_optimizer("sgd", groups, lr=0.05, weight_decay=0.0, momentum=0.9)
    bb.train()
    obj.train()
    obj.on_step_start(0, 0.5)
    out = obj(make_batch(obj, batch_size, spec, seed=1), bb)
    if out.loss.requires_grad:
        opt.zero_grad()
        out.loss.backward()
        obj.before_optimizer_step(bb, 0)
        opt.step()
    obj.after_optimizer_step(bb, 1, 0.5)

    bb2, obj2 = build_pair(objective, backbone, 7, objective_args)  # other initial weights, then the saved state
    bb2.load_state_dict(bb.state_dict())
    obj2.load_state_dict(obj.state_dict())
    batch = make_batch(obj, batch_size, spec, seed=2)
    losses = []
    for b, o in ((bb, obj), (bb2, obj2)):
        torch.manual_seed(3)
        o.on_step_start(1, 0.5)
        losses.append(o(batch, b).loss.detach())
    assert torch.equal(losses[0], losses[1]), \
        f"{objective}: state kept outside the state dict changes the loss after a restore ({losses[0]} vs {losses[1]})"
