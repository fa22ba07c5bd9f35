"""TMF: the Temporal and Multi-modal Fusion model over per-frame features.

Per frame, the chosen feature sets (fine-tuned MAE, audio...) are concatenated ([B, K, D_in]),
normalised, projected by a 1x1 Conv1d to ``d_model``, passed through a temporal model and mapped by a
linear head to the task's raw outputs per frame. ``temporal``:

- ``transformer`` (the paper): positions (learnable or sinusoidal) + ``torch.nn.TransformerEncoder``
  (paper: 4 layers, 4 heads, dropout 0.3) that ignores padded frames via the key padding mask;
- ``tcn``: ``layers`` residual blocks of two dilated 1-D convolutions (dilation 1, 2, 4, ...: the
  receptive field doubles per block, as the ABAW TCN heads do), padded frames zeroed before each conv;
- ``gru``: a bidirectional GRU over the real frames only (packed sequences).

``modality_dropout`` (training only): each feature set (``parts``: their widths) is zeroed for a whole
clip with this probability, never all of them, so a missing modality at test time is a seen case.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from abawkit.models.tmf_arch import TEMPORAL, TMFArch, TMFSettings

__all__ = ["TEMPORAL", "TMF", "TMFArch", "TMFSettings"]


def sinusoidal(length: int, dim: int) -> torch.Tensor:
    """[length, dim] fixed sine/cosine positions (Vaswani et al.)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


class TCN(nn.Module):
    """Residual blocks of dilated 1-D convolutions: h [B, K, D], pad [B, K] -> [B, K, D] (non-causal)."""

    def __init__(self, dim: int, layers: int, kernel: int, dropout: float) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"tcn kernel must be odd, got {kernel}")
        self.convs = nn.ModuleList(
            nn.ModuleList(nn.Conv1d(dim, dim, kernel, dilation=2**i, padding=(kernel - 1) // 2 * 2**i) for _ in range(2))
            for i in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        keep = torch.ones_like(h[..., :1]) if pad is None else (~pad).unsqueeze(-1).to(h.dtype)  # [B, K, 1]
        for (c1, c2), norm in zip(self.convs, self.norms):
            x = (norm(h) * keep).transpose(1, 2)  # [B, D, K]; padding never leaks into real frames
            x = self.drop(nn.functional.gelu(c1(x))) * keep.transpose(1, 2)
            h = h + self.drop(c2(x).transpose(1, 2))
        return h


class GRU(nn.Module):
    """Bidirectional GRU over the real frames: h [B, K, D], pad [B, K] -> [B, K, D]."""

    def __init__(self, dim: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.rnn = nn.GRU(dim, dim // 2, layers, batch_first=True, bidirectional=True,
                          dropout=dropout if layers > 1 else 0.0)

    def forward(self, h: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        if pad is None:
            return self.rnn(h)[0]
        lengths = (~pad).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])[0]


class TMF(nn.Module):
    """x: [B, K, D_in] frame features, pad: [B, K] bool (True = padding) -> [B, K, n_outputs]."""

    def __init__(self, arch: TMFArch) -> None:
        super().__init__()
        if arch.positions not in ("learnable", "sinusoidal"):
            raise ValueError(f"positions must be learnable or sinusoidal, got {arch.positions!r}")
        if arch.temporal not in TEMPORAL:
            raise ValueError(f"temporal must be one of {', '.join(TEMPORAL)}, got {arch.temporal!r}")
        if arch.parts and sum(arch.parts) != arch.in_dim:
            raise ValueError(f"feature parts {arch.parts} do not add up to in_dim {arch.in_dim}")
        self.arch = arch
        self.proj = nn.Conv1d(arch.in_dim, arch.d_model, kernel_size=1)
        self.in_norm = nn.LayerNorm(arch.in_dim)
        if arch.temporal != "transformer":
            self.temporal = TCN(arch.d_model, arch.layers, arch.kernel, arch.dropout) if arch.temporal == "tcn" \
                else GRU(arch.d_model, arch.layers, arch.dropout)
        else:
            self._transformer(arch)
        self.norm = nn.LayerNorm(arch.d_model)
        self.head = nn.Linear(arch.d_model, arch.n_outputs)

    def _transformer(self, arch: TMFArch) -> None:
        """The paper's head (its parameter names kept, so earlier checkpoints still load)."""
        if arch.positions == "learnable":
            self.pos = nn.Parameter(torch.zeros(1, arch.max_len, arch.d_model))
            nn.init.trunc_normal_(self.pos, std=0.02)
        else:
            self.register_buffer("pos", sinusoidal(arch.max_len, arch.d_model)[None], persistent=False)
        layer = nn.TransformerEncoderLayer(
            arch.d_model, arch.heads, arch.d_model * arch.ff_mult, arch.dropout, batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, arch.layers, enable_nested_tensor=False)

    def drop_modalities(self, x: torch.Tensor) -> torch.Tensor:
        """Training: zero each feature set of each clip with probability ``modality_dropout`` (>= 1 kept)."""
        p, parts = self.arch.modality_dropout, self.arch.parts
        if not self.training or p <= 0 or len(parts) < 2:
            return x
        drop = torch.rand(x.shape[0], len(parts), device=x.device) < p  # [B, M]
        drop[drop.all(1)] = False  # a clip never loses every modality
        mask = torch.repeat_interleave((~drop).to(x.dtype), torch.tensor(parts, device=x.device), dim=1)
        return x * mask[:, None, :]  # [B, K, D_in]

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        k = x.shape[1]
        if k > self.arch.max_len:
            raise ValueError(f"clip of {k} frames is longer than max_len {self.arch.max_len}")
        x = self.drop_modalities(self.in_norm(x))
        h = self.proj(x.transpose(1, 2)).transpose(1, 2)  # [B, K, d_model]
        if self.arch.temporal == "transformer":
            h = self.encoder(h + self.pos[:, :k], src_key_padding_mask=pad)  # [B, K, d_model]
        else:
            h = self.temporal(h, pad)
        return self.head(self.norm(h))  # [B, K, n_outputs]
