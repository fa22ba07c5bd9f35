"""The synthetic release on disk in the official layout: plan the names, pairs, roles and crop gaps,
render each media file's frames and crops, write annotation files, test lists, templates, ground truth
and the unlabelled face pool."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from abawkit.labels import TASKS
from abawkit.release.annotations import half_of, pair_names
from abawkit.release.synth.faces import draw_face, jitter
from abawkit.release.synth.labels import annotation_text, make_person
from abawkit.release.synth.media import voice, write_mp4
from abawkit.release.synth.spec import ROLE_FOLDER, TEMPLATE_NAME, TEST_LIST_PREFIX, Person, Source, SynthSpec


def plan_release(spec: SynthSpec) -> list[Source]:
    """Decide names, pairs, roles (train/val/test), task subsets, crop gaps; draw all labels."""
    rng = np.random.default_rng([spec.seed, 0])
    n_pairs = max(1, spec.videos // 10) if spec.videos >= 6 else 0
    n_src = spec.videos - n_pairs
    roles = np.array(["train"] * n_src, dtype=object)
    n_test = n_val = max(1, round(0.2 * n_src))
    roles[rng.permutation(n_src)[: n_val + n_test]] = ["val"] * n_val + ["test"] * n_test
    sources = []
    for i in range(n_src):
        src = f"synth{i:03d}"
        prng = np.random.default_rng([spec.seed, 1, i])
        names = list(pair_names(src)) if i < n_pairs else [src]
        sources.append(Source(src, [make_person(nm, src, str(roles[i]), spec, prng) for nm in names]))
    singles = [s for s in sources if len(s.people) == 1 and s.people[0].role == "train"]
    for s in singles[: 1 if spec.videos < 16 else 2]:  # no crop folder: prep must detect faces
        s.people[0].has_crops = False
    for s in sources:
        for p in s.people:
            gaps = set(rng.choice(spec.frames, size=int(rng.integers(1, 4)), replace=False) + 1)
            if rng.random() < 0.3:
                start = int(rng.integers(1, spec.frames - 10))
                gaps |= set(range(start, start + int(rng.integers(3, 10))))
            p.missing = tuple(sorted(int(g) for g in gaps))
    return sources


def render_source(src: Source, spec: SynthSpec) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]]]:
    """Video frames [H, W, 3] (faces side by side) and each person's crops [S, S, 3], per frame."""
    rng = np.random.default_rng([spec.seed, 2, int(src.name[5:])])
    s = spec.size
    h = -(-(s + s // 4) // 16) * 16
    canvas_bg = np.clip(rng.uniform(30, 220, size=3), 0, 255).astype(np.uint8)
    frames, crops = [], {p.name: [] for p in src.people}
    phase = rng.uniform(0, 2 * np.pi, size=2)
    for f in range(spec.frames):
        canvas = np.empty((h, h * len(src.people), 3), np.uint8)
        canvas[:] = canvas_bg
        for k, p in enumerate(src.people):
            face = jitter(draw_face(p.au[f], p.look, s), rng)
            crops[p.name].append(face)
            dx = int((h - s) / 2 * (1 + 0.8 * np.sin(f / 40 + phase[0])))
            dy = int((h - s) / 2 * (1 + 0.8 * np.cos(f / 55 + phase[1])))
            canvas[dy:dy + s, k * h + dx:k * h + dx + s] = face
        frames.append(canvas)
    return frames, crops


def write_labels(out: Path, p: Person, spec: SynthSpec) -> None:
    """Annotation files of one person (ground-truth folder for test people)."""
    for j, t in enumerate(p.tasks):
        rng = np.random.default_rng([spec.seed, 3, int(p.source[5:]), j, half_of(p.name) == "right"])
        text = annotation_text(p, t, rng)
        if p.role == "test":
            path = out / "test_ground_truth" / TASKS[t].challenge / f"{p.name}.txt"
        else:
            path = out / TASKS[t].challenge / ROLE_FOLDER[p.role] / f"{p.name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def write_test_lists(out: Path, sources: list[Source], spec: SynthSpec) -> None:
    """Test-set name lists and submission templates (one row per frame to predict)."""
    folder = out / "names_of_videos_in_each_test_set"
    folder.mkdir(parents=True, exist_ok=True)
    for t, prefix in TEST_LIST_PREFIX.items():
        names = [p.name for s in sources for p in s.people if p.role == "test" and t in p.tasks]
        (folder / f"{prefix}_test_set_release.txt").write_text("".join(f"{n}\n" for n in names))
        tail = "," if t == "au" else ""  # the real templates sometimes end rows with a comma
        rows = [f"{n}/{k:05d}.jpg{tail}\n" for n in names for k in range(1, spec.frames + 1)]
        header = "image_location," + ",".join(TASKS[t].names) + "\n"
        (folder / TEMPLATE_NAME.format(t.upper())).write_text(header + "".join(rows))


def write_face_pool(out: Path, spec: SynthSpec, start: int, stop: int) -> None:
    """Unlabelled faces ``start..stop-1`` of ``pretrain_faces/``: one random person and moment each.

    Stands in for the large external face collection the paper pre-trains its MAE on (many more
    identities than the challenge videos); no annotation is written for these images."""
    d = out / "pretrain_faces"
    d.mkdir(parents=True, exist_ok=True)
    short = SynthSpec(frames=4 * spec.fps, fps=spec.fps)
    for i in range(start, stop):
        rng = np.random.default_rng([spec.seed, 5, i])
        p = make_person(f"face{i}", "pool", "train", short, rng)
        face = jitter(draw_face(p.au[int(rng.integers(short.frames))], p.look, spec.size), rng)
        cv2.imwrite(str(d / f"{i:06d}.jpg"), face, [cv2.IMWRITE_JPEG_QUALITY, 92])


def write_source(out: Path, src: Source, spec: SynthSpec) -> None:
    """Labels, crops (minus the gaps) and the mp4 of one source."""
    frames, crops = render_source(src, spec)
    for p in src.people:
        write_labels(out, p, spec)
        if not p.has_crops:
            continue
        d = out / "cropped_aligned" / p.name
        d.mkdir(parents=True, exist_ok=True)
        skip = set(p.missing)
        for k, img in enumerate(crops[p.name], start=1):
            if k not in skip:
                cv2.imwrite(str(d / f"{k:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    rng = np.random.default_rng([spec.seed, 4, int(src.name[5:])])
    (out / "videos").mkdir(parents=True, exist_ok=True)
    write_mp4(out / "videos" / f"{src.name}.mp4", frames, voice(src.people, spec, rng), spec.fps, spec.audio_rate)
