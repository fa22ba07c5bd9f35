"""Every feature extractor abawkit knows, by name: its kind, its typed settings and how to build it.

An entry (``Extractor``) holds the frozen settings dataclass of one extractor -- every field that changes
the bytes of its features, nothing else (batch sizes and worker counts are not settings) -- a builder
``(settings, checkpoint, device) -> extractor`` and whether it needs a checkpoint. A store's key is the
store name, the registry name, ``asdict(settings)`` and the checkpoint's content id
(``features.store.extractor_key``), so any other value of any field is another store; ``store.json``
records them and ``settings_from_store`` reads them back into the dataclass, which is how ``abaw predict``
rebuilds the extractor that made a store::

    entry, settings = registry.settings_from_store(store.info(), store.root / "store.json")
    extractor = entry.build(settings, checkpoint, device)

Names of audio models and the ``abaw extract ...`` hint of a missing store come from here too.
Reads and writes nothing; the builders import torch-heavy modules lazily (``abaw --help`` stays fast).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from abawkit.errors import AbawError

PRECISIONS = ("bf16", "fp32")
POOLS = ("cls", "mean", "cls+mean")  # = models.backbones.POOLS (that module imports torch; a test keeps them equal)


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        if not getattr(obj, name) > 0:
            raise ValueError(f"{name} must be > 0, got {getattr(obj, name)!r}")


def _fp32_only(obj: Any) -> None:
    if obj.precision != "fp32":
        raise ValueError(f"precision must be fp32 (audio extractors run in fp32), got {obj.precision!r}")


@dataclass(frozen=True)
class VisionEncoderSettings:
    """A ViT / timm image encoder run over face crops (``features.vision``)."""

    img_size: int  # crops are resized to this side (the encoder's input)
    pool: str  # cls | mean | cls+mean
    mean: tuple[float, ...]  # the backbone's own normalisation of the resized crops
    std: tuple[float, ...]
    arch: str = ""  # timm name given on the command line; empty = read from the checkpoint
    input: str = "uint8-device"  # crops decoded to uint8, resized on the device (older stores: a float pipeline)
    final_norm: str = ""  # "fc_norm" where the model's last norm follows pooling (EVA-02), models.backbones.pooling_key
    precision: str = ""  # bf16 | fp32; empty only in stores older than recorded precisions

    def __post_init__(self) -> None:
        _positive(self, "img_size")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}")
        if self.precision not in ("", *PRECISIONS):
            raise ValueError(f"precision must be bf16 or fp32, got {self.precision!r}")


@dataclass(frozen=True)
class FbankSettings:
    n_mels: int = 64
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _positive(self, "n_mels")
        _fp32_only(self)


@dataclass(frozen=True)
class VGGishSettings:
    hop_s: float = 0.16  # seconds between 0.96 s examples
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _positive(self, "hop_s")
        _fp32_only(self)


@dataclass(frozen=True)
class HFAudioSettings:
    """HuBERT / wav2vec2 / WavLM: one hidden layer, the track encoded in windows of ``chunk_s`` seconds."""

    layer: int = -1
    chunk_s: float = 20.0  # every window is encoded on its own: another length gives other features
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _positive(self, "chunk_s")
        _fp32_only(self)


@dataclass(frozen=True)
class WhisperSettings:
    """The Whisper encoder: one hidden layer; its 30 s window is the checkpoint's (part of its content)."""

    layer: int = -1
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _fp32_only(self)


ASR_KINDS = ("whisper", "pocketsphinx", "transcripts")  # features.asr: the recognisers, or given transcripts
TEXT_ENCODERS = ("transformers", "hashing")  # features.text: a local transformers folder, or word hashing


@dataclass(frozen=True)
class TextSettings:
    """Speech to text, then a text encoder (``features.text``); the encoder folder is the store's checkpoint.

    ``asr_id`` is what made the transcripts: the Whisper folder's content sha256, PocketSphinx's version (its
    model ships in its wheel) or the given transcripts folder's content sha256, so another recogniser,
    retrained weights or edited transcripts give another store."""

    asr: str  # whisper | pocketsphinx | transcripts
    asr_id: str
    language: str = ""  # Whisper's language token; empty = the checkpoint's own (detected, or English-only)
    max_new_tokens: int = 0  # Whisper tokens per 30 s window; 0 = the checkpoint's generation_config
    max_tokens: int = 128  # encoder input: each segment's text is cut to this many tokens
    encoder: str = "transformers"  # transformers (a local folder, the store's checkpoint) | hashing (no weights)
    width: int = 256  # hashing: the embedding width (hashed word buckets)
    precision: str = "fp32"

    @property
    def weight_free(self) -> bool:
        """The hashing encoder has no weights, so no checkpoint is asked for (nor one random one stands in)."""
        return self.encoder == "hashing"

    def __post_init__(self) -> None:
        if self.encoder not in TEXT_ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(TEXT_ENCODERS)}, got {self.encoder!r}")
        _positive(self, "width")
        if self.asr not in ASR_KINDS:
            raise ValueError(f"asr must be one of {', '.join(ASR_KINDS)}, got {self.asr!r}")
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        _positive(self, "max_tokens")
        _fp32_only(self)


@dataclass(frozen=True)
class Extractor:
    """One registered extractor: ``build(settings, checkpoint, device)`` gives a ready extractor."""

    name: str
    kind: str  # "vision" | "audio" | "text"
    settings: type
    builder: Callable[[Any, Path | None, Any], Any]
    needs_checkpoint: bool = True

    @property
    def hint(self) -> str:
        """The command that makes a store of this extractor."""
        if self.kind == "text":
            return "abaw extract text --asr WHISPER_DIR|pocketsphinx --encoder ENCODER_DIR"
        return f"abaw extract audio --model {self.name}" if self.kind == "audio" else "abaw extract vision"

    def require_checkpoint(self, checkpoint: str | Path | None) -> None:
        """A one-line error if this extractor needs weights and ``checkpoint`` is empty."""
        if not self.needs_checkpoint or checkpoint:
            return
        if self.name == "vggish":  # random VGGish weights give features that look real and mean nothing
            raise AbawError("VGGish needs its weights: pass --checkpoint FILE (a VGGish .pth state dict, "
                            "e.g. the PyTorch port's vggish-10086976.pth)")
        if self.kind == "text":
            raise AbawError("abaw extract text needs --encoder DIR (a local transformers text encoder folder)")
        what = "an encoder file or folder" if self.kind == "vision" else "a local transformers checkpoint folder"
        raise AbawError(f"--model {self.name} needs --checkpoint ({what})")

    def build(self, settings: Any, checkpoint: str | Path | None, device: Any) -> Any:
        """The extractor for ``settings`` (this entry's dataclass) with the weights at ``checkpoint``."""
        if not isinstance(settings, self.settings):
            raise TypeError(f"{self.name} takes {self.settings.__name__}, not {type(settings).__name__}")
        if not getattr(settings, "weight_free", False):
            self.require_checkpoint(checkpoint)
        return self.builder(settings, Path(checkpoint) if checkpoint else None, device)


def _build_vision(s: VisionEncoderSettings, checkpoint: Path | None, device: Any) -> Any:
    from abawkit.features.vision import VisionExtractor  # torch

    return VisionExtractor.load(checkpoint, s, device)


def _audio_builder(model: str) -> Callable[[Any, Path | None, Any], Any]:
    def build(s: Any, checkpoint: Path | None, device: Any) -> Any:
        from abawkit.features.audio import (
            build_audio_extractor,  # torch, torchaudio, transformers
        )

        values = {f.name: getattr(s, f.name) for f in fields(s) if f.name not in ("layer", "precision")}
        return build_audio_extractor(model, checkpoint, getattr(s, "layer", -1), str(device), **values)

    return build


def _build_text(s: TextSettings, checkpoint: Path | None, device: Any) -> Any:
    """The store's text encoder (the recogniser is the extract stage's: ``features.asr.build_asr``)."""
    from abawkit.features.text import HashingEncoder, TextEncoder  # torch, transformers

    if s.weight_free:
        return HashingEncoder(s.width)
    return TextEncoder(checkpoint, s.max_tokens, device)  # type: ignore[arg-type]


VISION = "vision"
TEXT = "text"
REGISTRY: dict[str, Extractor] = {e.name: e for e in (
    Extractor(VISION, "vision", VisionEncoderSettings, _build_vision),
    Extractor("fbank", "audio", FbankSettings, _audio_builder("fbank"), needs_checkpoint=False),
    Extractor("vggish", "audio", VGGishSettings, _audio_builder("vggish")),
    Extractor("hubert", "audio", HFAudioSettings, _audio_builder("hubert")),
    Extractor("wav2vec2", "audio", HFAudioSettings, _audio_builder("wav2vec2")),
    Extractor("wavlm", "audio", HFAudioSettings, _audio_builder("wavlm")),
    Extractor("whisper", "audio", WhisperSettings, _audio_builder("whisper")),
    Extractor(TEXT, "text", TextSettings, _build_text),
)}


def names(kind: str | None = None) -> tuple[str, ...]:
    return tuple(n for n, e in REGISTRY.items() if kind is None or e.kind == kind)


AUDIO_NAMES = names("audio")


def get(name: str) -> Extractor:
    if name not in REGISTRY:
        raise AbawError(f"unknown extractor {name!r}; expected one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def audio(name: str) -> Extractor:
    """The audio entry ``name`` (``abaw extract audio --model``)."""
    if name not in AUDIO_NAMES:
        raise AbawError(f"unknown audio model {name!r}; expected {', '.join(AUDIO_NAMES)}")
    return REGISTRY[name]


def hint(store: str) -> str:
    """The command that makes ``features/<store>``: audio and text stores are named after their model."""
    return REGISTRY[store].hint if store in (*AUDIO_NAMES, TEXT) else REGISTRY[VISION].hint


def make_settings(entry: Extractor, values: dict[str, Any], where: object) -> Any:
    """``entry``'s settings from plain values (JSON or a config): types checked, one-line error at ``where``."""
    hints = typing.get_type_hints(entry.settings)
    known = {f.name for f in fields(entry.settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise AbawError(f"{where}: unknown setting {unknown[0]!r} for extractor {entry.name} "
                        f"(known: {', '.join(sorted(known))}); re-extract the store with this abawkit")
    try:
        return entry.settings(**{k: _coerce(hints[k], v, k) for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise AbawError(f"{where}: invalid settings for extractor {entry.name}: {exc}") from None


def _coerce(kind: Any, value: Any, name: str) -> Any:
    """JSON value -> the field's type (lists -> tuples, ints -> floats); anything else is a ValueError."""
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    if typing.get_origin(kind) is tuple and isinstance(value, (list, tuple)):
        return tuple(float(x) for x in value)
    raise ValueError(f"{name} = {value!r} is not a {getattr(kind, '__name__', kind)}")


def from_config(entry: Extractor, cfg: Any, where: object, **values: Any) -> Any:
    """``entry``'s settings from a config dataclass: each settings field it has (e.g. ``chunk_s``), then ``values``."""
    known = {f.name for f in fields(entry.settings)}
    own = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name in known}
    return make_settings(entry, {**own, **values}, where)


def settings_from_store(info: dict[str, Any], where: object = "store.json") -> tuple[Extractor, Any]:
    """(entry, settings) recorded in a store's ``store.json`` (``info``); ``where`` names the file in errors.

    Stores written before the registry (no ``"model"`` beside the settings) still read: an audio store's
    model was its ``settings["model"]``, anything else is the vision encoder; fields they lack get their
    defaults (``chunk_s`` 20.0 s, as those stores were made), fields recorded as null are dropped.
    """
    recorded = dict(info.get("settings") or {})
    name = info.get("model") or recorded.pop("model", None) or VISION
    if not isinstance(name, str) or name not in REGISTRY:
        raise AbawError(f"{where}: unknown extractor {name!r}; expected one of {', '.join(REGISTRY)}")
    recorded.pop("model", None)
    entry = REGISTRY[name]
    return entry, make_settings(entry, {k: v for k, v in recorded.items() if v is not None}, where)
