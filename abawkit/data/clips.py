"""Fixed-length clips over a video's per-frame features, and back from clip outputs to frames.

A video of ``n`` frames is cut into clips of ``K`` frames starting every ``stride`` frames; the last
clip may run past the end and is padded (zeros) with ``pad`` = True on the padded positions, so
neither the loss nor the averaging ever sees them. Predictions of overlapping clips are averaged
back to one value per frame (``average_clips``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def clip_starts(n_frames: int, length: int, stride: int) -> np.ndarray:
    """0-based start frames: every ``stride`` frames until a clip reaches the end (>= 1 clip)."""
    if length < 1 or stride < 1:
        raise ValueError(f"clip length and stride must be >= 1, got {length}, {stride}")
    starts = [0]
    while starts[-1] + length < n_frames:
        starts.append(starts[-1] + stride)
    return np.asarray(starts, dtype=np.int64)


@dataclass
class VideoData:
    """One video's inputs: features [n, D] (or a tuple of [n, D_i] parts, e.g. memory-mapped feature
    stores, concatenated per clip so whole videos never sit in memory) and labels [n, C]."""

    video: str
    features: np.ndarray | tuple[np.ndarray, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.features[0]) if isinstance(self.features, tuple) else len(self.features)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Features of frames [start, stop) as one float32 [n, D] array."""
        parts = self.features if isinstance(self.features, tuple) else (self.features,)
        return np.concatenate([np.asarray(p[start:stop], dtype=np.float32) for p in parts], axis=1)


class ClipDataset(torch.utils.data.Dataset):
    """Items are dicts: x [K, D] float32, y [K, C] float32, pad [K] bool, video index, start."""

    def __init__(self, videos: list[VideoData], length: int = 100, stride: int | None = None) -> None:
        self.videos, self.length = videos, length
        stride = stride or length
        self.index = [(v, int(s)) for v, vd in enumerate(videos)
                      for s in clip_starts(len(vd), length, stride)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        v, start = self.index[i]
        vd, k = self.videos[v], self.length
        x = vd.rows(start, start + k)
        y = np.asarray(vd.labels[start:start + k], dtype=np.float32)
        n = len(x)
        pad = np.zeros(k, dtype=bool)
        pad[n:] = True
        x = np.pad(x, ((0, k - n), (0, 0)))
        y = np.pad(y, ((0, k - n), (0, 0)))
        return {"x": torch.from_numpy(x), "y": torch.from_numpy(y), "pad": torch.from_numpy(pad),
                "video": torch.tensor(v), "start": torch.tensor(start)}


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack clip items: x [B, K, D], y [B, K, C], pad [B, K], video [B], start [B]."""
    return {key: torch.stack([it[key] for it in items]) for key in items[0]}


def flatten_valid(out: torch.Tensor, y: torch.Tensor, pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, K, C] outputs and labels -> [N, C] rows of real (unpadded) frames only, for the loss."""
    keep = ~pad.reshape(-1)
    return out.reshape(-1, out.shape[-1])[keep], y.reshape(-1, y.shape[-1])[keep]


def average_clips(n_frames: int, starts: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Clip predictions [n_clips, K, C] -> per-frame [n_frames, C], averaging where clips overlap."""
    n_clips, k, c = preds.shape
    total = np.zeros((n_frames, c), dtype=np.float64)
    count = np.zeros(n_frames, dtype=np.float64)
    for start, p in zip(starts, preds):
        n = min(k, n_frames - int(start))
        total[start:start + n] += p[:n]
        count[start:start + n] += 1
    if (count == 0).any():
        raise ValueError(f"{int((count == 0).sum())} frames are covered by no clip")
    return (total / count[:, None]).astype(np.float32)
