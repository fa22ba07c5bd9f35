"""End to end: `abaw demo` on a tiny recipe, then `abaw report` and `abaw predict` on its workspace.

One module-scoped run of the whole pipeline (tiny release, one epoch per model) feeds every test here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner
from videos import predicted

from abawkit.cli import app
from abawkit.config import RECIPES_DIR

runner = CliRunner()

TINY = {  # recipe file -> (key, value) replacements on top of recipes/demo
    "synth.toml": [("videos", "14"), ("frames", "60"), ("size", "64"), ("faces", "128")],
    "pretrain.toml": [("epochs", "1"), ("preview", "2")],
    "finetune.toml": [("epochs", "1")],
    "tmf.toml": [("epochs", "2")],
}


def tiny_recipe(dst: Path) -> Path:
    shutil.copytree(RECIPES_DIR / "demo", dst)
    for name, changes in TINY.items():
        text = (dst / name).read_text()
        for key, value in changes:
            text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
            assert n >= 1, f"{name} has no {key}"
        (dst / name).write_text(text)
    return dst


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    recipe = tiny_recipe(root / "recipe")
    work = root / "work"
    result = runner.invoke(app, ["demo", "--workdir", str(work), "--recipe", str(recipe), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    return work, recipe, result.output


def test_demo_writes_ablation_and_valid_submissions(demo_run):
    work, _, output = demo_run
    ablation = json.loads((work / "demo" / "ablation.json").read_text())
    assert [r["task"] for r in ablation["rows"]] == ["au", "expr", "va"]
    for row in ablation["rows"]:
        for col in ("frame model", "+ TMF (vision)", "+ audio", "+ smoothing", "test: fold 0", "test: ensemble"):
            assert isinstance(row[col], float), (row["task"], col)
        assert row["+ smoothing"] >= row["+ audio"] - 1e-12  # the search keeps "none" if nothing helps
    assert "ablation" in output
    au = ablation["rows"][0]  # AU's TMF is vision only (as the paper): no second, identical run
    assert au["+ TMF (vision)"] == au["+ audio"] and not (work / "tmf" / "au" / "fold0-vision").exists()
    assert (work / "tmf" / "expr" / "fold0-vision" / "manifest.json").exists()
    for track, sub in ablation["submissions"].items():
        res = runner.invoke(app, ["validate", sub, "--track", track, "--workdir", str(work)])
        assert res.exit_code == 0, res.output
        assert "OK" in res.output


def test_demo_rerun_skips_finished_jobs_and_status_shows_them_done(demo_run):
    work, recipe, first = demo_run
    assert first.count("done  ") >= 30 and "validate/va" in first  # one subprocess per job, validation included
    result = runner.invoke(app, ["demo", "--workdir", str(work), "--recipe", str(recipe)])
    assert result.exit_code == 0, result.output
    assert "start " not in result.output and "ablation" in result.output
    status = runner.invoke(app, ["status", "-w", str(work)])
    assert status.exit_code == 0, status.output
    from abawkit.run.plan import load_plan

    assert "not running" in status.output and f": {len(load_plan(work))} done" in status.output
    for state in ("pending", "stale", "failed", "running"):
        assert f" {state} " not in status.output


def test_report_renders_tables_and_figures(demo_run):
    work, _, _ = demo_run
    result = runner.invoke(app, ["report", "--workdir", str(work)])
    assert result.exit_code == 0, result.output
    out = work / "report"
    for name in ("timeline_au.png", "timeline_expr.png", "timeline_va.png", "per_class_finetune_expr_fold0.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(list(out.glob("*.png")))
    assert "demo ablation" in html and "tmf/expr/fold0" in html
    md = (out / "report.md").read_text()
    assert "![" in md and "| stage |" in md
    assert "| task | metric | frame model | + TMF (vision) | + audio | + smoothing |" in md  # the paper's order


def test_report_on_empty_workdir_is_one_line_error(tmp_path):
    result = runner.invoke(app, ["report", "--workdir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no finished stage" in result.output and "Traceback" not in result.output


def astronaut_video(path: Path, seconds: float = 2.0, fps: int = 25, rate: int = 16000) -> Path:
    """An mp4 no fixture crafted: scikit-image's astronaut photo, slowly zooming, with a voice-like tone."""
    import av
    import cv2
    from skimage import data

    img = data.astronaut()  # [512, 512, 3] RGB
    n = int(seconds * fps)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)  # gliding pitch
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2) * 0.2
    with av.open(str(path), "w") as box:
        vs = box.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 320, 320, "yuv420p"
        aus = box.add_stream("aac", rate=rate)
        aus.layout = "mono"
        for i in range(n):
            z = int(20 * i / n)
            frame = cv2.resize(img[z:512 - z, z:512 - z], (320, 320))
            for pkt in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                box.mux(pkt)
        samples = voice.astype(np.float32)[None, :]
        af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        af.sample_rate = rate
        for pkt in aus.encode(af):
            box.mux(pkt)
        for stream in (vs, aus):
            for pkt in stream.encode(None):
                box.mux(pkt)
    return path


@pytest.mark.parametrize("model", ["tmf", "frame"])
def test_predict_on_an_unseen_video(demo_run, tmp_path, model):
    work, recipe, _ = demo_run
    video = astronaut_video(tmp_path / f"astronaut_{model}.mp4")
    result = runner.invoke(app, ["predict", str(video), "--workdir", str(work), "--recipe", str(recipe),
                                 "--model", model, "--set", "detector=haar"])
    assert result.exit_code == 0, result.output
    out = predicted(work, video)
    df = pd.read_csv(out / "predictions.csv")
    assert len(df) == 50 and df["frame"].tolist() == list(range(1, 51))
    assert np.allclose(df["time"], np.arange(50) / 25)
    assert set(df["expression"]) <= {"Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other"}
    assert df[["AU1", "AU12", "AU26"]].isin([0, 1]).all().all()
    assert df[["valence", "arousal"]].abs().le(1).all().all()
    probs = df[[c for c in df.columns if c.startswith("p_") and not c.startswith("p_AU")]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-2)
    assert (out / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert df["face"].mean() > 0.5  # the astronaut's face is found in most frames


def test_predict_missing_video_is_one_line_error(demo_run, tmp_path):
    work, _, _ = demo_run
    result = runner.invoke(app, ["predict", str(tmp_path / "nope.mp4"), "--workdir", str(work)])
    assert result.exit_code == 2
    assert "nope.mp4: video file not found" in result.output and "Traceback" not in result.output


def _predict(work, recipe, *args):
    return runner.invoke(app, ["predict", *map(str, args), "--workdir", str(work), "--recipe", str(recipe)])


def test_predict_folder_no_face_and_face_leaving(demo_run, tmp_path):
    """Frames without a face: face 0 and empty cells; a folder gives one output per video; reruns skip."""
    from videos import clip

    work, recipe, _ = demo_run
    folder = tmp_path / "clips"
    folder.mkdir()
    clip(folder / "sky.mp4", [("sky", 20)])
    clip(folder / "leaves.mp4", [("face", 15), ("cartoon", 15)])
    (folder / "._leaves.mp4").write_bytes(b"\0\5\26\7")  # macOS AppleDouble: not a video
    result = _predict(work, recipe, folder)
    assert result.exit_code == 0, result.output
    assert "[1/2]" in result.output and "[2/2]" in result.output and "0/20" in result.output
    sky = pd.read_csv(predicted(work, folder / "sky.mp4") / "predictions.csv")
    assert len(sky) == 20 and (sky["face"] == 0).all()
    assert sky[["valence", "arousal", "AU1", "p_Neutral"]].isna().all().all() and sky["expression"].isna().all()
    df = pd.read_csv(predicted(work, folder / "leaves.mp4") / "predictions.csv")
    face = df["face"].to_numpy() == 1
    assert len(df) == 30 and not face[15:].any() and face[:15].sum() >= 10  # detect_every 5: the last 4 may go
    assert df.loc[face, ["valence", "AU12", "expression"]].notna().all().all()
    assert df.loc[~face, ["valence", "AU12", "expression"]].isna().all().all()
    assert (predicted(work, folder / "leaves.mp4") / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    again = _predict(work, recipe, folder)
    assert again.exit_code == 0 and again.output.count("skip") == 2, again.output
    filled = _predict(work, recipe, folder / "leaves.mp4", "--fill", "nearest", "--force")
    assert filled.exit_code == 0, filled.output
    nd = pd.read_csv(predicted(work, folder / "leaves.mp4") / "predictions.csv")
    last = int(np.flatnonzero(face)[-1])
    assert nd["valence"].notna().all() and (nd["valence"][last:] == nd["valence"][last]).all()
    assert (nd["face"] == df["face"]).all()  # filled cells still say there was no face


def test_predict_all_faces_one_row_per_face(demo_run, tmp_path):
    from videos import clip

    work, recipe, _ = demo_run
    video = clip(tmp_path / "pair.mp4", [("faces2", 10)], w=480, h=200)
    result = _predict(work, recipe, video, "--faces", "all")
    assert result.exit_code == 0, result.output
    df = pd.read_csv(predicted(work, video) / "predictions.csv")
    assert sorted(df["face_id"].unique().tolist()) == [0, 1] and len(df) == 20
    assert (df.groupby("frame").size() == 2).all() and df["valence"].notna().all()


def test_predict_fold_all_averages_the_folds(demo_run, tmp_path):
    from videos import clip

    work, recipe, _ = demo_run
    video = clip(tmp_path / "f.mp4", [("face", 8)])
    va = {}
    for fold in ("0", "1", "all"):
        result = _predict(work, recipe, video, "--fold", fold, "--set", "smooth=false", "--set", "tasks=['va']", "--force")
        assert result.exit_code == 0, result.output
        va[fold] = pd.read_csv(predicted(work, video) / "predictions.csv")[["valence", "arousal"]].to_numpy()
    assert np.abs(va["0"] - va["1"]).max() > 1e-2  # two folds' models: ~0.2 apart here, rounding ~1e-7
    assert np.allclose(va["all"], (va["0"] + va["1"]) / 2, atol=2e-4)


def test_predict_device_cuda_without_a_gpu_is_one_line_error(demo_run, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    work, recipe, _ = demo_run
    result = _predict(work, recipe, tmp_path, "--device", "cuda")
    assert result.exit_code == 2 and "no CUDA GPU" in result.output and "Traceback" not in result.output


@pytest.mark.gpu
def test_predict_on_the_gpu(demo_run, tmp_path):
    from videos import clip

    work, recipe, _ = demo_run
    video = clip(tmp_path / "g.mp4", [("face", 10), ("sky", 5)])
    result = _predict(work, recipe, video, "--device", "cuda")
    assert result.exit_code == 0, result.output
    df = pd.read_csv(predicted(work, video) / "predictions.csv")
    assert df["face"].tolist()[10:] == [0] * 5 and df.loc[df["face"] == 1, "valence"].notna().all()
