"""A procedural Aff-Wild2-like release that small models can learn from (``abaw synth``).

Writes the official layout (SPEC section 2) under one folder: annotation files per challenge and
split, ``cropped_aligned/<video>/00001.jpg`` face crops, ``videos/<source>.mp4`` (H.264 + AAC
audio), test-set name lists with submission templates, and ``test_ground_truth/`` for the test
videos (only the demo's scorer reads it). Faces are drawn with OpenCV: every AU moves a visible
part (brows, lids, cheeks, lips, jaw); expressions switch in 1-4 s segments with a consistent AU
pattern; valence/arousal are smooth trajectories pulled towards the expression's target; the audio
is a voiced harmonic tone whose pitch/loudness follow arousal and whose timbre follows expression.
Quirks of the real release are reproduced: ``_left``/``_right`` names sharing one video, missing
crops, videos with no crop folder at all, runs of invalid labels, names annotated for only some
tasks. ``pretrain_faces/`` holds unlabelled faces of many more people for MAE pre-training.
``ship_layout`` rearranges a written release into the shape the organisers' archives unpack to
(edition folder, nested crop roots, batch folders, AVI files, ABAW6 names). Everything is a pure
function of the seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abawkit.labels import AU_NAMES, EXPR_NAMES, TASKS

TEST_LIST_PREFIX = {
    "au": "Action_Unit_Detection_Challenge",
    "expr": "Expression_Classification_Challenge",
    "va": "Valence_Arousal_Estimation_Challenge",
}
TEMPLATE_NAME = "CVPR_5th_ABAW_{}_test_set_example.txt"
ROLE_FOLDER = {"train": "Train_Set", "val": "Validation_Set"}

# Expression -> AUs that (usually) fire with it. Indices follow AU_NAMES.
EXPR_AUS = {
    "Neutral": (),
    "Anger": ("AU4", "AU7", "AU23", "AU24"),
    "Disgust": ("AU4", "AU10", "AU15", "AU25"),
    "Fear": ("AU1", "AU2", "AU4", "AU25", "AU26"),
    "Happiness": ("AU6", "AU12", "AU25"),
    "Sadness": ("AU1", "AU4", "AU15"),
    "Surprise": ("AU1", "AU2", "AU25", "AU26"),
    "Other": ("AU7", "AU10"),
}
EXPR_PRIOR = np.array([0.25, 0.09, 0.07, 0.07, 0.18, 0.12, 0.1, 0.12])  # Fear/Disgust/Anger rare
EXPR_VA = np.array([[0, 0], [-0.6, 0.7], [-0.6, 0.3], [-0.5, 0.75], [0.7, 0.45], [-0.6, -0.45],
                    [0.2, 0.8], [0.1, -0.3]], dtype=np.float32)
EXPR_F0 = np.array([140, 185, 120, 260, 220, 105, 300, 165], dtype=np.float32)  # Hz
EXPR_HARM = np.random.default_rng(12345).dirichlet(np.ones(5) * 0.7, size=8).astype(np.float32)  # timbre


@dataclass(frozen=True)
class SynthSpec:
    """Size and seed of a synthetic release."""

    videos: int = 24  # annotation names (a _left/_right pair counts twice)
    frames: int = 300  # frames per video
    size: int = 112  # crop side in pixels
    fps: int = 30
    audio_rate: int = 16000
    seed: int = 0


@dataclass
class Person:
    """Labels and appearance of one annotation name. Arrays are per frame."""

    name: str
    source: str
    role: str  # train | val | test
    tasks: tuple[str, ...]
    expr: np.ndarray  # [F] int 0..7 (true, before invalid runs)
    au: np.ndarray  # [F, 12] int 0/1
    va: np.ndarray  # [F, 2] float
    look: dict
    has_crops: bool = True
    missing: tuple[int, ...] = ()  # 1-based frames without a crop


# ----------------------------------------------------------------------------- labels
def expression_track(n: int, fps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Expression per frame in 1-4 s segments, and the segment id per frame: both [n]."""
    expr, seg = np.empty(n, np.int64), np.empty(n, np.int64)
    t, k = 0, 0
    while t < n:
        length = int(rng.integers(fps, 4 * fps + 1))
        expr[t:t + length] = rng.choice(8, p=EXPR_PRIOR)
        seg[t:t + length] = k
        t, k = t + length, k + 1
    return expr, seg


def au_track(expr: np.ndarray, seg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """AU activations [n, 12]. Within each expression segment every AU switches on its own clock
    (runs of 8-30 frames): the expression's AUs are on with p=0.85, the others with p=0.05.

    Independent switching gives many distinct faces per video (as in real footage) instead of one
    look per segment, so a model has to read the face rather than memorise a handful of looks."""
    n = len(expr)
    on = np.zeros((n, len(AU_NAMES)), np.int8)
    ends = np.r_[np.flatnonzero(np.diff(seg)) + 1, n]  # exclusive end of each segment
    for k, name in enumerate(AU_NAMES):
        t = 0
        for end in ends:
            p = 0.85 if name in EXPR_AUS[EXPR_NAMES[expr[t]]] else 0.05
            while t < end:
                stop = min(end, t + int(rng.integers(8, 31)))
                on[t:stop, k] = rng.random() < p
                t = stop
    return on


def va_track(expr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Valence/arousal [n, 2]: expression targets + a slow random walk, Gaussian-smoothed."""
    from scipy.ndimage import gaussian_filter1d

    walk = np.cumsum(rng.normal(0, 0.02, size=(len(expr), 2)), axis=0)
    walk -= walk.mean(axis=0)
    raw = EXPR_VA[expr] + 0.6 * walk + rng.normal(0, 0.1, size=2)
    return np.clip(gaussian_filter1d(raw, sigma=10, axis=0, mode="nearest"), -1, 1).astype(np.float32)


def make_person(name: str, source: str, role: str, spec: SynthSpec, rng: np.random.Generator) -> Person:
    """Draw one person's labels, task subset and appearance."""
    expr, seg = expression_track(spec.frames, spec.fps, rng)
    tasks = ("au", "expr", "va")
    if rng.random() < 0.25:  # annotated for only some tasks
        keep = rng.random(3) < 0.5
        keep[rng.integers(3)] = True
        tasks = tuple(t for t, k in zip(tasks, keep) if k)
    look = {
        "skin": rng.uniform([60, 90, 120], [170, 200, 235]),  # BGR
        "bg": rng.uniform(20, 235, size=3),
        "hair": rng.uniform(10, 120, size=3),
        "wide": rng.uniform(0.85, 1.12), "tall": rng.uniform(0.88, 1.1),
        "eye_gap": rng.uniform(0.11, 0.15), "voice": rng.uniform(0.8, 1.25),
    }
    return Person(name, source, role, tasks, expr, au_track(expr, seg, rng), va_track(expr, rng), look)


def invalid_run(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mask [n] of frames left unannotated: half of the files get one run of 5-15% of frames."""
    mask = np.zeros(n, bool)
    if rng.random() < 0.5:
        length = max(1, int(n * rng.uniform(0.05, 0.15)))
        start = int(rng.integers(0, n - length + 1))
        mask[start:start + length] = True
    return mask


def annotation_text(p: Person, task_name: str, rng: np.random.Generator) -> str:
    """The annotation file of one person and task (header + one line per frame)."""
    spec = TASKS[task_name]
    bad = invalid_run(len(p.expr), rng)
    if task_name == "au":
        vals = np.where(bad[:, None], -1, p.au).astype(int)
        body = [",".join(map(str, r)) for r in vals.tolist()]
    elif task_name == "expr":
        body = [str(v) for v in np.where(bad, -1, p.expr).tolist()]
    else:
        vals = np.where(bad[:, None], -5.0, np.round(p.va, 3))
        body = [f"{v:g},{a:g}" for v, a in vals.tolist()]
    return ",".join(spec.names) + "\n" + "\n".join(body) + "\n"


# ----------------------------------------------------------------------------- faces
def _pt(x: float, y: float, s: int) -> tuple[int, int]:
    return int(round(x * s * 16)), int(round(y * s * 16))  # 4-bit sub-pixel coordinates


FACE_ZOOM = 1.3  # like an aligned crop, the face fills most of the image


def draw_face(au: np.ndarray, look: dict, size: int) -> np.ndarray:
    """Render a frontal face whose parts follow the AU vector ``au`` [12]; returns [S, S, 3] uint8."""
    big = int(round(size * FACE_ZOOM))
    off = (big - size) // 2
    return _draw_face(au, look, big)[off:off + size, off:off + size].copy()


def _draw_face(au: np.ndarray, look: dict, size: int) -> np.ndarray:
    import cv2

    s, a = size, {n: float(au[i]) for i, n in enumerate(AU_NAMES)}
    img = np.empty((s, s, 3), np.uint8)
    img[:] = look["bg"].astype(np.uint8)
    kw = {"shift": 4, "lineType": cv2.LINE_AA}
    skin = tuple(float(c) for c in look["skin"])
    dark = (30.0, 30.0, 40.0)
    cv2.ellipse(img, _pt(0.5, 0.3, s), _pt(0.36 * look["wide"], 0.2, s), 0, 180, 360, tuple(look["hair"]), -1, **kw)
    cv2.ellipse(img, _pt(0.5, 0.55, s), _pt(0.31 * look["wide"], 0.4 * look["tall"], s), 0, 0, 360, skin, -1, **kw)
    gap = look["eye_gap"]
    for side in (-1, 1):
        ex = 0.5 + side * gap
        # brows: AU1 raises the inner end, AU2 the outer end, AU4 lowers and tilts both
        inner_y = 0.37 - 0.07 * a["AU1"] + 0.05 * a["AU4"]
        outer_y = 0.36 - 0.07 * a["AU2"] + 0.01 * a["AU4"]
        cv2.line(img, _pt(0.5 + side * 0.04, inner_y, s), _pt(ex + side * 0.08, outer_y, s), dark,
                 max(1, s // 28 + int(a["AU4"] * s // 40)), **kw)
        # eyes: AU6 (cheek raise) and AU7 (lid tightener) narrow them; AU1+AU2 widen them
        open_ = 0.045 * (1 - 0.35 * a["AU6"] - 0.5 * a["AU7"] + 0.45 * a["AU1"] * a["AU2"])
        cv2.ellipse(img, _pt(ex, 0.46, s), _pt(0.055, max(open_, 0.008), s), 0, 0, 360, (245.0, 245.0, 245.0), -1, **kw)
        cv2.circle(img, _pt(ex, 0.46, s), int(0.022 * s * 16), dark, -1, **kw)
        if a["AU6"]:  # raised, flushed cheeks
            cv2.ellipse(img, _pt(ex + side * 0.03, 0.57, s), _pt(0.06, 0.035, s), 0, 0, 360, (90.0, 90.0, 215.0), -1, **kw)
        if a["AU10"]:  # nasolabial folds
            cv2.line(img, _pt(0.5 + side * 0.05, 0.58, s), _pt(0.5 + side * 0.11, 0.7, s), (60.0, 60.0, 90.0), max(1, s // 40), **kw)
    cv2.line(img, _pt(0.5, 0.48, s), _pt(0.5, 0.6, s), (80.0, 80.0, 110.0), max(1, s // 50), **kw)
    _draw_mouth(img, a, s, kw)
    return img


def _draw_mouth(img: np.ndarray, a: dict, s: int, kw: dict) -> None:
    """Lips: AU12 corners up, AU15 down, AU23 narrow, AU24 pressed, AU25 parted, AU26 jaw drop, AU10 upper lip up."""
    import cv2

    half = 0.11 * (1 - 0.35 * a["AU23"]) + 0.03 * a["AU12"]
    corner_y = 0.74 - 0.05 * a["AU12"] + 0.05 * a["AU15"]
    top_y = 0.72 - 0.025 * a["AU10"]
    gap = 0.03 * a["AU25"] + 0.06 * a["AU26"]
    bottom_y = 0.745 + gap
    lip = (40.0, 40.0, 110.0) if not a["AU24"] else (30.0, 30.0, 60.0)
    pts = np.array([_pt(0.5 - half, corner_y, s), _pt(0.5, top_y, s), _pt(0.5 + half, corner_y, s),
                    _pt(0.5, bottom_y, s)], np.int32)
    if gap > 0:
        cv2.fillPoly(img, [pts], (20.0, 10.0, 10.0), shift=4, lineType=cv2.LINE_AA)
    cv2.polylines(img, [pts], True, lip, max(1, s // 30 + int(a["AU24"] * s // 25)), **kw)


def jitter(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pose jitter (small rotation/shift/scale), a lighting gradient and sensor noise."""
    import cv2

    s = face.shape[0]
    m = cv2.getRotationMatrix2D((s / 2, s / 2), rng.normal(0, 4), rng.normal(1, 0.04))
    m[:, 2] += rng.normal(0, 0.03 * s, size=2)
    out = cv2.warpAffine(face, m, (s, s), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    ramp = np.linspace(-1, 1, s, dtype=np.float32)
    light = 1 + rng.normal(0, 0.12) + rng.normal(0, 0.12) * ramp[None, :, None]
    out = out * light + rng.normal(0, 9, size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- audio
def voice(people: list[Person], spec: SynthSpec, rng: np.random.Generator) -> np.ndarray:
    """Mono float32 [T] audio: each person's harmonic voice, summed (a _left/_right pair shares it)."""
    n = spec.frames
    t_frame = np.arange(n) / spec.fps
    t = np.arange(int(n / spec.fps * spec.audio_rate)) / spec.audio_rate
    out = np.zeros_like(t, dtype=np.float32)
    for p in people:
        ar = np.interp(t, t_frame, p.va[:, 1])
        e = p.expr[np.minimum((t * spec.fps).astype(int), n - 1)]
        f0 = EXPR_F0[e] * p.look["voice"] * (1 + 0.3 * ar)
        phase = 2 * np.pi * np.cumsum(f0) / spec.audio_rate
        wave = sum(EXPR_HARM[e, k] * np.sin((k + 1) * phase) for k in range(5))
        talk = np.repeat(rng.random(int(t[-1] * 2) + 2) < 0.75, spec.audio_rate // 2)[: len(t)]  # 0.5 s on/off
        syll = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
        loud = 0.05 + 0.25 * (ar + 1) / 2
        out += (wave * loud * syll * talk).astype(np.float32) / len(people)
    out += rng.normal(0, 0.005, size=out.shape).astype(np.float32)
    return np.clip(out, -1, 1)


def write_mp4(path: Path, frames: list[np.ndarray], audio: np.ndarray, fps: int, rate: int) -> None:
    """Encode BGR frames [H, W, 3] as H.264 and ``audio`` [T] as mono AAC into ``path``."""
    import av

    with av.open(str(path), "w") as box:
        vs = box.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "23"})
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = "yuv420p"
        aus = box.add_stream("aac", rate=rate, layout="mono")
        for img in frames:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                box.mux(pkt)
        for pkt in vs.encode():
            box.mux(pkt)
        chunk = 1024
        for i in range(0, len(audio), chunk):
            fr = av.AudioFrame.from_ndarray(audio[None, i:i + chunk].astype(np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = rate, i
            for pkt in aus.encode(fr):
                box.mux(pkt)
        for pkt in aus.encode():
            box.mux(pkt)


# ----------------------------------------------------------------------------- the release
@dataclass
class Source:
    """One media file and the people in it (one, or a _left/_right pair)."""

    name: str
    people: list[Person]


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
        names = [f"{src}_left", f"{src}_right"] if i < n_pairs else [src]
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
        rng = np.random.default_rng([spec.seed, 3, int(p.source[5:]), j, p.name.endswith("_right")])
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
    import cv2

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
    import cv2

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


# ----------------------------------------------------------------------------- as shipped
SHIPPED_ANNOTATIONS = "6th ABAW Annotations"  # edition folder, with a space, as unpacked
SHIPPED_CHALLENGE = {"EXPR_Classification_Challenge": "EXPR_Recognition_Challenge"}  # ABAW6 name
SHIPPED_TEMPLATE = "CVPR_6th_ABAW_{}_test_set_sample.txt"
SHIPPED_TRACK = {"au": "AU", "expr": "Expr", "va": "VA"}


def write_avi(src: Path, dst: Path) -> None:
    """Re-encode an mp4 as AVI (MPEG-4 part 2 video + 16-bit PCM audio): same frames and samples count."""
    import av

    from abawkit.video.media import iter_frames

    frames = list(iter_frames(src))  # [H, W, 3] RGB
    with av.open(str(src)) as box:
        fps, rate = box.streams.video[0].average_rate, box.streams.audio[0].rate
        res = av.AudioResampler(format="s16", layout="mono", rate=rate)
        audio = np.concatenate([f.to_ndarray().reshape(-1) for fr in box.decode(audio=0) for f in res.resample(fr)])
    with av.open(str(dst), "w", format="avi") as box:
        vs = box.add_stream("mpeg4", rate=fps, options={"qscale": "2"})
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = "yuv420p"
        aus = box.add_stream("pcm_s16le", rate=rate, layout="mono")
        for img in frames:
            box.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        box.mux(vs.encode())
        for i in range(0, len(audio), 1024):
            fr = av.AudioFrame.from_ndarray(audio[None, i:i + 1024], format="s16", layout="mono")
            fr.sample_rate, fr.pts = rate, i
            box.mux(aus.encode(fr))
        box.mux(aus.encode())


def ship_layout(out: Path, sources: list[Source]) -> dict[str, list[str]]:
    """Rearrange a tidy release under ``out`` into the as-shipped shape; returns {part: new folders}.

    - annotations under ``6th ABAW Annotations/`` (the EXPR folder under its ABAW6 name);
    - crops in two nested roots, ``cropped_aligned/cropped_aligned/`` and
      ``cropped_aligned/cropped_aligned_new_50_vids/`` (test videos and the last sources), one video
      also as a partial copy in the other root (the fuller folder must win);
    - raw videos in ``batch1/`` and ``batch2/`` (mp4) and ``new_vids/`` (AVI, upper-case extension);
    - the expression test list under its ABAW6 name and the templates at the root as
      ``CVPR_6th_ABAW_{AU,Expr,VA}_test_set_sample.txt``.
    """
    import shutil

    from abawkit.labels import TASKS

    edition = out / SHIPPED_ANNOTATIONS
    edition.mkdir()
    for spec in TASKS.values():
        if (out / spec.challenge).is_dir():
            os.replace(out / spec.challenge, edition / SHIPPED_CHALLENGE.get(spec.challenge, spec.challenge))
    n = len(sources)
    late = {s.name for s in sources[n - max(1, n // 4):]} | {s.name for s in sources if any(p.role == "test" for p in s.people)}
    crops = out / "cropped_aligned"
    old, new = crops / "cropped_aligned", crops / "cropped_aligned_new_50_vids"
    old.mkdir()
    new.mkdir()
    people = [(p, s.name) for s in sources for p in s.people if p.has_crops]
    for p, src in people:
        os.replace(crops / p.name, (new if src in late else old) / p.name)
    first = next(p.name for p, src in people if src not in late)
    shutil.copytree(old / first, new / first)
    for img in sorted((new / first).glob("*.jpg"))[::2]:
        img.unlink()  # a partial duplicate: prep must take the fuller folder
    for k, src in enumerate(sources):
        mp4 = out / "videos" / f"{src.name}.mp4"
        if src.name in late and k % 2:
            (out / "new_vids").mkdir(exist_ok=True)
            write_avi(mp4, out / "new_vids" / f"{src.name}.AVI")
            mp4.unlink()
        else:
            dest = out / ("batch1" if k < n // 2 else "batch2")
            dest.mkdir(exist_ok=True)
            os.replace(mp4, dest / mp4.name)
    (out / "videos").rmdir()
    lists = out / "names_of_videos_in_each_test_set"
    os.replace(lists / f"{TEST_LIST_PREFIX['expr']}_test_set_release.txt",
              lists / "Expression_Recognition_Challenge_test_set_release.txt")
    for t, tag in SHIPPED_TRACK.items():
        os.replace(lists / TEMPLATE_NAME.format(t.upper()), out / SHIPPED_TEMPLATE.format(tag))
    return {"annotations": [str(edition)], "crops": [str(old), str(new)],
            "videos": [str(out / d) for d in ("batch1", "batch2", "new_vids") if (out / d).is_dir()]}

