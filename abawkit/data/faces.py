"""Face-crop datasets and loaders for MAE pre-training, fine-tuning and prediction.

Reads image files only: any folder of images (``image_folder``) or the ``crop`` column of the prep
frame table (``prep_rows``). DataLoader workers only decode (OpenCV, the fastest of PIL / OpenCV /
torchvision.io on 112 px face JPEGs here) each image to uint8 at its own stored size (at most the
model's) and draw each sample's augmentation parameters; ``collate_faces`` batches mixed sizes;
``data.augment`` resizes, augments (mild and face-safe: random resized crop keeping most of the face,
horizontal flip, colour jitter) and normalises whole batches on the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from abawkit.data.augment import draw_params, identity_params
from abawkit.errors import AbawError
from abawkit.files import walk
from abawkit.labels import TaskSpec, task
from abawkit.workspace.fingerprints import IMAGE_SUFFIXES

_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))
JPEG = (".jpg", ".jpeg")


def decode_flag(stored: int, side: int) -> int:
    """cv2.imread flag decoding a ``stored`` px JPEG at the smallest 1/k scale still >= ``side``."""
    return next((f for k, f in _REDUCED if stored // k >= side), cv2.IMREAD_COLOR)


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)


def jpeg_side(data: bytes) -> int:
    """Longest side from a JPEG's start-of-frame header, or 0 when it is not found.

    A marker walk over bytes already in memory (~1 us); header readers (``imagesize``, PIL) open the file
    a second time and cost 18-30 us, a tenth of decoding a 112 px crop.
    """
    i = 2  # after SOI
    while i + 9 < len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in _SOF:
            return max(int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big"))
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return 0


def read_face(path: str, max_side: int) -> torch.Tensor:
    """uint8 [3, s, s] RGB at the image's own stored side ``s`` (at most ``max_side``; never upsampled).

    The reduced-JPEG scale comes from this file's own header, so a 112 px crop among 448 px ones is
    read whole and a 448 px one at 1/2 for 224. Other formats, and JPEGs whose header is not
    understood, are decoded whole. Non-square images are squashed to ``s``.
    """
    try:
        with open(path, "rb", buffering=0) as f:
            data = f.readall()  # read once for header and decode (~8 us; cv2.imread would read it again)
    except OSError as exc:
        raise AbawError(f"{path}: cannot read image ({exc.strerror})") from None
    flag = cv2.IMREAD_COLOR
    stored = jpeg_side(data) if path.lower().endswith(JPEG) else 0
    if stored:
        flag = decode_flag(stored, min(stored, max_side))
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flag)  # [H, W, 3] BGR uint8 (>= min(stored, max_side)), or None
    if img is None:
        raise AbawError(f"{path}: cannot read image")
    longest = max(img.shape[:2])
    side = min(longest, max_side)
    if img.shape[:2] != (side, side):
        img = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA if longest > side else cv2.INTER_LINEAR)
    return torch.from_numpy(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).contiguous()


Item = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # FaceCrops: (uint8 image, params, label)


def collate_faces(items: list[Item]) -> Item:
    """FaceCrops items -> (uint8 [B, 3, D, D], params [B, 8 | 9], labels [B, C]); D: the batch's largest side.

    Images of one size (the usual case) are stacked, with the 8 augmentation params. A smaller image in a
    mixed batch sits in the top-left corner of the ``D`` canvas at its own size (zeros around it), and a
    9th params column gives each image's side, which tells ``data.augment.to_model_input`` which part to
    read: nothing is resized here. Only mixed batches carry it, so the usual batch needs no look at its
    values on the device (a host sync per batch on a GPU).
    """
    imgs, params, labels = zip(*items)
    sides = [img.shape[-1] for img in imgs]
    d = max(sides)
    if min(sides) == d:
        return torch.stack(imgs), torch.stack(params), torch.stack(labels)  # params [B, 8]
    batch = torch.zeros((len(imgs), 3, d, d), dtype=torch.uint8)
    for out, img in zip(batch, imgs):
        out[:, : img.shape[-2], : img.shape[-1]] = img
    params = torch.cat([torch.stack(params), torch.tensor(sides, dtype=torch.float32)[:, None]], dim=1)  # [B, 9]
    return batch, params, torch.stack(labels)


class FaceCrops(Dataset):
    """Image files (+ optional labels [N, C]) -> (uint8 [3, s, s], augmentation params [8], label [C]).

    Each image crosses the worker boundary at its own stored side ``s``, at most ``decode_size``
    (default and upper bound: ``img_size``), never upsampled. Batch with ``collate_faces`` (mixed sizes
    share a batch); ``data.augment.to_model_input`` makes the model's ``[3, S, S]`` float input on the
    device. Parameters are random when ``train`` (from the item's seed), identity otherwise.
    """

    def __init__(self, paths: Sequence[str | Path], img_size: int, train: bool, labels: np.ndarray | None = None,
                 min_scale: float = 0.8, jitter: float = 0.2, decode_size: int = 0) -> None:
        self.paths = [str(p) for p in paths]
        self.img_size, self.train, self.min_scale, self.jitter = img_size, train, min_scale, jitter
        self.labels = None if labels is None else np.array(labels, dtype=np.float32).reshape(len(self.paths), -1)
        self.decode_size = min(decode_size or img_size, img_size)  # from the model, never from a file

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Item:
        img = read_face(self.paths[i], self.decode_size)  # [3, s, s] uint8
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


def prep_rows(frames: pd.DataFrame, videos: Sequence[str] | None = None, task_name: TaskSpec | str | None = None,
              labelled: bool = False) -> pd.DataFrame:
    """Frame-table rows that have a crop, optionally of ``videos`` and with a valid ``task_name`` label."""
    keep = frames["crop"].notna().to_numpy().copy()
    if videos is not None:
        keep &= frames["video"].isin(list(videos)).to_numpy()
    if labelled and task_name:
        spec = task(task_name)
        lab = np.zeros(len(frames), bool)  # a frame counts when any head of the track has a label on it
        for head in spec.heads:
            lab |= (frames[list(head.columns)].to_numpy(np.float64) != head.invalid).any(axis=1)
        keep &= lab
    return frames.loc[keep].reset_index(drop=True)


def task_labels(rows: pd.DataFrame, task_name: TaskSpec | str) -> np.ndarray:
    """[N, C] float32 labels of ``task_name`` in the frame table's encoding (invalid kept)."""
    return rows[list(task(task_name).label_columns)].to_numpy(np.float32)


def eval_loader(dataset: Dataset, batch_size: int, num_workers: int = 0, pin: bool = False) -> DataLoader:
    """Ordered loader for evaluation / prediction (workers decode uint8, memory pinned on CUDA)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      pin_memory=pin, persistent_workers=num_workers > 0, collate_fn=collate_faces)
