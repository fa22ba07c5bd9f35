"""Face-crop datasets and loaders for MAE pre-training, fine-tuning and prediction.

Reads image files only: any folder of images (``image_folder``) or the ``crop`` column of the prep
frame table (``prep_rows``). DataLoader workers only decode (OpenCV, the fastest of PIL / OpenCV /
torchvision.io on 112 px face JPEGs here) to uint8 at the stored size and draw each sample's
augmentation parameters; ``data.augment`` resizes, augments (mild and face-safe: random resized crop
keeping most of the face, horizontal flip, colour jitter) and normalises whole batches on the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from abawkit.data.augment import draw_params, identity_params
from abawkit.data.files import walk
from abawkit.errors import AbawError
from abawkit.runs import IMAGE_SUFFIXES
from abawkit.labels import task

_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def stored_size(path: str | Path) -> int:
    """Longest side of an image file, from its header."""
    try:
        with Image.open(path) as im:
            return max(im.size)
    except OSError as exc:
        raise AbawError(f"{path}: cannot read image ({exc})") from None


def decode_flag(stored: int, side: int) -> int:
    """cv2.imread flag decoding a ``stored`` px JPEG at the smallest 1/k scale still >= ``side``."""
    return next((f for k, f in _REDUCED if stored // k >= side), cv2.IMREAD_COLOR)


def read_uint8(path: str, side: int, flag: int = cv2.IMREAD_COLOR) -> torch.Tensor:
    """Decode ``path`` to uint8 [3, side, side] RGB (resized only when its size differs)."""
    if flag != cv2.IMREAD_COLOR and not path.lower().endswith((".jpg", ".jpeg")):
        flag = cv2.IMREAD_COLOR  # reduced decoding is for JPEG; others are read whole
    img = cv2.imread(path, flag)  # [H, W, 3] BGR uint8, or None
    if img is None:
        raise AbawError(f"{path}: cannot read image")
    if img.shape[:2] != (side, side):
        shrink = img.shape[0] > side
        img = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return torch.from_numpy(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).contiguous()


class FaceCrops(Dataset):
    """Image files (+ optional labels [N, C]) -> (uint8 [3, D, D], augmentation params [8], label [C]).

    ``D`` (``decode_size``; default: the first image's side, at most ``img_size``) is what crosses the
    worker boundary; ``data.augment.to_model_input`` makes the model's ``[3, S, S]`` float input from
    it on the device. Parameters are random when ``train`` (from the item's seed), identity otherwise.
    Images of another size are resized to ``D`` here (uint8); non-square ones are squashed.
    """

    def __init__(self, paths: Sequence[str | Path], img_size: int, train: bool, labels: np.ndarray | None = None,
                 min_scale: float = 0.8, jitter: float = 0.2, decode_size: int = 0) -> None:
        self.paths = [str(p) for p in paths]
        self.img_size, self.train, self.min_scale, self.jitter = img_size, train, min_scale, jitter
        self.labels = None if labels is None else np.array(labels, dtype=np.float32).reshape(len(self.paths), -1)
        first = stored_size(self.paths[0]) if self.paths else img_size
        self.decode_size = decode_size or min(first, img_size)
        self.flag = decode_flag(first, self.decode_size)  # the first image stands for the stored size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        img = read_uint8(self.paths[i], self.decode_size, self.flag)  # [3, D, D] uint8
        params = draw_params(self.min_scale, self.jitter) if self.train else identity_params()
        label = torch.zeros(0) if self.labels is None else torch.from_numpy(self.labels[i])
        return img, params, label


def image_folder(root: str | Path) -> list[Path]:
    """Every image file under ``root`` (recursive through symlinked folders, hidden files skipped, sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise AbawError(f"{root}: not a folder of images")
    paths = sorted(Path(d) / f for d, _, files in walk(root) for f in files if f.lower().endswith(IMAGE_SUFFIXES))
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
    """Ordered loader for evaluation / prediction (workers decode uint8, memory pinned on CUDA)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      pin_memory=pin, persistent_workers=num_workers > 0)
