"""Metrics of the video-level tracks, pure functions on arrays (one value per video).

- A/H (BAH): macro F1 = the mean of the two classes' F1 (the organisers' ``bah_metrics.py`` uses
  scikit-learn's ``f1_score(average=None)`` and averages), average precision of class 1 (scikit-learn's
  ``average_precision_score``; the organisers' own AP integrates precision over recall at thresholds
  0, 0.001, ..., 0.999 with ``sklearn.metrics.auc``: ``bah_average_precision`` reproduces it), and the
  decision threshold tuned on validation (``tune_threshold``) with ``calibrate`` moving it to 0.5 so that
  the written pred is the argmax of the written probabilities (``formats/ah.py``).
- EMI (Hume-Vidmimic2): the mean over the 6 emotions of Pearson's r; a constant column scores 0, never NaN.
Labels equal to the head's invalid value (-1) are left out. Reads and writes nothing.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, f1_score

from abawkit.labels import EMI_NAMES


def _valid(labels: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    labels = np.asarray(labels).reshape(-1)
    keep = labels >= 0
    return [labels[keep]] + [np.asarray(o)[keep] for o in others]


def ah_f1(labels: np.ndarray, preds: np.ndarray) -> dict:
    """Per-class F1 and their mean. labels [V] in {-1, 0, 1}; preds [V] in {0, 1}."""
    y, p = _valid(labels, preds)
    per = f1_score(y, np.asarray(p).reshape(-1), labels=[0, 1], average=None, zero_division=0)
    return {"score": float(per.mean()), "per_class": {"no_ah": float(per[0]), "ah": float(per[1])}}


def ah_average_precision(labels: np.ndarray, p1: np.ndarray) -> float:
    """scikit-learn's average precision of class 1 (A/H present); 0 when no video is positive."""
    y, s = _valid(labels, p1)
    return float(average_precision_score(y, s)) if (y == 1).any() else 0.0


def bah_average_precision(labels: np.ndarray, p1: np.ndarray, step: float = 0.001) -> float:
    """The organisers' AP: area (trapezoids) under precision over recall at thresholds 0, step, ..., 1 - step
    (precision 0 where nothing is predicted positive); 0 when no video is positive."""
    y, s = _valid(labels, p1)
    y = y == 1
    if not y.any():
        return 0.0
    t = np.arange(0, 1, step)[:, None]  # [T, 1]
    pos = np.asarray(s, np.float64)[None, :] >= t  # [T, V]
    tp = (pos & y).sum(1)
    n_pos = pos.sum(1)
    prec = np.divide(tp, n_pos, out=np.zeros(len(t)), where=n_pos > 0)
    rec = tp / y.sum()
    return float(np.trapezoid(prec[::-1], rec[::-1]))  # recall falls as t rises: reversed, it rises


def tune_threshold(labels: np.ndarray, p1: np.ndarray) -> tuple[float, float]:
    """The threshold t maximising validation macro F1 for "A/H iff p1 > t", and that F1.

    Candidates are 0.5 and the midpoints between consecutive distinct scores (every distinct decision);
    ties go to the candidate nearest 0.5, so a flat optimum keeps the untuned rule."""
    y, s = _valid(labels, p1)
    s = np.asarray(s, np.float64)
    u = np.unique(s)
    cands = np.unique(np.concatenate([[0.5], (u[1:] + u[:-1]) / 2, [max(u.min(initial=0.5) - 1e-6, 0.0)]]))
    scores = np.array([ah_f1(y, (s > c).astype(int))["score"] for c in cands])
    best = np.flatnonzero(scores == scores.max())
    c = cands[best[np.argmin(np.abs(cands[best] - 0.5))]]
    return float(c), float(scores.max())


def calibrate(p1: np.ndarray, threshold: float) -> np.ndarray:
    """Map p1 monotonically so that ``threshold`` goes to 0.5: [0, t] -> [0, 0.5], [t, 1] -> [0.5, 1].

    The order of the scores (hence AP) is kept, and ``calibrate(p1, t) > 0.5`` iff ``p1 > t``: the written
    probabilities' argmax is the tuned decision."""
    p1 = np.asarray(p1, np.float64)
    t = float(np.clip(threshold, 1e-9, 1 - 1e-9))
    return np.where(p1 <= t, 0.5 * p1 / t, 0.5 + 0.5 * (p1 - t) / (1 - t))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r in float64; 0 when either side is constant or empty (never NaN)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.size < 2:
        return 0.0
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denom) if denom > 0 else 0.0


def emi_scores(labels: np.ndarray, preds: np.ndarray) -> dict:
    """Mean Pearson over the 6 emotions. labels, preds [V, 6]; videos with an invalid (-1) label left out."""
    labels = np.asarray(labels, np.float64)
    preds = np.asarray(preds, np.float64)
    per = []
    for d in range(labels.shape[1]):
        keep = labels[:, d] >= 0
        per.append(pearson(labels[keep, d], preds[keep, d]))
    names = EMI_NAMES if len(per) == len(EMI_NAMES) else tuple(map(str, range(len(per))))
    return {"score": float(np.mean(per)), "per_class": dict(zip(names, per))}
