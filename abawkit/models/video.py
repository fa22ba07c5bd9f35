"""The video-level model: one prediction per video from its frames' features (A/H of ABAW 10/11, EMI).

Input: a video's sampled frames with its feature stores side by side, x [B, L, D_in] (store widths
``arch.parts``: vision, audio, text...), their real 0-based frame indices pos [B, L] and pad [B, L] (True =
padding). Each store is normalised and projected to ``d_model`` on its own, and a frame's vector is the mean
of its stores' projections; during training ``modality_dropout`` leaves a whole store of a video out of that
mean with this probability, never every store (the TMF's rule), so a video without speech or without a face
at test time is a case the model has seen. Sinusoidal positions of the real frame index (``tmf.sinusoidal``:
subsampled frames keep their place in time) are added, a ``torch.nn.TransformerEncoder`` (pre-norm, padded
frames masked) runs over the frames, and they are pooled to one vector per video (``attention``: learned
weights over the real frames; ``mean``) before a linear head: 2 logits (A/H) or 6 raw intensities (EMI,
``activate`` applies the sigmoid).

Reads a checkpoint in ``load_video_model``; writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from abawkit.errors import AbawError
from abawkit.labels import TaskSpec
from abawkit.models.checkpoints import rebuild
from abawkit.models.tmf import sinusoidal
from abawkit.models.video_arch import KINDS, POOLS, VideoArch, VideoSettings

KIND = "video"  # the checkpoint kind (``models.checkpoints.save_checkpoint``)


def modality_keep(batch: int, n: int, p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """[batch, n] bool: which feature stores each video keeps; each dropped with probability ``p``, never all."""
    drop = torch.rand(batch, n, device=device) < p  # [B, M]
    drop[drop.all(1)] = False  # a video never loses every modality
    return ~drop


def frame_positions(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """pos [B, L] 0-based frame indices -> [B, L, dim] sinusoidal positions of those frames."""
    table = sinusoidal(int(pos.max()) + 1 if pos.numel() else 1, dim).to(pos.device)  # [max + 1, dim]
    return table[pos]


def activate(kind: str, outputs: torch.Tensor) -> torch.Tensor:
    """Raw outputs [B, C] -> class probabilities (multiclass: softmax) or intensities (sigmoid)."""
    return torch.softmax(outputs, dim=-1) if kind == "multiclass" else torch.sigmoid(outputs)


class VideoModel(nn.Module):
    """x [B, L, D_in], pos [B, L] long, pad [B, L] bool -> [B, n_outputs] raw outputs, one row per video."""

    def __init__(self, arch: VideoArch) -> None:
        super().__init__()
        if arch.pool not in POOLS or arch.kind not in KINDS or not arch.parts or arch.n_outputs < 1:
            raise ValueError(f"video model: need pool in {POOLS}, kind in {KINDS}, feature parts and outputs, got "
                             f"{arch.pool!r}, {arch.kind!r}, {arch.parts}, {arch.n_outputs}")
        self.arch = arch
        d = arch.d_model
        self.norms = nn.ModuleList(nn.LayerNorm(w) for w in arch.parts)
        self.projs = nn.ModuleList(nn.Linear(w, d) for w in arch.parts)
        layer = nn.TransformerEncoderLayer(d, arch.heads, d * arch.ff_mult, arch.dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, arch.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.score = nn.Linear(d, 1, bias=False) if arch.pool == "attention" else None  # a bias cancels in the softmax
        self.head = nn.Linear(d, arch.n_outputs)

    def fuse(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """x [B, L, D_in], keep [B, M] -> [B, L, d_model]: the mean of the kept stores' projections."""
        chunks = torch.split(x, list(self.arch.parts), dim=-1)
        h = torch.stack([proj(norm(c)) for c, norm, proj in zip(chunks, self.norms, self.projs)], dim=2)  # [B, L, M, d]
        w = keep.to(h.dtype)[:, None, :, None]  # [B, 1, M, 1]
        return (h * w).sum(2) / w.sum(2).clamp(min=1)

    def pool(self, h: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """h [B, L, d], pad [B, L] -> [B, d] over the real frames only."""
        if self.score is not None:
            weights = torch.softmax(self.score(h).squeeze(-1).masked_fill(pad, float("-inf")), dim=1)  # [B, L]
            return (weights.unsqueeze(-1) * h).sum(1)
        real = (~pad).unsqueeze(-1).to(h.dtype)  # [B, L, 1]
        return (h * real).sum(1) / real.sum(1).clamp(min=1)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, pad: torch.Tensor | None = None,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        """``keep`` [B, M] chooses the stores by hand; by default all, or ``modality_keep`` while training."""
        b, m = x.shape[0], len(self.arch.parts)
        if pad is None:
            pad = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
        if keep is None:
            p = self.arch.modality_dropout
            keep = modality_keep(b, m, p, x.device) if self.training and p > 0 and m > 1 \
                else torch.ones(b, m, dtype=torch.bool, device=x.device)
        h = self.fuse(x, keep) + frame_positions(pos, self.arch.d_model).to(x.dtype)  # [B, L, d]
        h = self.norm(self.encoder(h, src_key_padding_mask=pad))  # [B, L, d]
        return self.head(self.pool(h, pad))  # [B, n_outputs]


def build_video_model(settings: VideoSettings, parts: tuple[int, ...], spec: TaskSpec) -> VideoModel:
    """A new model of ``settings`` over stores of widths ``parts`` for ``spec``'s one head (bad settings: one line)."""
    head = spec.head
    if settings.pool not in POOLS or not 0.0 <= settings.modality_dropout < 1.0:
        raise AbawError(f"model: need pool in {', '.join(POOLS)} and 0 <= modality_dropout < 1, got "
                        f"{settings.pool!r} and {settings.modality_dropout}")
    if settings.d_model % settings.heads:
        raise AbawError(f"model: d_model {settings.d_model} is not divisible by heads {settings.heads}")
    if head.kind not in KINDS:
        raise AbawError(f"track {spec.name}: a video-level model predicts {' or '.join(KINDS)}, not {head.kind}")
    return VideoModel(VideoArch.of(settings, parts, head.n_outputs, head.kind))


def load_video_model(path: str | Path) -> tuple[VideoModel, dict]:
    """Rebuild a trained video-level model from its checkpoint alone (``arch`` inside) -> (model in eval mode, meta)."""
    return rebuild(path, KIND, "video-level model", "video model", lambda arch: VideoModel(VideoArch.from_dict(arch)))