"""The row of ``abaw predict`` for the video-level tracks (A/H of ABAW 10/11, EMI): one per video, not per frame.

``stages.predict.run_one`` calls ``video_table`` with ``model = "video"`` once the faces are found and cropped
as for every track: each chosen fold of ``video/<track>/fold<N>`` runs on the whole clip and the folds are
combined as the submission combines them (``inference.video.clip_row``, ``submission_video.decisions``). The
row is ``video`` + A/H ``p_no_ah, p_ah, ah`` (``ah`` decided at the calibrated 0.5) or EMI's 6 intensities. A
video without any face gets an empty row (a warning says so): the models read faces, and nothing is invented.
``video_level`` says whether a run's tracks are video-level (a mix, or a model that does not fit, is one line).
Reads through ``inference.video``. Writes nothing.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from abawkit.console import console
from abawkit.errors import AbawError
from abawkit.inference.clip import Clip
from abawkit.inference.models import Models
from abawkit.inference.video import clip_row
from abawkit.labels import TaskSpec, task
from abawkit.submission_video import decisions

FLOAT_FORMAT = "%.6f"  # p_no_ah + p_ah is 1 in the file to its last digit (p_no_ah = 1 - the rounded p_ah)


def video_level(cfg) -> bool:
    """Whether this run predicts video-level tracks; one line for a mix, or for a model that does not fit them."""
    levels = {t: task(t).level for t in cfg.tasks}
    per_video = [t for t, lv in levels.items() if lv == "video"]
    if per_video and len(per_video) < len(levels):
        frames = [t for t in levels if t not in per_video]
        raise AbawError(f"tasks: {', '.join(per_video)} give one value per video and {', '.join(frames)} one per "
                        "frame: predict them in two calls (two recipes)")
    if per_video and cfg.model != "video":
        raise AbawError(f"tasks: {', '.join(per_video)} give one value per video: set model = \"video\" "
                        f"(--model video), not {cfg.model!r}")
    if not per_video and cfg.model == "video":
        raise AbawError(f"model = \"video\" predicts the video-level tracks (ah, emi), not {', '.join(levels)}")
    if per_video and cfg.faces != "largest":
        raise AbawError(f"faces = {cfg.faces!r}: a video-level model reads one face per frame: use --faces largest")
    return bool(per_video)


def task_cells(spec: TaskSpec, values: np.ndarray | None) -> dict[str, object]:
    """The row's cells of one track from its combined values [1 | 6] (None: no face, every cell empty)."""
    head = spec.head
    if head.kind == "multiclass":  # p0, p1, pred at the calibrated 0.5
        if values is None:
            return {**{f"p_{n}": np.nan for n in head.names}, head.name: None}
        _, p1, pred = decisions(spec, values[None])[0]
        p1 = round(float(p1), 6)
        return {f"p_{head.names[0]}": round(1.0 - p1, 6), f"p_{head.names[1]}": p1, head.name: head.names[int(pred)]}
    out = decisions(spec, values[None])[0] if values is not None else np.full(len(head.names), np.nan)
    return {n: round(float(v), 6) for n, v in zip(head.names, out)}


def video_table(models: Models, clip: Clip) -> pd.DataFrame:
    """``predictions.csv`` of a video-level run: one row, ``video`` + every track's cells."""
    row: dict[str, object] = {"video": clip.path.stem}
    if not len(clip.frame):
        console.print(f"[yellow]warning:[/] {clip.path.name}: no face found, so its row is empty (the video-level "
                      "models read faces)", soft_wrap=True, highlight=False)
    t0 = time.perf_counter()
    for t in models.cfg.tasks:
        combined = clip_row(models, t, clip) if len(clip.frame) else None
        row.update(task_cells(task(t), None if combined is None else combined.drop(columns="video").to_numpy()[0]))
    clip.timings["models"] = time.perf_counter() - t0
    return pd.DataFrame([row])
