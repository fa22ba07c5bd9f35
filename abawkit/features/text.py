"""Text features: what was said, embedded, on every frame of the video.

A video's transcript (``features.asr``: Whisper, PocketSphinx, or given files) is a list of timed segments;
each segment's text is embedded by a local transformers encoder (``TextEncoder``: any ``AutoModel``, the
last hidden state mean-pooled over the segment's tokens) or, weight-free, by word hashing (``HashingEncoder``) and the embedding is put on every frame the
segment spans (frame ``i``, 1-based, at ``(i - 1) / fps`` on the prep clock, as the audio features:
a frame belongs to a segment when ``start <= t < end``; where segments overlap, the later one wins).
The stored array is ``[n_frames, dim + 1]`` float16: the embedding, then a speech flag (1 on a frame
inside a segment, 0 elsewhere, where the embedding is zeros), as the audio stores' last column.

Transcripts are kept beside the arrays, one readable JSON per video (``transcripts/<video>.json``)::

    {"video": "v1", "asr": "whisper", "duration": 12.4,
     "segments": [{"start": 0.52, "end": 2.1, "text": "hello there",
                   "words": [{"word": "hello", "start": 0.52, "end": 0.9}, ...]}]}   # words: optional

The same format is what ``abaw extract text --transcripts DIR`` reads (``DIR/<video>.json``; only
``segments`` with ``start``, ``end``, ``text`` are required). Reads WAVs and checkpoint folders; writes the
transcript files (atomically) and returns arrays for the feature store.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from abawkit.errors import AbawError, first_line, where
from abawkit.features.asr import Segment, load_local
from abawkit.features.audio import SAMPLE_RATE, frame_times, load_audio
from abawkit.io import read_json, write_json

TRANSCRIPTS = "transcripts"  # the folder of a text store that holds its transcripts


# ----------------------------------------------------------------------------- transcripts
def write_transcript(path: Path, video: str, asr: str, segments: list[Segment], duration: float | None) -> Path:
    """One video's transcript as readable JSON (atomic)."""
    body = {"video": video, "asr": asr, "duration": None if duration is None else round(duration, 3),
            "segments": [s.as_json() for s in segments]}
    return write_json(path, body)


def _time(seg: dict, key: str, path: Path, i: int) -> float:
    value = seg.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise AbawError(f"{where(path, field=f'segments[{i}].{key}')}: expected a time in seconds >= 0, got {value!r}")
    return float(value)


def read_transcript(path: Path) -> list[Segment]:
    """A transcript file -> its segments in time order; a bad file is one line naming the file and field."""
    try:
        body = read_json(path)
    except (ValueError, OSError) as exc:
        raise AbawError(f"{path}: not a readable transcript ({first_line(exc)})") from None
    segs = body.get("segments") if isinstance(body, dict) else None
    if not isinstance(segs, list):
        raise AbawError(f"{where(path, field='segments')}: expected a list of {{start, end, text}}")
    out = []
    for i, seg in enumerate(segs):
        if not isinstance(seg, dict):
            raise AbawError(f"{where(path, field=f'segments[{i}]')}: expected an object with start, end, text")
        start, end = _time(seg, "start", path, i), _time(seg, "end", path, i)
        if end < start:
            raise AbawError(f"{where(path, field=f'segments[{i}]')}: end {end} is before start {start}")
        if not isinstance(seg.get("text"), str):
            raise AbawError(f"{where(path, field=f'segments[{i}].text')}: expected a string")
        out.append(Segment(start, end, seg["text"].strip(), tuple(seg.get("words") or ())))
    return sorted(out, key=lambda s: (s.start, s.end))


# ----------------------------------------------------------------------------- placement
def place_segments(segments: list[Segment], emb: np.ndarray, frame_t: np.ndarray) -> np.ndarray:
    """Segment embeddings ``emb [S, D]`` on frames at ``frame_t [N]`` s -> ``[N, D + 1]`` float32, last column
    the speech flag. A frame takes the segment with ``start <= t < end`` (the later one where they overlap)."""
    out = np.zeros((len(frame_t), emb.shape[1] + 1), np.float32)
    for seg, vec in zip(segments, emb):
        inside = (frame_t >= seg.start) & (frame_t < seg.end)
        out[inside, :-1] = vec
        out[inside, -1] = 1.0
    return out


# ----------------------------------------------------------------------------- encoder
class TextEncoder:
    """A local transformers encoder (``AutoModel`` + ``AutoTokenizer``): texts -> mean-pooled last hidden state."""

    def __init__(self, folder: Path, max_tokens: int = 128, device: Any = "cpu", batch_size: int = 32) -> None:
        import transformers

        self.model = load_local(transformers.AutoModel, folder, "model").eval().to(device)
        self.tokenizer = load_local(transformers.AutoTokenizer, folder, "tokenizer")
        self.max_tokens, self.device, self.batch_size = max_tokens, device, batch_size
        self.dim = int(self.model.config.hidden_size)

    def __call__(self, texts: list[str]) -> np.ndarray:
        """[len(texts), dim] float32, the mean over each text's tokens (padding excluded)."""
        import torch

        parts = [np.zeros((0, self.dim), np.float32)]
        for k in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[k:k + self.batch_size], padding=True, truncation=True,
                                   max_length=self.max_tokens, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state.float()  # [B, T, D]
            mask = batch["attention_mask"].unsqueeze(-1).float()  # [B, T, 1]
            parts.append((hidden * mask).sum(1).div(mask.sum(1).clamp(min=1.0)).cpu().numpy())
        return np.concatenate(parts)


class HashingEncoder:
    """Weight-free text embedding: scikit-learn's ``HashingVectorizer`` over a segment's words (``width``
    buckets, unsigned counts, L2-normalised). Deterministic and needing no download, it lets the synthetic
    release exercise the text path without ever standing random weights in for a real encoder."""

    def __init__(self, width: int = 256) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self.dim = int(width)
        self.vectorizer = HashingVectorizer(n_features=self.dim, alternate_sign=False, norm="l2", lowercase=True)

    def __call__(self, texts: list[str]) -> np.ndarray:
        """[len(texts), width] float32."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self.vectorizer.transform(texts).toarray().astype(np.float32)


# ----------------------------------------------------------------------------- one video
def video_text_features(encoder: Any, segments: list[Segment], n_frames: int, fps: float) -> np.ndarray:
    """A video's segments -> ``[n_frames, dim + 1]`` (embedding, speech flag) on the prep clock."""
    return segment_features(encoder, segments, frame_times(n_frames, fps))


def segment_features(encoder: Any, segments: list[Segment], frame_t: np.ndarray) -> np.ndarray:
    """The spoken segments embedded and put on the frames at times ``frame_t`` [N] s -> ``[N, dim + 1]`` (empty
    or zero-length segments are skipped). ``abaw predict`` passes a clip's own frame timestamps."""
    segments = [s for s in segments if s.text and s.end > s.start]
    emb = encoder([s.text for s in segments]) if segments else np.zeros((0, encoder.dim), np.float32)
    return place_segments(segments, emb, frame_t)


def transcribe(recogniser: Any, audio: str | Path | None) -> tuple[list[Segment], float | None]:
    """(segments, duration s) of a WAV; no file -> no segments, duration None."""
    if audio is None or not Path(audio).is_file():
        return [], None
    wave = load_audio(audio)
    return recogniser(wave), len(wave) / SAMPLE_RATE
