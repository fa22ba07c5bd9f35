"""An s-Aff-Wild2-like synthetic release (``abaw synth --track mtl``), built from the classic synthetic parts.

The same people, faces, labels and videos as the classic release (``plan_release``, ``render_source``,
``invalid_run``, ``write_mp4``), laid out as s-Aff-Wild2 ships (``release/mtl.py``):
``training_set_annotations.txt`` / ``validation_set_annotations.txt`` with one row per *listed* image
(frame 1, then every 1-9 frames: 00001, 00008, 00017, ...), each task masked on its own (runs of -5 for
valence/arousal, of -1 for the expression and for single AUs), crops in ``cropped_aligned/<video>/`` only
for the listed images, the test list ``MTL.txt`` (header ``image``, then the test images in order) and
``test_ground_truth/test_set_annotations.txt`` (the test images' labels in the annotation format, read by
``formats/mtl.read_truth``). The mp4 videos (with audio) stand in for Aff-Wild2's videos, which s-Aff-Wild2
shares. Everything is a pure function of the seed.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from abawkit.release.annotations import half_of
from abawkit.release.mtl import HEADER, image_name
from abawkit.release.synth.labels import invalid_run
from abawkit.release.synth.layout import render_source
from abawkit.release.synth.media import voice, write_mp4
from abawkit.release.synth.spec import Person, Source, SynthSpec

FILES = {"train": "training_set_annotations.txt", "val": "validation_set_annotations.txt"}
TEST_LIST = "MTL.txt"
TRUTH = "test_ground_truth/test_set_annotations.txt"


def listed_frames(n: int, rng: np.random.Generator) -> np.ndarray:
    """1-based frames a video lists [K]: frame 1, then steps of 1-9 frames, up to ``n``."""
    f = 1 + np.concatenate([[0], np.cumsum(rng.integers(1, 10, size=n))])
    return f[f <= n]


def mtl_rows(p: Person, spec: SynthSpec) -> tuple[np.ndarray, np.ndarray]:
    """One person's listed frames [K] and labels [K, 15] (valence, arousal, expression, 12 AUs), each task
    masked on its own: half the videos get a run of -5 VA, half a run of -1 expressions, and each AU on its
    own half the time a run of -1 (``invalid_run``: 5-15% of the rows)."""
    rng = np.random.default_rng([spec.seed, 7, int(p.source[5:]), half_of(p.name) == "right"])
    frames = listed_frames(len(p.expr), rng)
    k = frames - 1
    values = np.concatenate([np.round(p.va[k], 3), p.expr[k, None], p.au[k]], axis=1).astype(np.float64)
    values[invalid_run(len(k), rng), :2] = -5
    values[invalid_run(len(k), rng), 2] = -1
    for j in range(3, values.shape[1]):
        values[invalid_run(len(k), rng), j] = -1
    return frames, values


def annotation_lines(p: Person, spec: SynthSpec) -> list[str]:
    """The rows of one person in the annotation format (``video/00001.jpg,v,a,e,au1,...,au12``)."""
    frames, values = mtl_rows(p, spec)
    return [f"{image_name(p.name, int(f))},{r[0]:g},{r[1]:g}," + ",".join(str(int(x)) for x in r[2:]) + "\n"
            for f, r in zip(frames, values)]


def write_source(out: Path, src: Source, spec: SynthSpec) -> None:
    """Crops of the listed frames of each person of ``src``, and its mp4 (frames + voice)."""
    frames, crops = render_source(src, spec)
    for p in src.people:
        d = out / "cropped_aligned" / p.name
        d.mkdir(parents=True, exist_ok=True)
        for f in mtl_rows(p, spec)[0]:
            cv2.imwrite(str(d / f"{int(f):05d}.jpg"), crops[p.name][f - 1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    rng = np.random.default_rng([spec.seed, 4, int(src.name[5:])])
    (out / "videos").mkdir(parents=True, exist_ok=True)
    write_mp4(out / "videos" / f"{src.name}.mp4", frames, voice(src.people, spec, rng), spec.fps, spec.audio_rate)


def write_lists(out: Path, sources: list[Source], spec: SynthSpec) -> None:
    """The two annotation files, the test list and the test ground truth."""
    people = [p for s in sources for p in s.people]
    for role, name in (*FILES.items(), ("test", TRUTH)):
        lines = [line for p in people if p.role == role for line in annotation_lines(p, spec)]
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(HEADER + "\n" + "".join(lines))
    test = [image_name(p.name, int(f)) + "\n" for p in people if p.role == "test" for f in mtl_rows(p, spec)[0]]
    (out / TEST_LIST).write_text("image\n" + "".join(test))
