"""``ssltk interpret --run RUN_DIR``: the mask-interpretation procedure of paper 003, section 2.2 and eq. 4.

For a batch of images x and every latent row i, mask logits phi_i (H x W, one per image and row) are optimised to
minimise the upper bound of eq. 4 on I(X, Z_i):

    E_{p_X p_Z_i} || z~_i - g_theta(sigmoid(phi_i) * x)_i ||^2

where z~_i is row i of the encoding of *another* image; the expectation over the other images of the batch is taken
exactly (their leave-one-out mean is the target), so the optimisation has no sampling noise. Pixels a row depends
on are the ones its mask must remove to make the row uninformative about x. All S rows and all images are optimised together in one batched forward pass per
iteration. Writes ``interpret/masks.safetensors`` (images, sigmoid masks) and ``interpret/masks.png``: one row per
image, the image followed by its S masks (the paper's Figure 4).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import torch

from ssltk.api import load_backbone
from ssltk import (EvalTransform, build, command_parser, parse_command, pixels, read_run_config, resolve_device,
                   save_safetensors, writing_into)
from ssltk.errors import SsltkError


def optimise_masks(backbone: torch.nn.Module, x: torch.Tensor, entities: int, iterations: int = 20000,
                   lr: float = 0.05, log_every: int = 0) -> Dict[str, torch.Tensor]:
    """Masks sigmoid(phi) (B, S, H, W) for normalised images x (B, C, H, W) with a frozen backbone (eval mode)."""
    backbone.eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    b, _, h, w = x.shape
    if b < 2:
        raise SsltkError("mask interpretation needs at least 2 images (z~ comes from other images)")
    with torch.no_grad():
        z = backbone(x).view(b, entities, -1)  # (B, S, D)
    phi = torch.zeros(b, entities, h, w, device=x.device, requires_grad=True)
    opt = torch.optim.Adam([phi], lr=lr)
    rows = torch.arange(entities, device=x.device)
    target = (z.sum(0, keepdim=True) - z) / (b - 1)  # leave-one-out mean of the other images' rows
    history = []
    for it in range(iterations):
        masked = torch.sigmoid(phi).unsqueeze(2) * x.unsqueeze(1)  # (B, S, C, H, W)
        zm = backbone(masked.flatten(0, 1)).view(b, entities, entities, -1)  # image n, mask i -> all rows
        zi = zm[:, rows, rows]  # row i of the encoding of image n masked by its i-th mask: (B, S, D)
        # E over z~ from the other images, taken exactly over the batch: sum_m!=n ||z_m,i - y||^2 equals
        # (B-1) ||mean_m!=n z_m,i - y||^2 plus a term free of the masks, so the leave-one-out mean is the target
        loss = (target - zi).pow(2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log_every and (it + 1) % log_every == 0:
            history.append(loss.item())
            print(f"iteration {it + 1}/{iterations}  bound {loss.item():.4f}", flush=True)
    return {"masks": torch.sigmoid(phi).detach(), "loss_history": torch.tensor(history)}


def save_grid(path: Path, images: torch.Tensor, masks: torch.Tensor, max_rows: int = 16) -> None:
    """PNG: each row an image (uint8, B x C x H x W) then its S masks in gray, 2 px padding."""
    from torchvision.utils import save_image

    imgs = images[:max_rows].float() / 255.0
    m = masks[:max_rows].cpu().unsqueeze(2).expand(-1, -1, imgs.shape[1], -1, -1)  # (R, S, C, H, W)
    tiles = torch.cat([imgs.unsqueeze(1), m], dim=1)  # (R, 1+S, C, H, W)
    path.parent.mkdir(parents=True, exist_ok=True)
    up = torch.nn.functional.interpolate(tiles.flatten(0, 1), scale_factor=2, mode="nearest")
    save_image(up, str(path), nrow=tiles.shape[1], padding=2, pad_value=1.0)


def interpret(run: Path, batch: int = 64, iterations: int = 20000, lr: float = 0.05, seed: int = 0,
              device: str = "auto", out: Optional[Path] = None, log_every: int = 1000) -> Dict[str, Path]:
    cfg = read_run_config(run)
    out = out or run / "interpret"
    with writing_into(run, out, purpose="write the masks of"):  # refused while the run trains: its weights are moving
        return _interpret(run, cfg, batch, iterations, lr, seed, device, out, log_every)


def _interpret(run: Path, cfg: dict, batch: int, iterations: int, lr: float, seed: int, device: str, out: Path,
               log_every: int) -> Dict[str, Path]:
    init = cfg["objective"].get("init_args") or {}
    entities = int(init.get("entities", 8))
    dev = resolve_device(device)
    backbone = load_backbone(run / "backbone.safetensors", cfg["backbone"]).to(dev)
    data = build(cfg["data"])
    images = data.train.images
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:batch]
    raw = pixels(images, pick)
    x = EvalTransform(data.mean, data.std)(raw.to(dev))
    result = optimise_masks(backbone, x, entities, iterations, lr, log_every)
    out.mkdir(parents=True, exist_ok=True)
    save_safetensors({"images": raw, "masks": result["masks"], "loss_history": result["loss_history"]},
                 {"iterations": iterations, "lr": lr, "seed": seed, "entities": entities},
                 out / "masks.safetensors")
    save_grid(out / "masks.png", raw, result["masks"])
    return {"png": out / "masks.png", "masks": out / "masks.safetensors"}


def main(argv) -> int:
    """Mask interpretation of a structured-mi run (paper 003, eq. 4): ssltk interpret --run RUN_DIR."""
    p = command_parser("ssltk interpret", __doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a run directory written by ssltk fit")
    p.add_argument("--batch", type=int, default=64, help="images to interpret (paper: 64)")
    p.add_argument("--iterations", type=int, default=20000, help="optimisation steps (paper: 20000)")
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate of the mask logits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/interpret)")
    p.add_argument("--log_every", type=int, default=1000)
    a = parse_command(p, argv)
    paths = interpret(Path(a.run), a.batch, a.iterations, a.lr, a.seed, a.device,
                      Path(a.out) if a.out else None, a.log_every)
    print(f"masks: {paths['png']}\nraw masks: {paths['masks']}")
    return 0
