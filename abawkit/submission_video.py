"""``abaw submit --track ah|emi`` (``stages/submit.py`` hands the video-level tracks here): the video-level models' test predictions -> the organisers' file, validated.

Reads the per-video predictions of the trained folds (``video/<track>/fold<N>/pred_test.parquet`` with each
fold's ``val_threshold`` from its manifest, or one ``--pred`` file) and the organisers' test list (``--template``,
else the one prep found in the release). A/H: each fold's probability of A/H is first calibrated so that its
validation-tuned threshold maps to 0.5 (``metrics_video.calibrate``), the folds are averaged, the file gets
p0 = 1 - p1, p1 and pred = argmax; EMI: the folds' intensities averaged and clipped to [0, 1]. ``combine`` and
``decisions`` are that rule, which ``abaw predict`` applies to a new video's folds too. Writes
``<out>/<name>/`` (the format's file, ``submission_<TAG>.json`` and an optional zip) and validates it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from abawkit import formats
from abawkit.console import console
from abawkit.errors import AbawError
from abawkit.io import read_json, write_json
from abawkit.labels import TaskSpec
from abawkit.metrics_video import calibrate
from abawkit.scoring import expected_frames, release_template
from abawkit.workspace import layout
from abawkit.workspace.fingerprints import sha256_file
from abawkit.workspace.stage import MANIFEST


def fold_predictions(workdir: Path, spec: TaskSpec) -> list[Path]:
    """The ``pred_test.parquet`` of every untagged fold of ``video/<track>/`` (the run's folds), in fold order."""
    root = layout.path(workdir, layout.video_model(spec.name, 0)).parent  # video/<track>/
    found = sorted(root.glob("fold*/pred_test.parquet"), key=lambda p: p.parent.name) if root.is_dir() else []
    found = [p for p in found if p.parent.name[4:].isdigit() and (p.parent / MANIFEST).is_file()]
    if not found:
        raise AbawError(f"{root}: no trained fold with test predictions: run `abaw train video --task {spec.name}` "
                        "(or pass --pred)")
    return found


def fold_threshold(fold_dir: Path) -> float:
    """A trained fold's validation-tuned A/H threshold (its manifest's ``val_threshold``), 0.5 without one."""
    manifest = Path(fold_dir) / MANIFEST
    value = read_json(manifest).get("metrics", {}).get("val_threshold") if manifest.is_file() else None
    return 0.5 if value is None else float(value)


def combine(spec: TaskSpec, folds: list[tuple[pd.DataFrame, float]]) -> pd.DataFrame:
    """video + the values averaged over the folds: each fold's table (indexed by video, ``spec.names`` columns)
    with its tuned threshold. A/H: each fold's p1 calibrated first so its threshold maps to 0.5 (column ``p1``);
    EMI: the intensities. The one rule of the submission and of ``abaw predict``."""
    tables = []
    for df, threshold in folds:
        df = df[list(spec.names)].astype(np.float64)
        if spec.head.kind == "multiclass":
            df = pd.DataFrame({"p1": calibrate(df[spec.names[1]].to_numpy(), threshold)}, index=df.index)
        tables.append(df)
    mean = pd.concat(tables).groupby(level=0, sort=False).mean()
    return mean.rename_axis("video").reset_index()


def average(spec: TaskSpec, preds: list[Path]) -> pd.DataFrame:
    """video + the averaged values (A/H: calibrated p1; EMI: the intensities) over the folds' tables."""
    folds = []
    for p in preds:
        df = pd.read_parquet(p)
        missing = [c for c in ("video", *spec.names) if c not in df.columns]
        if missing:
            raise AbawError(f"{p}: no column {missing[0]!r}: expected video-level predictions of {spec.name}")
        folds.append((df.set_index(df["video"].astype(str)), fold_threshold(p.parent)))
    return combine(spec, folds)


def decisions(spec: TaskSpec, values: np.ndarray) -> np.ndarray:
    """Combined values [N, 1 | 6] -> what is written [N, 3 | 6]: A/H p0 = 1 - p1, p1 and pred (p1 > 0.5: the
    calibrated threshold); EMI the intensities; both clipped to [0, 1]."""
    if spec.head.kind == "multiclass":
        p1 = np.clip(values[:, 0], 0.0, 1.0)
        return np.c_[1.0 - p1, p1, (p1 > 0.5).astype(np.float64)]
    return np.clip(values, 0.0, 1.0)


def outputs_for(spec: TaskSpec, table: pd.DataFrame, expected: dict[str, np.ndarray]) -> tuple[pd.DataFrame, np.ndarray]:
    """(rows in the list's order, outputs [N, n_values]): A/H p0, p1, pred; EMI the 6 intensities."""
    table = table.set_index("video")
    missing = [v for v in expected if v not in table.index]
    if missing:
        raise AbawError(f"no prediction for {len(missing)} listed test video(s), e.g. {missing[0]}")
    rows = pd.DataFrame({"video": list(expected), "frame": 0})
    return rows, decisions(spec, table.loc[list(expected)].to_numpy(np.float64))


def run_video(workdir: Path, cfg, spec: TaskSpec, pred: Path | None = None, template: Path | None = None,
              out: Path = Path(layout.SUBMISSIONS)) -> Path:
    """Write and validate the video-level submission; returns the file."""
    formats.get(spec, cfg.edition)  # an unknown edition stops here, before any work
    preds = [pred] if pred else fold_predictions(Path(workdir), spec)
    for p in preds:
        if not p.is_file():
            raise AbawError(f"{p}: file not found")
    expected = expected_frames(workdir, spec, template, cfg.edition)
    template = template or release_template(workdir, spec.name)
    rows, outputs = outputs_for(spec, average(spec, preds), expected)
    folder = out / cfg.name
    path, zipped = formats.write_validated(spec, cfg.edition, folder, cfg.name, rows, outputs, expected, cfg.zip)
    write_json(folder / f"submission_{formats.tag(spec)}.json", {
        "track": spec.name, "edition": cfg.edition, "file": str(path), "zip": str(zipped) if zipped else None,
        "predictions": [{"path": str(p), "sha256": sha256_file(p)} for p in preds],
        "template": str(template) if template else None, "videos": len(expected)})
    console.print(f"[green]OK[/] {path} ({len(expected)} videos, {len(preds)} fold(s))" + (f"; zip: {zipped}" if zipped else ""))
    return path
