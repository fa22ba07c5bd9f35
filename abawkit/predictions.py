"""Per-frame prediction files: the contract between model stages and the competition tools.

A prediction file is Parquet with columns ``video`` (str), ``frame`` (int, 1-based) and the task's
``pred_columns``: AU probabilities ``AU1``..``AU26``, EXPR class probabilities ``Neutral``..``Other``
(rows sum to 1), or ``valence``/``arousal`` values. Schema metadata records ``task``, ``split``
(``val`` or ``test``), ``fold`` and ``model`` (which stage made it). Frames without a face may be
absent; the tools fill them from the nearest predicted frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.errors import AbawError
from abawkit.io import write_parquet
from abawkit.labels import TaskSpec, task


@dataclass
class Predictions:
    """A prediction table plus where it came from."""

    df: pd.DataFrame  # columns: video, frame, *task.pred_columns; sorted by (video, frame)
    task: TaskSpec
    split: str  # "val" | "test"
    fold: str  # "0".."5" or "ensemble"
    model: str  # e.g. "finetune", "tmf", "ensemble"

    def values(self) -> np.ndarray:
        """[N, C] float64 array of the prediction columns."""
        return self.df[list(self.task.pred_columns)].to_numpy(np.float64)


def make_predictions(
    videos: np.ndarray | list, frames: np.ndarray | list, values: np.ndarray, task_name: TaskSpec | str,
    split: str, fold: str | int, model: str,
) -> Predictions:
    """Build a ``Predictions`` from parallel arrays; ``values`` is [N, C]."""
    spec = task(task_name)
    values = np.asarray(values, dtype=np.float32).reshape(len(frames), spec.n_outputs)
    df = pd.DataFrame({"video": np.asarray(videos, dtype=object), "frame": np.asarray(frames, dtype=np.int64)})
    for i, col in enumerate(spec.pred_columns):
        df[col] = values[:, i]
    df = df.sort_values(["video", "frame"], kind="stable").reset_index(drop=True)
    return Predictions(df, spec, split, str(fold), model)


def write_predictions(path: str | Path, pred: Predictions) -> Path:
    meta = {"abaw.task": pred.task.name, "abaw.split": pred.split, "abaw.fold": pred.fold, "abaw.model": pred.model}
    return write_parquet(path, pred.df, meta)


def read_predictions(path: str | Path, expect_task: TaskSpec | str | None = None) -> Predictions:
    """Read and check a prediction file; problems are one-line ``AbawError``s naming the file."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise AbawError(f"{path}: not a readable prediction file ({exc})") from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items() if k.startswith(b"abaw.")}
    if "abaw.task" not in meta:
        raise AbawError(f"{path}: no abaw.task metadata; not an abawkit prediction file")
    spec = task(meta["abaw.task"])
    if expect_task and spec.name != task(expect_task).name:
        raise AbawError(f"{path}: holds {spec.name} predictions, expected {expect_task}")
    df = table.to_pandas()
    missing = [c for c in ("video", "frame", *spec.pred_columns) if c not in df.columns]
    if missing:
        raise AbawError(f"{path}: missing column {missing[0]}")
    if not np.isfinite(df[list(spec.pred_columns)].to_numpy(np.float64)).all():
        raise AbawError(f"{path}: non-finite prediction values")
    df = df.sort_values(["video", "frame"], kind="stable").reset_index(drop=True)
    return Predictions(df, spec, meta.get("abaw.split", "?"), meta.get("abaw.fold", "?"), meta.get("abaw.model", "?"))
