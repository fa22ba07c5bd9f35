"""Fine-tuning model: a vision encoder (MAE ViT or a timm backbone) plus one linear layer for one task.

``FrameModel(arch, n_outputs, pool)`` returns raw outputs (logits / pre-tanh values); activations
live in ``abawkit.losses.activate``. ``features`` gives the pooled embedding that TMF consumes.
State dict names: ``encoder.*`` (see ``models/mae.py``; timm backbones: ``encoder.model.*``) and ``head.*``.
"""

from __future__ import annotations

import torch
from torch import nn

from abawkit.errors import AbawError
from abawkit.models.backbones import (
    POOLS,
    BackboneArch,
    TimmBackbone,
    backbone_layer_decay,
    build_encoder,
    default_pool,
    embed,
    pooled_dim,
)
from abawkit.models.mae import EncoderArch


class FrameModel(nn.Module):
    """Encoder + linear head. pool: ``cls`` (class token), ``mean`` (average of patch tokens), ``cls+mean``,
    or empty: the encoder's own (``models.backbones.default_pool``; recorded resolved in checkpoints).

    ``arch`` is the MAE ``EncoderArch`` (a ``ViTEncoder``) or a ``BackboneArch`` (a timm backbone:
    DINOv2, CLIP, EVA-02, ConvNeXt); ``encoder`` passes one already loaded from a checkpoint.
    """

    def __init__(
        self, arch: EncoderArch | BackboneArch, n_outputs: int, pool: str = "cls", drop_path: float = 0.1,
        dropout: float = 0.0, encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if pool not in ("", *POOLS):
            raise AbawError(f"pool must be one of {', '.join(POOLS)} (or empty: the model's own), got {pool!r}")
        self.encoder = encoder if encoder is not None else build_encoder(arch, drop_path)
        self.arch, self.pool = getattr(self.encoder, "arch", arch), pool or default_pool(self.encoder)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(pooled_dim(self.arch, self.pool), n_outputs)
        nn.init.trunc_normal_(self.head.weight, std=2e-5)
        nn.init.zeros_(self.head.bias)

    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs: [N, 3, H, W] -> pooled embedding [N, D]."""
        return embed(self.encoder, imgs, self.pool)  # [N, D] (cls+mean: [N, 2D])

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs: [N, 3, H, W] -> raw outputs [N, n_outputs]."""
        return self.head(self.dropout(self.features(imgs)))


def layer_decay(model: FrameModel, decay: float):
    """Layer-wise learning-rate decay (as in MAE fine-tuning): the head gets 1, block i gets
    ``decay ** (depth - i)``, the embeddings ``decay ** (depth + 1)``. Returns ``name -> factor``.
    A timm backbone is grouped by timm itself (blocks, or ConvNeXt stages: ``backbone_layer_decay``)."""
    if isinstance(model.encoder, TimmBackbone):
        table = backbone_layer_decay(model.encoder, decay)
        return lambda name: table.get(name, 1.0)  # the head (and anything timm left out): 1
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
