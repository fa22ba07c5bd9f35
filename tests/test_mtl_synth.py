"""``abaw synth --track mtl`` -> ``abaw prep``: an s-Aff-Wild2-like release becomes the MTL track's frame table."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.data.tables import load_prep
from abawkit.formats import mtl as fmt
from abawkit.labels import TASKS
from abawkit.release import mtl as rel

SPEC = TASKS["mtl"]
SMALL = {"videos": 6, "frames": 60, "size": 32, "faces": 0, "seed": 0, "track": "mtl"}
runner = CliRunner()


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from abawkit.stages.synth import SynthConfig, run

    out = tmp_path_factory.mktemp("mtl") / "release"
    run(SynthConfig(**SMALL), out)
    return out


@pytest.fixture(scope="module")
def prep(release, tmp_path_factory):
    from abawkit.stages.prep import PrepConfig, run

    workdir = tmp_path_factory.mktemp("mtlwork")
    run(PrepConfig(release=str(release), size=32), workdir)
    return load_prep(workdir)


def _file_rows(path):
    rows, values = rel.read_file(path)
    return rows.assign(**{c: values[:, j] for j, c in enumerate(SPEC.label_columns)})


def test_labels_only_where_listed_and_masked_exactly_as_the_files_say(release, prep):
    f = prep.frames
    assert set(SPEC.label_columns) <= set(f.columns) and set(f["split_mtl"]) == {"train", "val", "test"}
    listed = pd.concat([_file_rows(release / "training_set_annotations.txt").assign(split="train"),
                        _file_rows(release / "validation_set_annotations.txt").assign(split="val")])
    got = f.merge(listed, on=["video", "frame"], how="left", suffixes=("", "_file"), indicator=True)
    on = (got["_merge"] == "both").to_numpy()
    assert on.sum() == len(listed) and (got.loc[on, "split_mtl"] == got.loc[on, "split"]).all()
    for c in SPEC.label_columns:  # listed: the file's value, -5/-1 included; unlisted: the head's invalid value
        np.testing.assert_allclose(got.loc[on, c].to_numpy(np.float64), got.loc[on, c + "_file"], atol=1e-6, err_msg=c)
    invalid = {c: h.invalid for h in SPEC.heads for c in h.columns}
    assert all((got.loc[~on, c] == invalid[c]).all() for c in SPEC.label_columns)
    v = listed[list(SPEC.label_columns)].to_numpy()
    va_gap, expr_gap, au_gap = v[:, 0] == -5, v[:, 2] == -1, v[:, 3:] == -1
    assert va_gap.any() and expr_gap.any() and au_gap.any()  # every kind of gap occurs ...
    assert (va_gap & ~expr_gap).any() and (expr_gap & ~va_gap).any()  # ... each task masked on its own
    assert (au_gap.any(axis=1) & ~au_gap.all(axis=1)).any()  # single AUs masked


def test_crops_only_on_listed_frames_and_sparse(release, prep):
    listed = pd.concat([_file_rows(release / name)[["video", "frame"]] for name in
                        ("training_set_annotations.txt", "validation_set_annotations.txt")])
    test = fmt.read_list(release / "MTL.txt")
    listed = pd.concat([listed, pd.DataFrame([(v, x) for v, fr in test.items() for x in fr], columns=["video", "frame"])])
    with_crop = prep.frames.loc[prep.frames["crop"].notna(), ["video", "frame"]]
    assert sorted(map(tuple, with_crop.to_numpy().tolist())) == sorted(map(tuple, listed.to_numpy().tolist()))
    steps = listed.groupby("video")["frame"].apply(lambda s: np.diff(np.sort(s.to_numpy())))
    gaps = np.concatenate(steps.to_list())
    assert gaps.min() >= 1 and gaps.max() <= 9 and gaps.mean() > 2  # sparse: 00001, 00008, ...
    assert (listed.groupby("video")["frame"].min() == 1).all()


def test_test_list_recorded_and_truth_covers_it(release, prep):
    summary = json.loads((prep.dir / "summary.json").read_text())
    assert summary["layout"]["templates"]["mtl"] == str((release / "MTL.txt").resolve())
    test = fmt.read_list(release / "MTL.txt")
    assert set(prep.frames.loc[prep.frames["split_mtl"] == "test", "video"]) == set(test)
    truth = fmt.read_truth(release / "test_ground_truth", SPEC)
    assert [(v, int(x)) for v, x in zip(truth["video"], truth["frame"])] == [(v, int(x)) for v, fr in test.items() for x in fr]


def test_deterministic_per_seed(release, tmp_path):
    from abawkit.stages.synth import SynthConfig, run

    run(SynthConfig(**SMALL), tmp_path / "again")
    run(SynthConfig(**{**SMALL, "seed": 1}), tmp_path / "other")
    for name in ("training_set_annotations.txt", "validation_set_annotations.txt", "MTL.txt",
                 "test_ground_truth/test_set_annotations.txt"):
        assert (tmp_path / "again" / name).read_bytes() == (release / name).read_bytes(), name
    assert (tmp_path / "other" / "training_set_annotations.txt").read_bytes() != \
        (release / "training_set_annotations.txt").read_bytes()


def test_cli_track_option_and_missing_crop_is_one_line(release, tmp_path):
    res = runner.invoke(app, ["synth", str(tmp_path / "r"), "--track", "nope", "--videos", "3", "--faces", "0"])
    assert res.exit_code == 2 and "track must be classic, mtl" in res.output
    root = tmp_path / "copy"
    shutil.copytree(release, root)
    first = (root / "training_set_annotations.txt").read_text().splitlines()[1].split(",")[0]
    (root / "cropped_aligned" / first).unlink()
    res = runner.invoke(app, ["prep", "--release", str(root), "-w", str(tmp_path / "w")])
    assert res.exit_code == 2 and f"mtl: 1 annotated image(s) have no crop, first {first}" in res.output, res.output
    assert "Traceback" not in res.output and not (tmp_path / "w" / "prep").exists()


def test_beside_the_classic_challenge_folders(release, tmp_path):
    from abawkit.stages.prep import PrepConfig, run

    root = tmp_path / "both"
    shutil.copytree(release, root)
    video = (root / "training_set_annotations.txt").read_text().splitlines()[1].split("/")[0]
    folder = root / "EXPR_Classification_Challenge" / "Train_Set"
    folder.mkdir(parents=True)
    expr = np.arange(60) % 8
    (folder / f"{video}.txt").write_text(",".join(TASKS["expr"].names) + "\n" + "".join(f"{e}\n" for e in expr))
    run(PrepConfig(release=str(root), size=32), tmp_path / "w")
    f = load_prep(tmp_path / "w").frames
    g = f[f["video"] == video].sort_values("frame")
    assert g["EXPR"].tolist() == expr.tolist() and (g["split_expr"] == "train").all()
    assert (f.loc[f["video"] != video, "split_expr"] == "none").all()
    listed = _file_rows(root / "training_set_annotations.txt")
    mine = listed[listed["video"] == video].set_index("frame")["mtl_EXPR"]
    np.testing.assert_array_equal(g.set_index("frame").loc[mine.index, "mtl_EXPR"], mine)  # both tracks, own columns
    assert set(f["split_mtl"]) == {"train", "val", "test"}
