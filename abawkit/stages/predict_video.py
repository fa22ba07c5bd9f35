"""``abaw predict`` for the video-level tracks (A/H of ABAW 10/11, EMI): one row per video, not per frame.

Part of the predict stage (``stages.predict.run_one`` calls it with ``model = "video"``): the faces found and
cropped as for every track, then each chosen fold of ``video/<track>/fold<N>`` on the whole clip and the folds
combined as the submission combines them (``inference.video.clip_row``, ``submission_video.decisions``). Makes
the row of ``predictions.csv`` (``video`` + A/H ``p_no_ah, p_ah, ah`` with ``ah`` decided at the calibrated
0.5, or EMI's 6 intensities), draws ``summary.png`` (a bar chart) and prints the summary table. A video without
any face gets an empty row (a warning says so): the models read faces, and nothing is invented.
Writes only the PNG it is handed (atomically); the stage writes the CSV.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.console import console, table
from abawkit.errors import AbawError
from abawkit.inference.clip import Clip
from abawkit.inference.models import Models
from abawkit.inference.video import clip_row
from abawkit.io import atomic_path
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


def summary(df: pd.DataFrame, n_face: int, n_frames: int) -> None:
    """The rich table: frames with a face, then each value of the row (a decision with its probability)."""
    rows = [("frames with a face", f"{n_face}/{n_frames} ({n_face / max(n_frames, 1):.0%})")]
    for col in df.columns[1:]:
        v = df[col].iloc[0]
        rows.append((col, "-" if v is None or (isinstance(v, float) and np.isnan(v)) else
                     (f"{v:.3f}" if isinstance(v, (float, np.floating)) else str(v))))
    console.print(table("prediction summary (one per video)", ["what", "value"], rows))


def bars(path: Path, df: pd.DataFrame) -> None:
    """``summary.png``: the row's probabilities / intensities as bars in [0, 1], the A/H decision line at 0.5."""
    import matplotlib  # lazy: matplotlib costs ~0.5 s of start-up and only this function draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [c for c in df.columns[1:] if pd.api.types.is_numeric_dtype(df[c])]
    values = df[cols].iloc[0].to_numpy(np.float64)
    fig, ax = plt.subplots(figsize=(max(3.0, 0.9 * len(cols) + 1.5), 3))
    ax.bar(range(len(cols)), np.nan_to_num(values), color="#4C72B0")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    if any(c.startswith("p_") for c in cols):
        ax.axhline(0.5, color="#C44E52", lw=1, ls="--")  # the calibrated decision threshold
    ax.set_title(str(df["video"].iloc[0]) + ("" if np.isfinite(values).all() else " (no face)"), fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
