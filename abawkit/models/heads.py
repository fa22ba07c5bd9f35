"""Fine-tuning model: a ViT encoder plus one linear layer for one task (the paper's frame model).

``FrameModel(arch, n_outputs, pool)`` returns raw outputs (logits / pre-tanh values); activations
live in ``abawkit.losses.activate``. ``features`` gives the pooled embedding that TMF consumes.
State dict names: ``encoder.*`` (see ``models/mae.py``) and ``head.*``.
"""

from __future__ import annotations

import torch
from torch import nn

from abawkit.errors import AbawError
from abawkit.models.mae import EncoderArch, ViTEncoder


class FrameModel(nn.Module):
    """Encoder + linear head. pool: ``cls`` (class token) or ``mean`` (average of patch tokens)."""

    def __init__(
        self, arch: EncoderArch, n_outputs: int, pool: str = "cls", drop_path: float = 0.1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if pool not in ("cls", "mean"):
            raise AbawError(f"pool must be cls or mean, got {pool!r}")
        self.arch, self.pool = arch, pool
        self.encoder = ViTEncoder(arch, drop_path=drop_path)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(arch.dim, n_outputs)
        nn.init.trunc_normal_(self.head.weight, std=2e-5)
        nn.init.zeros_(self.head.bias)

    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs: [N, 3, H, W] -> pooled embedding [N, D]."""
        tokens = self.encoder(imgs)  # [N, 1+L, D]
        return tokens[:, 0] if self.pool == "cls" else tokens[:, 1:].mean(dim=1)

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs: [N, 3, H, W] -> raw outputs [N, n_outputs]."""
        return self.head(self.dropout(self.features(imgs)))


def layer_decay(model: FrameModel, decay: float):
    """Layer-wise learning-rate decay (as in MAE fine-tuning): the head gets 1, block i gets
    ``decay ** (depth - i)``, the embeddings ``decay ** (depth + 1)``. Returns ``name -> factor``."""
    depth = model.arch.depth

    def scale(name: str) -> float:
        if name.startswith("encoder.blocks."):
            layer = int(name.split(".")[2]) + 1
        elif name.startswith(("encoder.patch_embed", "encoder.cls_token", "encoder.pos_embed")):
            layer = 0
        else:  # encoder.norm, head
            layer = depth + 1
        return decay ** (depth + 1 - layer)

    return scale
