"""A whole video as one item of the video-level model: its sampled frames' features, their frame indices, its label.

A video of ``n`` frames is cut into ``frames`` equal segments (every frame when ``n <= frames``), and one
frame is taken from each: a random one while training (a new draw every epoch, seeded per item by the engine's
``SeededDataset``, so runs repeat), the middle one for evaluation. The frames keep their real 0-based index
(``pos``), which the model turns into positions, so a long video subsampled and a short one read alike in
time. Only the sampled rows of the memory-mapped feature stores are read. ``collate`` pads a batch to its
longest video (``pad`` True on padding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class VideoInputs:
    """One video: its feature stores' arrays (memory-mapped [n, D_i] each, in the model's order) and label [C]."""

    video: str
    parts: tuple[np.ndarray, ...]
    label: np.ndarray  # float32 [C]: the A/H class (C = 1) or the 6 EMI intensities; -1 = unlabelled

    def __len__(self) -> int:
        return len(self.parts[0])


def frame_index(n: int, frames: int, rng: Any = None) -> np.ndarray:
    """Sorted 0-based frames to read from a video of ``n``: all of them, or one per segment of ``frames``
    (random within the segment with ``rng``: ``np.random`` or a ``Generator``, else its middle frame)."""
    if frames < 1:
        raise ValueError(f"frames per video must be >= 1, got {frames}")
    if n <= frames:
        return np.arange(n, dtype=np.int64)
    edges = np.floor(np.linspace(0, n, frames + 1)).astype(np.int64)
    lo, hi = edges[:-1], np.maximum(edges[1:], edges[:-1] + 1)  # segment i: frames [lo, hi)
    if rng is None:
        return (lo + hi - 1) // 2
    return lo + (rng.random(frames) * (hi - lo)).astype(np.int64)


class VideoDataset(torch.utils.data.Dataset):
    """Items: x [L, D] float32 (stores side by side), pos [L] long, y [C] float32; ``repeats`` draws per video."""

    def __init__(self, videos: list[VideoInputs], frames: int, train: bool, repeats: int = 1) -> None:
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        self.videos, self.frames, self.train, self.repeats = videos, frames, train, repeats

    def __len__(self) -> int:
        return len(self.videos) * self.repeats

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        vd = self.videos[i % len(self.videos)]
        idx = frame_index(len(vd), self.frames, np.random if self.train else None)
        x = np.concatenate([np.asarray(p[idx], dtype=np.float32) for p in vd.parts], axis=1)  # [L, D]
        return {"x": torch.from_numpy(x), "pos": torch.from_numpy(idx), "y": torch.tensor(vd.label)}


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Pad to the longest video: x [B, L, D], pos [B, L], pad [B, L] (True = padding), y [B, C]."""
    n = max(len(it["pos"]) for it in items)
    x = torch.zeros(len(items), n, items[0]["x"].shape[1])
    pos = torch.zeros(len(items), n, dtype=torch.long)
    pad = torch.ones(len(items), n, dtype=torch.bool)
    for b, it in enumerate(items):
        k = len(it["pos"])
        x[b, :k], pos[b, :k], pad[b, :k] = it["x"], it["pos"], False
    return {"x": x, "pos": pos, "pad": pad, "y": torch.stack([it["y"] for it in items])}
