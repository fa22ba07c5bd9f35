"""abaw prep: round-trip labels, fill rule, media outputs, and every bad-input case (exit 2, no prep/)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.data.tables import fold_videos, load_prep
from abawkit.errors import AbawError
from abawkit.labels import TASKS, task_for_folder
from abawkit.release.annotations import nearest_filled, read_annotations

runner = CliRunner()


@pytest.fixture(scope="module")
def prep(prep_workspace):
    return load_prep(prep_workspace)


def test_round_trip_every_label(prep, synth_release):
    frames = prep.frames.set_index(["video", "frame"])
    for t, spec in TASKS.items():
        for folder, split in (("Train_Set", "train"), ("Validation_Set", "val")):
            for path in (synth_release / spec.challenge / folder).glob("*.txt"):
                want = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)  # line k+1 <-> frame k
                got = frames.loc[path.stem].loc[1:len(want), list(spec.label_columns)].to_numpy()
                np.testing.assert_allclose(got, want, atol=1e-6, err_msg=str(path))
                assert (frames.loc[path.stem][f"split_{t}"] == split).all()


def test_crops_are_one_based_and_fill_rule(prep, synth_release):
    f = prep.frames
    row = f[(f.video == "synth000_left") & f.crop.notna()].iloc[0]
    assert row.crop.endswith(f"synth000_left/{row.frame:05d}.jpg") and row.crop.startswith("/")
    for v, g in f.groupby("video"):
        has = g.frame[g.crop.notna()].to_numpy()
        for fr, fill in zip(g.frame, g.fill_frame):  # brute force: nearest, ties -> earlier
            want = has[np.argmin(np.abs(has - fr) * 2 + (has > fr))] if len(has) else -1
            assert fill == want, (v, fr)
    assert (f.crop.isna() & (f.fill_frame != f.frame)).any()


def test_nearest_filled_ties_and_empty_video():
    vid = np.array([0, 0, 0, 0, 0, 1, 1])
    frame = np.array([1, 2, 3, 4, 5, 1, 2])
    has = np.array([True, False, False, True, False, False, False])
    assert nearest_filled(vid, frame, has).tolist() == [1, 1, 4, 4, 4, -1, -1]


def test_videos_audio_crops_and_test_split(prep, synth_release):
    v = prep.videos.set_index("video")
    assert v.loc["synth000_left", "source"] == v.loc["synth000_right", "source"]
    assert (v.n_frames == 60).all() and (v.fps == 30).all()
    wav, rate = sf.read(v.loc["synth000_left", "audio"])
    assert rate == 16000 and wav.ndim == 1 and abs(len(wav) - 32000) < 2048 and np.abs(wav).max() > 0.01
    made = prep.frames[prep.frames.crop.str.contains("/prep/crops/", na=False)]
    assert made.video.nunique() == 1 and 0 < len(made) <= 60 and all(map(lambda p: __import__("os").path.isfile(p), made.crop))
    summary = json.loads((prep.dir / "summary.json").read_text())  # only frames with a face have a crop
    assert summary["detected"][made.video.iloc[0]] == {"frames": 60, "detected": len(made)}
    tests = (synth_release / "names_of_videos_in_each_test_set" /
             "Valence_Arousal_Estimation_Challenge_test_set_release.txt").read_text().split()
    fv = fold_videos(prep, "va", 0)
    assert set(fv.test) == set(tests) and fv.train and fv.val
    assert (prep.frames[prep.frames.video.isin(tests)].valence == -5).all()
    assert prep.manifest["inputs"]["release"]["path"] == str(synth_release)


def test_cli_help_and_skip(prep_workspace, synth_release):
    assert runner.invoke(app, ["prep", "--help"]).exit_code == 0
    res = runner.invoke(app, ["prep", "--release", str(synth_release), "-w", str(prep_workspace), "--size", "64"])
    assert res.exit_code == 0 and "skip" in res.output


def _annotations_only(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("cropped_aligned", "videos", "test_ground_truth"))
    return dst


def _annotations_and_crops(src, dst):
    """Annotations and crops, plus the raw videos of the names that have no crop folder (prep needs faces)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("videos", "test_ground_truth"))
    (dst / "videos").mkdir()
    for name in json.loads((src / "synth.json").read_text())["summary"]["no_crop"]:
        shutil.copy(src / "videos" / f"{name}.mp4", dst / "videos")
    return dst


def _first(root, challenge):
    return sorted((root / challenge / "Train_Set").glob("*.txt"))[0]


def _edit_line(path, k, text):
    lines = path.read_text().splitlines()
    lines[k - 1] = text
    path.write_text("\n".join(lines) + "\n")


BAD = {  # challenge, edit, location, field, message
    "header": ("AU_Detection_Challenge", lambda p: _edit_line(p, 1, "AU1,AU2"), ":1", "header", "expected"),
    "columns": ("AU_Detection_Challenge", lambda p: _edit_line(p, 5, "0,1,0"), ":5", None, "wrong column count"),
    "non-numeric": ("VA_Estimation_Challenge", lambda p: _edit_line(p, 7, "0.1,abc"), ":7", "arousal", "non-numeric"),
    "au-range": ("AU_Detection_Challenge", lambda p: _edit_line(p, 3, ",".join(["2"] * 12)), ":3", "AU1", "label 2"),
    "expr-range": ("EXPR_Classification_Challenge", lambda p: _edit_line(p, 4, "8"), ":4", "EXPR", "label 8"),
    "va-range": ("VA_Estimation_Challenge", lambda p: _edit_line(p, 9, "1.5,0"), ":9", "valence", "label 1.5"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_annotation(case, synth_release, tmp_path):
    challenge, edit, msg, field, text = BAD[case]
    root = _annotations_only(synth_release, tmp_path / "rel")
    path = _first(root, challenge)
    edit(path)
    res = runner.invoke(app, ["prep", "--release", str(root), "-w", str(tmp_path / "w")])
    assert res.exit_code == 2 and f"{path}{msg}" in res.output and text in res.output, res.output
    with pytest.raises(AbawError, match=re.escape(f"{path}{msg}" + (f" [{field}]" if field else "") + f": {text}")):  # the field name too
        read_annotations(TASKS[task_for_folder(challenge).name], [(path.stem, "train", path)])
    assert "Traceback" not in res.output and not (tmp_path / "w" / "prep").exists()
    assert not (tmp_path / "w" / "prep.partial").exists()


def _run_bad(root, tmp_path, expect):
    res = runner.invoke(app, ["prep", "--release", str(root), "-w", str(tmp_path / "w")])
    assert res.exit_code == 2 and expect in res.output, res.output
    assert not (tmp_path / "w" / "prep").exists() and not (tmp_path / "w" / "prep.partial").exists()


def test_annotation_longer_than_video(synth_release, tmp_path):
    root = _annotations_and_crops(synth_release, tmp_path / "rel")
    path = _first(root, "VA_Estimation_Challenge")
    path.write_text(path.read_text() + "0.1,0.1\n")
    shutil.copy(synth_release / "videos" / f"{path.stem.split('_')[0]}.mp4", root / "videos")
    _run_bad(root, tmp_path, f"{path}: annotation has 61 frames but video")


def test_unreadable_video(synth_release, tmp_path):
    root = _annotations_and_crops(synth_release, tmp_path / "rel")
    (root / "videos" / "synth001.mp4").write_bytes(b"not a video")
    _run_bad(root, tmp_path, "synth001.mp4: unreadable video")


def test_unknown_folder_and_missing_dirs(synth_release, tmp_path):
    root = _annotations_only(synth_release, tmp_path / "rel")
    (root / "Gaze_Challenge" / "Train_Set").mkdir(parents=True)
    _run_bad(root, tmp_path, "Gaze_Challenge: unknown challenge folder")
    _run_bad(tmp_path / "nowhere", tmp_path, "release folder not found")
    empty = tmp_path / "empty"
    (empty / "videos").mkdir(parents=True)
    _run_bad(empty, tmp_path, "no challenge folders")
