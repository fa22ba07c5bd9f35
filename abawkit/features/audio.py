"""Audio features resampled to video frame times.

Each extractor maps a 16 kHz mono waveform to features at its own rate (``feats [T, D]`` with the
time in seconds of each row, ``times [T]``); ``align_to_frames`` then resamples them to the video's
frames (frame ``i``, 1-based, is at ``(i - 1) / fps``) by linear interpolation. One flag column is
appended: 1 where the audio covers the frame time, 0 where it does not (no audio track, or audio
shorter than the video); uncovered frames get zeros. Audio longer than the video is cut.

Extractors: ``fbank`` (Kaldi log-mel filter banks, no weights), ``hubert`` / ``wav2vec2`` / ``wavlm`` (a
local transformers checkpoint folder, one hidden layer), ``whisper`` (the encoder of a transformers
Whisper folder, its own log-mel feature extractor, 30 s windows one by one), ``vggish`` (``abawkit.models.vggish``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from abawkit.errors import AbawError, first_line

SAMPLE_RATE = 16000


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a WAV (any rate/channels) -> float32 mono [S] at ``sample_rate``."""
    import soundfile as sf

    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AbawError(f"{path}: unreadable audio ({exc})") from None
    wave = wave.mean(axis=1)
    if sr != sample_rate:
        import torchaudio.functional as AF

        wave = AF.resample(torch.from_numpy(wave), sr, sample_rate).numpy()
    return np.ascontiguousarray(wave, dtype=np.float32)


def frame_times(n_frames: int, fps: float) -> np.ndarray:
    """[n_frames] seconds: frame i (1-based) is shown at (i - 1) / fps."""
    return np.arange(n_frames, dtype=np.float64) / float(fps)


def interp_rows(times: np.ndarray, feats: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear interpolation of rows ``feats [T, D]`` sampled at ``times [T]`` to ``t [N]`` -> [N, D]."""
    if len(times) == 1:
        return np.repeat(feats, len(t), axis=0)
    hi = np.clip(np.searchsorted(times, t), 1, len(times) - 1)
    lo = hi - 1
    w = np.clip((t - times[lo]) / (times[hi] - times[lo]), 0.0, 1.0)[:, None]
    return (1 - w) * feats[lo] + w * feats[hi]


def align_to_frames(feats: np.ndarray, times: np.ndarray, duration: float, n_frames: int, fps: float,
                    frame_t: np.ndarray | None = None) -> np.ndarray:
    """[T, D] features at ``times`` -> [n_frames, D + 1] at frame times, last column = audio-present flag.

    Frame times are ``frame_t`` [n_frames] (each frame's timestamp: variable frame rates) or n / fps."""
    t = frame_times(n_frames, fps) if frame_t is None else np.asarray(frame_t, np.float64)
    covered = t < duration
    out = np.zeros((n_frames, feats.shape[1] + 1), dtype=np.float32)
    if len(times) and covered.any():
        out[covered, :-1] = interp_rows(times, feats.astype(np.float64), t[covered])
        out[covered, -1] = 1.0
    return out


class AudioExtractor(Protocol):
    name: str
    dim: int

    def __call__(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """wave [S] at 16 kHz -> (features [T, dim], row times [T] in seconds)."""
        ...


@dataclass
class Fbank:
    """Kaldi-style log-mel filter banks, 25 ms window / 10 ms hop; no weights needed."""

    n_mels: int = 64
    name: str = "fbank"
    chunk: int = 6000  # windows per kaldi call (60 s): its [T, 512] spectra of a whole long track need GBs

    @property
    def dim(self) -> int:
        return self.n_mels

    def __call__(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows are independent (per-window DC removal and pre-emphasis), so chunks of whole windows
        give the same rows as one call, with memory bounded by ``chunk``."""
        from torchaudio.compliance import kaldi

        if len(wave) < 400:  # shorter than one window
            return np.zeros((0, self.dim), np.float32), np.zeros(0)
        n = (len(wave) - 400) // 160 + 1  # 25 ms windows every 10 ms, edges snipped
        parts = []
        for k0 in range(0, n, self.chunk):
            k1 = min(n, k0 + self.chunk)
            x = torch.from_numpy(wave[160 * k0:160 * (k1 - 1) + 400]).unsqueeze(0) * 32768.0  # int16 scale
            parts.append(kaldi.fbank(x, num_mel_bins=self.n_mels, sample_frequency=SAMPLE_RATE, dither=0.0,
                                     frame_length=25.0, frame_shift=10.0, snip_edges=True).numpy())  # [K, n_mels]
        times = np.arange(n) * 0.010 + 0.0125  # window centres
        return np.concatenate(parts), times


def extract_frames(extractor: AudioExtractor, audio: str | Path | None, n_frames: int, fps: float,
                   frame_t: np.ndarray | None = None) -> np.ndarray:
    """Features of one video at its frame times (``frame_t`` or n / fps): [n_frames, dim + 1]; no audio -> zeros, flag 0."""
    if audio is None or (isinstance(audio, float) and np.isnan(audio)) or not Path(audio).is_file():
        return np.zeros((n_frames, extractor.dim + 1), np.float32)
    wave = load_audio(audio)
    feats, times = extractor(wave)
    return align_to_frames(feats, times, len(wave) / SAMPLE_RATE, n_frames, fps, frame_t)


def build_audio_extractor(
    model: str, checkpoint: str | Path | None = None, layer: int = -1, device: str = "cpu", **settings: object,
) -> AudioExtractor:
    """``fbank`` | ``hubert`` | ``wav2vec2`` | ``wavlm`` | ``whisper`` | ``vggish`` -> a ready extractor.

    The untyped door under ``features.registry`` (whose entries build through it from typed settings)."""
    if model == "fbank":
        return Fbank(n_mels=int(settings.get("n_mels", 64)))  # type: ignore[arg-type]
    if model in ("hubert", "wav2vec2"):
        if checkpoint is None:
            raise AbawError(f"--model {model} needs --checkpoint DIR (a local transformers checkpoint folder)")
        return HFAudio(model, Path(checkpoint), layer, device, float(settings.get("chunk_s", 20.0)))  # type: ignore[arg-type]
    if model == "vggish":
        return VGGishAudio(checkpoint, float(settings.get("hop_s", 0.16)), device)  # type: ignore[arg-type]
    if model in ENCODER_MODELS:
        return build_encoder_audio(model, checkpoint, layer, device, float(settings.get("chunk_s", 20.0)))  # type: ignore[arg-type]
    raise AbawError(f"unknown audio model {model!r}")  # callers go through features.registry.audio, which lists them


class HFAudio:
    """HuBERT / wav2vec2 from a local ``save_pretrained`` folder; hidden states of one layer (50 Hz)."""

    STRIDE_S = 0.020  # conv feature encoder stride
    OFFSET_S = 0.0125  # centre of the 25 ms receptive field

    def __init__(self, kind: str, folder: Path, layer: int, device: str = "cpu", chunk_s: float = 20.0) -> None:
        import transformers

        cls = transformers.HubertModel if kind == "hubert" else transformers.Wav2Vec2Model
        if not (folder / "config.json").is_file():
            raise AbawError(f"{folder}: not a transformers checkpoint folder (no config.json)")
        self.model = _from_pretrained(cls, folder).eval().to(device)
        n_layers = self.model.config.num_hidden_layers
        if not -n_layers - 1 <= layer <= n_layers:
            raise AbawError(f"--layer {layer}: {folder} has hidden states 0..{n_layers}")
        pre = folder / "preprocessor_config.json"
        self.normalize = bool(json.loads(pre.read_text()).get("do_normalize", False)) if pre.is_file() else False
        self.name, self.layer, self.device, self.chunk = kind, layer, device, int(chunk_s * SAMPLE_RATE)
        self.dim = int(self.model.config.hidden_size)

    @torch.no_grad()
    def window_features(self, piece: np.ndarray) -> np.ndarray:
        """One chunk of samples -> [T, D] hidden states of ``self.layer``."""
        if self.normalize:
            piece = (piece - piece.mean()) / np.sqrt(piece.var() + 1e-7)
        x = torch.from_numpy(np.ascontiguousarray(piece)).unsqueeze(0).to(self.device)
        return self.model(x, output_hidden_states=True).hidden_states[self.layer][0].float().cpu().numpy()

    def __call__(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return by_window(wave, self.chunk, self.window_features, self.STRIDE_S, self.OFFSET_S, self.dim)


def by_window(wave: np.ndarray, window: int, encode, stride_s: float, offset_s: float,
              dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``wave`` window by window (``window`` samples; a last piece under 25 ms is dropped):
    features [T, dim] and their times (s) [T], row j of a window at ``start + offset_s + j * stride_s``.

    Transformer encoders see bounded windows (memory, Whisper's 30 s), so long tracks go through in pieces."""
    parts, times = [], []
    for start in range(0, len(wave), window):
        piece = wave[start:start + window]
        if len(piece) < 400:
            break
        feats = encode(piece)  # [t, dim]
        parts.append(feats)
        times.append(start / SAMPLE_RATE + offset_s + stride_s * np.arange(len(feats)))
    if not parts:
        return np.zeros((0, dim), np.float32), np.zeros(0)
    return np.concatenate(parts), np.concatenate(times)


def _from_pretrained(cls: type, folder: Path) -> torch.nn.Module:
    """transformers' loader, held to our rule: safetensors or ``weights_only`` unless ``--trust-checkpoint``."""
    import inspect

    from abawkit.models.checkpoints import refused, trusted

    # transformers >= 5 takes weights_only (default True); 4.x always loads .bin with weights_only=True
    opt = {"weights_only": not trusted()} if "weights_only" in inspect.signature(cls.from_pretrained).parameters else {}
    try:
        return cls.from_pretrained(str(folder), trust_remote_code=False, **opt)
    except Exception as exc:  # noqa: BLE001 - a broken or unsafe folder is a bad input
        if "GLOBAL" in str(exc):
            raise refused(folder, exc) from None
        raise AbawError(f"{folder}: cannot load {cls.__name__} ({type(exc).__name__}: {first_line(exc)})") from None


class VGGishAudio:
    """VGGish embeddings of 0.96 s examples every ``hop_s`` seconds, timed at the example centre."""

    def __init__(self, weights: str | Path | None, hop_s: float = 0.16, device: str = "cpu") -> None:
        """``weights``: a VGGish state dict file; None is refused (no random-weight features)."""
        from abawkit.models.vggish import load_vggish

        self.model = load_vggish(weights).to(device)
        self.hop_frames = max(1, round(hop_s * 100))
        self.name, self.dim, self.device = "vggish", 128, device

    @torch.no_grad()
    def __call__(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # the waveform goes to the model's device first: the mel front end's window lives there
        ex = self.model.examples(torch.from_numpy(wave).to(self.device), self.hop_frames)  # [N, 1, 96, 64]
        emb = torch.cat([self.model(b) for b in ex.split(256)]) if len(ex) else torch.zeros(0, 128)
        times = np.arange(len(ex)) * self.hop_frames * 0.010 + 0.48
        return emb.float().cpu().numpy(), times


# ----------------------------------------------------------------------------- WavLM, Whisper
ENCODER_MODELS = ("wavlm", "whisper")


def build_encoder_audio(model: str, checkpoint: str | Path | None, layer: int, device: str, chunk_s: float) -> AudioExtractor:
    """``wavlm`` (a transformers ``WavLMModel`` folder) or ``whisper`` (a Whisper folder); weights are required."""
    if checkpoint is None:
        raise AbawError(f"--model {model} needs --checkpoint DIR (a local transformers checkpoint folder)")
    folder = Path(checkpoint)
    if not (folder / "config.json").is_file():
        raise AbawError(f"{folder}: not a transformers checkpoint folder (no config.json)")
    if model == "wavlm":
        return WavLMAudio(folder, layer, device, chunk_s)
    return WhisperAudio(folder, layer, device)


def _check_layer(layer: int, n_layers: int, folder: Path) -> None:
    if not -n_layers - 1 <= layer <= n_layers:
        raise AbawError(f"--layer {layer}: {folder} has hidden states 0..{n_layers}")


class WavLMAudio(HFAudio):
    """WavLM (transformers ``WavLMModel``): the HuBERT recipe (raw 16 kHz wave, 20 ms frames, windows of ``chunk_s``)."""

    def __init__(self, folder: Path, layer: int, device: str = "cpu", chunk_s: float = 20.0) -> None:
        import transformers

        self.model = _from_pretrained(transformers.WavLMModel, folder).eval().to(device)
        _check_layer(layer, self.model.config.num_hidden_layers, folder)
        pre = folder / "preprocessor_config.json"
        self.normalize = bool(json.loads(pre.read_text()).get("do_normalize", False)) if pre.is_file() else False
        self.name, self.layer, self.device, self.chunk = "wavlm", layer, device, int(chunk_s * SAMPLE_RATE)
        self.dim = int(self.model.config.hidden_size)


class WhisperAudio:
    """The Whisper encoder with its own ``WhisperFeatureExtractor`` (log-mel, 10 ms hop, padded to 30 s).

    Audio is cut into 30 s windows, encoded one by one; encoder frame ``j`` of a window starting at
    ``t0`` sits at ``t0 + 0.02 j`` s (the stride-2 convolution over centred 10 ms mel frames). Frames past
    the window's real audio (Whisper pads every window to 30 s) are dropped before alignment.
    """

    STRIDE_S = 0.020

    def __init__(self, folder: Path, layer: int, device: str = "cpu") -> None:
        import transformers

        model = _from_pretrained(transformers.WhisperModel, folder)
        self.encoder = model.get_encoder().eval().to(device)
        del model
        _check_layer(layer, self.encoder.config.encoder_layers, folder)
        try:
            self.fe = transformers.WhisperFeatureExtractor.from_pretrained(str(folder))
        except (OSError, ValueError):  # no preprocessor_config.json: the model's own mel size, Whisper defaults
            self.fe = transformers.WhisperFeatureExtractor(feature_size=self.encoder.config.num_mel_bins)
        if self.fe.sampling_rate != SAMPLE_RATE:
            raise AbawError(f"{folder}: Whisper feature extractor expects {self.fe.sampling_rate} Hz, not {SAMPLE_RATE}")
        self.name, self.layer, self.device = "whisper", layer, device
        self.window = int(self.fe.n_samples)  # 30 s
        self.dim = int(self.encoder.config.d_model)

    @torch.no_grad()
    def window_features(self, piece: np.ndarray) -> np.ndarray:
        """One window (<= 30 s) -> [T, D] encoder states of its real audio (padding dropped)."""
        x = self.fe(piece, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features.to(self.device)
        hidden = self.encoder(x, output_hidden_states=True).hidden_states[self.layer][0]  # [1500, D]
        keep = min(hidden.shape[0], int(np.ceil(len(piece) / SAMPLE_RATE / self.STRIDE_S)))
        return hidden[:keep].float().cpu().numpy()

    def __call__(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return by_window(wave, self.window, self.window_features, self.STRIDE_S, 0.0, self.dim)
