"""``abaw submit``: test predictions -> the official submission file(s) + a zip, validated.

Reads the (ensembled) test predictions (default: the ``ensemble/<track>`` stage), the smoothing
policy (default: the ``smooth/<track>`` stage if it ran) and the test frames (a template file, which
is the authority: ``--template``, else the one prep found in the release, else the prep workspace). Fills frames without a face from the nearest predicted
frame, smooths per video with the policy, thresholds (AU) / takes the argmax (EXPR) / clips (VA),
writes ``<out>/<name>/`` (``submission.json`` records what went in) and validates the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit import formats
from abawkit import postprocess as pp
from abawkit import submission as sub
from abawkit.console import console
from abawkit.errors import AbawError
from abawkit.io import read_json, write_json
from abawkit.labels import task
from abawkit.predictions import read_predictions
from abawkit.data.tables import load_prep
from abawkit.scoring import dense_rows, expected_frames, release_template
from abawkit.workspace import layout
from abawkit.workspace.fingerprints import sha256_file
from abawkit.workspace.stage import MANIFEST, load_stage

__all__ = ["SubmitConfig", "expected_frames", "release_template", "run"]


@dataclass(frozen=True)
class SubmitConfig:
    seed: int = 0
    edition: str = "abaw5"
    name: str = "abawkit"  # folder under the submissions folder
    zip: bool = True


def _default_pred(workdir: Path, track: str) -> Path:
    st = load_stage(workdir, layout.ensemble(track),
                    hint=f"abaw ensemble --task {track} FOLD_TEST_PREDS... (or pass --pred)")
    return Path(st["dir"]) / "test.parquet"


def _default_policy(workdir: Path, track: str) -> dict | None:
    path = layout.path(workdir, layout.policy(track))
    if (layout.path(workdir, layout.smooth(track)) / MANIFEST).exists():
        return read_json(path)
    console.print(f"[yellow]note:[/] no {path}; submitting without smoothing (threshold 0.5)")
    return None


def run(workdir: Path, cfg: SubmitConfig, track: str, pred: Path | None = None, policy: Path | None = None,
        template: Path | None = None, out: Path = Path(layout.SUBMISSIONS), smooth: bool = True) -> Path:
    spec = task(track)
    if policy is not None and not smooth:
        raise AbawError("submit: --policy and --no-smooth contradict each other")
    if spec.level == "video":  # A/H, EMI: per-video predictions of the trained folds
        from abawkit.submission_video import run_video

        return run_video(workdir, cfg, spec, pred, template, out)
    formats.get(spec, cfg.edition)  # an unknown edition stops here, before any work
    pred = pred or _default_pred(workdir, spec.name)
    if not pred.is_file():
        raise AbawError(f"{pred}: file not found")
    pol = read_json(policy) if policy else _default_policy(workdir, spec.name) if smooth else None
    if pol and pol.get("task", spec.name) != spec.name:
        raise AbawError(f"{policy}: policy is for task {pol['task']}, not {spec.name}")
    expected = expected_frames(workdir, spec, template, cfg.edition)
    template = template or release_template(workdir, spec.name)
    outputs, rows = final_outputs(workdir, spec, read_predictions(pred, spec).df, pol, expected)
    folder = out / cfg.name
    path, zipped = formats.write_validated(spec, cfg.edition, folder, cfg.name, rows, outputs, expected, cfg.zip)
    write_json(folder / f"submission_{formats.tag(spec)}.json", {
        "track": spec.name, "edition": cfg.edition, "file": str(path), "zip": str(zipped) if zipped else None,
        "predictions": {"path": str(pred), "sha256": sha256_file(pred)}, "policy": pol,
        "template": str(template) if template else None, "summary": sub.summary(spec, expected)})
    console.print(f"[green]OK[/] {path} ({sub.summary(spec, expected)})" + (f"; zip: {zipped}" if zipped else ""))
    return path


def final_outputs(workdir: Path, spec, df: pd.DataFrame, pol: dict | None, expected: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """Decided values [N, n_values] for the listed rows (video, frame) of ``expected``, in its order.

    Predictions are filled onto every frame of each video (nearest predicted frame), smoothed per video
    and per head with the policy, then decided; only the listed frames are kept."""
    frames = load_prep(workdir).frames if layout.path(workdir, layout.PREP).is_dir() else None
    dense, pick = dense_rows(expected, frames)
    x = pp.fill_missing(df, dense, spec.pred_columns).T  # [C, N]
    smoothed = pp.apply_policy(x, pp.video_bounds(dense["video"].to_numpy()), pol, spec)
    rows = dense.iloc[pick].reset_index(drop=True)
    return pp.decide(smoothed.T[pick], spec, pol), rows
