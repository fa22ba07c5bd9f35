"""The prep workspace tables and how to read them (producers live in ``release/annotations.py``).

``prep/frames.parquet`` — one row per (video, frame), every frame of every video:
    video (str), frame (int32, 1-based), crop (str path or None), fill_frame (int32: the nearest
    frame with a crop, ties to the earlier frame; -1 if the video has no crop at all),
    AU1..AU26 (int8, -1 = invalid), EXPR (int8, -1 = invalid), valence, arousal (float32, -5 =
    invalid), split_au / split_expr / split_va in {train, val, test, none}.
``prep/videos.parquet`` — video, source (media file, shared by _left/_right), n_frames, fps,
    audio (16 kHz mono WAV path or None).
``prep/splits.parquet`` — video, task, fold: per task, the cross-validation fold (1..5) that
    holds each train+val video out. Fold 0 is the official split (from ``split_<task>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from abawkit.errors import AbawError
from abawkit.labels import TaskSpec, task
from abawkit.workspace.stage import load_stage

SPLIT_VALUES = ("train", "val", "test", "none")
N_FOLDS = 5


@dataclass
class Prep:
    """The loaded prep workspace."""

    dir: Path
    frames: pd.DataFrame
    videos: pd.DataFrame
    splits: pd.DataFrame
    manifest: dict


def load_prep(workdir: str | Path) -> Prep:
    """Load ``<workdir>/prep`` through its manifest (fails with a hint if prep has not run)."""
    manifest = load_stage(workdir, "prep", hint="abaw prep --release DIR")
    d = Path(manifest["dir"])
    frames = pd.read_parquet(d / "frames.parquet")
    videos = pd.read_parquet(d / "videos.parquet")
    splits_path = d / "splits.parquet"
    splits = pd.read_parquet(splits_path) if splits_path.exists() else pd.DataFrame(columns=["video", "task", "fold"])
    return Prep(d, frames, videos, splits, manifest)


@dataclass(frozen=True)
class FoldVideos:
    """Which videos train, validate and test a (task, fold)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def fold_videos(prep: Prep, task_name: TaskSpec | str, fold: int) -> FoldVideos:
    """Videos for ``fold`` (0 = official split, 1..5 = CV fold held out as validation)."""
    spec: TaskSpec = task(task_name)
    col = f"split_{spec.name}"
    per_video = prep.frames.groupby("video", sort=True)[col].first()
    test = tuple(per_video.index[per_video == "test"])
    if fold == 0:
        train = tuple(per_video.index[per_video == "train"])
        val = tuple(per_video.index[per_video == "val"])
    elif 1 <= fold <= N_FOLDS:
        s = prep.splits[prep.splits["task"] == spec.name]
        if s.empty:
            raise AbawError(f"{prep.dir}/splits.parquet has no folds for {spec.name}: run `abaw split`")
        val = tuple(sorted(s.loc[s["fold"] == fold, "video"]))
        train = tuple(sorted(s.loc[s["fold"] != fold, "video"]))
    else:
        raise AbawError(f"fold must be 0..{N_FOLDS}, got {fold}")
    return FoldVideos(train, val, test)
