"""The video-level model's shape as plain dataclasses (no torch): the recipe's ``[model]`` and the saved ``arch``.

``VideoSettings`` is the one list of the model's settings (``video.toml``'s ``[model]``, the ``model`` of
``stages.video.VideoConfig``); ``VideoArch`` is those settings plus what the data fixes (each feature store's
width, the head's kind and outputs). ``VideoArch`` is saved in the checkpoint (kind ``video``), so a checkpoint
rebuilds its model without any config (``models.video.load_video_model``).

Reads and writes nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

POOLS = ("attention", "mean")
KINDS = ("multiclass", "intensity")  # A/H: one class per video; EMI: intensities in [0, 1]


@dataclass(frozen=True)
class VideoSettings:
    """The video-level model's settings (video.toml ``[model]``)."""

    d_model: int = 128
    layers: int = 2
    heads: int = 4
    ff_mult: int = 2
    dropout: float = 0.1
    pool: str = "attention"  # "attention" (learned weights over frames) | "mean" (over real frames)
    modality_dropout: float = 0.0  # training: drop a whole feature store per video with this probability


@dataclass(frozen=True)
class VideoArch(VideoSettings):
    """Shape of a video-level model (saved in its checkpoint): the settings plus what the data fixes."""

    parts: tuple[int, ...] = field(default=(), kw_only=True)  # width of each feature store, in input order
    n_outputs: int = field(default=0, kw_only=True)
    kind: str = field(default="multiclass", kw_only=True)  # one of KINDS

    @classmethod
    def of(cls, settings: VideoSettings, parts: tuple[int, ...], n_outputs: int, kind: str) -> "VideoArch":
        own = {f.name: getattr(settings, f.name) for f in dataclasses.fields(VideoSettings)}
        return cls(**own, parts=tuple(int(p) for p in parts), n_outputs=n_outputs, kind=kind)

    @property
    def in_dim(self) -> int:
        return sum(self.parts)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VideoArch":
        """From a saved ``arch`` (unknown keys are an error: a checkpoint of a newer abawkit)."""
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(d) - names)
        if extra:
            raise ValueError(f"unknown video model arch fields {', '.join(extra)}")
        return cls(**{**d, "parts": tuple(d.get("parts") or ())})

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "parts": list(self.parts)}
