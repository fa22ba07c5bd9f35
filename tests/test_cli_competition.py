"""`abaw evaluate | ensemble | smooth-search | submit | validate` through CliRunner on a tiny workspace."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import typer
from test_postprocess import noisy_predictions, synthetic_frames
from typer.testing import CliRunner

from abawkit.commands import ensemble, evaluate, smooth, submit, validate
from abawkit.io import read_json, write_parquet
from abawkit.labels import task
from abawkit.predictions import make_predictions, read_predictions, write_predictions
from abawkit.workspace.stage import stage

runner = CliRunner()
app = typer.Typer()
for module in (evaluate, ensemble, smooth, submit, validate):
    module.register(app)


@dataclass(frozen=True)
class _PrepCfg:
    seed: int = 0


@pytest.fixture
def workspace(tmp_path):
    """prep/ with 4 validation videos and 2 test videos (labels smooth in time)."""
    frames = pd.concat([synthetic_frames(4, seed=1), synthetic_frames(2, seed=2, split="test")
                        .assign(video=lambda d: "test_" + d["video"])], ignore_index=True)
    test = frames["split_au"] == "test"
    frames.loc[test, ["AU1", "EXPR"]] = -1  # test labels are unknown
    videos = frames.groupby("video", as_index=False).agg(n_frames=("frame", "size"))
    with stage(tmp_path / "w", "prep", _PrepCfg()) as run:
        write_parquet(run.add_output("frames.parquet"), frames)
        write_parquet(run.add_output("videos.parquet"), videos)
    return tmp_path / "w", frames


def _pred_file(path, frames, task_name, split, seed=0, fold=1, face_seed=0):
    df = noisy_predictions(frames, task_name, seed=seed, face_seed=face_seed)
    spec = task(task_name)
    pred = make_predictions(df["video"], df["frame"], df[list(spec.pred_columns)].to_numpy(), task_name, split, fold, "test")
    return write_predictions(path, pred)


def _run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.mark.parametrize("cmd", ["evaluate", "ensemble", "smooth-search", "submit", "validate"])
def test_help(cmd):
    code, out = _run(cmd, "--help")
    assert code == 0 and "Usage" in out


@pytest.mark.parametrize("track", ["au", "expr", "va"])
def test_smooth_search_then_submit_then_validate(workspace, tmp_path, track):
    w, frames = workspace
    val = frames[frames["split_au"] == "val"]
    p1 = _pred_file(tmp_path / "f1.parquet", val[val["video"] < "vid02"], track, "val", 1)
    p2 = _pred_file(tmp_path / "f2.parquet", val[val["video"] >= "vid02"], track, "val", 2)
    code, out = _run("smooth-search", "--task", track, "--pred", p1, "--pred", p2, "-w", w)
    assert code == 0, out
    policy = read_json(w / "smooth" / track / "policy.json")
    assert policy["filter"] != "none" and policy["score"] > policy["score_none"]
    assert (w / "smooth" / track / "ranking.csv").exists()
    assert "skip" in _run("smooth-search", "--task", track, "--pred", p1, "--pred", p2, "-w", w)[1]

    t1 = _pred_file(tmp_path / "t1.parquet", frames[frames["split_au"] == "test"], track, "test", 3)
    t2 = _pred_file(tmp_path / "t2.parquet", frames[frames["split_au"] == "test"], track, "test", 4)
    code, out = _run("ensemble", t1, t2, "-w", w)
    assert code == 0, out
    code, out = _run("submit", "--track", track, "-w", w, "--out", tmp_path / "subs", "--name", "x")
    assert code == 0, out
    tag = track.upper()
    names = sorted(f.name for f in (tmp_path / "subs" / "x").iterdir())
    assert names == sorted([f"{tag}_predictions.txt", f"submission_{tag}.json", f"x_{tag}.zip"])
    txt = tmp_path / "subs" / "x" / f"{tag}_predictions.txt"
    code, out = _run("validate", txt, "--track", track, "-w", w)
    assert code == 0 and "OK" in out, out
    n_test = int((frames["split_au"] == "test").sum())
    assert len(txt.read_text().splitlines()) == n_test + 1  # every frame, even those without a face


def test_validate_reports_problems_with_exit_1(workspace, tmp_path):
    w, frames = workspace
    _pred_file(tmp_path / "t.parquet", frames[frames["split_va"] == "test"], "va", "test")
    code, out = _run("submit", "--track", "va", "-w", w, "--pred", tmp_path / "t.parquet", "--out", tmp_path)
    assert code == 0, out
    path = tmp_path / "demo" / "VA_predictions.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + ["test_vid00/00003.jpg,2,0"] + lines[4:]) + "\n")
    code, out = _run("validate", path, "--track", "va", "-w", w)
    assert code == 1 and f"{path}:4: " in out.replace("\n", "") and "INVALID" in out


def test_submit_with_template_and_abaw3(workspace, tmp_path):
    w, frames = workspace
    pred = _pred_file(tmp_path / "t.parquet", frames[frames["split_expr"] == "test"], "expr", "test")
    tpl = tmp_path / "CVPR_5th_ABAW_EXPR_test_set_example.txt"
    tpl.write_text("image_location,Neutral,\n" + "".join(f"test_vid01/{f:05d}.jpg,\n" for f in range(1, 31)))
    code, out = _run("submit", "--track", "expr", "-w", w, "--pred", pred, "--template", tpl, "--out", tmp_path)
    assert code == 0, out
    assert len((tmp_path / "demo" / "EXPR_predictions.txt").read_text().splitlines()) == 31
    code, out = _run("submit", "--track", "expr", "-w", w, "--pred", pred, "--edition", "abaw3", "--out", tmp_path / "b")
    assert code == 0, out
    folder = tmp_path / "b" / "demo" / task("expr").challenge
    assert sorted(p.name for p in folder.iterdir()) == ["test_vid00.txt", "test_vid01.txt"]
    assert _run("validate", folder, "--track", "expr", "-w", w, "--edition", "abaw3")[0] == 0


def test_evaluate_prediction_file_and_submission(workspace, tmp_path):
    w, frames = workspace
    val = frames[frames["split_au"] == "val"]
    p = _pred_file(tmp_path / "v.parquet", val, "au", "val")
    code, out = _run("evaluate", p, "--task", "au", "-w", w)
    assert code == 0 and "AU12" in out and "mean F1" in out
    result = read_json(tmp_path / "v.eval.json")
    assert 0.3 < result["score"] < 1 and set(result["per_class"]) == set(task("au").names)
    # a submission file scored against annotation-format ground truth
    truth = tmp_path / "truth"
    truth.mkdir()
    for video, g in val.groupby("video"):
        g[["valence", "arousal"]].to_csv(truth / f"{video}.txt", index=False, float_format="%.6f")
    rows = val[["video", "frame"]]
    sub = tmp_path / "VA.txt"
    sub.write_text("image_location,valence,arousal\n" + "".join(
        f"{v}/{f:05d}.jpg,{a:.6f},{b:.6f}\n" for v, f, a, b in zip(rows["video"], rows["frame"], val["valence"], val["arousal"])))
    code, out = _run("evaluate", sub, "--task", "va", "--truth", truth, "--out", tmp_path / "r.json")
    assert code == 0, out
    assert read_json(tmp_path / "r.json")["score"] == pytest.approx(1.0, abs=1e-6)


def test_ensemble_refuses_different_frames_and_averages(workspace, tmp_path):
    w, frames = workspace
    test = frames[frames["split_va"] == "test"]
    a = _pred_file(tmp_path / "a.parquet", test, "va", "test", seed=1)
    b = _pred_file(tmp_path / "b.parquet", test, "va", "test", seed=2, face_seed=5)  # other faces missing
    code, out = _run("ensemble", a, b, "--out", tmp_path / "e.parquet")
    assert code == 2 and "cover different frames" in out
    c = tmp_path / "c.parquet"
    pa = read_predictions(a)
    write_predictions(c, make_predictions(pa.df["video"], pa.df["frame"], pa.values() * 0.5, "va", "test", 2, "m"))
    code, out = _run("ensemble", a, c, "--weights", "1,3", "--out", tmp_path / "e.parquet")
    assert code == 0, out
    e = read_predictions(tmp_path / "e.parquet")
    assert np.allclose(e.values(), pa.values() * (0.25 + 0.75 * 0.5), atol=1e-6)
    assert e.fold == "ensemble"
    assert _run("ensemble", a, c, "--weights", "1,x", "--out", tmp_path / "e.parquet")[0] == 2


def test_bad_inputs_are_one_line_errors(workspace, tmp_path):
    w, _ = workspace
    code, out = _run("smooth-search", "--task", "au", "--pred", tmp_path / "nope.parquet", "-w", w)
    assert code == 2 and "nope.parquet" in out and "Traceback" not in out
    code, out = _run("evaluate", tmp_path / "nope.parquet", "--task", "au", "-w", w)
    assert code == 2 and "not found" in out
    code, out = _run("validate", tmp_path / "x.txt", "--track", "bogus", "-w", w)
    assert code == 2 and "unknown task" in out
    code, out = _run("submit", "--track", "au", "-w", tmp_path / "empty")
    assert code == 2 and "abaw ensemble" in out


@pytest.mark.parametrize("track", ["au", "expr", "va"])
def test_acceptance_on_synthetic_release(synth_release, prep_workspace, tmp_path, track):
    """Noisy label-derived predictions on the synthetic release: smoothing beats "none", and the
    submission written against the release's template passes validation and can be scored."""
    import shutil

    from abawkit.data.tables import load_prep

    w = tmp_path / "w"
    shutil.copytree(prep_workspace, w)
    frames = load_prep(w).frames
    split = frames[f"split_{track}"]
    val = frames[split.isin(["train", "val"])]
    pred = _pred_file(tmp_path / "val.parquet", val, track, "val", seed=7)
    code, out = _run("smooth-search", "--task", track, "--pred", pred, "-w", w)
    assert code == 0, out
    policy = read_json(w / "smooth" / track / "policy.json")
    assert policy["score"] > policy["score_none"], policy

    test = _pred_file(tmp_path / "test.parquet", frames[split == "test"], track, "test", seed=8)
    lists = synth_release / "names_of_videos_in_each_test_set"
    tpl = lists / f"CVPR_5th_ABAW_{track.upper()}_test_set_example.txt"
    code, out = _run("submit", "--track", track, "-w", w, "--pred", test, "--template", tpl, "--out", tmp_path)
    assert code == 0, out
    path = tmp_path / "demo" / f"{track.upper()}_predictions.txt"
    assert _run("validate", path, "--track", track, "--template", tpl)[0] == 0
    assert _run("validate", path, "--track", track, "-w", w)[0] == 0  # prep agrees with the template
    truth = synth_release / "test_ground_truth" / task(track).challenge
    code, out = _run("evaluate", path, "--task", track, "--truth", truth, "--out", tmp_path / "score.json")
    assert code == 0, out
    assert read_json(tmp_path / "score.json")["frames"] > 0
