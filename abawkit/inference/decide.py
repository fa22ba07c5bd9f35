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
from abawkit.labels import task
from abawkit.metrics import split_values
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
    sm = pp.apply_policy(values.T, np.array([0, len(values)]), policy, spec).T
    return sm, pp.decide(sm, spec, policy)


def task_columns(task_name: str, sm: np.ndarray, dec: np.ndarray) -> dict[str, Any]:
    """The CSV columns of one track for the rows of ``sm`` [R, C] / ``dec`` (NaN rows: no face), head by
    head: multilabel 0/1 + ``p_<name>``, multiclass the class name + ``p_<class>``, values rounded."""
    spec = task(task_name)
    missing = np.isnan(sm).any(axis=1)
    cols: dict[str, Any] = {}
    for (head, out, _), d in zip(spec.slices(), split_values(spec, dec)):
        p = sm[:, out]
        if head.kind == "multilabel":
            for i, n in enumerate(head.names):
                cols[n] = pd.array(np.where(missing, pd.NA, d[:, i]), dtype="Int64")
                cols[f"p_{n}"] = p[:, i].round(4)
        elif head.kind == "multiclass":
            name = "expression" if head.name == "expr" else head.name
            cols[name] = [None if m else head.names[int(i)] for m, i in zip(missing, np.nan_to_num(d[:, 0]))]
            for i, n in enumerate(head.names):
                cols[f"p_{n}"] = p[:, i].round(4)
        else:
            for i, n in enumerate(head.names):
                cols[n] = d[:, i].astype(np.float64).round(4)
    return cols
