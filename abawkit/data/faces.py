"""Face-crop datasets and loaders for MAE pre-training, fine-tuning and prediction.

Reads image files only: any folder of images (``image_folder``) or the ``crop`` column of the prep
frame table (``prep_rows``). Images are decoded and resized in DataLoader workers; training
augmentation is mild and face-safe (random resized crop keeping most of the face, horizontal flip,
colour jitter). Tensors are ImageNet-normalised ``[3, S, S]`` float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from abawkit.errors import AbawError
from abawkit.labels import task

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def face_transform(img_size: int, train: bool, min_scale: float = 0.8, jitter: float = 0.2) -> v2.Compose:
    """PIL image -> normalised tensor [3, S, S]; random crop/flip/jitter only when ``train``."""
    if train:
        geo = [v2.RandomResizedCrop(img_size, scale=(min_scale, 1.0), ratio=(0.9, 1.1), antialias=True),
               v2.RandomHorizontalFlip()]
        colour = [v2.ColorJitter(jitter, jitter, jitter)] if jitter > 0 else []
    else:
        geo, colour = [v2.Resize((img_size, img_size), antialias=True)], []
    return v2.Compose([v2.ToImage(), *geo, *colour, v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] normalised -> [N, 3, H, W] in [0, 1] (for previews)."""
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x * std + mean).clamp(0, 1)


class FaceCrops(Dataset):
    """Image files (+ optional labels [N, C]) -> (image [3, S, S], label [C] float32)."""

    def __init__(self, paths: Sequence[str | Path], img_size: int, train: bool, labels: np.ndarray | None = None,
                 min_scale: float = 0.8, jitter: float = 0.2) -> None:
        self.paths = [str(p) for p in paths]
        self.img_size = img_size
        self.labels = None if labels is None else np.array(labels, dtype=np.float32).reshape(len(self.paths), -1)
        self.transform = face_transform(img_size, train, min_scale, jitter)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            with Image.open(self.paths[i]) as im:
                im.draft("RGB", (self.img_size, self.img_size))  # JPEG: decode at a reduced scale >= size
                img = self.transform(im.convert("RGB"))
        except OSError as exc:
            raise AbawError(f"{self.paths[i]}: cannot read image ({exc})") from None
        label = torch.zeros(0) if self.labels is None else torch.from_numpy(self.labels[i])
        return img, label


def image_folder(root: str | Path) -> list[Path]:
    """Every image file under ``root`` (recursive, sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise AbawError(f"{root}: not a folder of images")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise AbawError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return paths


def prep_rows(frames: pd.DataFrame, videos: Sequence[str] | None = None, task_name: str | None = None,
              labelled: bool = False) -> pd.DataFrame:
    """Frame-table rows that have a crop, optionally of ``videos`` and with a valid ``task_name`` label."""
    keep = frames["crop"].notna().to_numpy().copy()
    if videos is not None:
        keep &= frames["video"].isin(list(videos)).to_numpy()
    if labelled and task_name:
        spec = task(task_name)
        lab = frames[list(spec.label_columns)].to_numpy(np.float64)
        keep &= (lab != spec.invalid).any(axis=1)
    return frames.loc[keep].reset_index(drop=True)


def task_labels(rows: pd.DataFrame, task_name: str) -> np.ndarray:
    """[N, C] float32 labels of ``task_name`` in the frame table's encoding (invalid kept)."""
    return rows[list(task(task_name).label_columns)].to_numpy(np.float32)


def eval_loader(dataset: Dataset, batch_size: int, num_workers: int = 0, pin: bool = False) -> DataLoader:
    """Ordered loader for evaluation / prediction (workers decode, memory pinned on CUDA)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      pin_memory=pin, persistent_workers=num_workers > 0)
