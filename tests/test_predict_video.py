"""``abaw predict`` with the video-level models (A/H of ABAW 10/11): one row per video from a tiny ``abaw demo
--recipe demo-ah`` workspace (two folds), the folds combined as the submission combines them.

The release's own face crops are not what predict cuts from the video (its detector), so the values are compared
with the models' own test predictions at a loose tolerance only; the properties that are exact are asserted
exactly (p_no_ah + p_ah = 1, the decision at the calibrated 0.5, ``all`` = the mean of the folds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from identity_ws import abaw, flat, invoke, perturb_checkpoint
from tiny_recipe import tiny_recipe
from videos import clip, predicted

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo-ah"
SMALL = {"synth.toml": [("videos = 120 ", "videos = 20 ")], "finetune.toml": [("epochs = 2", "epochs = 1")],
         "video.toml": [("epochs = 40", "epochs = 4")], "demo.toml": [("vision_ablation = true", "vision_ablation = false")]}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(root, recipe, workspace, transcripts): the tiny demo's trained workspace (copy it before changing it)."""
    root = tmp_path_factory.mktemp("ah-predict")
    recipe = tiny_recipe("demo-ah", root / "tiny", SMALL)
    out = abaw("demo", "--recipe", recipe, "-w", root / "w", cwd=root)
    assert out.returncode == 0, out.stdout
    said = root / "said"
    shutil.copytree(root / "w" / "release" / "transcripts", said)
    return root, recipe, root / "w", said


def release_test_videos(ws: Path) -> list[Path]:
    """The release's test videos (those of the models' pred_test.parquet), sorted."""
    names = set(pd.read_parquet(ws / "video" / "ah" / "fold0" / "pred_test.parquet")["video"])
    return sorted(p for p in (ws / "release" / "Videos").rglob("*.mp4") if p.stem in names)


def predict(demo, ws: Path, *args: object, ok: bool = True):
    _, recipe, _, said = demo
    return invoke("predict", *args, "-w", ws, "--recipe", recipe, "--transcripts", said, ok=ok)


def row(ws: Path, video: Path) -> pd.Series:
    df = pd.read_csv(predicted(ws, video) / "predictions.csv")
    assert len(df) == 1
    return df.iloc[0]


def test_a_video_gets_one_row_decided_at_the_calibrated_half(demo):
    ws, video = demo[2], release_test_videos(demo[2])[0]
    predict(demo, ws, video)
    out = predicted(ws, video)
    df = pd.read_csv(out / "predictions.csv")
    assert list(df.columns) == ["video", "p_no_ah", "p_ah", "ah"] and len(df) == 1
    r = df.iloc[0]
    assert r["video"] == video.stem
    assert r["p_no_ah"] + r["p_ah"] == pytest.approx(1.0, abs=1e-9)
    assert r["ah"] == ("ah" if r["p_ah"] > 0.5 else "no_ah")
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (out / "timeline.png").exists()
    inputs = json.loads((out / "manifest.json").read_text())["inputs"]
    assert {"video/ah/fold0", "video/ah/fold1", "features/mae-ah", "features/fbank", "features/text"} <= set(inputs)
    assert "skip" in flat(predict(demo, ws, video).output)  # same video, same models: done already


def test_all_folds_is_the_mean_of_each_fold_calibrated(demo):
    ws, video = demo[2], release_test_videos(demo[2])[1]
    p = {}
    for fold in ("0", "1", "all"):
        predict(demo, ws, video, "--fold", fold, "--force")  # another config: --force, as for every track
        p[fold] = row(ws, video)["p_ah"]
    assert abs(p["0"] - p["1"]) > 1e-3  # two folds, two models
    assert p["all"] == pytest.approx((p["0"] + p["1"]) / 2, abs=2e-6)  # the CSV holds 6 decimals


def test_close_to_the_models_own_test_predictions(demo):
    """The detector's crops are not the release's crops: the same clips agree loosely (measured: < 0.02)."""
    from abawkit.labels import task
    from abawkit.submission_video import average

    ws = demo[2]
    videos = release_test_videos(ws)
    predict(demo, ws, *videos)
    own = average(task("ah"), sorted((ws / "video" / "ah").glob("fold[01]/pred_test.parquet"))).set_index("video")
    diff = np.array([row(ws, v)["p_ah"] - own.loc[v.stem, "p1"] for v in videos])
    print("predict - pred_test (calibrated, folds averaged):", np.round(diff, 4))
    assert len(videos) == 3 and np.abs(diff).max() < 0.05


def test_a_retrained_fold_redoes_the_prediction(demo, tmp_path):
    ws = shutil.copytree(demo[2], tmp_path / "ws", symlinks=True)
    video = release_test_videos(ws)[0]
    predict(demo, ws, video)
    before = row(ws, video)["p_ah"]
    invoke("train", "video", "--task", "ah", "--fold", "1", "--seed", "1", "--force", "-w", ws, "--recipe", demo[1],
           "--set", "train.epochs=2")
    again = flat(predict(demo, ws, video).output)
    assert "skip" not in again and "video/ah/fold1" in again, again  # one line names the retrained model
    assert abs(row(ws, video)["p_ah"] - before) > 1e-4


def test_a_changed_encoder_or_store_stops_before_any_video(demo, tmp_path):
    ws = shutil.copytree(demo[2], tmp_path / "ws", symlinks=True)
    video = release_test_videos(ws)[0]
    perturb_checkpoint(ws / "finetune" / "ah" / "fold0" / "best.pt")
    res = predict(demo, ws, video, ok=False)
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "abaw extract vision --task ah --fold 0 --force" in flat(res.output) and "frames" not in res.output
    invoke("extract", "vision", "--task", "ah", "--fold", "0", "--force", "-w", ws, "--recipe", demo[1])
    res = predict(demo, ws, video, ok=False)
    assert res.exit_code == 2 and "abaw train video --task ah --fold 0 --force" in flat(res.output), res.output
    assert "features/mae-ah" in flat(res.output) and "frames" not in res.output


def test_a_video_without_a_face_gets_an_empty_row(demo, tmp_path):
    ws = demo[2]
    video = clip(tmp_path / "sky.mp4", [("sky", 15)], w=96, h=96)
    res = predict(demo, ws, video)
    assert "no face" in flat(res.output)
    r = row(ws, video)
    assert r["video"] == "sky" and r[["p_no_ah", "p_ah", "ah"]].isna().all()
    assert (predicted(ws, video) / "summary.png").is_file()


@pytest.mark.parametrize("args, says", [
    (["--set", 'tasks=["ah", "expr"]'], "predict them in two calls"),
    (["--model", "tmf"], 'set model = "video"'),
    (["--faces", "all"], "--faces largest"),
    (["--set", 'tasks=["va"]'], 'model = "video" predicts the video-level tracks'),
    ([], "abaw train video --task ah --fold 0"),  # nothing trained in this workspace
])
def test_one_line_errors(tmp_path, args, says):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read: the settings and models are checked first")
    res = invoke("predict", video, "-w", tmp_path / "w", "--recipe", RECIPE, *args, ok=False)
    assert res.exit_code == 2 and says in flat(res.output), res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) <= 3


def test_cells_of_each_track():
    from abawkit.labels import EMI_NAMES, task
    from abawkit.inference.video_row import task_cells

    ah = task_cells(task("ah"), np.array([0.5000004]))
    assert ah == {"p_no_ah": 0.5, "p_ah": 0.5, "ah": "ah"}  # decided before rounding: p1 > 0.5
    assert task_cells(task("ah"), np.array([0.2]))["ah"] == "no_ah"
    emi = task_cells(task("emi"), np.array([0.1, 0.2, 1.3, 0.4, -0.1, 0.6]))
    assert list(emi) == list(EMI_NAMES) and emi["Determination"] == 1.0 and emi["Excitement"] == 0.0  # clipped
    assert all(np.isnan(v) for v in task_cells(task("emi"), None).values())
