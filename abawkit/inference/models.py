"""``Models``: the finished stages of ``<workdir>`` that a prediction loads, each loaded once per run.

Reads ``<workdir>/{tmf,finetune,video}/<task>/fold<N>/manifest.json`` (which folds are finished); the loaders
in ``frame``, ``tmf``, ``video`` and ``extractors`` read the checkpoints themselves. Writes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

from abawkit.workspace import layout
from abawkit.workspace.stage import MANIFEST, load_stage


ROOTS = {"tmf": layout.tmf_root, "frame": layout.finetune_root, "video": layout.video_root}  # model -> folds' folder
NAMES = {"tmf": layout.tmf, "frame": layout.finetune, "video": layout.video_model}  # model -> a fold's stage
COMMANDS = {"tmf": "abaw train tmf", "finetune": "abaw finetune", "video": "abaw train video"}  # folder -> its maker


class ModelChoice(Protocol):
    """What ``Models`` needs of a predict config (``stages.predict.PredictConfig``)."""

    model: str  # tmf | frame | video
    fold: str  # "all" | a fold number
    batch_size: int  # face crops per encoder batch


class Models:
    """The workspace's models and extractors, loaded once and kept for every video of a run."""

    def __init__(self, workdir: Path, cfg: ModelChoice, device: Any) -> None:
        self.workdir, self.cfg, self.device = Path(workdir), cfg, device
        self._cache: dict[Any, Any] = {}  # models: kept for the whole run
        self.per_video: dict[Any, Any] = {}  # features of the current video: emptied between videos
        self.clock: dict[str, float] = {}  # seconds in the image encoders, per video

    def cached(self, key: Any, make, video: bool = False):
        cache = self.per_video if video else self._cache
        if key not in cache:
            cache[key] = make()
        return cache[key]

    def folds(self, task_name: str) -> list[int]:
        """The folds to average: every finished ``<model dir>/<task>/fold<N>`` with ``fold = "all"``."""
        if self.cfg.fold != "all":
            return [int(self.cfg.fold)]
        base = self.workdir / ROOTS[self.cfg.model](task_name)
        found = sorted(int(m.group(1)) for d in (base.iterdir() if base.is_dir() else ())
                       if (m := re.fullmatch(r"fold(\d+)", d.name)) and (d / MANIFEST).is_file())
        return found or [0]  # none: fold 0's missing-stage error says what to run

    def stages(self, task_name: str) -> list[str]:
        """Names of the model stages this run uses for ``task_name`` (one per fold)."""
        return [NAMES[self.cfg.model](task_name, fold) for fold in self.folds(task_name)]


def stage_hint(name: str) -> str:
    """The command that makes stage ``name`` (``tmf/va/fold0`` -> ``abaw train tmf --task va --fold 0``)."""
    parts = name.split("/")
    if parts[0] in COMMANDS and len(parts) == 3 and (m := re.fullmatch(r"fold(\d+)", parts[2])):
        return f"{COMMANDS[parts[0]]} --task {parts[1]} --fold {m.group(1)}"
    return "abaw extract" if parts[0] == "features" else f"abaw {parts[0]}"


def stage_dir(workdir: Path, name: str) -> Path:
    """The finished stage folder ``<workdir>/<name>``, or a one-line error naming the command that makes it."""
    return Path(load_stage(workdir, name, hint=stage_hint(name))["dir"])
