"""Fold-averaged per-frame values of one face: the TMF or the frame model of every chosen fold.

Reads through ``tmf`` / ``frame``. Writes nothing.
"""

from __future__ import annotations

import numpy as np

from abawkit.inference.clip import Clip
from abawkit.inference.decide import nearest_index
from abawkit.inference.frame import frame_model_values
from abawkit.inference.models import Models
from abawkit.inference.tmf import tmf_values


def face_values(models: Models, task_name: str, clip: Clip, face: int, frames: np.ndarray, crops: list[str]) -> np.ndarray:
    """Fold-averaged activated outputs [n, C] for one face over every frame (absent frames: nearest face frame's)."""
    outs = []
    for fold in models.folds(task_name):
        if models.cfg.model == "tmf":
            outs.append(tmf_values(models, task_name, fold, clip, face, frames, crops))
        else:
            outs.append(frame_model_values(models, task_name, fold, crops)[nearest_index(clip.n_frames, frames)])
    return np.mean(outs, axis=0)  # equal weights, as `abaw ensemble` without --val
