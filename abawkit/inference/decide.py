"""From per-frame model values to the CSV: nearest-frame index, the smoothing policy and decisions, columns.

Reads ``<workdir>/smooth/<task>/policy.json`` when present. Writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abawkit import postprocess as pp
from abawkit.frames import nearest
from abawkit.io import read_json
from abawkit.labels import AU_NAMES, EXPR_NAMES, VA_NAMES, task
from abawkit.workspace import layout


def nearest_index(n: int, frames: np.ndarray) -> np.ndarray:
    """For each of ``n`` frames, the position in ``frames`` (sorted, non-empty) of the nearest one (ties -> earlier):
    ``frames.nearest``, the one nearest-frame rule, over every frame of the clip."""
    return nearest(frames, np.arange(n))


def policy_path(workdir: Path, task_name: str) -> Path:
    return layout.path(workdir, layout.policy(task_name))


def smooth_and_decide(workdir: Path, task_name: str, values: np.ndarray, use_policy: bool) -> tuple[np.ndarray, np.ndarray]:
    """(smoothed values [n, C], decisions) with the task's saved policy (if any)."""
    spec = task(task_name)
    path = policy_path(workdir, task_name)
    policy = read_json(path) if use_policy and path.exists() else None
    sm = pp.apply_policy(values.T, np.array([0, len(values)]), policy).T
    return sm, pp.decide(sm, spec, policy)


def task_columns(task_name: str, sm: np.ndarray, dec: np.ndarray) -> dict[str, Any]:
    """The CSV columns of one task for the rows of ``sm`` [R, C] / ``dec`` (NaN rows: no face)."""
    missing = np.isnan(sm).any(axis=1)
    cols: dict[str, Any] = {}
    if task_name == "au":
        for i, n in enumerate(AU_NAMES):
            cols[n] = pd.array(np.where(missing, pd.NA, dec[:, i]), dtype="Int64")
            cols[f"p_{n}"] = sm[:, i].round(4)
    elif task_name == "expr":
        cols["expression"] = [None if m else EXPR_NAMES[int(i)] for m, i in zip(missing, np.nan_to_num(dec[:, 0]))]
        for i, n in enumerate(EXPR_NAMES):
            cols[f"p_{n}"] = sm[:, i].round(4)
    else:
        for i, n in enumerate(VA_NAMES):
            cols[n] = dec[:, i].astype(np.float64).round(4)
    return cols
