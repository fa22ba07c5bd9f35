"""abaw synth: official layout, release quirks, determinism, learnable label-driven faces."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.labels import AU_NAMES, EXPR_NAMES
from abawkit.release import synth as syn

runner = CliRunner()


def _annotation_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.txt"))}


def test_layout_and_quirks(synth_release):
    r = synth_release
    for ch in ("AU_Detection_Challenge", "EXPR_Classification_Challenge", "VA_Estimation_Challenge"):
        assert (r / ch / "Train_Set").is_dir() and (r / ch / "Validation_Set").is_dir()
    names = {p.stem for p in r.glob("*_Challenge/*/*.txt")}
    assert {"synth000_left", "synth000_right"} <= names
    assert (r / "videos" / "synth000.mp4").is_file() and not (r / "videos" / "synth000_left.mp4").exists()
    no_crop = [n for n in names if not (r / "cropped_aligned" / n).is_dir()]
    assert len(no_crop) == 1 and (r / "videos" / f"{no_crop[0]}.mp4").is_file()
    crops = sorted((r / "cropped_aligned" / "synth000_left").glob("*.jpg"))
    assert crops[0].name == "00001.jpg" and 0 < 60 - len(crops) < 15  # a few frames lack a crop
    tests = (r / "names_of_videos_in_each_test_set" / "Action_Unit_Detection_Challenge_test_set_release.txt")
    test_names = tests.read_text().split()
    assert test_names and not names & set(test_names)
    assert all((r / "test_ground_truth" / "AU_Detection_Challenge" / f"{n}.txt").is_file() for n in test_names)
    tmpl = (r / "names_of_videos_in_each_test_set" / "CVPR_5th_ABAW_AU_test_set_example.txt").read_text().splitlines()
    assert tmpl[0].startswith("image_location,AU1") and len(tmpl) == 1 + 60 * len(test_names)
    au = (r / "AU_Detection_Challenge" / "Train_Set").glob("*.txt")
    lines = next(au).read_text().splitlines()
    assert lines[0] == ",".join(AU_NAMES) and len(lines) == 61


def test_deterministic_per_seed(tmp_path, synth_release):
    from conftest import TINY

    from abawkit.stages.synth import SynthConfig, run

    run(SynthConfig(**TINY), tmp_path / "a")
    run(SynthConfig(**{**TINY, "seed": 1}), tmp_path / "b")
    same, other = _annotation_bytes(tmp_path / "a"), _annotation_bytes(tmp_path / "b")
    assert same == _annotation_bytes(synth_release)
    assert same != other
    pool = sorted((tmp_path / "a" / "pretrain_faces").glob("*.jpg"))
    assert len(pool) == TINY["faces"]
    assert [p.read_bytes() for p in pool] == [p.read_bytes() for p in sorted((synth_release / "pretrain_faces").glob("*.jpg"))]


def test_aus_switch_within_an_expression_segment():
    """AUs change on their own clocks inside a segment (many distinct faces per video), and the
    expression's AUs are on far more often than the others."""
    rng = np.random.default_rng(0)
    expr, seg = syn.expression_track(3000, 30, rng)
    au = syn.au_track(expr, seg, rng)
    states_per_segment = [len({tuple(r) for r in au[seg == s]}) for s in np.unique(seg)]
    assert np.mean(states_per_segment) > 2.5
    linked = np.zeros_like(au, dtype=bool)
    for e, name in enumerate(EXPR_NAMES):
        for a in syn.EXPR_AUS[name]:
            linked[expr == e, AU_NAMES.index(a)] = True
    assert au[linked].mean() > 0.7 and au[~linked].mean() < 0.15


def test_faces_follow_labels():
    """Each AU changes the rendered face by a visible amount (mean abs pixel difference)."""
    look = syn.make_person("x", "x", "train", syn.SynthSpec(frames=60), np.random.default_rng(0)).look
    base = syn.draw_face(np.zeros(12), look, 64).astype(float)
    for i, name in enumerate(AU_NAMES):
        au = np.zeros(12)
        au[i] = 1
        diff = np.abs(syn.draw_face(au, look, 64).astype(float) - base).mean()
        assert diff > 0.3, name


def test_va_smooth_and_in_range():
    rng = np.random.default_rng(0)
    expr, _ = syn.expression_track(900, 30, rng)
    va = syn.va_track(expr, rng)
    assert va.shape == (900, 2) and np.abs(va).max() <= 1
    assert np.abs(np.diff(va, axis=0)).max() < 0.1


def test_cli_help_and_bad_input(tmp_path):
    assert runner.invoke(app, ["synth", "--help"]).exit_code == 0
    res = runner.invoke(app, ["synth", str(tmp_path / "r"), "--videos", "1"])
    assert res.exit_code == 2 and "--videos" in res.output and not (tmp_path / "r").exists()
    (tmp_path / "exists").mkdir()
    res = runner.invoke(app, ["synth", str(tmp_path / "exists"), "--frames", "30", "--videos", "3"])
    assert res.exit_code == 2 and "already exists" in res.output


def test_cli_run(tmp_path):
    res = runner.invoke(app, ["synth", str(tmp_path / "r"), "--videos", "3", "--frames", "30", "--size", "48",
                                 "--faces", "5"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "r" / "videos").glob("*.mp4"))) == 3
    assert len(list((tmp_path / "r" / "pretrain_faces").glob("*.jpg"))) == 5
