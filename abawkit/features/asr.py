"""Speech to text on the machine: timed segments of a 16 kHz waveform, from local weights only.

Backends (``features.registry.ASR_KINDS``):
- ``whisper``: a transformers ``WhisperForConditionalGeneration`` folder (weights, ``generation_config.json``
  with its timestamp tokens, processor / tokenizer files). Greedy decoding with segment timestamps;
  audio longer than 30 s goes through transformers' sequential long-form decoding (window by window,
  each next window starting at the last timestamp), so any length works and the times are absolute.
- ``pocketsphinx``: CMU PocketSphinx >= 5, whose wheel ships an en-us acoustic model, dictionary and
  language model (an optional dependency, imported only here). Its voice-activity ``Segmenter`` cuts the
  track into utterances; each is decoded on its own, with word times.
- ``transcripts``: no recogniser; the segments come from files (``features.text.read_transcript``).

Reads a checkpoint folder (never a hub: ``local_files_only``, no remote code, safetensors or
``weights_only`` pickles) and writes nothing. Each recogniser maps ``wave [S]`` (float32, 16 kHz) to a
list of ``Segment`` (seconds on the audio's clock, which starts with the video's first frame).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from abawkit.errors import AbawError, first_line

SAMPLE_RATE = 16000
POCKETSPHINX = "pocketsphinx"


@dataclass(frozen=True)
class Segment:
    """One stretch of speech: ``start`` <= t < ``end`` seconds, its text, and its words when the recogniser gives them."""

    start: float
    end: float
    text: str
    words: tuple[dict[str, Any], ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text}
        if self.words:
            out["words"] = list(self.words)
        return out


class Recogniser(Protocol):
    name: str

    def __call__(self, wave: np.ndarray) -> list[Segment]:
        """wave [S] float32 at 16 kHz -> segments in time order."""
        ...


def refuse_remote_code(folder: Path) -> None:
    """A folder whose configs name their own Python classes (``auto_map``) is refused: that code would run."""
    for name in ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            cfg = json.loads(path.read_text())
        except ValueError as exc:
            raise AbawError(f"{path}: invalid JSON ({first_line(exc)})") from None
        if isinstance(cfg, dict) and "auto_map" in cfg:
            raise AbawError(f"{path}: names its own code (auto_map); abawkit never runs code that ships with "
                            "a checkpoint: use a folder of a model that transformers knows")


def load_local(cls: Any, folder: Path, what: str) -> Any:
    """``cls.from_pretrained(folder)`` held to the checkpoint rules: this folder only, no remote code,
    safetensors or ``weights_only`` pickles unless ``--trust-checkpoint``; failures are one line."""
    import inspect

    from abawkit.models.checkpoints import refused, trusted

    if not (folder / "config.json").is_file() and what == "model":
        raise AbawError(f"{folder}: not a transformers checkpoint folder (no config.json)")
    refuse_remote_code(folder)
    opt = {"weights_only": not trusted()} if "weights_only" in inspect.signature(cls.from_pretrained).parameters else {}
    try:
        return cls.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False, **opt)
    except Exception as exc:  # noqa: BLE001 - a broken or unsafe folder is a bad input
        if "GLOBAL" in str(exc) or "weights_only" in str(exc):
            raise refused(folder, exc) from None
        raise AbawError(f"{folder}: cannot load its {what} ({type(exc).__name__}: {first_line(exc)})") from None


class WhisperASR:
    """A local Whisper folder: greedy decoding with segment timestamps, long audio in 30 s windows."""

    name = "whisper"

    def __init__(self, folder: Path, device: str = "cpu", language: str = "", max_new_tokens: int = 0) -> None:
        import transformers

        self.model = load_local(transformers.WhisperForConditionalGeneration, folder, "model").eval().to(device)
        self.processor = load_local(transformers.WhisperProcessor, folder, "processor")
        if getattr(self.model.generation_config, "no_timestamps_token_id", None) is None:
            raise AbawError(f"{folder}: generation_config.json has no timestamp tokens (no_timestamps_token_id): "
                            "segments cannot be timed; use the checkpoint's own generation_config.json")
        self.folder, self.device, self.language, self.max_new_tokens = folder, device, language, max_new_tokens

    def _generate(self, wave: np.ndarray) -> list[dict]:
        import torch
        from transformers.utils import logging as transformers_logging

        fe = self.processor.feature_extractor
        long = {"truncation": False, "padding": "longest"} if len(wave) > fe.n_samples else {}  # else: one 30 s window
        x = fe(wave, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True, **long)
        opts: dict[str, Any] = {"language": self.language} if self.language else {}
        if self.max_new_tokens:
            opts["max_new_tokens"] = self.max_new_tokens
        quiet = transformers_logging.get_verbosity()
        transformers_logging.set_verbosity_error()  # its per-window notes on max_length / deprecated arguments
        try:
            with torch.inference_mode():
                out = self.model.generate(x.input_features.to(self.device), attention_mask=x.attention_mask.to(self.device),
                                          return_timestamps=True, return_segments=True, do_sample=False, num_beams=1,
                                          condition_on_prev_tokens=False, **opts)
        except ValueError as exc:  # e.g. a language the checkpoint does not know
            raise AbawError(f"{self.folder}: cannot transcribe ({first_line(exc)})") from None
        finally:
            transformers_logging.set_verbosity(quiet)
        return out["segments"][0]

    def __call__(self, wave: np.ndarray) -> list[Segment]:
        if len(wave) < SAMPLE_RATE // 10:  # under 0.1 s: nothing to say
            return []
        duration = len(wave) / SAMPLE_RATE
        segs = []
        for s in self._generate(wave):
            text = self.processor.tokenizer.decode(s["tokens"], skip_special_tokens=True).strip()
            start, end = float(s["start"]), min(float(s["end"]), duration)
            if text and end > start:
                segs.append(Segment(start, end, text))
        return segs


_ALT = re.compile(r"\(\d+\)$")  # cmudict's alternative pronunciations: "to(3)"


class PocketsphinxASR:
    """PocketSphinx with the en-us model shipped in its wheel: VAD utterances, each decoded with word times."""

    name = POCKETSPHINX
    FRATE = 100  # decoder frames per second (its default -frate)

    def __init__(self) -> None:
        self.version()  # installed, or one line saying how
        import pocketsphinx

        self.ps = pocketsphinx
        self.decoder = pocketsphinx.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")

    @staticmethod
    def version() -> str:
        """``pocketsphinx <version>``: what made the transcripts (its model ships in its wheel)."""
        import importlib.util
        from importlib.metadata import version

        if importlib.util.find_spec("pocketsphinx") is None:
            raise AbawError("--asr pocketsphinx needs the pocketsphinx package (>= 5, it ships its en-us model): "
                            "pip install pocketsphinx")
        return f"pocketsphinx {version('pocketsphinx')}"

    def _words(self, t0: float) -> tuple[dict[str, Any], ...]:
        words = []
        for s in self.decoder.seg():
            w = _ALT.sub("", s.word)
            if w.startswith(("<", "[")) or not w:  # <s>, </s>, <sil>, [NOISE]
                continue
            words.append({"word": w, "start": round(t0 + s.start_frame / self.FRATE, 3),
                          "end": round(t0 + (s.end_frame + 1) / self.FRATE, 3)})
        return tuple(words)

    def __call__(self, wave: np.ndarray) -> list[Segment]:
        pcm = (np.clip(wave, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        segmenter = self.ps.Segmenter(sample_rate=SAMPLE_RATE)
        segs = []
        for utt in segmenter.segment(io.BytesIO(pcm)):
            self.decoder.start_utt()
            self.decoder.process_raw(utt.pcm, full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            text = hyp.hypstr.strip() if hyp is not None else ""
            if text:
                segs.append(Segment(float(utt.start_time), float(utt.end_time), text, self._words(float(utt.start_time))))
        return segs


def asr_kind(asr: str) -> str:
    """``--asr`` value -> backend: the word ``pocketsphinx``, else a Whisper folder."""
    return POCKETSPHINX if asr == POCKETSPHINX else "whisper"


def build_asr(asr: str, device: str = "cpu", language: str = "", max_new_tokens: int = 0) -> Recogniser:
    """``pocketsphinx`` or a local Whisper folder -> a ready recogniser."""
    if asr_kind(asr) == POCKETSPHINX:
        return PocketsphinxASR()
    folder = Path(asr)
    if not folder.is_dir():
        raise AbawError(f"{folder}: --asr must be a local Whisper checkpoint folder or 'pocketsphinx'")
    return WhisperASR(folder, device, language, max_new_tokens)
