"""Labels of a synthetic person: expression segments, AUs consistent with them, valence/arousal pulled
towards the expression's target, runs of invalid labels, and the annotation file text. Pure numpy."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from abawkit.labels import AU_NAMES, EXPR_NAMES, TASKS
from abawkit.release.synth.spec import EXPR_AUS, EXPR_PRIOR, EXPR_VA, Person, SynthSpec


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
