"""One short talking-face clip of the video-level synthetic releases (A/H, EMI), written to disk.

A ``Clip`` is a video's plan: its person's look (drawn as in the classic release, ``make_person``), AU
activations per frame, the phrases it says and its voice pitch. ``write_clip`` renders it with the
classic face drawer (``faces.py``) and the word-pattern speech (``speech.py``) and writes the mp4 (H.264 +
AAC, ``media.write_mp4``), its face crops ``cropped_aligned/<name>/00001.jpg`` (1-based) and its
transcript ``transcripts/<name>.json`` (``{"video", "segments": [{"text", "start", "end", "words"}]}``,
seconds), the truth the text path is tested against. A pure function of the clip and the seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from abawkit.labels import AU_NAMES
from abawkit.release.synth.faces import draw_face, jitter
from abawkit.release.synth.labels import make_person
from abawkit.release.synth.media import write_mp4
from abawkit.release.synth.spec import SynthSpec
from abawkit.release.synth.speech import speak

AU_INDEX = {n: i for i, n in enumerate(AU_NAMES)}


@dataclass(frozen=True)
class ClipSpec:
    """Size of a video-level synthetic release."""

    videos: int = 24
    seconds: tuple[float, float] = (4.0, 6.0)
    fps: int = 25
    size: int = 64
    audio_rate: int = 16000
    seed: int = 0


@dataclass
class Clip:
    name: str  # the video's name (file stem, crop folder, transcript file)
    media: str  # the mp4's path relative to the release root
    role: str  # train | val | test
    n_frames: int
    look: dict
    au: np.ndarray  # [F, 12] 0/1
    phrases: list[list[str]] = field(default_factory=list)
    f0: float = 140.0


def person_look(seed: tuple, spec: ClipSpec) -> tuple[dict, float]:
    """A face look and a voice pitch (Hz), drawn as the classic release draws its people."""
    rng = np.random.default_rng(seed)
    p = make_person("look", "look", "train", SynthSpec(frames=2 * spec.fps, fps=spec.fps), rng)
    return p.look, float(110 * p.look["voice"] * rng.uniform(0.9, 1.4))


def au_runs(n: int, fps: int, p_on: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """AU activations [n, 12]: each named AU switches on/off in runs of 0.3-1 s, on with probability p_on[AU];
    the other AUs fire rarely (p 0.04) so faces vary."""
    out = np.zeros((n, len(AU_NAMES)), np.int8)
    for name, i in AU_INDEX.items():
        p = p_on.get(name, 0.04)
        t = 0
        while t < n:
            length = int(rng.integers(max(1, int(0.3 * fps)), fps + 1))
            out[t:t + length, i] = rng.random() < p
            t += length
    return out


def write_clip(root: Path, clip: Clip, spec: ClipSpec, rng: np.random.Generator) -> list[dict]:
    """Render and write one clip (mp4, crops, transcript); returns the transcript segments."""
    s = spec.size
    h = -(-(s + s // 4) // 16) * 16  # frame side, a multiple of 16 for H.264
    bg = rng.uniform(30, 220, size=3).astype(np.uint8)
    crops_dir = root / "cropped_aligned" / clip.name
    crops_dir.mkdir(parents=True, exist_ok=True)
    frames = []
    for f in range(clip.n_frames):
        face = jitter(draw_face(clip.au[f], clip.look, s), rng)  # [S, S, 3] BGR
        cv2.imwrite(str(crops_dir / f"{f + 1:05d}.jpg"), face, [cv2.IMWRITE_JPEG_QUALITY, 92])
        canvas = np.empty((h, h, 3), np.uint8)
        canvas[:] = bg
        dx = int((h - s) / 2 * (1 + 0.7 * np.sin(f / 30)))
        dy = int((h - s) / 2 * (1 + 0.7 * np.cos(f / 45)))
        canvas[dy:dy + s, dx:dx + s] = face
        frames.append(canvas)
    seconds = clip.n_frames / spec.fps
    audio, segments = speak(clip.phrases, seconds, spec.audio_rate, clip.f0, rng)
    audio = np.clip(audio + rng.normal(0, 0.004, audio.shape).astype(np.float32), -1, 1)
    media = root / clip.media
    media.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(media, frames, audio, spec.fps, spec.audio_rate)
    (root / "transcripts").mkdir(exist_ok=True)
    (root / "transcripts" / f"{clip.name}.json").write_text(
        json.dumps({"video": clip.name, "segments": segments}, indent=1) + "\n")
    return segments


def roles(n: int, rng: np.random.Generator) -> np.ndarray:
    """train / val / test for n units (people or videos): 20% val, 20% test (at least one each)."""
    out = np.array(["train"] * n, dtype=object)
    k = max(1, round(0.2 * n))
    out[rng.permutation(n)[: 2 * k]] = ["val"] * k + ["test"] * k
    return out


def phrase_words(vocab: list[str], cues: list[str], n_words: int, rng: np.random.Generator) -> list[list[str]]:
    """Phrases of 3-5 words from ``vocab`` with every word of ``cues`` placed at a random position."""
    words = list(rng.choice(vocab, size=max(n_words - len(cues), 1)))
    for c in cues:
        words.insert(int(rng.integers(len(words) + 1)), c)
    out, i = [], 0
    while i < len(words):
        k = int(rng.integers(3, 6))
        out.append([str(w) for w in words[i:i + k]])
        i += k
    return out
