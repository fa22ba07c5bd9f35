"""Official ABAW metrics, vectorised: AU mean F1, EXPR/CE macro F1, VA mean CCC, EMI mean Pearson; a
track of several heads scores the sum of its heads' metrics (MTL's P_MTL).

Frames whose label holds the task's invalid value are excluded (per AU for AU, per dimension for VA).
Conventions follow scikit-learn's ``f1_score(zero_division=0)``: an F1 with no true and no predicted
positives is 0. CCC of a constant series is 0, never NaN.
"""

from __future__ import annotations

import numpy as np

from abawkit.labels import Head, TaskSpec, task


def f1_binary(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 of 0/1 arrays (zero_division -> 0)."""
    tp = np.count_nonzero(y_true & y_pred)
    denom = np.count_nonzero(y_true) + np.count_nonzero(y_pred)
    return float(2 * tp / denom) if denom else 0.0


def f1_counts(tp: np.ndarray, n_true: np.ndarray, n_pred: np.ndarray) -> np.ndarray:
    """Element-wise F1 from counts (zero_division -> 0); works on any shape."""
    denom = n_true + n_pred
    return np.divide(2.0 * tp, denom, out=np.zeros(np.shape(denom), dtype=np.float64), where=denom > 0)


def ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Concordance correlation coefficient with population statistics (float64); 0 if undefined."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size == 0:
        return 0.0
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = ((x - mx) * (y - my)).mean()
    denom = vx + vy + (mx - my) ** 2
    return float(2 * cov / denom) if denom > 0 else 0.0


def au_scores(labels: np.ndarray, probs: np.ndarray, thresholds: np.ndarray | float = 0.5) -> np.ndarray:
    """Per-AU F1. labels: [N, 12] in {-1,0,1}; probs: [N, 12]; returns [12]."""
    labels = np.asarray(labels)
    valid = labels >= 0
    y = (labels == 1) & valid
    p = (np.asarray(probs) >= np.asarray(thresholds)) & valid
    return f1_counts(np.count_nonzero(y & p, axis=0), np.count_nonzero(y, axis=0), np.count_nonzero(p, axis=0))


def expr_scores(labels: np.ndarray, preds: np.ndarray, n_classes: int = 8) -> np.ndarray:
    """Per-class F1. labels: [N] in -1..7; preds: [N, 8] probabilities or [N] class ids."""
    labels = np.asarray(labels).reshape(-1)
    preds = np.asarray(preds)
    cls = preds.argmax(axis=1) if preds.ndim == 2 else preds.reshape(-1)
    keep = labels >= 0
    y, c = labels[keep].astype(np.int64), cls[keep].astype(np.int64)
    n_true = np.bincount(y, minlength=n_classes)[:n_classes]
    n_pred = np.bincount(c, minlength=n_classes)[:n_classes]
    tp = np.bincount(y[y == c], minlength=n_classes)[:n_classes]
    return f1_counts(tp, n_true, n_pred)


def va_scores(labels: np.ndarray, preds: np.ndarray, invalid: float = -5) -> np.ndarray:
    """CCC per dimension. labels, preds: [N, 2]; frames with label == invalid are skipped."""
    labels = np.asarray(labels, dtype=np.float64)
    preds = np.asarray(preds, dtype=np.float64)
    out = []
    for d in range(labels.shape[1]):
        keep = labels[:, d] != invalid
        out.append(ccc(labels[keep, d], preds[keep, d]))
    return np.asarray(out)


def pearson_scores(labels: np.ndarray, preds: np.ndarray, invalid: float = -1) -> np.ndarray:
    """Pearson correlation per column (EMI intensities). labels, preds: [N, D]; rows with label ==
    invalid skipped; a constant column scores 0, never NaN."""
    labels = np.asarray(labels, dtype=np.float64)
    preds = np.asarray(preds, dtype=np.float64)
    out = []
    for d in range(labels.shape[1]):
        keep = labels[:, d] != invalid
        x, y = labels[keep, d], preds[keep, d]
        sx, sy = x.std(), y.std()
        out.append(float(((x - x.mean()) * (y - y.mean())).mean() / (sx * sy)) if x.size and sx > 0 and sy > 0 else 0.0)
    return np.asarray(out)


def head_scores(head: Head, labels: np.ndarray, preds: np.ndarray, thresholds: np.ndarray | float | None = None
                ) -> np.ndarray:
    """Per-name scores of one head: labels [N, L] (or [N] for multiclass), preds [N, C] values or,
    for multiclass, [N] / [N, 1] class ids."""
    if head.kind == "multilabel":
        return au_scores(labels, preds, 0.5 if thresholds is None else thresholds)
    if head.kind == "multiclass":
        preds = np.asarray(preds)
        return expr_scores(labels, preds[:, 0] if preds.ndim == 2 and preds.shape[1] == 1 else preds, head.n_outputs)
    labels = np.asarray(labels).reshape(len(labels), -1)
    if head.kind == "intensity":
        return pearson_scores(labels, preds, head.invalid)
    return va_scores(labels, preds, head.invalid)


def split_values(spec: TaskSpec, preds: np.ndarray) -> list[np.ndarray]:
    """A track's value columns per head: [N, n_outputs] (probabilities) or decided values, where a
    multiclass head holds one class-id column (a submission file's layout)."""
    preds = np.asarray(preds)
    if preds.ndim == 1 or len(spec.heads) == 1:
        return [preds]
    decided = preds.shape[1] != spec.n_outputs
    out, o = [], 0
    for h in spec.heads:
        n = 1 if decided and h.kind == "multiclass" else h.n_outputs
        out.append(preds[:, o:o + n])
        o += n
    return out


def score(task_name: TaskSpec | str, labels: np.ndarray, preds: np.ndarray, thresholds: np.ndarray | float | None = None) -> dict:
    """The track's official metric: ``{"score": float, "per_class": {name: v}}`` (+ ``"heads"``
    {head: its metric} for a track of several heads, whose score is their sum: P_MTL).

    labels: [N, L] (``spec.label_columns``; [N] for a one-head multiclass track); preds: values
    [N, n_outputs] or decided values (see ``split_values``); ``thresholds`` apply to multilabel heads."""
    spec = task(task_name)
    labels = np.asarray(labels)
    per_head, per_class = {}, {}
    for (head, _, cols), p in zip(spec.slices(), split_values(spec, preds)):
        lab = labels if len(spec.heads) == 1 else labels[:, cols]
        thr = thresholds if head.kind == "multilabel" else None
        per = head_scores(head, lab, p, thr)
        per_head[head.name] = float(per.mean())
        per_class.update(zip(head.names, map(float, per)))
    total = sum(per_head.values()) if spec.score == "sum" else float(np.mean(list(per_head.values())))
    out = {"score": float(total), "per_class": per_class}
    if len(spec.heads) > 1:
        out["heads"] = per_head
    return out
