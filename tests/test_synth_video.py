"""The video-level synthetic releases (A/H, EMI): speech, labels that depend on words and face, the
layout the readers read, determinism, and prep's video-level functions on a tiny release."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from abawkit.errors import AbawError
from abawkit.formats import ah as fmt_ah
from abawkit.formats import emi as fmt_emi
from abawkit.labels import AU_NAMES, EMI_NAMES, TASKS
from abawkit.release.annotations import build_frames
from abawkit.release.synth import ah, emi
from abawkit.release.synth.clips import ClipSpec
from abawkit.release.synth.speech import speak, word_audio
from abawkit.stages import prep
from abawkit.stages.synth import SynthConfig, run_video_level
from abawkit.video.media import probe_video

TINY = ClipSpec(videos=10, seconds=(1.0, 1.4), fps=10, size=32, seed=3)


def test_a_word_always_sounds_the_same_and_words_differ():
    a, b = word_audio("maybe", 140, 16000), word_audio("maybe", 140, 16000)
    assert np.array_equal(a, b)
    c = word_audio("coffee", 140, 16000)
    n = min(len(a), len(c))
    assert len(a) != len(c) or np.abs(a[:n] - c[:n]).mean() > 0.05


def test_speak_puts_sound_where_the_transcript_says():
    audio, segs = speak([["i", "maybe", "like"], ["but", "home"]], 4.0, 16000, 150, np.random.default_rng(0))
    words = [w for s in segs for w in s["words"]]
    assert [w["word"] for w in words] == ["i", "maybe", "like", "but", "home"]
    on = np.zeros(len(audio), bool)
    for w in words:
        on[int(w["start"] * 16000):int(w["end"] * 16000)] = True
    assert np.abs(audio[on]).mean() > 20 * (np.abs(audio[~on]).mean() + 1e-9)
    assert segs[1]["start"] - segs[0]["end"] > 0.3


def test_ah_labels_depend_on_words_and_partly_on_the_face():
    clips, y = ah.plan(ClipSpec(videos=300, seed=1))
    hedge = np.array([any(w in ah.HEDGES for p in c.phrases for w in p) for c in clips])
    doubt = np.array([c.au[:, AU_NAMES.index("AU4")].mean() for c in clips])
    assert hedge[y == 1].mean() > 0.75 and hedge[y == 0].mean() < 0.2
    assert doubt[y == 1].mean() > doubt[y == 0].mean() + 0.15
    assert 0.3 < y.mean() < 0.6


def test_emi_intensities_show_in_words_and_face():
    clips, y = emi.plan(ClipSpec(videos=300, seed=2))
    j = EMI_NAMES.index("Joy")
    said = np.array([any(w in emi.CUES["Joy"] for p in c.phrases for w in p) for c in clips])
    au12 = np.array([c.au[:, AU_NAMES.index("AU12")].mean() for c in clips])
    assert np.corrcoef(y[:, j], said)[0, 1] > 0.3
    assert np.corrcoef(y[:, j], au12)[0, 1] > 0.3
    assert ((y >= 0) & (y <= 1)).all()


@pytest.mark.parametrize("mod", [ah, emi])
def test_plans_are_a_pure_function_of_the_seed(mod):
    a, ya = mod.plan(ClipSpec(videos=12, seed=5))
    b, yb = mod.plan(ClipSpec(videos=12, seed=5))
    c, yc = mod.plan(ClipSpec(videos=12, seed=6))
    assert np.array_equal(ya, yb) and [x.phrases for x in a] == [x.phrases for x in b]
    assert all(np.array_equal(x.au, z.au) for x, z in zip(a, b))
    assert not np.array_equal(ya, yc) or [x.phrases for x in a] != [x.phrases for x in c]


@dataclass(frozen=True)
class _Cfg(SynthConfig):
    track: str = "ah"  # the field the MTL part adds to SynthConfig


MODULES = {"ah": ah, "emi": emi}


@pytest.mark.slow
@pytest.mark.parametrize("track", ["ah", "emi"])
def test_synth_stage_writes_a_release(tmp_path, track):
    out = tmp_path / track
    summary = run_video_level(_Cfg(videos=10, size=32, fps=10, track=track), out)
    assert summary["train"] + summary["val"] + summary["test"] == 10 and summary["track"] == track
    assert list(prep.find_video_tracks(out)) == [track] and json.loads((out / "synth.json").read_text())
    assert not out.with_name(out.name + ".partial").exists()


def test_synth_stage_refuses_an_existing_folder(tmp_path):
    (tmp_path / "ah").mkdir()
    with pytest.raises(AbawError, match="already exists"):
        run_video_level(_Cfg(videos=10, size=32, track="ah"), tmp_path / "ah")
    with pytest.raises(AbawError, match="videos >= 10"):
        run_video_level(_Cfg(videos=3, track="ah"), tmp_path / "x")


@pytest.mark.parametrize("track", ["ah", "emi"])
def test_tiny_release_reads_back_through_prep_functions(tmp_path, track):
    out = tmp_path / track
    out.mkdir()
    summary = MODULES[track].write_release(out, TINY)
    assert summary["train"] + summary["val"] + summary["test"] == 10
    found = prep.find_video_tracks(out)
    assert list(found) == [track]
    labels = found[track]
    lay = prep.video_level_layout(out, found)
    assert lay.templates[track] == labels.template and len(labels.tests) == summary["test"]
    names = prep.video_level_names(found)
    assert set(names) <= set(lay.videos) and set(names) <= set(lay.crops)
    n_frames = {v: probe_video(lay.videos[v]).n_frames for v in names}
    assert n_frames == {v: len(list((lay.crops[v]).iterdir())) for v in names}  # a crop per frame
    anns, tests = prep.video_level_inputs(found, n_frames)
    frames = build_frames(n_frames, {}, anns, tests)
    col = TASKS[track].label_columns[0]
    for v, y in zip(labels.names, labels.values[:, 0]):
        got = frames.loc[frames.video == v, col].to_numpy()
        assert len(got) == n_frames[v] and (got == got[0]).all()  # one label on every frame
        assert got[0] == pytest.approx(y)  # EMI: the intensity itself (float32), not cut to an integer
    per_video = frames.groupby("video")[f"split_{track}"].nunique()
    assert (per_video == 1).all()
    t = json.loads((out / "transcripts" / f"{names[0]}.json").read_text())
    assert t["video"] == names[0] and all({"text", "start", "end"} <= set(s) for s in t["segments"])


def test_tiny_release_test_truth_scores_a_perfect_submission(tmp_path):
    out = tmp_path / "ah"
    out.mkdir()
    ah.write_release(out, TINY)
    spec = TASKS["ah"]
    listed = fmt_ah.read_list(out / "trial-0.txt")
    truth = fmt_ah.read_truth(out / "test_ground_truth" / "AH" / "test.txt", spec).set_index("video")
    rows = truth.loc[list(listed)].reset_index()[["video", "frame"]]
    y = truth.loc[list(listed), "AH"].to_numpy()
    path = fmt_ah.write(tmp_path / "sub", spec, rows, np.c_[1 - y, y, y])
    assert fmt_ah.validate(path, spec, listed) == []
    assert (fmt_ah.read(path, spec)["pred"].to_numpy() == y).all()


def test_emi_test_list_and_truth_match(tmp_path):
    out = tmp_path / "emi"
    emi.write_release(out.mkdir() or out, TINY)
    listed = fmt_emi.read_list(out / "test_split.csv")
    truth = fmt_emi.read_truth(out / "test_ground_truth" / "EMI" / "labels.csv", TASKS["emi"])
    assert list(listed) == truth["video"].tolist()


@pytest.mark.parametrize("track", ["ah", pytest.param("emi", marks=pytest.mark.slow)])
def test_prep_indexes_a_video_level_release(tmp_path, track):
    """``abaw prep`` on a BAH-like / Hume-Vidmimic2-like release: no challenge folders, one label per video
    on every frame, the organisers' list recorded as the track's template."""
    rel = tmp_path / "rel"
    rel.mkdir()
    MODULES[track].write_release(rel, TINY)
    prep.run(prep.PrepConfig(release=str(rel)), tmp_path / "w")
    out = tmp_path / "w" / "prep"
    frames = pd.read_parquet(out / "frames.parquet")
    found = prep.find_video_tracks(rel)[track]
    col = TASKS[track].label_columns[-1]
    first = frames.groupby("video")[col].agg(["min", "max"])
    assert (first["min"] == first["max"]).all()  # one label per video
    got = first.loc[found.names, "min"].to_numpy()
    assert got == pytest.approx(found.values[:, -1])
    assert set(frames.loc[frames[f"split_{track}"] == "test", "video"]) == set(found.tests)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["layout"]["templates"][track] == str(found.template)
    assert frames["crop"].notna().all()
