"""Compound expressions from basic ones: the zero-shot rule and synthetic compound faces. Pure numpy.

C-EXPR-DB's 7 classes (``labels.CE_NAMES``) are each two basic expressions (``PAIRS``): Fearfully
Surprised = Fear + Surprise, ..., Sadly Angry = Sadness + Anger. No training labels come with the track,
so teams build a model from basic expressions in two ways this module gives:

- ``zero_shot``: a basic-expression (EXPR, 8-class) model's probabilities [N, 8] -> compound scores
  [N, 7]. Default rule ``"geometric"``: each compound scores the geometric mean of its two classes'
  probabilities, sqrt(p_a * p_b), and the 7 scores are normalised to sum to 1. A compound needs *both*
  parts: a face that is only surprised (p_surprise = 0.9, the rest small) does not win every
  "...ly surprised" class by Surprise alone. Rule ``"sum"``: p_a + p_b, normalised (the pair-wise sum
  the SUN team used in ABAW 6, without their per-class weights). Neutral and Other take no part.
- ``mix_compounds``: faces labelled with basic expressions -> faces labelled with compounds. For a
  compound A+B, ``"cutmix"`` pastes the lower face (mouth, jaw) of a B face under the upper face
  (brows, eyes) of an A face or the other way round (chosen per sample), at a cut line near the middle;
  ``"mixup"`` blends an A face and a B face with a weight in [0.35, 0.65]. Every choice is drawn from
  one generator seeded by ``seed``: the same inputs and seed give the same faces.

Reads and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from abawkit.errors import AbawError
from abawkit.labels import CE_NAMES, EXPR_NAMES

_BASIC = {n: EXPR_NAMES.index(n) for n in EXPR_NAMES}
PAIRS: dict[str, tuple[str, str]] = {  # compound -> (adverb's class, adjective's class), EXPR_NAMES spelling
    "Fearfully_Surprised": ("Fear", "Surprise"),
    "Happily_Surprised": ("Happiness", "Surprise"),
    "Sadly_Surprised": ("Sadness", "Surprise"),
    "Disgustedly_Surprised": ("Disgust", "Surprise"),
    "Angrily_Surprised": ("Anger", "Surprise"),
    "Sadly_Fearful": ("Sadness", "Fear"),
    "Sadly_Angry": ("Sadness", "Anger"),
}
PAIR_IDS = np.array([[_BASIC[a], _BASIC[b]] for a, b in (PAIRS[n] for n in CE_NAMES)], np.int64)  # [7, 2]
RULES = ("geometric", "sum")
MODES = ("cutmix", "mixup", "both")


def zero_shot(probs: np.ndarray, rule: str = "geometric") -> np.ndarray:
    """EXPR probabilities [N, 8] (EXPR_NAMES order, rows summing to 1) -> CE scores [N, 7] summing to 1.

    A row whose 7 raw scores are all 0 gets 1/7 each (argmax then picks class 0, deterministically)."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or p.shape[1] != len(EXPR_NAMES):
        raise AbawError(f"zero-shot CE rule: expected EXPR probabilities [N, {len(EXPR_NAMES)}], got {list(p.shape)}")
    if rule not in RULES:
        raise AbawError(f"zero-shot CE rule must be one of {', '.join(RULES)}, got {rule!r}")
    a, b = p[:, PAIR_IDS[:, 0]], p[:, PAIR_IDS[:, 1]]  # [N, 7] each
    raw = np.sqrt(np.clip(a, 0, None) * np.clip(b, 0, None)) if rule == "geometric" else a + b
    total = raw.sum(axis=1, keepdims=True)
    return np.divide(raw, total, out=np.full_like(raw, 1 / len(CE_NAMES)), where=total > 0)


@dataclass(frozen=True)
class MixPlan:
    """Which faces make each synthetic compound: ``pairs`` [M, 2] indices (face of the adverb's class,
    face of the adjective's class), ``labels`` [M] CE ids, ``modes`` [M] "cutmix"|"mixup", ``upper``
    [M] 0/1 (which face gives the upper half, cutmix), ``cut`` [M] cut row as a share of the height,
    ``lam`` [M] the first face's weight (mixup). ``skipped`` counts compounds without faces of a class."""

    pairs: np.ndarray
    labels: np.ndarray
    modes: np.ndarray
    upper: np.ndarray
    cut: np.ndarray
    lam: np.ndarray
    skipped: dict[str, int]


def plan_mix(expr: np.ndarray, per_class: int, seed: int, mode: str = "cutmix", stream: int = 0) -> MixPlan:
    """Draw ``per_class`` face pairs per compound from faces labelled ``expr`` [N] (EXPR ids; -1 ignored);
    ``stream`` gives an independent draw for the same seed (the train and val faces of ``abaw mix``)."""
    if mode not in MODES:
        raise AbawError(f"mix mode must be one of {', '.join(MODES)}, got {mode!r}")
    if per_class < 1:
        raise AbawError(f"mix: per_class must be >= 1, got {per_class}")
    expr = np.asarray(expr, np.int64)
    rng = np.random.default_rng([seed, 7, stream])
    pairs, labels, skipped = [], [], {}
    for k, name in enumerate(CE_NAMES):
        pool_a, pool_b = (np.flatnonzero(expr == c) for c in PAIR_IDS[k])
        if not len(pool_a) or not len(pool_b):
            skipped[name] = per_class
            continue
        pairs.append(np.stack([rng.choice(pool_a, per_class), rng.choice(pool_b, per_class)], axis=1))
        labels.append(np.full(per_class, k, np.int64))
    m = per_class * len(pairs)
    kinds = np.array(["cutmix", "mixup"], dtype=object)
    modes = kinds[rng.integers(0, 2, m)] if mode == "both" else np.full(m, mode, dtype=object)
    return MixPlan(np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64),
                   np.concatenate(labels) if labels else np.zeros(0, np.int64), modes,
                   rng.integers(0, 2, m), rng.uniform(0.45, 0.6, m), rng.uniform(0.35, 0.65, m), skipped)


def mix_pair(a: np.ndarray, b: np.ndarray, mode: str, upper: int = 0, cut: float = 0.5, lam: float = 0.5) -> np.ndarray:
    """One compound face from faces ``a`` and ``b`` [H, W, C] uint8 of one size.

    cutmix: rows above ``cut * H`` from ``a`` (``upper == 0``) or ``b`` (``upper == 1``), the rest from the
    other; mixup: ``lam * a + (1 - lam) * b``, rounded."""
    if a.shape != b.shape:
        raise AbawError(f"mix: faces of different sizes {list(a.shape)} and {list(b.shape)}; resize them first")
    if mode == "mixup":
        return np.clip(np.rint(lam * a.astype(np.float32) + (1 - lam) * b.astype(np.float32)), 0, 255).astype(np.uint8)
    top, bottom = (a, b) if upper == 0 else (b, a)
    row = int(round(cut * a.shape[0]))
    return np.concatenate([top[:row], bottom[row:]], axis=0)


def mix_compounds(faces: np.ndarray, expr: np.ndarray, per_class: int, seed: int,
                  mode: str = "cutmix") -> tuple[np.ndarray, np.ndarray, MixPlan]:
    """Synthetic compound faces [M, H, W, C] uint8 and their CE labels [M] from basic-labelled
    ``faces`` [N, H, W, C] and ``expr`` [N]; also the plan (which faces made which)."""
    plan = plan_mix(expr, per_class, seed, mode)
    out = np.stack([mix_pair(faces[i], faces[j], str(m), int(u), float(c), float(lam))
                    for (i, j), m, u, c, lam in zip(plan.pairs, plan.modes, plan.upper, plan.cut, plan.lam)]) \
        if len(plan.labels) else np.zeros((0, *np.shape(faces)[1:]), np.uint8)
    return out, plan.labels, plan
