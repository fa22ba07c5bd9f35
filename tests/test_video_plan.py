"""``abaw run --track ah|emi``: the video-level tracks' plan (``run/build_video.py``): the frame encoder, vision,
audio and text features, the video model per fold, submit and validate, with the text source and encoder from
the release / recipe / command line, and the paper-scale recipes asking for what they need in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.config import load_config
from abawkit.errors import AbawError
from abawkit.run import build

runner = CliRunner()


def plan(tmp_path: Path, recipe: str, transcripts: bool = True, **kw) -> dict:
    release = tmp_path / "rel"
    (release / "transcripts").mkdir(parents=True, exist_ok=True) if transcripts else release.mkdir(exist_ok=True)
    cfg = load_config(build.RunConfig, "run", recipe)
    jobs = build.build(cfg, build.RunInputs(tmp_path / "w", recipe, release, **kw))
    return {j.id: j for j in jobs}


@pytest.mark.parametrize("track", ["ah", "emi"])
def test_demo_plan_of_a_video_track(tmp_path, track):
    jobs = plan(tmp_path, f"demo-{track}")
    assert list(jobs) == ["prep", "features/fbank", "features/text", f"finetune/{track}/fold0", f"features/mae-{track}",
                          f"video/{track}/fold0", f"video/{track}/fold1", f"submit/{track}", f"validate/{track}"]
    text = jobs["features/text"].cmd
    assert text[text.index("--transcripts") + 1] == str(tmp_path / "rel" / "transcripts")
    assert text[text.index("--encoder") + 1] == "hashing"
    for f in (0, 1):  # fold 1 fuses fold 0's encoder features, as the TMF folds do
        assert set(jobs[f"video/{track}/fold{f}"].deps) == {f"features/mae-{track}", "features/fbank", "features/text", "prep"}
        assert jobs[f"video/{track}/fold{f}"].stage == "video"  # reads video.toml
    assert set(jobs[f"submit/{track}"].deps) == {f"video/{track}/fold0", f"video/{track}/fold1"}
    assert jobs[f"validate/{track}"].deps == (f"submit/{track}",)


def test_text_folders_from_the_command_line(tmp_path):
    asr, enc = tmp_path / "whisper", tmp_path / "bert"
    asr.mkdir(), enc.mkdir()
    result = runner.invoke(app, ["run", "--release", str(tmp_path), "--track", "ah", "-w", str(tmp_path / "w"),
                                 "--asr", str(asr), "--text-encoder", str(enc), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "features/text" in result.output and "video/ah/fold1" in result.output
    jobs = plan(tmp_path, "demo-ah", text={"asr": str(asr), "encoder": str(enc)})
    cmd = jobs["features/text"].cmd
    assert cmd[cmd.index("--asr") + 1] == str(asr) and cmd[cmd.index("--encoder") + 1] == str(enc)
    assert "--transcripts" not in cmd
    result = runner.invoke(app, ["run", "--release", str(tmp_path), "--track", "ah", "-w", str(tmp_path / "w"),
                                 "--text-encoder", str(tmp_path / "nowhere"), "--dry-run"])
    assert result.exit_code == 2 and "--text-encoder" in result.output and "Traceback" not in result.output


def test_no_words_to_read_is_one_line(tmp_path):
    with pytest.raises(AbawError, match="--asr"):
        plan(tmp_path, "demo-ah", transcripts=False)


@pytest.mark.parametrize("track", ["ah", "emi"])
def test_paper_recipes_need_a_real_text_encoder(tmp_path, track):
    with pytest.raises(AbawError, match="--text-encoder"):
        plan(tmp_path, track, mae=tmp_path, audio={"hubert": str(tmp_path)})
    with pytest.raises(AbawError, match="--mae"):
        plan(tmp_path, track, text={"encoder": str(tmp_path)}, audio={"hubert": str(tmp_path)})
    jobs = plan(tmp_path, track, text={"encoder": str(tmp_path)}, mae=tmp_path, audio={"hubert": str(tmp_path)})
    assert "--init" in jobs[f"finetune/{track}/fold0"].cmd and len([j for j in jobs if j.startswith("video/")]) == 6
    assert f"video/{track}/fold0" in jobs and f"validate/{track}" in jobs


def test_video_and_frame_tracks_are_planned_apart(tmp_path):
    cfg = load_config(build.RunConfig, "run", "demo-ah", tasks=["ah", "expr"])
    with pytest.raises(AbawError, match="apart"):
        build.build(cfg, build.RunInputs(tmp_path / "w", "demo-ah", tmp_path))


def test_a_frozen_backbone_gives_every_fold_one_vision_store(tmp_path):
    backbone = tmp_path / "dinov2"
    backbone.mkdir()
    cfg = load_config(build.RunConfig, "run", "demo-ah", vision="frozen")
    release = tmp_path / "rel"
    (release / "transcripts").mkdir(parents=True)
    jobs = {j.id: j for j in build.build(cfg, build.RunInputs(tmp_path / "w", "demo-ah", release, mae=backbone))}
    assert not any(i.startswith("finetune/") for i in jobs)  # it was ignored: every fold fine-tuned an encoder
    store = jobs["features/mae"]
    assert store.deps == ("prep",) and store.cmd[store.cmd.index("--checkpoint") + 1] == str(backbone)
    assert set(jobs["video/ah/fold1"].deps) == {"features/mae", "features/fbank", "features/text", "prep"}
    with pytest.raises(AbawError, match="--backbone"):
        build.build(cfg, build.RunInputs(tmp_path / "w", "demo-ah", release))
    with pytest.raises(AbawError, match="finetune or frozen"):
        build.build(load_config(build.RunConfig, "run", "demo-ah", vision="frozn"), build.RunInputs(tmp_path / "w", "demo-ah", release))
