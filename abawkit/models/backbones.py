"""Today's vision backbones (DINOv2, CLIP / OpenCLIP, EVA-02, ConvNeXt) as timm models.

``BackboneArch`` names a timm builder plus the keyword overrides that give the checkpoint's shape
(width, depth, heads, patch, registers...), the input size and the backbone's own input normalisation;
it is saved in fine-tuned checkpoints as ``arch`` (marked by its ``timm`` key) so a model is rebuilt
from the file alone, never from the network. ``TimmBackbone`` wraps the timm model: it takes the
images every abawkit pipeline produces (ImageNet-normalised, ``data.augment``) and re-normalises them
with the backbone's own mean / std (one per-channel affine map, exact), so finetune, extract and predict
need no per-backbone input code. ``embed(encoder, imgs, pool)`` pools any encoder (this one or the MAE
``ViTEncoder``) for finetune, extract and predict alike: ``cls`` | ``mean`` (patch tokens; registers
excluded) | ``cls+mean`` (concatenated); ``default_pool`` names the model's own one. A timm model's own
pooling is exactly its ``forward_head(forward_features(x), pre_logits=True)`` (DINOv2 / CLIP: the normed
class token; EVA-02: the patch mean through ``fc_norm``; ConvNeXt: global average + head norm); the other
pools take the model's final norm where the model puts it (on every token, or ``fc_norm`` after pooling).
Fine-tuned checkpoints saved before that (``arch`` without ``pooling``) keep the ``tokens`` pooling they
were trained with: ``forward_features`` tokens only.
Reading and renaming foreign files is ``models.checkpoints``' job; this module only builds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from abawkit.errors import AbawError

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP_NORM = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
POOLS = ("cls", "mean", "cls+mean")
VIT_FAMILIES = ("dinov2", "clip", "vit", "eva")


@dataclass(frozen=True)
class BackboneArch:
    """A timm backbone's shape; saved in checkpoints as ``arch`` (``timm`` marks this kind)."""

    timm: str  # timm builder name, e.g. vit_large_patch14_dinov2, convnext_tiny, eva02_base_patch14_224
    family: str  # dinov2 | clip | eva | vit | convnext
    img_size: int
    dim: int
    depth: int  # blocks (ViT) or stages (ConvNeXt): the layer-decay depth
    prefix: int = 1  # class + register tokens before the patch tokens (0 for ConvNeXt)
    mean: tuple[float, float, float] = IMAGENET[0]
    std: tuple[float, float, float] = IMAGENET[1]
    kwargs: dict = field(default_factory=dict)  # create_model overrides (embed_dim, depth, num_heads, ...)
    pooling: str = "head"  # head: through the model's final norm / head | tokens: as saved before (no fc_norm)

    @property
    def name(self) -> str:
        return self.timm

    @property
    def patch(self) -> int:
        return int(self.kwargs.get("patch_size", 0)) or _timm_patch(self.timm)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


def _timm_patch(name: str) -> int:
    import re

    m = re.search(r"patch(\d+)", name)
    return int(m.group(1)) if m else 32  # ConvNeXt: stem 4, total stride 32


def is_backbone_dict(d: dict) -> bool:
    return "timm" in d


def backbone_from_dict(d: dict) -> BackboneArch:
    names = {f.name for f in dataclasses.fields(BackboneArch)}
    d = {k: v for k, v in d.items() if k in names}
    d["mean"], d["std"] = tuple(d.get("mean", IMAGENET[0])), tuple(d.get("std", IMAGENET[1]))
    d.setdefault("pooling", "tokens")  # saved before pooling went through the final norm: pool as trained
    return BackboneArch(**d)


def create_timm(arch: BackboneArch, drop_path: float = 0.0) -> nn.Module:
    """The bare timm model (no classifier) of ``arch``; random weights until a checkpoint is loaded."""
    import timm

    kwargs = dict(arch.kwargs)
    if arch.family in VIT_FAMILIES:
        kwargs["img_size"] = arch.img_size
    try:
        return timm.create_model(arch.timm, pretrained=False, num_classes=0, drop_path_rate=drop_path, **kwargs)
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise AbawError(f"timm cannot build {arch.timm!r} with {kwargs} ({type(exc).__name__}: {exc})") from None


def timm_defaults(name: str) -> dict[str, Any]:
    """mean / std / input size of a timm name's default pretrained config (known offline)."""
    import timm

    if not timm.is_model(name):
        raise AbawError(f"unknown timm model {name!r} (see timm.list_models(); e.g. convnext_tiny, "
                        "eva02_base_patch14_224, vit_large_patch14_dinov2)")
    cfg = timm.models.get_pretrained_cfg(name)
    d = cfg.to_dict() if cfg is not None else {}
    return {"mean": tuple(d.get("mean", IMAGENET[0])), "std": tuple(d.get("std", IMAGENET[1])),
            "img_size": int(d.get("input_size", (3, 224, 224))[-1])}


class TimmBackbone(nn.Module):
    """imgs [N, 3, S, S] ImageNet-normalised -> tokens [N, P+L, D] (ViTs) or a map [N, D, h, w] (ConvNeXt)."""

    def __init__(self, arch: BackboneArch, drop_path: float = 0.0) -> None:
        super().__init__()
        self.model = create_timm(arch, drop_path)
        self.arch = _measured(arch, self.model)
        # own normalisation from ImageNet's: x_own = (x_in * std_in + mean_in - mean_own) / std_own
        m_in, s_in = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
        m_own, s_own = torch.tensor(arch.mean).view(1, 3, 1, 1), torch.tensor(arch.std).view(1, 3, 1, 1)
        self.register_buffer("scale", s_in / s_own, persistent=False)
        self.register_buffer("shift", (m_in - m_own) / s_own, persistent=False)

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        x = imgs * self.scale.to(imgs.dtype) + self.shift.to(imgs.dtype)
        return self.model.forward_features(x)

    def pooled(self, imgs: torch.Tensor, pool: str) -> torch.Tensor:
        """imgs -> [N, D] (``cls`` / ``mean``) or [N, 2D] (``cls+mean``), as the model pools (``pool_timm``)."""
        return pool_timm(self.model, self(imgs), pool, self.arch)


_OWN = {"token": "cls", "avg": "mean"}  # timm's global_pool -> our name


def own_pool(model: nn.Module) -> str | None:
    """The pool name of a timm model's own embedding (ConvNeXt: mean; attention / max pools: None)."""
    gp = getattr(model, "global_pool", None)
    return "mean" if not isinstance(gp, str) else _OWN.get(gp)


def pool_timm(model: nn.Module, feats: torch.Tensor, pool: str, arch: BackboneArch) -> torch.Tensor:
    """``forward_features`` output -> pooled [N, D | 2D]. The model's own pool is its ``forward_head``
    (pre-logits); ``cls`` / ``mean`` otherwise take ``fc_norm`` after pooling (identity where the model
    normalises every token). ``tokens`` archs (saved before) pool the raw tokens, as they were trained."""
    if arch.family == "convnext":
        if pool != "mean":
            raise AbawError(f"{arch.timm} has no class token: use pool = mean")
        return model.forward_head(feats, pre_logits=True)  # global average + the model's own norm
    if pool in ("cls", "cls+mean") and getattr(model, "cls_token", None) is None:
        raise AbawError(f"{arch.timm} has no class token: use pool = mean")
    if arch.pooling == "tokens":
        return pool_tokens(feats, pool, arch.prefix)
    if pool == own_pool(model):
        return model.forward_head(feats, pre_logits=True)  # the model's own embedding, exactly
    if pool == "cls+mean":
        return torch.cat([pool_timm(model, feats, p, arch) for p in ("cls", "mean")], dim=-1)
    return model.fc_norm(pool_tokens(feats, pool, arch.prefix))


def default_pool(encoder: nn.Module) -> str:
    """The pool giving the model's own embedding: timm's (``own_pool``); the MAE ``ViTEncoder``: ``cls``."""
    if not isinstance(encoder, TimmBackbone):
        return "cls"
    own = own_pool(encoder.model)
    if own is None:
        raise AbawError(f"{encoder.arch.timm} pools with global_pool={encoder.model.global_pool!r}, which abawkit "
                        "does not reproduce: choose the pool (vision.pool / model.pool = cls | mean | cls+mean)")
    return own


def pooling_key(encoder: nn.Module) -> dict[str, str]:
    """What an extraction's key must add for this encoder's pooling: ``final_norm: fc_norm`` where the
    model's last norm follows pooling (EVA-02) and is applied, as it was not before; empty where the
    bytes are as they were (DINOv2, CLIP, ConvNeXt, MAE, fine-tuned checkpoints saved before)."""
    if not isinstance(encoder, TimmBackbone) or encoder.arch.pooling != "head" or encoder.arch.family == "convnext":
        return {}
    fc_norm = getattr(encoder.model, "fc_norm", None)
    return {"final_norm": "fc_norm"} if fc_norm is not None and not isinstance(fc_norm, nn.Identity) else {}


def _measured(arch: BackboneArch, model: nn.Module) -> BackboneArch:
    """``arch`` with width, depth and prefix tokens read off the built model (what a timm name implies)."""
    depth = len(model.stages) if arch.family == "convnext" else len(model.blocks)
    prefix = 0 if arch.family == "convnext" else int(getattr(model, "num_prefix_tokens", 1))
    return dataclasses.replace(arch, dim=int(model.num_features), depth=depth, prefix=prefix)


def pool_tokens(tokens: torch.Tensor, pool: str, prefix: int = 1) -> torch.Tensor:
    """tokens [N, P+L, D] -> [N, D] class token / mean of the L patch tokens, or [N, 2D] both."""
    if pool == "cls":
        return tokens[:, 0]
    if pool == "mean":
        return tokens[:, prefix:].mean(dim=1)
    if pool == "cls+mean":
        return torch.cat([tokens[:, 0], tokens[:, prefix:].mean(dim=1)], dim=-1)
    raise AbawError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")


def embed(encoder: nn.Module, imgs: torch.Tensor, pool: str) -> torch.Tensor:
    """Any abawkit encoder (``TimmBackbone`` or MAE ``ViTEncoder``) -> pooled features [N, D | 2D]."""
    if isinstance(encoder, TimmBackbone):
        return encoder.pooled(imgs, pool)
    return pool_tokens(encoder(imgs), pool, 1)


def pooled_dim(arch: Any, pool: str) -> int:
    return arch.dim * (2 if pool == "cls+mean" else 1)


def build_encoder(arch: Any, drop_path: float = 0.0) -> nn.Module:
    """``BackboneArch`` -> ``TimmBackbone``; the MAE ``EncoderArch`` -> ``ViTEncoder``."""
    if isinstance(arch, BackboneArch):
        return TimmBackbone(arch, drop_path)
    from abawkit.models.mae import ViTEncoder

    return ViTEncoder(arch, drop_path=drop_path)


def any_arch_from_dict(d: dict) -> Any:
    """A saved ``arch`` dict -> ``BackboneArch`` or the MAE ``EncoderArch``."""
    from abawkit.models.mae import arch_from_dict

    return backbone_from_dict(d) if is_backbone_dict(d) else arch_from_dict(d)


def backbone_layer_decay(backbone: TimmBackbone, decay: float, prefix: str = "encoder.") -> dict[str, float]:
    """``param name -> lr factor`` from timm's own grouping (``group_matcher``): blocks one by one for
    ViTs, stage by stage for ConvNeXt; the stem gets the smallest factor. Names carry ``prefix``."""
    from timm.models import group_parameters

    coarse = backbone.arch.family == "convnext"
    layer_of = group_parameters(backbone.model, backbone.model.group_matcher(coarse=coarse), reverse=True)
    top = max(layer_of.values()) + 1  # the task head sits one above the backbone's last group
    return {f"{prefix}model.{name}": decay ** (top - layer) for name, layer in layer_of.items()}
