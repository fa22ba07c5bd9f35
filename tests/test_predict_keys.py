"""`abaw predict` keyed by content (issue 23): output folders by name and content, redone when a model it
used was retrained, stopped when a model no longer fits what was trained on it; checkpoints recorded resolved;
the TMF rebuilt from its checkpoint alone.

One tiny trained workspace per module (``test_tmf.make_prep``: micro ViT on 16 px crops + filter banks, TMF
for EXPR), its encoder ``enc.pt`` inside the workspace; each test works on a copy.
"""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner
from videos import clip, predicted

from abawkit.cli import app

runner = CliRunner()
FAST = ["--set", "train.epochs=1", "--set", "clips.length=16", "--set", "clips.stride=8",
        "--set", "clips.eval_stride=8", "--set", "train.batch_size=4"]


def abaw(*args, ok: bool = True):
    res = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from test_tmf import make_encoder, make_prep

    work = make_prep(tmp_path_factory.mktemp("ws") / "w")
    make_encoder(work / "enc.pt")
    abaw("extract", "vision", "--checkpoint", work / "enc.pt", "--set", "vision.workers=0", "-w", work)
    abaw("extract", "audio", "--model", "fbank", "-w", work)
    abaw("train", "tmf", "--task", "expr", "--features", "mae,fbank", *FAST, "-w", work)
    return work


@pytest.fixture
def ws(trained, tmp_path):
    return shutil.copytree(trained, tmp_path / "ws", symlinks=True)


def predict(work, *args, ok: bool = True):
    return abaw("predict", *args, "-w", work, "--set", 'tasks=["expr"]', "--set", "threads=1",
                "--set", "detector=haar", "--set", "align=none", "--device", "cpu", ok=ok)


def csv_of(work, video) -> pd.DataFrame:
    """The one CSV written for ``video`` (found by its stem: these tests give each video its own)."""
    (found,) = sorted((work / "predict").glob(f"{video.stem}*/predictions.csv"))
    return pd.read_csv(found)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_two_videos_with_one_file_name_get_two_folders_and_one_content_one(ws, tmp_path):
    """Main refused the pair in one call ("would share the output folder predict/clip: rename one") and,
    one call each, answered the second "already done" with the first one's CSV."""
    for d in "abc":
        (tmp_path / d).mkdir()
    face = clip(tmp_path / "a" / "clip.mp4", [("face", 12)])
    sky = clip(tmp_path / "b" / "clip.mp4", [("sky", 12)])
    res = predict(ws, face, sky)
    assert "already done" not in res.output
    out_face, out_sky = predicted(ws, face), predicted(ws, sky)
    assert out_face != out_sky and out_face.name.startswith("clip-") and out_sky.name.startswith("clip-")
    assert pd.read_csv(out_face / "predictions.csv")["face"].sum() > 5
    assert (pd.read_csv(out_sky / "predictions.csv")["face"] == 0).all()
    same = tmp_path / "c" / "clip.mp4"
    shutil.copyfile(face, same)
    again = predict(ws, face, same)
    assert "same video" in flat(again.output) and flat(again.output).count("already done") == 1, again.output


def test_a_retrained_tmf_redoes_the_prediction_and_says_which_model(ws, tmp_path):
    """Main: after `abaw train tmf --force`, predict on the same video answered "already done" (old CSV)."""
    video = clip(tmp_path / "v.mp4", [("face", 12)])
    predict(ws, video)
    before = csv_of(ws, video)
    abaw("train", "tmf", "--task", "expr", "--features", "mae,fbank", *FAST, "--seed", "1", "--force", "-w", ws)
    res = predict(ws, video)
    lines = [ln for ln in res.output.splitlines() if "redoing it" in ln]
    assert len(lines) == 1 and "tmf/expr/fold0" in lines[0] and "already done" not in res.output, res.output
    after = csv_of(ws, video)
    probs = [c for c in after.columns if c.startswith("p_")]
    assert (after[probs] - before[probs]).abs().max().max() > 1e-3  # the new TMF's values
    assert "already done" in flat(predict(ws, video).output)  # same models now: skipped


def test_an_encoder_changed_in_place_stops_predict_naming_abaw_extract(ws, tmp_path):
    """Main loaded the rewritten encoder with no message (features unlike those the TMF was trained on)."""
    from test_tmf import make_encoder

    make_encoder(ws / "enc.pt", seed=1)
    video = clip(tmp_path / "v.mp4", [("face", 8)])
    res = predict(ws, video, ok=False)
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    lines = [ln for ln in res.output.splitlines() if "abaw extract" in ln]
    assert len(lines) == 1, res.output
    assert "features/mae was extracted from enc.pt, which has changed since" in flat(res.output)
    assert "abaw extract vision --checkpoint enc.pt --name mae --force" in flat(res.output)
    assert not (ws / "predict").exists()  # stopped before any video was read
    abaw("extract", "vision", "--checkpoint", ws / "enc.pt", "--set", "vision.workers=0", "-w", ws)
    res = predict(ws, video, ok=False)  # the store is new now, the TMF still the one trained on the old
    assert res.exit_code == 2 and "tmf/expr/fold0 was trained on features/mae" in flat(res.output), res.output
    assert "abaw train tmf --task expr --fold 0 --force" in flat(res.output)


def test_checkpoint_paths_are_recorded_resolved(ws, tmp_path, monkeypatch):
    """Main recorded `--checkpoint enc.pt` as typed: predict run from another folder opened that folder's."""
    (tmp_path / "A").mkdir()
    shutil.copyfile(ws / "enc.pt", tmp_path / "A" / "enc.pt")
    monkeypatch.chdir(tmp_path / "A")
    abaw("extract", "vision", "--checkpoint", "enc.pt", "--name", "outside", "--set", "vision.workers=0", "-w", ws)
    rec = json.loads((ws / "features" / "outside" / "manifest.json").read_text())["inputs"]["checkpoint"]["path"]
    assert rec == str(tmp_path / "A" / "enc.pt")
    monkeypatch.chdir(ws)
    abaw("extract", "vision", "--checkpoint", "enc.pt", "--name", "inside", "--set", "vision.workers=0", "-w", ws)
    rec = json.loads((ws / "features" / "inside" / "manifest.json").read_text())["inputs"]["checkpoint"]["path"]
    assert rec == "enc.pt"  # inside the workspace: relative to it, so a moved or copied workspace keeps its own
    monkeypatch.chdir(tmp_path)
    video = clip(tmp_path / "v.mp4", [("face", 8)])
    predict(os.path.relpath(ws), video)  # another folder, the workspace given relative: found all the same
    assert csv_of(ws, video)["face"].sum() > 0


def test_predict_builds_the_tmf_from_its_checkpoint_not_its_manifest_config(ws, tmp_path):
    """Main rebuilt the TMF from manifest.json's config: another [model] there broke loading (a traceback)."""
    video = clip(tmp_path / "v.mp4", [("face", 10)])
    predict(ws, video)
    before = csv_of(ws, video)
    path = ws / "tmf" / "expr" / "fold0" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["config"]["model"].update(d_model=32, layers=1, heads=2)
    manifest["config"]["clips"].update(eval_stride=3)
    path.write_text(json.dumps(manifest))
    predict(ws, video, "--force")
    pd.testing.assert_frame_equal(csv_of(ws, video), before)
