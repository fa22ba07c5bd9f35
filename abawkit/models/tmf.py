"""TMF: the Temporal and Multi-modal Fusion transformer over per-frame features.

Per frame, the chosen feature sets (fine-tuned MAE, audio...) are concatenated ([B, K, D_in]),
projected by a 1x1 Conv1d to ``d_model``, given positions (learnable or sinusoidal), passed through
a ``torch.nn.TransformerEncoder`` (paper: 4 layers, 4 heads, dropout 0.3) that ignores padded frames
via the key padding mask, and mapped by a linear head to the task's raw outputs per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TMFArch:
    """Shape of a TMF model (saved beside its checkpoints)."""

    in_dim: int
    n_outputs: int
    d_model: int = 256
    layers: int = 4
    heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.3
    max_len: int = 100
    positions: str = "learnable"  # "learnable" | "sinusoidal"


def sinusoidal(length: int, dim: int) -> torch.Tensor:
    """[length, dim] fixed sine/cosine positions (Vaswani et al.)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


class TMF(nn.Module):
    """x: [B, K, D_in] frame features, pad: [B, K] bool (True = padding) -> [B, K, n_outputs]."""

    def __init__(self, arch: TMFArch) -> None:
        super().__init__()
        if arch.positions not in ("learnable", "sinusoidal"):
            raise ValueError(f"positions must be learnable or sinusoidal, got {arch.positions!r}")
        self.arch = arch
        self.proj = nn.Conv1d(arch.in_dim, arch.d_model, kernel_size=1)
        self.in_norm = nn.LayerNorm(arch.in_dim)
        if arch.positions == "learnable":
            self.pos = nn.Parameter(torch.zeros(1, arch.max_len, arch.d_model))
            nn.init.trunc_normal_(self.pos, std=0.02)
        else:
            self.register_buffer("pos", sinusoidal(arch.max_len, arch.d_model)[None], persistent=False)
        layer = nn.TransformerEncoderLayer(
            arch.d_model, arch.heads, arch.d_model * arch.ff_mult, arch.dropout, batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, arch.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(arch.d_model)
        self.head = nn.Linear(arch.d_model, arch.n_outputs)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        k = x.shape[1]
        if k > self.arch.max_len:
            raise ValueError(f"clip of {k} frames is longer than max_len {self.arch.max_len}")
        h = self.proj(self.in_norm(x).transpose(1, 2)).transpose(1, 2)  # [B, K, d_model]
        h = h + self.pos[:, :k]
        h = self.encoder(h, src_key_padding_mask=pad)  # [B, K, d_model]
        return self.head(self.norm(h))  # [B, K, n_outputs]
