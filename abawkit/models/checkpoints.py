"""The one place that reads and adapts checkpoints (ours and foreign) to ``ViTEncoder`` names.

Formats understood (``detect_format``):
- ``abawkit``: ``{"format": "abawkit", "kind": "mae"|"frame"|"encoder", "arch": {...}, "model": sd}``
  (written by ``save_checkpoint``; ``frame`` models also carry ``task``, ``n_outputs``, ``pool``);
- ``mae``: the official MAE release, ``{"model": sd}`` with timm names plus ``decoder_*`` and
  ``mask_token``; its global-pool variant has ``fc_norm.*`` instead of ``norm.*`` (mapped onto ``norm``);
- ``timm``: a plain timm ``VisionTransformer`` state dict (``head.*`` dropped);
- ``hf``: Hugging Face ``ViTMAEForPreTraining`` / ``ViTMAEModel`` (``vit.embeddings.*``,
  ``vit.encoder.layer.N.*``; q/k/v are fused into timm's ``qkv``; ``decoder.*`` dropped).
Today's backbones (DINOv2 official / transformers, CLIP transformers / OpenCLIP ``visual.*``, timm names
such as EVA-02 and ConvNeXt, timm hub folders) load into ``models.backbones.TimmBackbone`` through
``open_encoder`` (the section at the end), which also takes downloaded folders (``read_source``).
``pos_embed`` is resampled (bicubic, timm) when the image size differs. Keys that are missing,
unexpected or of the wrong shape are an ``AbawError`` listing them: nothing loads silently.

Every file is read by ``load_file`` with ``torch.load(weights_only=True)`` (tensors, plain values and a
short allow-list): a pickle that would run code is refused with one line naming what it holds. Full
unpickling only inside ``trusting()`` (the CLI's ``--trust-checkpoint``).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from abawkit.errors import AbawError, first_line
from abawkit.models.mae import ENCODERS, EncoderArch, ViTEncoder

FORMAT = "abawkit"
_IGNORED = ("decoder_", "decoder.", "mask_token", "head.", "head_drop", "pre_logits")


@dataclass
class LoadReport:
    format: str
    ignored: list[str] = field(default_factory=list)  # dropped on purpose (decoder, old head)
    renamed: dict[str, str] = field(default_factory=dict)
    resized: list[str] = field(default_factory=list)


def save_checkpoint(path: str | Path, state: dict, arch: EncoderArch, kind: str, **extra: Any) -> Path:
    """Write this project's format atomically (``kind``: mae | frame | encoder)."""
    from abawkit.statefile import plain, save_state

    save_state(Path(path), {"format": FORMAT, "kind": kind, "arch": arch.to_dict(), "model": state, **plain(extra)})
    return Path(path)


def _safe_globals() -> list:
    """What real checkpoints hold beyond tensors and plain values, and nothing that can run code.

    Official MAE training checkpoints (``misc.save_model``: model, optimizer, epoch, scaler, args)
    keep their ``argparse.Namespace`` under ``args``; other trainers store numpy scalars and arrays
    (epoch, best score, numpy RNG state: this project's own resume files before they were made plain).
    Rebuilding a numpy array runs no code of the file's choosing (``weights_only`` still vets its contents).
    numpy 2 moved ``numpy.core`` to ``numpy._core``; a pickle names the module of the numpy that wrote it,
    so both names are allowed, each bound to the installed numpy's function (``(object, name)`` entries).
    """
    import argparse

    import numpy as np

    core = getattr(np, "_core", None) or np.core  # numpy 2 | 1
    moved = [(f, f"{module}.multiarray.{f.__name__}") for f in (core.multiarray.scalar, core.multiarray._reconstruct)
             for module in ("numpy.core", "numpy._core")]
    dtypes = {type(np.dtype(t)) for t in ("float16", "float32", "float64", "int32", "int64", "uint32", "uint8", "bool")}
    return [argparse.Namespace, *moved, np.ndarray, np.dtype, *dtypes]


def _global_name(entry: Any) -> str:
    """The pickle name an allow-list entry admits: ``module.qualname``, or the name of an ``(object, name)`` pair."""
    return entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}"


_TRUST: contextvars.ContextVar[bool] = contextvars.ContextVar("abawkit_trust_checkpoints", default=False)
TRUST_FLAG = "--trust-checkpoint"


@contextlib.contextmanager
def trusting(enabled: bool = True) -> Iterator[None]:
    """Inside this block checkpoint files are fully unpickled (``--trust-checkpoint``): they can run code."""
    token = _TRUST.set(enabled)
    try:
        yield
    finally:
        _TRUST.reset(token)


def trusted() -> bool:
    """Whether ``--trust-checkpoint`` is on (for loaders outside torch.load, e.g. transformers)."""
    return _TRUST.get()


def _unsafe_globals(path: Path, exc: Exception) -> str:
    """The globals a file needs beyond the allow-list, read without running them (for the error line)."""
    allowed = {_global_name(g) for g in _safe_globals()}
    with contextlib.suppress(Exception):
        found = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in allowed]
        if found:
            return ", ".join(found[:3])
    m = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return m.group(1) if m else "objects other than tensors and plain values"


def load_file(path: str | Path, map_location: Any = "cpu") -> Any:
    """The one ``torch.load`` of the project: ``weights_only`` (tensors, plain values, the allow-list)
    unless ``trusting()``; anything else is one ``AbawError`` line naming the file, what it holds and the flag.

    ``.safetensors`` files are read with safetensors (never pickle).
    """
    path = Path(path)
    if not path.is_file():
        raise AbawError(f"{path}: checkpoint not found")
    full = trusted()
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file as load_safetensors

            return load_safetensors(str(path), device=str(map_location))
        if full:
            return torch.load(path, map_location=map_location, weights_only=False)
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if full or "GLOBAL" not in str(exc):
            raise AbawError(f"{path}: not a readable checkpoint (UnpicklingError: {first_line(exc)})") from None
        raise refused(path, exc) from None
    except Exception as exc:  # noqa: BLE001 - truncated zip, not a torch file, ...: a bad input
        raise AbawError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {first_line(exc)})") from None


def refused(path: Path, exc: Exception) -> AbawError:
    """The one line for a file that needs more than ``weights_only`` allows: what it holds, and the flag."""
    return AbawError(f"{path}: holds {_unsafe_globals(path, exc)}, which could run code when loaded; "
                     f"if you trust where this file comes from, pass {TRUST_FLAG}")


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint file on CPU (safely, see ``load_file``); unreadable files are a one-line error."""
    obj = load_file(path)
    if not isinstance(obj, dict):
        raise AbawError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")
    return obj


def detect_format(obj: dict) -> str:
    if obj.get("format") == FORMAT:
        return FORMAT
    sd = obj.get("model", obj)
    if not isinstance(sd, dict):
        raise AbawError("checkpoint has no state dict")
    if any(k.startswith(("vit.embeddings", "embeddings.patch_embeddings")) for k in sd):
        return "hf"
    if "cls_token" in sd and "patch_embed.proj.weight" in sd:
        return "mae" if "model" in obj else "timm"
    raise AbawError(f"unknown checkpoint format (first keys: {', '.join(list(sd)[:4])})")


_HF_OLD = (  # transformers 4.x layer names -> 5.x names
    (r"^encoder\.layer\.", "layers."), (r"attention\.attention\.query", "attention.q_proj"),
    (r"attention\.attention\.key", "attention.k_proj"), (r"attention\.attention\.value", "attention.v_proj"),
    (r"attention\.output\.dense", "attention.o_proj"), (r"intermediate\.dense", "mlp.fc1"),
    (r"(layers\.\d+\.)output\.dense", r"\1mlp.fc2"),
)
_HF_SIMPLE = {
    "embeddings.cls_token": "cls_token", "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight", "layernorm.bias": "norm.bias",
}
_HF_LAYER = {"attention.o_proj": "attn.proj", "layernorm_before": "norm1", "layernorm_after": "norm2",
             "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}


def _hf_to_timm(sd: dict[str, torch.Tensor], report: LoadReport) -> dict[str, torch.Tensor]:
    """Hugging Face ViTMAE names (transformers 4 or 5) -> timm names, fusing q/k/v into ``qkv``."""
    renamed = {}
    for k, v in sd.items():
        k = re.sub(r"^vit\.", "", k)
        for old, new in _HF_OLD:
            k = re.sub(old, new, k)
        renamed[k] = v
    out: dict[str, torch.Tensor] = {}
    for k, v in renamed.items():
        m = re.match(r"layers\.(\d+)\.(.+)\.(weight|bias)$", k)
        if k in _HF_SIMPLE:
            out[_HF_SIMPLE[k]] = v
        elif m and m.group(2) in _HF_LAYER:
            out[f"blocks.{m.group(1)}.{_HF_LAYER[m.group(2)]}.{m.group(3)}"] = v
        elif m and m.group(2) == "attention.q_proj":
            i, kind = m.group(1), m.group(3)
            qkv = [renamed[f"layers.{i}.attention.{n}_proj.{kind}"] for n in "qkv"]
            out[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat(qkv, 0)
        elif not (m and m.group(2) in ("attention.k_proj", "attention.v_proj")):
            out[k] = v  # left for the unexpected-key check (decoder.* is ignored there)
    report.renamed["hf"] = f"{len(sd)} keys -> {len(out)} timm keys"
    return out


def encoder_state(obj: dict) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Any supported checkpoint -> (state dict with ``ViTEncoder`` names, report)."""
    fmt = detect_format(obj)
    report = LoadReport(fmt)
    sd = dict(obj["model"] if "model" in obj else obj)
    if fmt == FORMAT and obj.get("kind") == "frame":
        sd = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    if fmt == "hf":
        sd = _hf_to_timm(sd, report)
    if "fc_norm.weight" in sd and "norm.weight" not in sd:  # MAE/timm global-pool variant
        for p in ("weight", "bias"):
            sd[f"norm.{p}"] = sd.pop(f"fc_norm.{p}")
            report.renamed[f"fc_norm.{p}"] = f"norm.{p}"
    report.ignored = sorted(k for k in sd if k.startswith(_IGNORED) or k.startswith("fc_norm."))
    return {k: v for k, v in sd.items() if k not in report.ignored}, report


def infer_arch(sd: dict[str, torch.Tensor], heads: int | None = None) -> EncoderArch:
    """Encoder shape from its weights (heads from a known size with that width, else dim/64)."""
    try:
        dim = sd["cls_token"].shape[-1]
        patch = sd["patch_embed.proj.weight"].shape[-1]
        grid = math.isqrt(sd["pos_embed"].shape[1] - 1)
    except KeyError as exc:
        raise AbawError(f"checkpoint has no {exc.args[0]}: not a ViT encoder") from None
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    known = next((a for a in ENCODERS.values() if a.dim == dim and a.depth == depth), None)
    mlp = sd["blocks.0.mlp.fc1.weight"].shape[0] / dim
    return EncoderArch(known.name if known else "custom", grid * patch, patch, dim, depth,
                       heads or (known.heads if known else max(1, dim // 64)), mlp)


def checkpoint_arch(obj: dict) -> EncoderArch:
    if obj.get("format") == FORMAT:
        from abawkit.models.backbones import any_arch_from_dict

        return any_arch_from_dict(obj["arch"])
    return infer_arch(encoder_state(obj)[0])


def load_checked(module: torch.nn.Module, sd: dict[str, torch.Tensor], what: str) -> None:
    """Load ``sd`` into ``module`` only if it fits exactly; else one ``AbawError`` (``what``: ...) listing
    missing / unexpected / mis-shaped keys: nothing loads silently."""
    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in sd and sd[k].shape != own[k].shape]
    problems = ([f"missing {', '.join(missing[:5])}"] if missing else []) + \
        ([f"unexpected {', '.join(unexpected[:5])}"] if unexpected else []) + \
        ([f"shape mismatch {'; '.join(shapes[:3])}"] if shapes else [])
    if problems:
        raise AbawError(f"{what}: {' | '.join(problems)}")
    module.load_state_dict(sd)


def load_encoder(encoder: ViTEncoder, obj: dict | str | Path) -> LoadReport:
    """Load any supported checkpoint into ``encoder``, resizing ``pos_embed`` if needed.

    Raises ``AbawError`` listing missing / unexpected / mis-shaped keys.
    """
    from timm.layers import resample_abs_pos_embed

    obj = read_checkpoint(obj) if isinstance(obj, (str, Path)) else obj
    sd, report = encoder_state(obj)
    own = encoder.state_dict()
    pos = sd.get("pos_embed")
    if pos is not None and pos.shape != own["pos_embed"].shape and pos.shape[-1] == own["pos_embed"].shape[-1]:
        sd["pos_embed"] = resample_abs_pos_embed(pos, [encoder.arch.grid] * 2, num_prefix_tokens=1)
        report.resized.append(f"pos_embed {tuple(pos.shape)} -> {tuple(sd['pos_embed'].shape)}")
    load_checked(encoder, sd, f"{report.format} checkpoint does not fit encoder {encoder.arch.name}")
    return report


def load_frame_model(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild a fine-tuned ``FrameModel`` saved by ``abaw finetune`` (best.pt) -> (model, meta)."""
    from abawkit.models.heads import FrameModel

    obj = read_checkpoint(path)
    if obj.get("format") != FORMAT or obj.get("kind") != "frame":
        raise AbawError(f"{path}: not a fine-tuned abawkit model (kind {obj.get('kind')!r})")
    from abawkit.models.backbones import any_arch_from_dict

    model = FrameModel(any_arch_from_dict(obj["arch"]), obj["n_outputs"], pool=obj.get("pool", "cls"), drop_path=0.0)
    model.load_state_dict(obj["model"])
    return model.eval(), {k: v for k, v in obj.items() if k != "model"}


# ----------------------------------------------------------------------------- today's backbones (timm)
# Formats (``backbone_format``): ``dinov2`` (the official release: ``mask_token``, ``blocks.N.ls1.gamma``,
# a 518 px ``pos_embed``, optional ``register_tokens``), ``openclip`` (``visual.*``: OpenAI CLIP /
# OpenCLIP ViT towers), ``hf-dinov2`` (transformers ``Dinov2Model`` / ``Dinov2WithRegistersModel``
# folder), ``hf-clip`` (transformers ``CLIPVisionModel`` / ``CLIPModel`` folder), ``timm-hub`` (a timm
# hub folder: ``config.json`` naming the ``architecture``) and ``timm`` by name (``arch = <timm name>``,
# e.g. EVA-02 and ConvNeXt state dicts). HF names are renamed to the official / timm ones here; timm's
# own ``checkpoint_filter_fn`` then converts DINOv2 / CLIP layouts and resamples ``pos_embed``.
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
    return {"dim": int(dim), "patch": int(patch), "depth": depth, "grid": grid, "mlp_ratio": hidden / dim,
            "regs": int(regs), "swiglu": swiglu}


def infer_backbone(fmt: str, sd: dict, config: dict, arch_name: str = "", img_size: int = 0) -> Any:
    """A ``BackboneArch`` from the weights' shapes and the folder's config; ``arch_name`` (a timm
    name) wins over what the keys suggest, and is required where they cannot say (EVA-02, ConvNeXt)."""
    from abawkit.models.backbones import CLIP_NORM, IMAGENET, BackboneArch, timm_defaults

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
        base = "vit_giant_patch14" if s["swiglu"] else "vit_small_patch14"
        base += "_reg4_dinov2" if s["regs"] else "_dinov2"
        kwargs.update(mlp_ratio=s["mlp_ratio"] * (2 if s["swiglu"] else 1), **({"reg_tokens": s["regs"]} if s["regs"] else {}))
        return BackboneArch(name or base, "dinov2", img_size or 224, s["dim"], s["depth"], 1 + s["regs"],
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
    encoder = TimmBackbone(infer_backbone(fmt, sd, config, arch_name, img_size), drop_path)
    load_backbone(encoder, fmt, sd, report)
    return encoder, encoder.arch, report, None
