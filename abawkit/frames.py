"""The one nearest-frame rule: a frame without a value takes the value of the nearest frame that has
one, ties to the earlier frame. Used by prep (``fill_frame``: the crop a frame without a face reuses),
the competition tools (``postprocess.fill_missing``: frames without a prediction) and ``abaw predict``
(frames without a given face).

Pure numpy; reads and writes nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def nearest(have: np.ndarray, want: np.ndarray) -> np.ndarray:
    """For each frame of ``want`` [M], the position in ``have`` [N] (sorted ascending, N >= 1) of the
    nearest frame (ties -> the earlier one): [M] int64."""
    have, want = np.asarray(have), np.asarray(want)
    hi = np.clip(np.searchsorted(have, want), 0, len(have) - 1)  # first frame >= want
    lo = np.clip(hi - 1, 0, len(have) - 1)
    use_lo = np.abs(want - have[lo]) <= np.abs(have[hi] - want)
    return np.where(use_lo, lo, hi)


def nearest_filled(vid: np.ndarray, frame: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Per row, the nearest frame of the same video with ``has`` (ties -> earlier), or -1: [N] int32.

    vid [N] (any hashable per row), frame [N] int, has [N] bool; rows in any order."""
    frame = np.asarray(frame)
    has = np.asarray(has, bool)
    out = np.full(len(frame), -1, np.int32)
    for rows in pd.Series(np.arange(len(frame))).groupby(np.asarray(vid), sort=False).indices.values():
        src = np.sort(frame[rows][has[rows]])
        if len(src):
            out[rows] = src[nearest(src, frame[rows])]
    return out
