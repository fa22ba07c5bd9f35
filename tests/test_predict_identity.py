"""Issue 23, `abaw predict` keyed by content: each defect of "What happens today" reproduced through the CLI.

Every test here failed on main before the issue's work (the reason is in each docstring). One tiny trained
workspace (``identity_ws.trained``: VA, TMF over mae + hubert) is shared and copied before any change.
Output folders are named by ``abawkit.workspace.layout.predict(stem, sha256)``, imported inside the test that
checks the name; elsewhere a video's CSV is found by its (unique) stem.
"""

from __future__ import annotations

import hashlib
import json
import os

import pandas as pd
import pytest

from identity_ws import copy_ws, flat, invoke, perturb_checkpoint, read_json, trained
from videos import clip


@pytest.fixture(scope="module")
def tw(tmp_path_factory):
    return trained(tmp_path_factory)


def predict(t, ws, *args, ok=True):
    return invoke("predict", *args, "-w", ws, "--recipe", t.recipe, "--device", "cpu", ok=ok)


def csv_of(ws, video) -> pd.DataFrame:
    """The one predictions.csv written for ``video`` (found by its stem, unique per test)."""
    found = sorted((ws / "predict").glob(f"{video.stem}*/predictions.csv"))
    assert len(found) == 1, found
    return pd.read_csv(found[0])


def test_two_videos_with_the_same_file_name_each_get_their_own_output(tw, tmp_path):
    """Main: the second `clip.mp4` printed "skip: .../predict/clip is already done" and kept the first's CSV."""
    ws = copy_ws(tw, tmp_path / "ws")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    face = clip(tmp_path / "a" / "clip.mp4", [("face", 15)])
    sky = clip(tmp_path / "b" / "clip.mp4", [("sky", 15)])
    predict(tw, ws, face)
    second = predict(tw, ws, sky)
    assert "already done" not in flat(second.output), second.output
    from abawkit.workspace import layout  # after the house move; main has no layout module

    dfs = {}
    for name, video in (("face", face), ("sky", sky)):
        sha = hashlib.sha256(video.read_bytes()).hexdigest()
        out = ws / layout.predict("clip", sha)
        assert out.name == f"clip-{sha[:8]}", out
        dfs[name] = pd.read_csv(out / "predictions.csv")
    assert dfs["face"]["face"].sum() > 10 and dfs["face"]["valence"].notna().any()
    assert (dfs["sky"]["face"] == 0).all() and dfs["sky"]["valence"].isna().all()
    third = predict(tw, ws, face)  # same video, same models: still skipped (guards today's behaviour)
    assert "already done" in flat(third.output), third.output


def test_predict_after_finetune_force_recomputes_with_the_new_frame_model(tw, tmp_path):
    """Main: after `abaw finetune --force`, predict --model frame on the same video said "already done"."""
    ws = copy_ws(tw, tmp_path / "ws")
    video = clip(tmp_path / "framevid.mp4", [("face", 15)])
    predict(tw, ws, video, "--model", "frame")
    before = csv_of(ws, video)
    invoke("finetune", "--task", "va", "--fold", "0", "--seed", "1", "--force", "-w", ws, "--recipe", tw.recipe)
    again = predict(tw, ws, video, "--model", "frame")
    assert "already done" not in flat(again.output), again.output
    after = csv_of(ws, video)
    assert after["face"].equals(before["face"])
    assert (after["valence"] - before["valence"]).abs().max() > 1e-3  # the retrained encoder's values


def test_predict_after_train_tmf_force_recomputes_with_the_new_tmf(tw, tmp_path):
    """Main: after `abaw train tmf --force`, predict (model tmf) on the same video said "already done"."""
    ws = copy_ws(tw, tmp_path / "ws")
    video = clip(tmp_path / "tmfvid.mp4", [("face", 15)])
    predict(tw, ws, video)
    before = csv_of(ws, video)
    invoke("train", "tmf", "--task", "va", "--fold", "0", "--seed", "1", "--force", "-w", ws, "--recipe", tw.recipe)
    again = predict(tw, ws, video)
    assert "already done" not in flat(again.output), again.output
    after = csv_of(ws, video)
    assert (after["valence"] - before["valence"]).abs().max() > 1e-3  # the retrained TMF's values


def test_predict_stops_when_the_encoder_changed_after_extraction(tw, tmp_path):
    """Main: the encoder rewritten in place (features not re-extracted) was loaded with no message, exit 0."""
    ws = copy_ws(tw, tmp_path / "ws")
    perturb_checkpoint(ws / "finetune" / "va" / "fold0" / "best.pt")
    video = clip(tmp_path / "stalevid.mp4", [("face", 10)])
    res = predict(tw, ws, video, ok=False)
    assert res.exit_code != 0, f"predict used an encoder the features were not extracted with:\n{res.output}"
    assert "abaw extract" in res.output and "Traceback" not in res.output, res.output
    assert len([ln for ln in res.output.splitlines() if "abaw extract" in ln]) == 1, res.output


def test_a_relative_encoder_path_is_recorded_resolved(tw, tmp_path, monkeypatch):
    """`abaw extract vision --checkpoint encoder.pt` from folder A, then predict from folder B, which has
    another encoder.pt. Main recorded "encoder.pt" as typed: predict silently loaded B's (other predictions)."""
    ws = copy_ws(tw, tmp_path / "ws")
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir()
    b.mkdir()
    (a / "encoder.pt").write_bytes((ws / "finetune" / "va" / "fold0" / "best.pt").read_bytes())
    (b / "encoder.pt").write_bytes((a / "encoder.pt").read_bytes())
    perturb_checkpoint(b / "encoder.pt")
    monkeypatch.chdir(a)
    invoke("extract", "vision", "--checkpoint", "encoder.pt", "--name", "mae-va", "--task", "va", "--force",
           "--set", "vision.workers=0", "-w", ws, "--recipe", tw.recipe)
    invoke("train", "tmf", "--task", "va", "--fold", "0", "--force", "-w", ws, "--recipe", tw.recipe)
    recorded = [v for v in _strings(read_json(ws / "features" / "mae-va" / "manifest.json")) if v.endswith("encoder.pt")]
    assert recorded and all(os.path.isabs(v) for v in recorded), f"recorded as typed: {recorded}"
    video = clip(tmp_path / "relvid.mp4", [("face", 10)])
    predict(tw, ws, video)
    in_a = csv_of(ws, video)
    monkeypatch.chdir(b)
    res = predict(tw, ws, video, "--force")
    assert "Traceback" not in res.output
    pd.testing.assert_frame_equal(csv_of(ws, video), in_a)  # main: B's encoder.pt -> other values


def _strings(obj):
    """Every string value in a JSON object, recursively."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def test_tmf_checkpoint_is_in_the_common_format_with_its_arch(tw):
    """Main: tmf best.pt was a private dict ({"model", "arch", "features", "record"}) with no "format"."""
    import torch

    ckpt = torch.load(tw.ws / "tmf" / "va" / "fold0" / "best.pt", map_location="cpu", weights_only=True)
    assert ckpt.get("format") == "abawkit", sorted(ckpt)
    model = read_json(tw.ws / "tmf" / "va" / "fold0" / "manifest.json")["config"]["model"]
    arch = ckpt["arch"]
    assert {k: arch[k] for k in ("d_model", "layers", "heads")} == {k: model[k] for k in ("d_model", "layers", "heads")}
    assert arch["in_dim"] > 0 and arch["n_outputs"] == 2


def test_predict_builds_the_tmf_from_its_checkpoint_not_the_manifest_config(tw, tmp_path):
    """Main: predict rebuilt the TMF from manifest.json's config: an edited config broke loading (exit 1,
    a size-mismatch traceback) where the checkpoint's own arch still fits."""
    ws = copy_ws(tw, tmp_path / "ws")
    video = clip(tmp_path / "archvid.mp4", [("face", 10)])
    predict(tw, ws, video)
    before = csv_of(ws, video)
    path = ws / "tmf" / "va" / "fold0" / "manifest.json"
    manifest = read_json(path)
    manifest["config"]["model"].update(d_model=32, layers=1)
    path.write_text(json.dumps(manifest))
    res = predict(tw, ws, video, "--force", ok=False)
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(csv_of(ws, video), before)
