"""A C-EXPR-DB-like synthetic release (``abaw synth OUT --track ce``): what the CE track ships, and a
held-out truth and training faces that let a model be checked end to end.

Writes under one folder:
- ``videos/01.mp4``, ``02.mp4``, ...: one person per video (H.264 + a quiet AAC track), no labels; the
  face shows compound expressions in 1-3 s segments, drawn with the classic face drawer
  (``faces.draw_face``) from the union of the two basic expressions' AU patterns (``spec.EXPR_AUS``),
  each AU on its own clock as in ``labels.au_track``;
- ``names_of_videos_in_each_test_set/ABAW_CE_test_set_example.txt``: the organisers' frame list (header
  ``image_location,<7 names>``, rows ``01/00001.jpg``); as in the real data, the first ``long`` videos'
  lists name one frame more than the video holds;
- ``test_ground_truth/CE_Challenge/<video>.txt``: the truth per listed frame (read by
  ``formats/ce.read_truth``; only tests and the demo's scorer read it);
- ``compound_faces/``: a compound-labelled face folder in RAF-DB's layout
  (``EmoLabel/list_patition_label.txt`` with ids 1..11, ``Image/aligned/train_0001_aligned.jpg``),
  including faces of the 4 RAF-DB compounds C-EXPR-DB lacks (prep drops and counts them).
Everything is a pure function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from abawkit.compound import PAIRS
from abawkit.formats.ce import TRUTH_FOLDER
from abawkit.labels import AU_NAMES, CE_NAMES
from abawkit.release.compound import RAF_COMPOUND, RAF_LIST
from abawkit.release.synth.faces import draw_face, jitter
from abawkit.release.synth.labels import make_person
from abawkit.release.synth.media import write_mp4
from abawkit.release.synth.spec import EXPR_AUS, SynthSpec

LIST_NAME = "ABAW_CE_test_set_example.txt"
RAF_EXTRA = {"Happily_Disgusted": ("Happiness", "Disgust"), "Sadly_Disgusted": ("Sadness", "Disgust"),
             "Fearfully_Angry": ("Fear", "Anger"), "Angrily_Disgusted": ("Anger", "Disgust")}
COMPOUND_AUS = {name: set(EXPR_AUS[a]) | set(EXPR_AUS[b]) for name, (a, b) in (PAIRS | RAF_EXTRA).items()}


@dataclass(frozen=True)
class CeSynth:
    """Size and seed of a synthetic CE release (``faces``: compound faces per class for training)."""

    videos: int = 8
    frames: int = 150
    size: int = 96
    fps: int = 30
    audio_rate: int = 16000
    seed: int = 0
    faces: int = 40
    long: int = 2  # videos whose list names one frame past the video's end


def compound_track(n: int, fps: int, rng: np.random.Generator) -> np.ndarray:
    """CE class per frame [n] in 1-3 s segments."""
    out, t = np.empty(n, np.int64), 0
    while t < n:
        length = int(rng.integers(fps, 3 * fps + 1))
        out[t:t + length] = rng.integers(len(CE_NAMES))
        t += length
    return out


def compound_aus(names: list[str], rng: np.random.Generator) -> np.ndarray:
    """AU activations [n, 12] for a compound name per frame: within each run of one compound, every AU
    switches on its own clock (runs of 8-30 frames), on with p=0.85 if its compound's pattern has it."""
    n = len(names)
    on = np.zeros((n, len(AU_NAMES)), np.int8)
    ends = [k + 1 for k in range(n - 1) if names[k] != names[k + 1]] + [n]
    for j, au in enumerate(AU_NAMES):
        t = 0
        for end in ends:
            p = 0.85 if au in COMPOUND_AUS[names[t]] else 0.05
            while t < end:
                stop = min(end, t + int(rng.integers(8, 31)))
                on[t:stop, j] = rng.random() < p
                t = stop
    return on


def render_video(classes: np.ndarray, spec: CeSynth, rng: np.random.Generator) -> list[np.ndarray]:
    """BGR frames [H, W, 3] of one person showing ``classes`` [n], the face moving slowly in the frame."""
    look = make_person("ce", "ce", "test", SynthSpec(frames=spec.fps, fps=spec.fps), rng).look
    aus = compound_aus([CE_NAMES[c] for c in classes], rng)
    s = spec.size
    h = -(-(s + s // 4) // 16) * 16
    bg = rng.uniform(30, 220, size=3).astype(np.uint8)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    frames = []
    for f in range(len(classes)):
        canvas = np.empty((h, h, 3), np.uint8)
        canvas[:] = bg
        dx = int((h - s) / 2 * (1 + 0.8 * np.sin(f / 40 + phase[0])))
        dy = int((h - s) / 2 * (1 + 0.8 * np.cos(f / 55 + phase[1])))
        canvas[dy:dy + s, dx:dx + s] = jitter(draw_face(aus[f], look, s), rng)
        frames.append(canvas)
    return frames


def write_video(out: Path, k: int, spec: CeSynth) -> np.ndarray:
    """``videos/<k:02d>.mp4``; returns its classes [frames]."""
    rng = np.random.default_rng([spec.seed, 11, k])
    classes = compound_track(spec.frames, spec.fps, rng)
    frames = render_video(classes, spec, rng)
    audio = rng.normal(0, 0.005, int(spec.frames / spec.fps * spec.audio_rate)).astype(np.float32)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    write_mp4(out / "videos" / f"{k:02d}.mp4", frames, audio, spec.fps, spec.audio_rate)
    return classes


def write_list_and_truth(out: Path, truth: dict[str, np.ndarray], spec: CeSynth) -> Path:
    """The frame list (``long`` videos one frame longer than they are) and the truth per listed frame."""
    rows, tdir = [], out / "test_ground_truth" / TRUTH_FOLDER
    tdir.mkdir(parents=True, exist_ok=True)
    for j, (video, classes) in enumerate(truth.items()):
        listed = np.r_[classes, classes[-1:]] if j < spec.long else classes  # the extra frame: last class
        rows += [f"{video}/{f:05d}.jpg\n" for f in range(1, len(listed) + 1)]
        (tdir / f"{video}.txt").write_text(",".join(CE_NAMES) + "\n" + "".join(f"{c}\n" for c in listed))
    path = out / "names_of_videos_in_each_test_set" / LIST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("image_location," + ",".join(CE_NAMES) + "\n" + "".join(rows))
    return path


def write_compound_faces(out: Path, spec: CeSynth) -> dict[str, int]:
    """RAF-DB-layout compound faces: ``faces`` train + ``faces // 4`` test per CE class, ``faces // 4`` of
    each other RAF-DB compound; returns images per RAF-DB class name."""
    root = out / "compound_faces"
    (root / "Image" / "aligned").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([spec.seed, 12])
    plan = [(name, "train", spec.faces) for name in CE_NAMES] + [(name, "test", max(1, spec.faces // 4)) for name in CE_NAMES]
    plan += [(name, "train", max(1, spec.faces // 4)) for name in RAF_EXTRA]
    lines, count, serial = [], {}, {"train": 0, "test": 0}
    short = SynthSpec(frames=spec.fps, fps=spec.fps)
    for name, split, n in plan:
        for _ in range(n):
            serial[split] += 1
            stem = f"{split}_{serial[split]:04d}"
            look = make_person(stem, "faces", split, short, rng).look
            au = np.array([au in COMPOUND_AUS[name] and rng.random() < 0.9 for au in AU_NAMES], np.int8)
            img = jitter(draw_face(au, look, spec.size), rng)
            cv2.imwrite(str(root / "Image" / "aligned" / f"{stem}_aligned.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            lines.append(f"{stem}.jpg {RAF_COMPOUND.index(name) + 1}\n")
            count[name] = count.get(name, 0) + 1
    order = np.random.default_rng([spec.seed, 13]).permutation(len(lines))  # RAF-DB's list is not sorted by class
    (root / "EmoLabel" / RAF_LIST).write_text("".join(lines[i] for i in order))
    return count


def write_release(out: Path, spec: CeSynth) -> dict:
    """Write the whole CE release under ``out``; returns a summary."""
    truth = {f"{k:02d}": write_video(out, k, spec) for k in range(1, spec.videos + 1)}
    write_list_and_truth(out, truth, spec)
    faces = write_compound_faces(out, spec)
    return {"videos": len(truth), "frames": spec.frames, "listed_frames": spec.videos * spec.frames + min(spec.long, spec.videos),
            "long": [v for v in list(truth)[:spec.long]], "compound_faces": faces}
