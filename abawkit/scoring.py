"""A workspace's predictions against its labels and its test frames: what ``evaluate``, ``ensemble``,
``submit`` and ``validate`` share, so no stage imports another.

Reads ``<workdir>/prep/`` (frames.parquet for labels and test frames, summary.json for the release's
template) and prediction files; writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from abawkit import formats
from abawkit import submission as sub
from abawkit.console import console
from abawkit.data.tables import load_prep
from abawkit.errors import AbawError
from abawkit.io import read_json
from abawkit.labels import TaskSpec
from abawkit.metrics import score
from abawkit.postprocess import search_data
from abawkit.predictions import read_predictions
from abawkit.workspace import layout
from abawkit.workspace.fingerprints import sha256_file
from abawkit.workspace.stage import MANIFEST


def evaluate_predictions(workdir: Path, pred_path: Path, task_name: str | TaskSpec | None = None,
                         thresholds: dict | None = None) -> dict:
    """Score a Parquet prediction file against the prep workspace's labels."""
    pred = read_predictions(pred_path, task_name)
    data = search_data(pred.df, load_prep(workdir).frames, pred.task)
    thr = None if not thresholds else np.asarray([thresholds.get(n, 0.5) for n in pred.task.names])
    result = score(pred.task, data.labels, data.x[:, data.labelled].T, thr)
    result.update(task=pred.task.name, file=str(pred_path), frames=int(len(data.labelled)),
                  split=pred.split, fold=pred.fold, model=pred.model)
    return result


def hash_inputs(paths: Sequence[Path]) -> tuple[str, ...]:
    """sha256 of each input file (part of a stage's identity); a missing file is a one-line error."""
    for p in paths:
        if not Path(p).is_file():
            raise AbawError(f"{p}: file not found")
    return tuple(sha256_file(p) for p in paths)


def release_template(workdir: Path, track: str) -> Path | None:
    """The organisers' template for ``track`` that prep found in the release, if any (``prep/summary.json``)."""
    prep = layout.path(workdir, layout.PREP)
    summary = prep / "summary.json"
    if not (prep / MANIFEST).is_file() or not summary.is_file():
        return None
    path = read_json(summary).get("layout", {}).get("templates", {}).get(track)
    return Path(path) if path and Path(path).is_file() else None


def expected_frames(workdir: Path, spec: TaskSpec, template: Path | None, edition: str = "abaw5"):
    """Frames to predict: ``template``, else the release's template found by prep, else prep's test frames
    (classic tracks only: a later edition's list is the only truth of which frames it scores)."""
    if template is None and (template := release_template(workdir, spec.name)) is not None:
        console.print(f"template: {template} (found by prep in the release)", soft_wrap=True)
    if template is not None:
        return formats.get(spec, edition).read_list(template)
    if spec.format != "frames":
        raise AbawError(f"the {spec.name} track scores the frames of the organisers' test list: pass --template LIST "
                        f"(or keep it in the release for prep to find)")
    return sub.expected_from_frames(load_prep(workdir).frames, spec)


def dense_rows(expected: dict[str, np.ndarray], frames: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
    """Every frame of each expected video (1..the later of its last listed frame and its last frame in
    prep), in the list's video order, and the positions of the listed rows in it.

    Smoothing runs on these, so a sparse list (MTL) or a list one frame longer than the video (CE) is
    smoothed along the video's real time axis, never across gaps as if they were neighbours."""
    n_prep = frames.groupby("video", sort=False)["frame"].max().to_dict() if frames is not None else {}
    parts, pick, offset = [], [], 0
    for video, listed in expected.items():
        n = int(max(listed.max(initial=0), n_prep.get(video, 0)))
        parts.append(pd.DataFrame({"video": video, "frame": np.arange(1, n + 1, dtype=np.int64)}))
        pick.append(offset + listed.astype(np.int64) - 1)
        offset += n
    dense = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"video": [], "frame": []})
    return dense, (np.concatenate(pick) if pick else np.zeros(0, np.int64))
