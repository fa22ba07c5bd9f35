"""Post-processing of per-frame predictions: fill missing frames, smooth along time, search a policy.

Pure functions on numpy arrays and prediction tables; the stages (``stages/smooth.py``,
``stages/submit.py``) read and write the files.

A *policy* is ``{"task", "filter": none|median|mean|gaussian, "size": int|None, "sigma": float|None,
"thresholds": {AU: t} (AU only)}``. Smoothing runs per video along time, on every frame of the video
(missing frames filled first) with ``mode="nearest"`` at the video's ends.

Speed (SPEC section 5): values are kept as one ``[C, N]`` float64 array (videos back to back). Median
and Gaussian filters run once per channel on a padded concatenation (each video padded with its own
edge values by more than the filter radius, which is exactly what ``mode="nearest"`` sees), using
scipy's fast 1-D kernels. The uniform filter keeps a running sum whose rounding depends on history, so
it runs per video (on ``[C, T]`` along the last axis) to stay bit-identical to a per-video reference.
AU thresholds are searched with threshold comparisons + one ``bincount`` per setting (integer counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from abawkit.errors import AbawError
from abawkit.frames import nearest
from abawkit.labels import TaskSpec, head_track, task
from abawkit.metrics import f1_counts, head_scores

FILTERS = ("none", "median", "mean", "gaussian")
GAUSS_TRUNCATE = 4.0  # scipy's default


# ----------------------------------------------------------------------------- filling
def fill_missing(pred: pd.DataFrame, target: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Values of ``pred`` at every (video, frame) row of ``target``; absent frames take the nearest
    predicted frame of the same video (ties -> the earlier frame, as ``prep``'s ``fill_frame``).

    pred: rows (video, frame, *columns); target: rows (video, frame). Returns [len(target), C] float64.
    A target video with no prediction at all is an error.
    """
    out = np.empty((len(target), len(columns)), dtype=np.float64)
    pvals = pred[list(columns)].to_numpy(np.float64)
    pgroups = pred.groupby("video", sort=False).indices
    for video, rows in target.groupby("video", sort=False).indices.items():
        if video not in pgroups:
            raise AbawError(f"no prediction for any frame of video {video!r}")
        pidx = pgroups[video]
        pf = pred["frame"].to_numpy()[pidx]
        order = np.argsort(pf, kind="stable")
        pidx, pf = pidx[order], pf[order]
        tf = target["frame"].to_numpy()[rows]
        out[rows] = pvals[pidx[nearest(pf, tf)]]
    return out


# ----------------------------------------------------------------------------- filters
def smooth_video(x: np.ndarray, filt: str, param: float | None) -> np.ndarray:
    """Smooth one video. x: [C, T] float64 (time last). The reference semantics for all filters."""
    if filt == "none":
        return x
    if filt == "median":
        return np.stack([ndimage.median_filter(row, size=int(param), mode="nearest") for row in x])
    if filt == "mean":
        return ndimage.uniform_filter1d(x, size=int(param), axis=-1, mode="nearest")
    if filt == "gaussian":
        return ndimage.gaussian_filter1d(x, sigma=float(param), axis=-1, mode="nearest", truncate=GAUSS_TRUNCATE)
    raise AbawError(f"unknown filter {filt!r}; expected one of {', '.join(FILTERS)}")


def _radius(filt: str, param: float) -> int:
    if filt == "gaussian":
        return int(GAUSS_TRUNCATE * float(param) + 0.5)
    return int(param) // 2 + 1


def smooth(x: np.ndarray, bounds: np.ndarray, filt: str, param: float | None) -> np.ndarray:
    """Smooth videos stored back to back. x: [C, N]; bounds: [V+1] start offsets (last = N).

    Equal, bit for bit, to ``smooth_video`` applied to each ``x[:, bounds[i]:bounds[i+1]]``.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if filt == "none":
        return x
    if filt == "mean":
        out = np.empty_like(x)
        for s, e in zip(bounds[:-1], bounds[1:]):
            out[:, s:e] = smooth_video(x[:, s:e], filt, param)
        return out
    if filt not in FILTERS:
        raise AbawError(f"unknown filter {filt!r}; expected one of {', '.join(FILTERS)}")
    r = _radius(filt, param)
    lengths = np.diff(bounds)
    # source index of each padded position: edge-replicated copies of every video, r on each side
    src = np.concatenate([np.clip(np.arange(-r, n + r), 0, n - 1) + s for s, n in zip(bounds[:-1], lengths)])
    keep = np.concatenate([np.arange(n) + r + 2 * r * i for i, n in enumerate(lengths)]) + np.repeat(
        np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    out = np.empty_like(x)
    for c in range(x.shape[0]):
        padded = x[c, src]
        if filt == "median":
            y = ndimage.median_filter(padded, size=int(param), mode="nearest")
        else:
            y = ndimage.gaussian_filter1d(padded, sigma=float(param), mode="nearest", truncate=GAUSS_TRUNCATE)
        out[c] = y[keep]
    return out


# ----------------------------------------------------------------------------- scoring
def au_codes(labels: np.ndarray, n_thresholds: int) -> np.ndarray:
    """Per-element offsets for ``au_threshold_f1``: labels [C, M] in {-1,0,1} -> [C, M] int64.

    Element (c, m) counts into bin ``2 * (c * (K+1) + b) + positive``; unannotated elements go to a
    final dump bin. Depends on labels only, so the search computes it once.
    """
    c, labels = labels.shape[0], np.ascontiguousarray(labels)
    base = 2 * (n_thresholds + 1) * np.arange(c, dtype=np.int64)[:, None] + (labels == 1)
    return np.where(labels >= 0, base, 2 * (n_thresholds + 1) * c).astype(np.int64)


def au_threshold_f1(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray,
                    codes: np.ndarray | None = None) -> np.ndarray:
    """F1 of every AU at every threshold. probs: [C, M] float64; labels: [C, M] in {-1,0,1}.

    Returns [C, K] for thresholds [K] (ascending); prediction = prob >= threshold. One
    pass of comparisons + one ``bincount`` give exact integer counts for all thresholds at once.
    """
    c, k = probs.shape[0], len(thresholds)
    codes = au_codes(labels, k) if codes is None else codes
    bins = np.zeros(probs.shape, dtype=np.uint8 if k < 255 else np.int32)  # [C, M]: thresholds <= p
    hit = np.empty(probs.shape, dtype=bool)
    for t in thresholds:  # k vectorised passes: ~3x faster than searchsorted for small k
        bins += np.greater_equal(probs, t, out=hit)
    counts = np.bincount((2 * bins + codes).ravel(), minlength=2 * (k + 1) * c + 2)
    counts = counts[: 2 * (k + 1) * c].reshape(c, k + 1, 2)  # [C, bin, positive]
    n_bin, tp_bin = counts.sum(axis=2), counts[:, :, 1]
    # predicted positive at threshold j  <=>  bin > j
    n_pred = np.cumsum(n_bin[:, ::-1], axis=1)[:, ::-1][:, 1:]
    tp = np.cumsum(tp_bin[:, ::-1], axis=1)[:, ::-1][:, 1:]
    return f1_counts(tp, tp_bin.sum(axis=1)[:, None], n_pred)


def binary_threshold_f1(p1: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per-class F1 [K, 2] (class 0, class 1) of a two-class head at every threshold on class 1's
    probability (prediction = p1 >= threshold): macro F1 is their mean. p1, labels: [M] (labels 0/1)."""
    pos = labels == 1
    pred = p1[None, :] >= thresholds[:, None]  # [K, M]
    tp, n_pred = (pred & pos).sum(axis=1), pred.sum(axis=1)
    n, p = len(labels), int(pos.sum())
    tn = (n - p) - (n_pred - tp)
    return np.stack([f1_counts(tn, n - p, n - n_pred), f1_counts(tp, p, n_pred)], axis=1)


def two_class(spec: TaskSpec) -> bool:
    """A one-head track of two classes (A/H): its decision is a threshold on class 1, tuned on validation."""
    return spec.kind == "multiclass" and len(spec.names) == 2


@dataclass
class SearchData:
    """Validation predictions on every frame of their videos, plus labels where annotated.

    x: [C, N] values; bounds: [V+1] video offsets into N; labelled: [M] indices into N;
    labels: [M, L] label columns at those frames.
    """

    spec: TaskSpec
    x: np.ndarray
    bounds: np.ndarray
    labelled: np.ndarray
    labels: np.ndarray
    au_codes: np.ndarray | None = None  # [C, M] cached by ``search`` (AU only)


def search_data(pred: pd.DataFrame, frames: pd.DataFrame, spec: TaskSpec) -> SearchData:
    """Fill ``pred`` onto every frame of its videos and attach labels.

    frames: the prep frame table (every frame of every video, label columns); only the videos
    present in ``pred`` are used.
    """
    videos = pred["video"].unique()
    target = frames[frames["video"].isin(videos)].sort_values(["video", "frame"], kind="stable")
    target = target.reset_index(drop=True)
    x = np.ascontiguousarray(fill_missing(pred, target, spec.pred_columns).T)  # [C, N]
    labels = target[list(spec.label_columns)].to_numpy(np.float64)  # [N, L]
    valid = np.zeros(labels.shape, bool)
    for head, _, cols in spec.slices():  # each head masked by its own invalid value
        valid[:, cols] = labels[:, cols] != head.invalid
    labelled = np.flatnonzero(valid.any(axis=1))
    if labelled.size == 0:
        raise AbawError(f"no {spec.name} labels on the {len(videos)} predicted videos: are these validation predictions?")
    return SearchData(spec, x, video_bounds(target["video"].to_numpy()), labelled, labels[labelled])


def score_setting(data: SearchData, filt: str, param: float | None, thresholds: np.ndarray) -> dict[str, Any]:
    """Score one filter setting; for AU, also pick each AU's best threshold (first best if tied)."""
    y = np.take(smooth(data.x, data.bounds, filt, param), data.labelled, axis=1)  # [C, M], C-contiguous
    spec = data.spec
    if spec.kind == "multilabel":
        f1 = au_threshold_f1(y, data.labels.T, thresholds, data.au_codes)  # [C, K]
        best = f1.argmax(axis=1)
        per = f1[np.arange(len(best)), best]
        thr = {n: float(thresholds[b]) for n, b in zip(spec.names, best)}
    elif two_class(spec):  # the threshold on class 1 that maximises macro F1 (first best if tied)
        f1 = binary_threshold_f1(y[1], data.labels[:, 0], thresholds)  # [K, 2]
        best = int(f1.mean(axis=1).argmax())
        per, thr = f1[best], {spec.names[1]: float(thresholds[best])}
    else:
        per, thr = head_scores(spec.head, data.labels, y.T), None
    return {"filter": filt, "param": param, "score": float(per.mean()),
            "per_class": dict(zip(spec.names, map(float, per))), "thresholds": thr}


def grid_settings(grid: dict[str, Sequence[float]]) -> list[tuple[str, float | None]]:
    """``{"median": [...], "mean": [...], "gaussian": [...]}`` -> [("none", None), (filter, param)...]."""
    out: list[tuple[str, float | None]] = [("none", None)]
    for filt in ("median", "mean", "gaussian"):
        out += [(filt, p) for p in grid.get(filt, ())]
    return out


def search(data: SearchData, grid: dict[str, Sequence[float]], thresholds: Sequence[float], jobs: int = 1,
           progress: Any = None) -> list[dict[str, Any]]:
    """Score every setting of ``grid`` (plus "none"); returns results in grid order.

    Use ``rank`` to sort them. ``jobs`` > 1 runs settings in parallel with joblib.
    """
    from joblib import Parallel, delayed

    thr = np.asarray(sorted(thresholds), dtype=np.float64)
    settings = grid_settings(grid)
    if data.spec.kind == "multilabel" and data.au_codes is None:
        data.au_codes = au_codes(data.labels.T, len(thr))
    if jobs == 1:
        results = []
        for filt, p in settings:
            results.append(score_setting(data, filt, p, thr))
            if progress:
                progress()
        return results
    par = Parallel(n_jobs=jobs, prefer="processes", return_as="generator")
    results = []
    for res in par(delayed(score_setting)(data, f, p, thr) for f, p in settings):
        results.append(res)
        if progress:
            progress()
    return results


def rank(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best first; ties keep grid order (so "none" wins a tie, then smaller windows)."""
    return sorted(results, key=lambda r: -r["score"])


def policy_from(result: dict[str, Any], task_name: TaskSpec | str) -> dict[str, Any]:
    """The JSON policy for one search result."""
    filt, p = result["filter"], result["param"]
    return {
        "task": task(task_name).name,
        "filter": filt,
        "size": int(p) if filt in ("median", "mean") else None,
        "sigma": float(p) if filt == "gaussian" else None,
        "thresholds": result.get("thresholds"),
        "score": result["score"],
    }


def policy_param(policy: dict[str, Any]) -> float | None:
    """The filter parameter of a policy (size or sigma); checks the filter name."""
    filt = policy.get("filter", "none")
    if filt not in FILTERS:
        raise AbawError(f"policy: unknown filter {filt!r}; expected one of {', '.join(FILTERS)}")
    return policy.get("sigma") if filt == "gaussian" else policy.get("size")


def apply_policy(x: np.ndarray, bounds: np.ndarray, policy: dict[str, Any] | None,
                 spec: TaskSpec | None = None) -> np.ndarray:
    """Smooth [C, N] values with a policy (None = no smoothing); a track of several heads smooths each
    head's rows with its own policy (``policy["heads"][head]``)."""
    if not policy:
        return np.ascontiguousarray(x, dtype=np.float64)
    if "heads" in policy:
        if spec is None:
            raise AbawError("a policy with heads needs its track")
        return np.concatenate([apply_policy(x[out], bounds, head_policy(policy, h)) for h, out, _ in spec.slices()])
    return smooth(x, bounds, policy.get("filter", "none"), policy_param(policy))


def head_policy(policy: dict[str, Any] | None, head) -> dict[str, Any] | None:
    """One head's part of a track's policy (a one-head track's policy is its head's)."""
    if not policy or "heads" not in policy:
        return policy
    return policy["heads"].get(head.name)


def decide(values: np.ndarray, spec: TaskSpec, policy: dict[str, Any] | None) -> np.ndarray:
    """Final per-frame outputs from smoothed values [N, C]: AU 0/1 (policy thresholds, default 0.5),
    EXPR class id [N, 1] (a two-class head: class 1 at or above the policy's threshold, else argmax),
    VA clipped to [-1, 1]."""
    if len(spec.heads) > 1:
        parts = [decide(values[:, out], head_track(spec, h), head_policy(policy, h)) for h, out, _ in spec.slices()]
        return np.concatenate([p.astype(np.float64) for p in parts], axis=1)
    if spec.kind == "multilabel":
        thr_map = (policy or {}).get("thresholds") or {}
        thr = np.asarray([float(thr_map.get(n, 0.5)) for n in spec.names])
        return (values >= thr).astype(np.int64)
    thr_map = (policy or {}).get("thresholds") or {}
    if two_class(spec) and spec.names[1] in thr_map:  # a tuned threshold on class 1 (A/H)
        return (values[:, 1] >= float(thr_map[spec.names[1]])).astype(np.int64)[:, None]
    if spec.kind == "multiclass":
        return values.argmax(axis=1).astype(np.int64)[:, None]
    return np.clip(values, 0.0 if spec.kind == "intensity" else -1.0, 1.0)


def video_bounds(videos: np.ndarray) -> np.ndarray:
    """[V+1] start offsets of runs of equal video names (rows grouped per video, frames sorted)."""
    videos = np.asarray(videos)
    change = np.flatnonzero(videos[1:] != videos[:-1]) + 1
    return np.concatenate([[0], change, [len(videos)]]).astype(np.int64)


# ----------------------------------------------------------------------------- reference
def reference_search(
    values: list[np.ndarray], labels: list[np.ndarray], task_name: TaskSpec | str, grid: dict[str, Sequence[float]],
    thresholds: Sequence[float],
) -> list[dict[str, Any]]:
    """The straightforward definition of ``search``, slow on purpose: per video a 2-D scipy filter
    along time, then sklearn ``f1_score`` per AU and threshold (or per class) / a float64 CCC.

    values: per video [T, C]; labels: per video [T, L] (invalid = the task's invalid value).
    Used by the tests and ``benchmarks/bench_smooth.py`` to check ``search`` result for result.
    """
    from sklearn.metrics import f1_score

    spec = task(task_name)
    filters = {
        "none": lambda v, p: v,
        "median": lambda v, p: ndimage.median_filter(v, size=(int(p), 1), mode="nearest"),
        "mean": lambda v, p: ndimage.uniform_filter1d(v, size=int(p), axis=0, mode="nearest"),
        "gaussian": lambda v, p: ndimage.gaussian_filter1d(v, sigma=float(p), axis=0, mode="nearest"),
    }
    lab = np.concatenate(labels)
    out = []
    for filt, p in grid_settings(grid):
        pred = np.concatenate([filters[filt](np.asarray(v, np.float64), p) for v in values])
        per, thr = [], None
        if spec.kind == "multilabel":
            thr = {}
            for c, name in enumerate(spec.names):
                keep = lab[:, c] >= 0
                best, best_t = -1.0, None
                for t in sorted(thresholds):
                    f = f1_score(lab[keep, c], pred[keep, c] >= t, zero_division=0)
                    if f > best:
                        best, best_t = f, t
                per.append(best)
                thr[name] = float(best_t)
        elif spec.kind == "multiclass":
            keep = lab[:, 0] >= 0
            per = f1_score(lab[keep, 0], pred[keep].argmax(1), labels=range(spec.n_outputs), average=None,
                           zero_division=0)
        else:
            for d in range(spec.n_outputs):
                keep = lab[:, d] != spec.invalid
                x, y = lab[keep, d].astype(np.float64), pred[keep, d]
                mx, my = x.mean(), y.mean()
                denom = x.var() + y.var() + (mx - my) ** 2
                per.append(2 * ((x - mx) * (y - my)).mean() / denom if denom > 0 else 0.0)
        out.append({"filter": filt, "param": p, "score": float(np.mean(per)), "thresholds": thr})
    return out
