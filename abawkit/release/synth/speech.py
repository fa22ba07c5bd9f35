"""Synthetic speech for the video-level synthetic releases: each word a fixed pattern of voiced syllables.

No text-to-speech engine is available offline, so a word is rendered as 1-3 syllables, each a harmonic
tone (the speaker's pitch) shaped by two formant-like resonances drawn from the word alone: the same
word always sounds the same (up to the speaker's pitch), different words differ, and a model that hears
well enough can tell "maybe" from "coffee". ``speak`` lays words out in time with pauses and returns the
audio with its transcript (segments of words with start/end seconds), which the synthetic release keeps
as truth. Pure functions of their arguments; writes nothing.
"""

from __future__ import annotations

import zlib

import numpy as np

FORMANTS = np.array([[300, 870], [400, 2000], [600, 1200], [750, 1300], [350, 2300], [500, 1500], [650, 1700],
                     [280, 600]], np.float64)  # (F1, F2) Hz of 8 vowel-like colours
SYLLABLE_S = (0.12, 0.22)  # duration range of one syllable
WORD_GAP_S = 0.06
PHRASE_GAP_S = 0.35


def word_pattern(word: str) -> list[tuple[int, float, float]]:
    """(vowel colour, duration s, pitch factor) per syllable: a fixed function of the word's letters."""
    rng = np.random.default_rng(zlib.crc32(word.lower().encode()))
    n = 1 + sum(c in "aeiouy" for c in word.lower()[1:]) // 2
    n = int(min(3, max(1, n)))
    return [(int(rng.integers(len(FORMANTS))), float(rng.uniform(*SYLLABLE_S)), float(rng.uniform(0.85, 1.2)))
            for _ in range(n)]


def syllable(colour: int, seconds: float, f0: float, rate: int) -> np.ndarray:
    """One voiced syllable [T]: harmonics of f0 weighted by two resonances, with a smooth envelope."""
    t = np.arange(int(seconds * rate)) / rate
    f1, f2 = FORMANTS[colour]
    k = np.arange(1, int(4000 / f0) + 1)  # harmonics below 4 kHz
    gain = np.exp(-((k * f0 - f1) / 120) ** 2) + 0.6 * np.exp(-((k * f0 - f2) / 180) ** 2) + 0.02
    wave = (gain[:, None] * np.sin(2 * np.pi * f0 * k[:, None] * t[None, :])).sum(0)
    env = np.sin(np.pi * np.clip(t / max(seconds, 1e-6), 0, 1)) ** 0.6
    return (wave * env / max(gain.sum(), 1e-6)).astype(np.float32)


def word_audio(word: str, f0: float, rate: int) -> np.ndarray:
    """A word's syllables back to back [T]."""
    return np.concatenate([syllable(c, d, f0 * p, rate) for c, d, p in word_pattern(word)])


def speak(phrases: list[list[str]], seconds: float, rate: int, f0: float, rng: np.random.Generator,
          loud: float = 0.3) -> tuple[np.ndarray, list[dict]]:
    """Audio [seconds * rate] of the phrases said one after another from a random onset, and the transcript:
    ``[{"text", "start", "end", "words": [{"word", "start", "end"}]}]`` (seconds). Words that would run past
    the end are left unsaid (and out of the transcript)."""
    n = int(seconds * rate)
    audio = np.zeros(n, np.float32)
    t = float(rng.uniform(0.1, 0.4))
    segments = []
    for words in phrases:
        said = []
        for w in words:
            wav = word_audio(w, f0, rate)
            start = int(t * rate)
            if start + len(wav) > n:
                break
            audio[start:start + len(wav)] += loud * wav
            said.append({"word": w, "start": round(t, 3), "end": round(t + len(wav) / rate, 3)})
            t += len(wav) / rate + WORD_GAP_S
        if said:
            segments.append({"text": " ".join(x["word"] for x in said), "start": said[0]["start"],
                             "end": said[-1]["end"], "words": said})
        t += PHRASE_GAP_S
    return audio, segments
