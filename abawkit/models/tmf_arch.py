"""The TMF's shape as plain dataclasses (no torch): the recipe's ``[model]`` table and the saved ``arch``.

``TMFSettings`` is the one list of the temporal model's settings (``tmf.toml``'s ``[model]``, the
``model`` of ``stages.tmf.TMFConfig``); ``TMFArch`` is those settings plus what the data fixes (input
width, outputs, clip length, feature-set widths). ``TMFArch`` is saved in the TMF checkpoint
(``models.checkpoints.save_tmf``), so a checkpoint rebuilds its model without any config.

Reads and writes nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

TEMPORAL = ("transformer", "tcn", "gru")


@dataclass(frozen=True)
class TMFSettings:
    """The temporal model's settings (tmf.toml ``[model]``)."""

    d_model: int = 256
    layers: int = 4
    heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.3
    positions: str = "learnable"  # "learnable" | "sinusoidal" (transformer only)
    temporal: str = "transformer"  # "transformer" | "tcn" (dilated 1-D convs) | "gru" (bidirectional)
    kernel: int = 3  # tcn kernel size (odd); block i has dilation 2**i
    modality_dropout: float = 0.0  # training: drop a whole feature set per clip with this probability


@dataclass(frozen=True)
class TMFArch(TMFSettings):
    """Shape of a TMF model (saved in its checkpoint): the settings plus what the data fixes."""

    in_dim: int = field(default=0, kw_only=True)
    n_outputs: int = field(default=0, kw_only=True)
    max_len: int = field(default=100, kw_only=True)  # clip length
    parts: tuple[int, ...] = field(default=(), kw_only=True)  # widths of the concatenated feature sets

    @classmethod
    def of(cls, settings: TMFSettings, in_dim: int, n_outputs: int, max_len: int,
           parts: tuple[int, ...] = ()) -> "TMFArch":
        own = {f.name: getattr(settings, f.name) for f in dataclasses.fields(TMFSettings)}
        return cls(**own, in_dim=in_dim, n_outputs=n_outputs, max_len=max_len, parts=tuple(parts))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TMFArch":
        """From a saved ``arch`` (unknown keys are an error: a checkpoint of a newer abawkit)."""
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(d) - names)
        if extra:
            raise ValueError(f"unknown TMF arch fields {', '.join(extra)}")
        return cls(**{**d, "parts": tuple(d.get("parts") or ())})

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "parts": list(self.parts)}
