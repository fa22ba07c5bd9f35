"""Today's backbones from the files people download, into ``models.backbones.TimmBackbone``.

Reads a checkpoint file or a downloaded folder (``config.json`` + weights) and writes nothing. Formats
(``backbone_format``): ``dinov2`` (the official release: ``mask_token``, ``blocks.N.ls1.gamma``, a 518 px
``pos_embed``, optional ``register_tokens``; ViT-g's SwiGLU MLP as ``mlp.w12`` / ``mlp.w3``), ``openclip``
(``visual.*``: OpenAI CLIP / OpenCLIP ViT towers), ``hf-dinov2`` (transformers ``Dinov2Model`` /
``Dinov2WithRegistersModel`` folder), ``hf-clip`` (transformers ``CLIPVisionModel`` / ``CLIPModel``
folder), ``timm-hub`` (a timm hub folder: ``config.json`` naming the ``architecture``) and ``timm`` by
name (``arch = <timm name>``, e.g. EVA-02 and ConvNeXt state dicts). HF names are renamed to the official
/ timm ones here; timm's own ``checkpoint_filter_fn`` then converts DINOv2 / CLIP layouts and resamples
``pos_embed``. ``open_encoder`` is the one entry (finetune ``--init``, ``extract vision``, ``predict``);
our own files and MAE-style ViTs go through ``models.checkpoints``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from abawkit.errors import AbawError, first_line
from abawkit.models.checkpoints import (
    FORMAT,
    LoadReport,
    checkpoint_arch,
    encoder_state,
    load_checked,
    load_encoder,
    read_checkpoint,
)

_WEIGHT_FILES = ("model.safetensors", "open_clip_model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def read_source(path: str | Path) -> tuple[dict, dict]:
    """A checkpoint file, or a downloaded folder (``config.json`` + weights) -> (state dict or object, config)."""
    import json

    path = Path(path)
    if not path.is_dir():
        return read_checkpoint(path), {}
    config = {}
    for name in ("config.json", "open_clip_config.json"):
        if (path / name).is_file():
            try:
                config.update(json.loads((path / name).read_text()))
            except ValueError as exc:
                raise AbawError(f"{path / name}: invalid JSON ({first_line(exc)})") from None
    index = next((path / f"{n}.index.json" for n in _WEIGHT_FILES if (path / f"{n}.index.json").is_file()), None)
    if index is not None:  # sharded: every shard named in the weight map
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return {k: v for s in shards for k, v in read_checkpoint(path / s).items()}, config
    weights = next((path / n for n in _WEIGHT_FILES if (path / n).is_file()), None)
    if weights is None:
        raise AbawError(f"{path}: no weights ({' / '.join(_WEIGHT_FILES)}) in this folder")
    return read_checkpoint(weights), config


def backbone_format(obj: dict, config: dict) -> str | None:
    """Which of today's backbone formats ``obj`` is, or None (an MAE-style ViT: ``detect_format``)."""
    model_type = config.get("model_type") or config.get("vision_config", {}).get("model_type", "")
    if model_type in ("dinov2", "dinov2_with_registers"):
        return "hf-dinov2"
    if model_type in ("clip", "clip_vision_model"):
        return "hf-clip"
    if "architecture" in config:
        return "timm-hub"
    sd = obj.get("model", obj)
    if not isinstance(sd, dict):
        return None
    if "mask_token" in sd and any(".ls1.gamma" in k for k in sd):
        return "dinov2"
    if "visual.class_embedding" in sd or "module.visual.class_embedding" in sd:
        return "openclip"
    return None


def _fuse_qkv(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``blocks.N.attn.{q,k,v}.{weight,bias}`` -> timm's fused ``blocks.N.attn.qkv.*``."""
    out = {}
    for k, v in sd.items():
        m = re.match(r"(blocks\.\d+\.attn\.)([qkv])\.(weight|bias)$", k)
        if not m:
            out[k] = v
        elif m.group(2) == "q":
            out[f"{m.group(1)}qkv.{m.group(3)}"] = torch.cat([sd[f"{m.group(1)}{n}.{m.group(3)}"] for n in "qkv"])
    return out


def _rename(sd: dict[str, torch.Tensor], rules: tuple) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        for old, new in rules:
            k = re.sub(old, new, k)
        out[k] = v
    return out


_HF_DINOV2 = (  # transformers Dinov2 (4.x file names, 5.x module names) -> the official release names
    (r"^dinov2\.", ""), (r"^embeddings\.cls_token", "cls_token"), (r"^embeddings\.mask_token", "mask_token"),
    (r"^embeddings\.position_embeddings", "pos_embed"), (r"^embeddings\.register_tokens", "register_tokens"),
    (r"^embeddings\.patch_embeddings\.projection", "patch_embed.proj"), (r"^encoder\.layer\.", "blocks."),
    (r"^layernorm\.", "norm."), (r"layer_scale(\d)\.lambda1", r"ls\1.gamma"),
    (r"attention\.attention\.(query|key|value)", lambda m: f"attn.{m.group(1)[0]}"),
    (r"attention\.([qkv])_proj", r"attn.\1"), (r"attention\.(output\.dense|o_proj)", "attn.proj"),
    (r"mlp\.weights_in", "mlp.w12"), (r"mlp\.weights_out", "mlp.w3"),
)
_HF_CLIP = (  # transformers CLIP vision tower -> timm's CLIP ViT names
    (r"^vision_model\.", ""), (r"^embeddings\.patch_embedding", "patch_embed.proj"),
    (r"^pre_layrnorm\.", "norm_pre."), (r"^post_layernorm\.", "norm."), (r"^encoder\.layers\.", "blocks."),
    (r"self_attn\.([qkv])_proj", r"attn.\1"), (r"self_attn\.out_proj", "attn.proj"),
    (r"layer_norm(\d)", r"norm\1"),
)


def _hf_clip_state(sd: dict[str, torch.Tensor], report: LoadReport) -> dict[str, torch.Tensor]:
    keep = {k: v for k, v in sd.items() if k.startswith("vision_model.") or not k.startswith(
        ("text_model.", "visual_projection", "text_projection", "logit_scale"))}
    report.ignored = sorted(set(sd) - set(keep))
    out = _fuse_qkv(_rename(keep, _HF_CLIP))
    out["cls_token"] = out.pop("embeddings.class_embedding").reshape(1, 1, -1)
    out["pos_embed"] = out.pop("embeddings.position_embedding.weight").unsqueeze(0)
    out.pop("embeddings.position_ids", None)
    return out


def backbone_state(fmt: str, obj: dict, report: LoadReport) -> dict[str, torch.Tensor]:
    """State dict of a backbone format in the names timm's ``checkpoint_filter_fn`` reads."""
    sd = dict(obj.get("model", obj)) if fmt in ("dinov2", "openclip", "timm") else dict(obj)
    sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if fmt == "hf-dinov2":
        sd = _fuse_qkv(_rename(sd, _HF_DINOV2))
    elif fmt == "hf-clip":
        sd = _hf_clip_state(sd, report)
    elif fmt == "openclip":
        pre = "module.visual." if "module.visual.class_embedding" in sd else "visual."
        report.ignored = sorted(k for k in sd if not k.startswith(pre))
        sd = {k: v for k, v in sd.items() if k.startswith(pre)}
    if fmt != "openclip":
        report.renamed[fmt] = f"{len(sd)} keys"
    return sd


_CLIP_HEADS = {768: 12, 1024: 16, 1280: 16, 1408: 16, 1664: 16}  # OpenCLIP widths whose head size is not 64


def _vit_shape(sd: dict[str, torch.Tensor], fmt: str) -> dict[str, Any]:
    """(dim, patch, depth, native grid, mlp ratio, registers, swiglu) read from the weights."""
    clip = fmt == "openclip"
    pre = next((p for p in ("module.visual.", "visual.") if f"{p}class_embedding" in sd), "")
    dim = sd[f"{pre}class_embedding"].shape[-1] if clip else sd["cls_token"].shape[-1]
    patch = sd[f"{pre}conv1.weight" if clip else "patch_embed.proj.weight"].shape[-1]
    blocks = f"{pre}transformer.resblocks." if clip else "blocks."
    depth = 1 + max(int(k[len(blocks):].split(".")[0]) for k in sd if k.startswith(blocks))
    pos = sd[f"{pre}positional_embedding" if clip else "pos_embed"]
    grid = math.isqrt(pos.shape[-2] - 1)
    fc1 = sd.get(f"{blocks}0.mlp.c_fc.weight" if clip else f"{blocks}0.mlp.fc1.weight")
    swiglu = fc1 is None and f"{blocks}0.mlp.w12.weight" in sd
    hidden = (sd[f"{blocks}0.mlp.w12.weight"] if swiglu else fc1).shape[0]
    regs = sd["register_tokens"].shape[1] if "register_tokens" in sd else 0
    return {"dim": int(dim), "patch": int(patch), "depth": depth, "grid": grid, "mlp_ratio": _ratio(hidden, dim),
            "regs": int(regs), "swiglu": swiglu}


def _ratio(hidden: int, dim: int) -> float:
    """timm's ``mlp_ratio`` for an MLP whose first layer has ``hidden`` outputs (timm builds ``int(dim * ratio)``;
    a SwiGLU's fused ``w12`` already holds both halves, so its ratio is not doubled again)."""
    r = hidden / dim
    return r if int(dim * r) == hidden else (hidden + 0.5) / dim


_DINOV2_SIZES = {384: "small", 768: "base", 1024: "large", 1536: "giant"}


def dinov2_name(s: dict[str, Any]) -> str:
    """The timm DINOv2 name of a shape from ``_vit_shape`` (SwiGLU: ViT-g; unknown widths: ViT-S overridden)."""
    size = "giant" if s["swiglu"] else _DINOV2_SIZES.get(s["dim"], "small")
    return f"vit_{size}_patch14" + ("_reg4_dinov2" if s["regs"] else "_dinov2")


def infer_backbone(fmt: str, sd: dict, config: dict, arch_name: str = "", img_size: int = 0) -> Any:
    """A ``BackboneArch`` from the weights' shapes and the folder's config; ``arch_name`` (a timm
    name) wins over what the keys suggest, and is required where they cannot say (EVA-02, ConvNeXt)."""
    from abawkit.models.backbones import (
        CLIP_NORM,
        IMAGENET,
        BackboneArch,
        timm_defaults,
    )

    name = arch_name or config.get("architecture", "")
    if fmt in ("timm", "timm-hub") or (name and fmt not in ("dinov2", "hf-dinov2", "openclip", "hf-clip")):
        if not name:
            raise AbawError("cannot tell the architecture of this state dict: name it with "
                            "--set model.arch=<timm name> (vision.arch for extract), e.g. convnext_tiny")
        d = timm_defaults(name)
        pcfg = config.get("pretrained_cfg", {})
        family = next((f for f in ("convnext", "dinov2", "clip", "eva") if f in name), "vit")
        return BackboneArch(name, family, img_size or d["img_size"], 0, 0, 1 if family != "convnext" else 0,
                            tuple(pcfg.get("mean", d["mean"])), tuple(pcfg.get("std", d["std"])))
    try:
        s = _vit_shape(sd, fmt)
    except (KeyError, ValueError, AttributeError) as exc:
        raise AbawError(f"{fmt} checkpoint lacks {first_line(exc)}: not a complete ViT tower") from None
    vcfg = config.get("vision_config", config)
    heads = int(vcfg.get("num_attention_heads", 0)) or (_CLIP_HEADS.get(s["dim"], 0) if "clip" in fmt else 0) \
        or max(1, s["dim"] // 64)
    kwargs: dict[str, Any] = {"embed_dim": s["dim"], "depth": s["depth"], "num_heads": heads, "patch_size": s["patch"]}
    if "dinov2" in fmt:
        kwargs.update(mlp_ratio=s["mlp_ratio"], **({"reg_tokens": s["regs"]} if s["regs"] else {}))
        return BackboneArch(name or dinov2_name(s), "dinov2", img_size or 224, s["dim"], s["depth"], 1 + s["regs"],
                            *IMAGENET, {} if name else kwargs)
    quick = vcfg.get("hidden_act") == "quick_gelu" or bool(config.get("model_cfg", {}).get("quick_gelu"))
    kwargs["mlp_ratio"] = s["mlp_ratio"]
    base = "vit_base_patch16_clip_quickgelu_224" if quick else "vit_base_patch16_clip_224"
    return BackboneArch(name or base, "clip", img_size or s["grid"] * s["patch"], s["dim"], s["depth"], 1,
                        *CLIP_NORM, {} if name else kwargs)


def load_backbone(backbone: Any, fmt: str, sd: dict[str, torch.Tensor], report: LoadReport) -> LoadReport:
    """Load a backbone-format state dict into a ``TimmBackbone`` through timm's own filter function
    (DINOv2 / CLIP conversion, ``pos_embed`` resampling); missing / unexpected / mis-shaped keys are an error."""
    import importlib

    model = backbone.model
    before = sd.get("pos_embed", sd.get("visual.positional_embedding"))
    filt = getattr(importlib.import_module(type(model).__module__), "checkpoint_filter_fn", None)
    own = model.state_dict()
    try:
        sd = filt(dict(sd), model) if filt is not None else dict(sd)
    except (KeyError, RuntimeError, ValueError, IndexError) as exc:
        raise AbawError(f"{fmt} checkpoint does not fit {backbone.arch.timm} ({type(exc).__name__}: {first_line(exc)})") from None
    dropped = sorted(k for k in sd if k not in own and k.startswith(("head.", "fc_norm.", "mask_token")))
    report.ignored = sorted(set(report.ignored) | set(dropped))
    sd = {k: v for k, v in sd.items() if k not in dropped}
    patches = getattr(getattr(model, "patch_embed", None), "num_patches", None)
    if before is not None and patches and before.shape[-2] - 1 != patches:  # the patch grid was resampled
        report.resized.append(f"pos_embed {tuple(before.shape)} -> {tuple(own['pos_embed'].shape)}")
    load_checked(model, sd, f"{fmt} checkpoint does not fit {backbone.arch.timm}")
    return report


def open_encoder(path: str | Path, arch_name: str = "", img_size: int = 0, drop_path: float = 0.0) -> tuple[Any, Any, LoadReport, str | None]:
    """Any vision checkpoint (file or folder) -> (encoder module, arch, load report, its own pooling or None).

    Today's backbones become a ``TimmBackbone``; our own files and MAE-style ViTs a ``ViTEncoder``
    (``img_size`` resamples ``pos_embed`` for both). Never returns random weights.
    """
    import dataclasses

    from abawkit.models.backbones import TimmBackbone, build_encoder

    obj, config = read_source(path)
    fmt = backbone_format(obj, config) or ("timm" if arch_name and obj.get("format") != FORMAT else None)
    if fmt is None:
        arch = checkpoint_arch(obj)
        if img_size and img_size != arch.img_size:
            arch = dataclasses.replace(arch, img_size=img_size)
        encoder = build_encoder(arch, drop_path)
        if isinstance(encoder, TimmBackbone):  # a fine-tuned (or saved) timm backbone of ours
            sd, report = encoder_state(obj)
            load_backbone(encoder, FORMAT, {k[len("model."):]: v for k, v in sd.items()}, report)
        else:
            try:
                report = load_encoder(encoder, obj)
            except AbawError as exc:  # e.g. an EVA-02 state dict: timm names, another architecture
                raise AbawError(f"{exc}; if {Path(path).name} is not an MAE-style ViT, name its architecture "
                                "with --set model.arch=<timm name> (vision.arch for extract)") from None
        return encoder, arch, report, obj.get("pool")
    report = LoadReport(fmt)
    sd = backbone_state(fmt, obj, report)
    arch = infer_backbone(fmt, sd, config, arch_name, img_size)
    try:
        encoder = TimmBackbone(arch, drop_path)
        load_backbone(encoder, fmt, sd, report)
    except AbawError as exc:
        raise AbawError(f"{exc}{_name_hint(fmt, sd)}") from None
    return encoder, encoder.arch, report, None


def _name_hint(fmt: str, sd: dict[str, torch.Tensor]) -> str:
    """For a DINOv2 file that does not fit: the timm name its keys point to, as the option to pass."""
    if "dinov2" not in fmt:
        return ""
    name = dinov2_name(_vit_shape(sd, fmt))
    return f"; its keys look like {name}: try --set vision.arch={name} (model.arch for finetune)"
