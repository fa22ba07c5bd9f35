"""Submission formats, one per kind of file the organisers take: the track registry names its format
(``TaskSpec.format``) and every tool that writes, reads, validates or scores a submission asks here.

A format offers: ``file_name(spec)``, ``n_values(spec)``, ``write(out_dir, spec, rows, outputs)``,
``read_list(path)`` (the organisers' test list: {video: frames} in the list's order),
``validate(path, spec, expected)`` (every problem as ``file:line: message``), ``read(path, spec)``
(video, frame, value columns), ``value_columns(spec)`` and ``read_truth(path, spec)`` (the labels a
file is scored against: video, frame, ``spec.label_columns``). ``frames`` is the classic per-frame
file of ABAW 5-10 (and the per-video files of ABAW 1-3); the others are modules of this package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from abawkit.errors import AbawError
from abawkit.formats.frames import Frames
from abawkit.labels import TaskSpec, task
from abawkit.metrics import score

MODULES: dict[str, Any] = {}  # format name -> module with the interface above (filled below)


def get(spec: TaskSpec | str, edition: str = "abaw5") -> Any:
    """The format of ``spec`` (the classic one in ``edition``)."""
    spec = task(spec)
    if spec.format == "frames":
        return Frames(edition)
    if spec.format not in MODULES:
        raise AbawError(f"track {spec.name}: no submission format {spec.format!r}")
    if edition != "abaw5":
        raise AbawError(f"track {spec.name} has one submission format; --edition {edition} is for the classic tracks")
    return MODULES[spec.format]


def tag(spec: TaskSpec | str) -> str:
    """The track's short name in file names (``AU``, ``EXPR``, ``VA``, ``MTL``, ``CE``...)."""
    spec = task(spec)
    return {"expr": "EXPR"}.get(spec.name, spec.name.upper())


def file_name(spec: TaskSpec | str, edition: str = "abaw5") -> str:
    """The submission file (or, for ``abaw3``, folder) name of the track."""
    spec = task(spec)
    fmt = get(spec, edition)
    return fmt.file_name(spec) if callable(getattr(fmt, "file_name", None)) else fmt.FILE


def write_validated(spec: TaskSpec, edition: str, folder: Path, name: str, rows: Any, outputs: np.ndarray,
                    expected: dict, zip_it: bool) -> tuple[Path, Path | None]:
    """Write a track's submission into ``folder``, validate what was written (a problem is an error: never a
    file the organisers would refuse) and zip it as ``<name>_<TAG>.zip``; returns (file, zip or None)."""
    from abawkit.submission import zip_submission

    fmt = get(spec, edition)
    path = fmt.write(folder, spec, rows, outputs)
    problems = fmt.validate(path, spec, expected)
    if problems:
        raise AbawError(f"written submission failed validation: {problems[0]} (+{len(problems) - 1} more)")
    return path, zip_submission(path, folder / f"{name}_{tag(spec)}.zip") if zip_it else None


def score_file(spec: TaskSpec | str, path: Path, truth: Path, edition: str = "abaw5") -> dict:
    """Score a submission file against ground truth with ``metrics.score`` (frames joined by video and frame)."""
    spec = task(spec)
    fmt = get(spec, edition)
    sub = fmt.read(Path(path), spec)
    cols = list(fmt.value_columns(spec))
    sub = sub.rename(columns={c: f"pred:{c}" for c in cols})
    joined = fmt.read_truth(Path(truth), spec).merge(sub, on=["video", "frame"], how="inner", validate="one_to_one")
    if joined.empty:
        raise AbawError(f"{path}: no frame in common with the ground truth in {truth}")
    preds = joined[[f"pred:{c}" for c in cols]].to_numpy(np.float64)
    result = score(spec, joined[list(spec.label_columns)].to_numpy(np.float64), preds)
    result["frames"] = int(len(joined))
    return result


def _register() -> None:
    """The track formats of later editions (each module documents its file); imported here, after
    ``get`` and ``score_file`` exist, because they use ``submission`` helpers that import this package."""
    from abawkit.formats import ah, ah_frames, ce, emi, mtl

    MODULES.update(mtl=mtl, ce=ce, ah=ah, ah_frames=ah_frames, emi=emi)


_register()
