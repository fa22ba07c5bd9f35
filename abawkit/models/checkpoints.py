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
``models.backbone_files.open_encoder``, which also takes downloaded folders and uses this module's reading.
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
from typing import Any, Callable, Iterator

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
    _not_tmf(obj)
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


def _not_tmf(obj: dict) -> None:
    if obj.get("format") == FORMAT and obj.get("kind") == "tmf":
        raise AbawError("a TMF checkpoint (kind tmf) holds no image encoder: give an encoder or a finetune best.pt")


def checkpoint_arch(obj: dict) -> EncoderArch:
    _not_tmf(obj)
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


def save_tmf(path: str | Path, model: torch.nn.Module, features: list[str], **extra: Any) -> Path:
    """Write a trained TMF in this project's format (kind ``tmf``): its ``arch`` (``TMFArch``), the
    feature stores it reads in order, and ``extra`` (task, eval stride, the epoch's record)."""
    from abawkit.statefile import plain, save_state

    save_state(Path(path), {"format": FORMAT, "kind": "tmf", "arch": model.arch.to_dict(), "model": model.state_dict(),
                            "features": list(features), **plain(extra)})
    return Path(path)


def load_tmf(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild a TMF from its checkpoint alone (``arch`` inside) -> (model in eval mode, meta).

    Checkpoints written before the common format (``{"model", "arch", "features", "record"}``) load too."""
    from abawkit.models.tmf import TMF, TMFArch

    return rebuild(path, "tmf", "TMF", "TMF", lambda arch: TMF(TMFArch.from_dict(arch)), legacy=True)


def rebuild(path: str | Path, kind: str, what: str, arch_what: str, make: Callable[[dict], torch.nn.Module],
            legacy: bool = False) -> tuple[torch.nn.Module, dict]:
    """A trained model of ``kind`` rebuilt from its checkpoint alone: ``make(arch dict)`` builds it, the weights
    must fit it -> (model in eval mode, the checkpoint's other entries). ``legacy``: a checkpoint without
    ``format``/``kind`` (written before the common format) is taken as this kind. Each refusal is one line."""
    obj = read_checkpoint(path)
    fmt, got = (obj.get("format", FORMAT), obj.get("kind", kind)) if legacy else (obj.get("format"), obj.get("kind"))
    if fmt != FORMAT or got != kind or "arch" not in obj:
        raise AbawError(f"{path}: not a trained abawkit {what} (kind {obj.get('kind')!r})")
    try:
        model = make(obj["arch"])
    except (TypeError, ValueError) as exc:
        raise AbawError(f"{path}: {arch_what} arch not understood ({exc})") from None
    load_checked(model, obj["model"], f"{path}: weights do not fit the saved {arch_what} arch")
    return model.eval(), {k: v for k, v in obj.items() if k != "model"}