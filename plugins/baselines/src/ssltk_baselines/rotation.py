"""RotationNet (Gidaris et al. 2018) as in the relational-reasoning benchmark (paper 000, appendix A.5 and B.6).

Two ways of making the views, as the two experiments of the paper:

- ``rotations: all`` (A.5, Table 2; the default): each image is cropped with padding 4 and flipped once
  (``datamanager.py``'s recipe for RotationNet), and that one augmented image is expanded into its 0/90/180/270
  degree rotations (authors' ``methods/rotationnet.py``), so a batch of M images holds 4M views; ``k`` is 4.
- ``rotations: random`` (B.6, Table 10): the batch is augmented ``k`` times with the relational recipe (A.3), and
  each view is rotated by one of the four angles drawn at random, which is its label. The paper says the extra four
  rotations per view were left out to keep the batch small ("coherent self-supervised rotation labels"); it does not
  say how an angle is chosen when K is not a multiple of four (Table 10 has K = 2). A uniform draw per view keeps the
  task the same four-way problem for every K, which the flat row of Table 10 (51.58 at K=2, 51.51 at K=4) suggests.
  The angles come from torch's global generator, which the trainer seeds at every epoch, so a resumed run draws the
  same angles.

Linear(D, 4), cross-entropy, Adam 1e-3.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssltk import DataSpec, Objective, ObjectiveOutput, ViewBatch
from ssltk import Augmentation, ContrastiveAugment, CropFlipAugment, normalize, to_float

MODES = ("all", "random")


def rotate_each(views: Tensor, quarter_turns: Tensor) -> Tensor:
    """Every view rotated by its own multiple of 90 degrees (counter-clockwise, as ``torch.rot90``)."""
    out = views.clone()
    for r in range(1, 4):
        sel = (quarter_turns == r).nonzero().squeeze(1)
        if sel.numel():
            out[sel] = torch.rot90(views[sel], r, dims=(2, 3))
    return out



class RotationAugment(Augmentation):
    """RotationNet's views (Gidaris et al. 2018; paper 000, A.5): view k is rotated by (k mod 4) * 90 degrees, so
    K = 4 gives the 0/90/180/270 expansion and the rotation label of a view is its index mod 4.

    ``base`` is what happens before the rotation: ``none`` (the image as it is), ``crop_flip`` (random crop with
    padding 4 and a flip: the benchmark's recipe for RotationNet, ``datamanager.py``). With ``shared: true`` one
    base augmentation per image is rotated four ways, as the authors' ``_data_augmentation`` does; with
    ``shared: false`` each view has its own."""

    def __init__(self, size: Optional[int] = None, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, base: str = "crop_flip", shared: bool = True):
        super().__init__(size, mean, std)
        if base not in ("none", "crop_flip"):
            raise ValueError(f"unknown rotation base {base!r}; use none or crop_flip")
        self.base, self.shared = base, shared

    def __call__(self, images: Tensor, num_views: int = 4, generator: Optional[torch.Generator] = None) -> Tensor:
        self._check()
        made = 1 if self.shared else num_views
        if self.base == "crop_flip":
            views = CropFlipAugment(self.size, self.mean, self.std)(images, made, generator)
        else:
            x = to_float(images)
            if x.shape[-1] != self.size:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                                    align_corners=False)
            views = normalize(x, self.mean, self.std).repeat(made, 1, 1, 1)
        if self.shared:
            views = views.repeat(num_views, 1, 1, 1)
        b = images.shape[0]
        blocks = [torch.rot90(views[k * b : (k + 1) * b], k % 4, dims=(2, 3)) for k in range(num_views)]
        return torch.cat(blocks, 0)

class RotationObjective(Objective):
    """Predict which of four rotations was applied (Gidaris et al. 2018; paper 000, A.5 and B.6)."""

    def __init__(self, in_dim: int, k: int = 4, rotations: str = "all"):
        super().__init__(in_dim)
        if rotations not in MODES:
            raise ValueError(f"unknown rotations mode {rotations!r}; use all (A.5) or random (B.6)")
        if rotations == "all" and k != 4:
            raise ValueError(f"rotations: all expands each image into its 4 rotations, so k must be 4 (got {k}); "
                             "use rotations: random for K augmented views (paper 000, B.6)")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k, self.rotations = k, rotations
        self.classifier = nn.Linear(in_dim, 4)

    @property
    def num_views(self) -> int:
        return self.k

    def augmentation(self, spec: DataSpec):
        if self.rotations == "random":
            return ContrastiveAugment().configure(spec)
        return RotationAugment(base="crop_flip", shared=True).configure(spec)

    def forward(self, batch: ViewBatch, backbone: nn.Module) -> ObjectiveOutput:
        b, views = batch.batch_size, batch.views
        if self.rotations == "random":
            target = torch.randint(0, 4, (views.shape[0],)).to(views.device)
            views = rotate_each(views, target)
        else:  # the augmentation rotated view k by k x 90 degrees
            target = (torch.arange(batch.num_views, device=views.device) % 4).repeat_interleave(b)
        logits = self.classifier(backbone(views))
        loss = F.cross_entropy(logits, target)
        acc = (logits.detach().argmax(1) == target).float().mean() * 100
        return ObjectiveOutput(loss, {"rot_acc": acc})
