"""A synthetic Hume-Vidmimic2-like release for emotional mimicry intensity (``abaw synth OUT --track emi``).

Each clip has 6 intensities in [0, 1] (Admiration, Amusement, Determination, Empathic Pain, Excitement,
Joy): 1-2 dominant emotions at 0.4-1, the others at 0-0.2. They show in the face (each emotion's AUs on
with probability 0.8 x its intensity) and in the words (each of an emotion's two cue words is said with
probability equal to its intensity). Writes, under the release root, the layout ``release/emi.py`` reads:
``raw/<id>.mp4`` (5-digit ids), ``train_split.csv`` / ``valid_split.csv`` (``Filename`` + the 6 names),
``test_split.csv`` (``Filename`` only), ``test_ground_truth/EMI/labels.csv`` (the test intensities),
``cropped_aligned/<id>/00001.jpg`` and ``transcripts/<id>.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from abawkit.formats.emi import HEADER
from abawkit.labels import EMI_NAMES
from abawkit.release.synth.clips import Clip, ClipSpec, au_runs, person_look, phrase_words, roles, write_clip

CUES = {"Admiration": ("admire", "wonderful"), "Amusement": ("funny", "haha"), "Determination": ("must", "will"),
        "Empathic Pain": ("sorry", "hurts"), "Excitement": ("wow", "amazing"), "Joy": ("happy", "love")}
FACES = {"Admiration": ("AU1", "AU2"), "Amusement": ("AU6", "AU12", "AU25"), "Determination": ("AU4", "AU7", "AU23"),
         "Empathic Pain": ("AU1", "AU4", "AU15"), "Excitement": ("AU2", "AU25", "AU26"), "Joy": ("AU6", "AU12")}
VOCAB = ["the", "video", "man", "woman", "that", "was", "so", "and", "then", "look", "she", "he", "it", "this"]


def intensities(rng: np.random.Generator) -> np.ndarray:
    """[6] in [0, 1], 3 decimals: 1-2 dominant emotions."""
    y = rng.uniform(0, 0.2, len(EMI_NAMES))
    dom = rng.choice(len(EMI_NAMES), size=int(rng.integers(1, 3)), replace=False)
    y[dom] = rng.uniform(0.4, 1.0, len(dom))
    return np.round(y, 3)


def plan(spec: ClipSpec) -> tuple[list[Clip], np.ndarray]:
    """The clips and their intensities [V, 6]: a pure function of the seed."""
    rng = np.random.default_rng([spec.seed, 40])
    role = roles(spec.videos, rng)
    clips, ys = [], []
    for i in range(spec.videos):
        crng = np.random.default_rng([spec.seed, 41, i])
        y = intensities(crng)
        look, f0 = person_look((spec.seed, 42, i), spec)
        p_on: dict[str, float] = {}
        for e, v in zip(EMI_NAMES, y):
            for au in FACES[e]:
                p_on[au] = max(p_on.get(au, 0.0), 0.8 * float(v))
        cues = [w for e, v in zip(EMI_NAMES, y) for w in CUES[e] if crng.random() < v]
        n = int(crng.uniform(*spec.seconds) * spec.fps)
        name = f"{i + 1:05d}"
        words = phrase_words(VOCAB, cues, int(crng.integers(3, 6)), crng)
        clips.append(Clip(name, f"raw/{name}.mp4", str(role[i]), n, look, au_runs(n, spec.fps, p_on, crng), words, f0))
        ys.append(y)
    return clips, np.asarray(ys)


def _csv(rows: list[tuple[str, np.ndarray]]) -> str:
    return ",".join(HEADER) + "\n" + "".join(f"{v}," + ",".join(f"{x:.3f}" for x in y) + "\n" for v, y in rows)


def write_release(root: Path, spec: ClipSpec, advance=lambda: None) -> dict:
    """Write every clip and the CSVs; returns {role: count}."""
    clips, ys = plan(spec)
    rows: dict[str, list] = {"train": [], "val": [], "test": []}
    for k, (clip, y) in enumerate(zip(clips, ys)):
        write_clip(root, clip, spec, np.random.default_rng([spec.seed, 43, k]))
        rows[clip.role].append((clip.name, y))
        advance()
    (root / "train_split.csv").write_text(_csv(rows["train"]))
    (root / "valid_split.csv").write_text(_csv(rows["val"]))
    (root / "test_split.csv").write_text("Filename\n" + "".join(f"{v}\n" for v, _ in rows["test"]))
    truth = root / "test_ground_truth" / "EMI"
    truth.mkdir(parents=True, exist_ok=True)
    (truth / "labels.csv").write_text(_csv(rows["test"]))
    return {r: len(v) for r, v in rows.items()}
