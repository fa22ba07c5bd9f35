"""Face augmentation on the training device, batched: uint8 crops + per-sample parameters -> model input.

DataLoader workers only decode (``data.faces.FaceCrops``): they ship each crop as uint8 ``[3, s, s]``
at its own stored size (``s`` <= the model's size; never float, never upsampled) with 8 float
augmentation parameters drawn from the item's seed (``draw_params``; ``engine.SeededDataset`` seeds
the RNGs per item, so a resumed run draws the same ones); ``data.faces.collate_faces`` puts a batch of
mixed sizes on one ``D`` canvas, each image top-left at its own size, and adds ``s`` to the parameters. The expensive part then runs once per
batch where the model runs (``to_model_input``): brightness / contrast / saturation jitter (torchvision
``ColorJitter``'s formulas in a fixed order), horizontal flip and ImageNet normalisation at the
stored size, then one ``torchvision.ops.roi_align`` over the per-sample crop boxes (random resized
crop + resize to the model's size; adaptive sampling averages when it shrinks). Evaluation resizes (bilinear, antialiased) and
normalises only. Every stage that feeds faces to a ViT (pretrain, finetune, extract, predict) goes
through this module, so features see exactly what fine-tuning saw.

Parameters per sample (``[N, 8]`` or ``[N, 9]`` float32): crop box ``x0, y0, x1, y1`` as fractions of
the crop, ``flip`` (0/1), ``brightness``, ``contrast``, ``saturation`` factors (1 = unchanged), and
optionally the image's side ``s`` in pixels on the canvas (absent: the whole canvas).
"""

from __future__ import annotations

import math
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
N_PARAMS = 8
IDENTITY = (0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0)
_GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


def draw_params(min_scale: float = 0.8, jitter: float = 0.2, ratio: tuple[float, float] = (0.9, 1.1)) -> torch.Tensor:
    """[8] training parameters from torch's global RNG (seeded per item by the engine).

    The crop keeps ``min_scale``..1 of the area at aspect ``ratio`` (clipped to the image), like
    ``RandomResizedCrop`` on a square face crop; jitter factors are uniform in ``[1 - j, 1 + j]``.
    """
    u = torch.rand(8, dtype=torch.float64).tolist()
    area = min_scale + (1.0 - min_scale) * u[0]
    aspect = math.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[1])
    w, h = min(1.0, math.sqrt(area * aspect)), min(1.0, math.sqrt(area / aspect))
    x0, y0 = (1.0 - w) * u[2], (1.0 - h) * u[3]
    b, c, s = (1.0 - jitter + 2.0 * jitter * v for v in u[5:8])
    return torch.tensor([x0, y0, x0 + w, y0 + h, float(u[4] < 0.5), b, c, s], dtype=torch.float32)


def identity_params() -> torch.Tensor:
    """[8] parameters of the evaluation transform (whole crop, no flip, no jitter)."""
    return torch.tensor(IDENTITY, dtype=torch.float32)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] -> [N, 1, H, W] luma."""
    w = torch.tensor(_GRAY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def crop_resize(imgs: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """imgs [N, 3, H, W] float, boxes [N, 4] fractions -> [N, 3, size, size] (one roi_align call)."""
    from torchvision.ops import roi_align

    n, _, h, w = imgs.shape
    scale = torch.tensor([w, h, w, h], device=imgs.device, dtype=imgs.dtype)
    index = torch.arange(n, device=imgs.device, dtype=imgs.dtype).unsqueeze(1)
    rois = torch.cat([index, boxes.to(imgs.dtype) * scale], dim=1)  # [N, 5]: batch index, x0, y0, x1, y1 in pixels
    return roi_align(imgs, rois, (size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def colour_jitter(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """x [N, 3, H, W] in [0, 1], factors [N, 3] (brightness, contrast, saturation) -> jittered x."""
    b, c, s = (factors[:, i].view(-1, 1, 1, 1) for i in range(3))
    x = (x * b).clamp(0, 1)
    mean = _gray(x).mean(dim=(2, 3), keepdim=True)  # [N, 1, 1, 1]
    x = (c * x + (1 - c) * mean).clamp(0, 1)
    return (s * x + (1 - s) * _gray(x)).clamp(0, 1)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] in [0, 1] -> ImageNet-normalised."""
    mean = torch.tensor(MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] normalised -> [N, 3, H, W] in [0, 1] (for previews)."""
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x * std + mean).clamp(0, 1)


@torch.no_grad()
def to_model_input(imgs: torch.Tensor, params: torch.Tensor, size: int, train: bool) -> torch.Tensor:
    """uint8 [N, 3, D, D] + params [N, 8 | 9] (same device) -> normalised float32 [N, 3, size, size].

    With sides (params column 8) of a mixed batch, each group of one side is made from its own
    ``[s, s]`` corner of the canvas, exactly as if it had been batched alone.
    """
    d = imgs.shape[-1]
    sides = params[:, 8] if params.shape[1] > 8 else None
    if sides is None or bool((sides == d).all()):  # one size: the whole canvas at once
        return _model_input(imgs, params, size, train)
    out = torch.empty((imgs.shape[0], 3, size, size), device=imgs.device)
    for s in sides.unique().tolist():
        idx = (sides == s).nonzero().squeeze(1)
        out[idx] = _model_input(imgs[idx, :, : int(s), : int(s)], params[idx], size, train)
    return out


def _model_input(imgs: torch.Tensor, params: torch.Tensor, size: int, train: bool) -> torch.Tensor:
    """uint8 [N, 3, D, D] (all of it image) + params [N, >= 8] -> normalised float32 [N, 3, size, size].

    ``train``: jitter, flip and normalisation at the stored size D (<= size, so the per-pixel work is
    smallest there; the contrast mean is the whole crop's), then one roi_align crops and resizes
    (bilinear weights sum to 1, so it commutes with the per-channel normalisation). Otherwise a plain
    antialiased bilinear resize.
    """
    x = imgs.float() / 255.0
    if not train:  # normalise first: fewer pixels, and the (convex) resize commutes with it
        x = normalize(x)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x
    flip = params[:, 4] > 0.5  # [N]
    x = colour_jitter(x, params[:, 5:8])
    x = normalize(torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x))
    x0, y0, x1, y1 = params[:, :4].unbind(1)
    boxes = torch.stack([torch.where(flip, 1 - x1, x0), y0, torch.where(flip, 1 - x0, x1), y1], dim=1)  # mirrored
    return crop_resize(x, boxes, size)


class BatchAugment:
    """Engine batch hook: (uint8 images, params, labels) on the device -> (model input, labels)."""

    def __init__(self, size: int, train: bool) -> None:
        self.size, self.train = size, train

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        imgs, params, labels = batch
        return to_model_input(imgs, params, self.size, self.train), labels


def device_batches(loader: Iterable, device: torch.device, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Evaluation: yield (model input [B, 3, size, size] on ``device``, labels [B, C]) from a FaceCrops loader."""
    for imgs, params, labels in loader:
        imgs, params = imgs.to(device, non_blocking=True), params.to(device, non_blocking=True)
        yield to_model_input(imgs, params, size, train=False), labels
