"""A synthetic BAH-like release for the ambivalence/hesitancy track (``abaw synth OUT --track ah``).

People answer 3 questions each (one clip per answer, the same face and voice across a person's clips).
A clip is ambivalent/hesitant (label 1) with probability 0.45; the label shows mostly in the words (an
A/H answer holds hedge words such as "maybe", "but", "unsure" with p 0.85, another answer with p 0.12)
and partly in the face (brow lowerer AU4, lip corner depressor AU15 and inner brow raiser AU1 often on
with p 0.7 for A/H, 0.3 otherwise). Roles are drawn per person. Writes, under the release root, BAH's
layout as far as it is known (``release/bah.py``): ``Videos/<pid>/Visite_1/<pid>_Question_<q>_..._Video.mp4``,
``dataset-splits/video-level/BAH_DB/split-0/{train,val}.txt`` (``path,label,transcript``), the
organisers'-style test list ``trial-0.txt`` (``path,0``), ``test_ground_truth/AH/test.txt`` (the test
labels), ``cropped_aligned/<name>/00001.jpg`` and ``transcripts/<name>.json`` (truth of the speech).

The same release carries the frame-level track of ABAW 8 (``ah_frames``, ``release/bah_frames.py``): in an
A/H clip, a frame is A/H while a phrase holding a hedge word is spoken, or while the brow lowerer (AU4) and
the lip corner depressor (AU15) are both on; every frame of another clip is not (its hedges and frowns too). Written as ``video_annotation.yaml`` (train/val clips: ``[frame, label]``
pairs, frames from 0), the frame list ``AH_frame_test_list.txt`` (every frame of each test clip, label 0)
and its truth ``test_ground_truth/AH_frames/test.txt``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from abawkit.formats.ah import location
from abawkit.labels import AU_NAMES
from abawkit.release.bah_frames import ANNOTATION
from abawkit.release.synth.clips import Clip, ClipSpec, au_runs, person_look, phrase_words, roles, write_clip

HEDGES = ["maybe", "but", "unsure", "perhaps", "um"]
VOCAB = ["i", "usually", "wake", "up", "coffee", "work", "home", "friends", "walk", "the", "and", "then", "day",
         "like", "go", "cook", "music", "read", "always", "really"]
SPLIT_DIR = "dataset-splits/video-level/BAH_DB/split-0"
FRAME_LIST = "AH_frame_test_list.txt"
FRAME_TRUTH = "test_ground_truth/AH_frames/test.txt"
QUESTIONS = 3


def plan(spec: ClipSpec) -> tuple[list[Clip], np.ndarray]:
    """The clips and their A/H labels [V]: a pure function of the seed."""
    rng = np.random.default_rng([spec.seed, 30])
    n_people = -(-spec.videos // QUESTIONS)
    role = roles(n_people, rng)
    clips, labels = [], []
    for i in range(spec.videos):
        person, q = divmod(i, QUESTIONS)
        pid = 90001 + person
        look, f0 = person_look((spec.seed, 31, person), spec)
        crng = np.random.default_rng([spec.seed, 32, i])
        ah = int(crng.random() < 0.45)
        n_hedge = (1 + int(crng.random() < 0.5)) if crng.random() < (0.85 if ah else 0.12) else 0
        doubt = crng.random() < (0.7 if ah else 0.3)
        n = int(crng.uniform(*spec.seconds) * spec.fps)
        p_on = {"AU4": 0.7, "AU15": 0.6, "AU1": 0.4} if doubt else {"AU12": 0.35, "AU6": 0.2}
        name = f"{pid}_Question_{q + 1}_2026-01-{person % 28 + 1:02d}_10-{q:02d}-00_Video"
        words = phrase_words(VOCAB, list(crng.choice(HEDGES, size=n_hedge, replace=False)), int(crng.integers(4, 7)), crng)
        clips.append(Clip(name, location(name), str(role[person]), n, look, au_runs(n, spec.fps, p_on, crng), words, f0))
        labels.append(ah)
    return clips, np.asarray(labels, np.int64)


def write_release(root: Path, spec: ClipSpec, advance=lambda: None) -> dict:
    """Write every clip and the lists; returns {role: count, "ah": positives}."""
    clips, labels = plan(spec)
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    frame_labels: dict[str, np.ndarray] = {}
    for k, (clip, y) in enumerate(zip(clips, labels)):
        segments = write_clip(root, clip, spec, np.random.default_rng([spec.seed, 33, k]))
        text = " ".join(s["text"] for s in segments)
        lines[clip.role].append(f"{clip.media},{y},{text}\n")
        frame_labels[clip.name] = frames_ah(clip, segments, int(y), spec.fps)
        advance()
    write_frame_level(root, clips, frame_labels)
    split = root / SPLIT_DIR
    split.mkdir(parents=True, exist_ok=True)
    for role in ("train", "val"):
        (split / f"{role}.txt").write_text("".join(lines[role]))
    (root / "trial-0.txt").write_text("".join(ln.split(",", 1)[0] + ",0\n" for ln in lines["test"]))
    truth = root / "test_ground_truth" / "AH"
    truth.mkdir(parents=True, exist_ok=True)
    (truth / "test.txt").write_text("".join(lines["test"]))
    return {**{r: len(v) for r, v in lines.items()}, "ah": int(labels.sum()),
            "ah_frames": int(sum(int(f.sum()) for f in frame_labels.values()))}


def frames_ah(clip: Clip, segments: list[dict], ah: int, fps: int) -> np.ndarray:
    """[n_frames] 0/1: in an A/H clip, frames inside a phrase with a hedge word or with AU4 and AU15 on."""
    out = np.zeros(clip.n_frames, np.int8)
    if not ah:
        return out
    t = np.arange(clip.n_frames) / fps
    for seg in segments:
        if set(seg["text"].split()) & set(HEDGES):
            out[(t >= seg["start"]) & (t < seg["end"])] = 1
    out[(clip.au[:, AU_NAMES.index("AU4")] > 0) & (clip.au[:, AU_NAMES.index("AU15")] > 0)] = 1
    return out


def write_frame_level(root: Path, clips: list[Clip], frame_labels: dict[str, np.ndarray]) -> None:
    """``video_annotation.yaml`` (train/val), the test frame list and its truth (``release/bah_frames.py``)."""
    from abawkit.formats.ah_frames import frame_path

    body = []
    for clip in clips:
        if clip.role != "test":
            pairs = ", ".join(f"[{f}, {int(v)}]" for f, v in enumerate(frame_labels[clip.name]))
            body.append(f"{clip.media}:\n  frame_annotation: [{pairs}]\n")
    (root / ANNOTATION).write_text("".join(body))
    tests = [c for c in clips if c.role == "test"]
    (root / FRAME_LIST).write_text("".join(f"{frame_path(c.name, f)},0\n" for c in tests for f in range(1, c.n_frames + 1)))
    truth = root / FRAME_TRUTH
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_text("".join(f"{frame_path(c.name, f + 1)},{int(v)}\n" for c in tests
                             for f, v in enumerate(frame_labels[c.name])))
