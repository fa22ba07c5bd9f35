"""Cross-validation folds by video, balanced for rare labels (``abaw split``, run at the end of prep).

Per task, the train+val videos are grouped by source (``x_left``/``x_right`` stay together; a BAH
participant's answers stay together) and
dealt into ``n_folds`` folds. The ``stratified`` method deals the groups richest in rare labels
first, each to the fold whose label counts stay closest to an even share (greedy iterative
stratification); ``random`` is the plain random split it is compared against. Fold 0 (the
official split) is not stored: it comes from the ``split_<task>`` columns of the frame table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.console import console, table
from abawkit.errors import AbawError
from abawkit.io import write_parquet
from abawkit.labels import TASKS
from abawkit.release.annotations import source_key

def participant(name: str) -> str:
    """BAH ``<pid>_Question_<q>_..._Video`` -> ``<pid>``: one person's answers stay in one fold."""
    return name.split("_", 1)[0]


def group_of(task_name: str):
    """The rule that keeps related videos in one fold: one person's BAH answers, else one media file's
    ``_left``/``_right`` pair (``source_key``)."""
    return participant if TASKS[task_name].release in ("bah", "bah_frames") else source_key


def group_counts(frames: pd.DataFrame, task_name: str) -> tuple[pd.DataFrame, pd.Series]:
    """Per source group of train+val videos: labelled frames and rare-label frames [G, 1 + R];
    and the group of each video. A frame is labelled when any head of the track has a label on it;
    a rare label (``TaskSpec.rare``) is a class id of a multiclass head or a 1 of a multilabel one."""
    spec = TASKS[task_name]
    col = f"split_{task_name}"
    sub = frames[frames[col].isin(("train", "val"))] if col in frames else frames.iloc[:0]
    if sub.empty:
        return pd.DataFrame(), pd.Series(dtype=object)
    cols, labelled = {}, np.zeros(len(sub), bool)
    for head in spec.heads:
        labelled |= (sub[head.columns[0]] != head.invalid).to_numpy()
        for r in spec.rare:
            if r in head.names:
                hit = sub[head.columns[0]] == head.names.index(r) if head.kind == "multiclass" else \
                    sub[head.columns[head.names.index(r)]] == 1
                cols[r] = hit.to_numpy()
    data = pd.DataFrame({"frames": labelled, **cols}).astype(np.int64)
    key = group_of(task_name)
    data["group"] = sub["video"].map(key).to_numpy()
    video_group = sub.groupby("video", sort=True)["video"].first().map(key)
    return data.groupby("group", sort=True).sum(), video_group


def assign(counts: np.ndarray, n_folds: int, seed: int, method: str = "stratified") -> np.ndarray:
    """Fold (1..n_folds) per group given its counts [G, K] (column 0 = all labelled frames)."""
    rng = np.random.default_rng(seed)
    g = len(counts)
    if method == "random":
        return rng.permutation(np.arange(g) % n_folds) + 1
    if method != "stratified":
        raise AbawError(f"split method must be 'stratified' or 'random', got {method!r}")
    x = np.concatenate([counts, np.ones((g, 1))], axis=1).astype(np.float64)  # + one column: #groups
    target = np.maximum(x.sum(axis=0) / n_folds, 1e-9)  # [K+1] even share per fold
    share = x / target  # [G, K+1]
    order = rng.permutation(g)
    order = order[np.argsort(-share[order, 1:-1].max(axis=1, initial=0) - 1e-3 * share[order, 0], kind="stable")]
    load = np.zeros((n_folds, x.shape[1]))  # [F, K+1] relative load per fold
    fold = np.zeros(g, np.int64)
    for i in order:
        cost = ((load + share[i] - 1) ** 2 - (load - 1) ** 2).sum(axis=1)  # [F] added squared deviation
        best = int(np.flatnonzero(cost == cost.min())[0])
        load[best] += share[i]
        fold[i] = best + 1
    return fold


def make_splits(frames: pd.DataFrame, n_folds: int = 5, seed: int = 0, method: str = "stratified") -> pd.DataFrame:
    """``splits.parquet`` rows (video, task, fold) for every task with train+val videos."""
    out = []
    for t in TASKS:
        counts, video_group = group_counts(frames, t)
        if counts.empty:
            continue
        fold = pd.Series(assign(counts.to_numpy(), n_folds, seed, method), index=counts.index)
        out.append(pd.DataFrame({"video": video_group.index.to_numpy(), "task": t,
                                 "fold": fold.loc[video_group.to_numpy()].to_numpy().astype(np.int8)}))
    if not out:
        return pd.DataFrame({"video": pd.Series([], dtype=object), "task": pd.Series([], dtype=object),
                             "fold": pd.Series([], dtype=np.int8)})
    return pd.concat(out, ignore_index=True)


def fold_counts(frames: pd.DataFrame, splits: pd.DataFrame, task_name: str) -> pd.DataFrame:
    """Labelled and rare-label frame counts per fold [n_folds, 1 + R] (the balance report)."""
    counts, video_group = group_counts(frames, task_name)
    s = splits[splits["task"] == task_name]
    group_fold = s.assign(group=s["video"].map(group_of(task_name))).groupby("group")["fold"].first()
    return counts.groupby(group_fold.reindex(counts.index).to_numpy()).sum().rename_axis("fold")


def imbalance(per_fold: pd.DataFrame) -> float:
    """Mean over the rare columns of (max - min) / mean of the per-fold counts (0 = perfectly even)."""
    rare = per_fold.drop(columns="frames")
    if rare.empty:
        rare = per_fold
    spread = (rare.max() - rare.min()) / rare.mean().clip(lower=1e-9)
    return float(spread.mean())


# ----------------------------------------------------------------------------- written by prep and ``abaw split``
@dataclass(frozen=True)
class SplitConfig:
    seed: int = 0
    n_folds: int = 5
    method: str = "stratified"  # stratified | random


def write_splits(frames: pd.DataFrame, cfg: SplitConfig, path: Path) -> tuple[pd.DataFrame, dict]:
    """Make the folds, write them to ``path``; return them with a per-task balance report."""
    splits = make_splits(frames, cfg.n_folds, cfg.seed, cfg.method)
    write_parquet(path, splits, {"seed": str(cfg.seed), "method": cfg.method})
    report = {}
    for t in splits["task"].unique():
        counts = fold_counts(frames, splits, t)
        report[t] = {"imbalance": imbalance(counts), "per_fold": counts.to_dict(orient="index")}
    return splits, report


def show(report: dict) -> None:
    """Per-fold label counts as rich tables."""
    for t, r in report.items():
        rows = [[f, *c.values()] for f, c in r["per_fold"].items()]
        cols = ["fold", *next(iter(r["per_fold"].values())).keys()] if rows else ["fold"]
        console.print(table(f"{t} folds (imbalance {r['imbalance']:.3f})", cols, rows))
