"""Fold ensembling: (weighted) average of prediction files that cover the same frames.

Pure: takes and returns ``Predictions`` (``abawkit/predictions.py``); the stage reads/writes files.
AU/EXPR probabilities and VA values are averaged; weights (e.g. each fold's validation score) are
normalised to sum to 1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from abawkit.errors import AbawError
from abawkit.predictions import Predictions, make_predictions


def check_same_frames(preds: Sequence[Predictions], names: Sequence[str]) -> None:
    """Refuse files of different tasks or covering different (video, frame) sets, naming the first difference."""
    first, ref = preds[0], names[0]
    keys0 = first.df[["video", "frame"]]
    for p, name in zip(preds[1:], names[1:]):
        if p.task.name != first.task.name:
            raise AbawError(f"{name} holds {p.task.name} predictions but {ref} holds {first.task.name}")
        keys = p.df[["video", "frame"]]
        if len(keys) == len(keys0) and (keys.to_numpy() == keys0.to_numpy()).all():
            continue
        a = set(map(tuple, keys0.itertuples(index=False)))
        b = set(map(tuple, keys.itertuples(index=False)))
        only_a, only_b = sorted(a - b), sorted(b - a)
        what = f"{ref} has {only_a[0][0]} frame {only_a[0][1]}" if only_a else f"{name} has {only_b[0][0]} frame {only_b[0][1]}"
        raise AbawError(f"{name} and {ref} cover different frames ({len(only_a)} vs {len(only_b)} unshared; "
                        f"e.g. {what} that the other lacks)")


def average(preds: Sequence[Predictions], names: Sequence[str], weights: Sequence[float] | None = None) -> Predictions:
    """Weighted mean of the prediction values; returns fold "ensemble", model "ensemble"."""
    if not preds:
        raise AbawError("no prediction files to ensemble")
    check_same_frames(preds, names)
    w = np.ones(len(preds)) if weights is None or len(weights) == 0 else np.asarray(weights, dtype=np.float64)
    if len(w) != len(preds):
        raise AbawError(f"{len(w)} weights for {len(preds)} prediction files")
    if (w < 0).any() or w.sum() <= 0:
        raise AbawError(f"weights must be >= 0 with a positive sum, got {w.tolist()}")
    w = w / w.sum()
    values = sum(wi * p.values() for wi, p in zip(w, preds))  # [N, C]
    first = preds[0]
    return make_predictions(first.df["video"], first.df["frame"], values, first.task.name, first.split,
                            "ensemble", "ensemble")
