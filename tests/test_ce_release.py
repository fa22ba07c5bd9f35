"""The CE track's release side: ``abaw synth --track ce``, compound face lists, prep of a CE release
(the frame list gives the test videos and is the truth of their frame counts; ``--compound`` adds
train/val rows) and ``abaw mix``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.errors import AbawError
from abawkit.formats import ce as ce_format
from abawkit.labels import CE_NAMES, EXPR_NAMES, task
from abawkit.release.compound import RAF_COMPOUND, class_id, read_compound
from abawkit.release.synth import ce as synth_ce

runner = CliRunner()
TINY_CE = ["--videos", "2", "--frames", "30", "--size", "64", "--faces", "2", "--seed", "0"]


@pytest.fixture(scope="module")
def ce_release(tmp_path_factory):
    out = tmp_path_factory.mktemp("ce") / "release"
    res = runner.invoke(app, ["synth", str(out), "--track", "ce", *TINY_CE])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def ce_prep(ce_release, tmp_path_factory):
    from abawkit.data.tables import load_prep
    from abawkit.stages.prep import PrepConfig, run

    workdir = tmp_path_factory.mktemp("ce_work")
    run(PrepConfig(release=str(ce_release), size=64, compound=(str(ce_release / "compound_faces"),)), workdir)
    return load_prep(workdir)


def test_synth_ce_layout(ce_release):
    assert sorted(p.name for p in (ce_release / "videos").iterdir()) == ["01.mp4", "02.mp4"]
    listed = ce_format.read_list(ce_release / "names_of_videos_in_each_test_set" / synth_ce.LIST_NAME)
    assert list(listed) == ["01", "02"]
    assert [len(f) for f in listed.values()] == [31, 31]  # both (long = 2) one frame past the 30 the video has
    truth = ce_format.read_truth(ce_release / ce_format.TRUTH, task("ce"))
    assert len(truth) == 62 and truth["CE"].between(0, 6).all()
    raf = (ce_release / "compound_faces" / "EmoLabel" / "list_patition_label.txt").read_text().split()
    ids = np.array(raf[1::2], int)
    assert set(ids) == set(range(1, 12))  # the 7 CE compounds and the 4 others RAF-DB has
    assert len(list((ce_release / "compound_faces" / "Image" / "aligned").glob("*_aligned.jpg"))) == len(ids)


def test_synth_ce_labels_are_deterministic_and_draw_both_parts():
    a = synth_ce.compound_track(300, 30, np.random.default_rng([0, 11, 1]))
    b = synth_ce.compound_track(300, 30, np.random.default_rng([0, 11, 1]))
    np.testing.assert_array_equal(a, b)
    assert len(set(a)) > 2
    names = [CE_NAMES[c] for c in a]
    aus = synth_ce.compound_aus(names, np.random.default_rng(0))
    for name, (x, y) in {"Happily_Surprised": ("AU12", "AU26"), "Sadly_Angry": ("AU15", "AU24")}.items():
        rows = np.array([n == name for n in names])
        if rows.any():  # the union of both basic patterns shows: Happiness' lip corners, Surprise's jaw
            from abawkit.labels import AU_NAMES

            assert aus[rows][:, [AU_NAMES.index(x), AU_NAMES.index(y)]].mean() > 0.5


def test_prep_of_a_ce_release(ce_prep, ce_release):
    f = ce_prep.frames
    test = f[f["split_ce"] == "test"]
    assert sorted(test["video"].unique()) == ["01", "02"]
    assert test.groupby("video").size().tolist() == [31, 31]  # the list is the truth: 31 rows, video has 30
    last = test[test["frame"] == 31]
    assert last["crop"].isna().all() and (last["fill_frame"] < 31).all()  # nearest face frame fills it
    summary = json.loads((ce_prep.dir / "summary.json").read_text())
    assert summary["layout"]["templates"]["ce"].endswith(synth_ce.LIST_NAME)
    assert summary["compound"][0]["dropped"] == {n: 1 for n in ("Happily_Disgusted", "Sadly_Disgusted",
                                                               "Fearfully_Angry", "Angrily_Disgusted")}


def test_prep_adds_compound_faces_as_one_frame_videos(ce_prep):
    f = ce_prep.frames
    rows = f[f["split_ce"].isin(("train", "val"))]
    assert len(rows) == 7 * 3 and rows["video"].is_unique and (rows["frame"] == 1).all()
    assert rows["CE"].dtype == np.int8 and sorted(rows["CE"].unique()) == list(range(7))
    assert (rows.groupby("split_ce").size() == pd.Series({"train": 14, "val": 7})).all()  # test_ -> val
    assert all(p.endswith("_aligned.jpg") for p in rows["crop"])
    assert (f.loc[f["split_ce"] == "test", "CE"] == -1).all()
    assert set(ce_prep.videos["video"]) == set(f["video"])


def _raf(tmp_path, lines, images=()):
    (tmp_path / "EmoLabel").mkdir(parents=True)
    (tmp_path / "Image" / "aligned").mkdir(parents=True)
    for name in images:
        (tmp_path / "Image" / "aligned" / name).write_bytes(b"x")
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("".join(f"{ln}\n" for ln in lines))
    return tmp_path


def test_raf_db_compound_list_maps_its_ids_to_the_seven(tmp_path):
    root = _raf(tmp_path, ["train_0001.jpg 8", "train_0002.jpg 2", "test_0001.jpg 4", "train_0003.jpg 11"],
                ["train_0001_aligned.jpg", "test_0001_aligned.jpg", "train_0003_aligned.jpg"])
    got = read_compound(root, "cmp1")
    assert [CE_NAMES[c] for c in got.classes] == ["Fearfully_Surprised", "Sadly_Angry", "Disgustedly_Surprised"]
    assert got.roles == ["train", "val", "train"]
    assert got.names == ["cmp1_train_0001", "cmp1_test_0001", "cmp1_train_0003"]
    assert got.dropped == {"Happily_Disgusted": 1}  # id 2: no such class in C-EXPR-DB; its image need not exist
    assert RAF_COMPOUND[7] == "Fearfully_Surprised"


@pytest.mark.parametrize("lines, msg", [(["train_0001.jpg 12"], "list_patition_label.txt:1: expected"),
                                        (["train_0001.jpg 8", "train_0009.jpg 1"], ":2: image train_0009.jpg not found")])
def test_raf_db_list_errors_name_the_line(tmp_path, lines, msg):
    root = _raf(tmp_path, lines, ["train_0001_aligned.jpg"])
    with pytest.raises(AbawError, match=msg):
        read_compound(root, "cmp1")


def test_image_class_list_with_names_ids_and_a_hash_split(tmp_path):
    (tmp_path / "img").mkdir()
    for k in range(40):
        (tmp_path / "img" / f"{k}.jpg").write_bytes(b"x")
    rows = [f"img/{k}.jpg,{['Sadly Angry', 'happily_surprised', '3'][k % 3]}" for k in range(40)]
    (tmp_path / "list.csv").write_text("image,class\n" + "\n".join(rows) + "\n")
    a = read_compound(tmp_path, "cmp1", seed=0)
    assert a.classes[:3] == [6, 1, 3] and a.names[0] == "cmp1_img_0"
    assert 0 < a.roles.count("val") < 40
    assert read_compound(tmp_path / "list.csv", "cmp1", seed=0).roles == a.roles  # same seed, same split
    assert read_compound(tmp_path, "cmp1", seed=1).roles != a.roles
    (tmp_path / "list.csv").write_text("image,class\nimg/0.jpg,Neutral\n")
    with pytest.raises(AbawError, match=r"list.csv:2 \[class\]: 'Neutral' is not one of"):
        read_compound(tmp_path, "cmp1")
    assert class_id("Fearfully-Surprised") == 0 and class_id("7") is None


def test_prep_cli_refuses_a_bad_compound_list(ce_release, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "list.txt").write_text("image,class\nnope.jpg,Sadly_Angry\n")
    res = runner.invoke(app, ["prep", "--release", str(ce_release), "--compound", str(bad), "-w", str(tmp_path / "w")])
    assert res.exit_code == 2 and "list.txt:2 [image]" in res.output and "Traceback" not in res.output


def test_mix_from_a_classic_workspace(prep_workspace, tmp_path):
    from abawkit.data.tables import load_prep

    out = tmp_path / "mixed"
    res = runner.invoke(app, ["mix", str(out), "--from", str(prep_workspace), "--per-class", "3", "--mode", "both"])
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(out / "compound_list.txt")
    assert rows.columns.tolist() == ["image", "class", "split"] and len(rows) > 0
    assert all((out / p).is_file() for p in rows["image"])
    record = json.loads((out / "mix.json").read_text())["summary"]
    made = {c for c in CE_NAMES if c not in record["skipped"]["train"]}
    assert set(rows.loc[rows["split"] == "train", "class"]) == made
    frames = load_prep(prep_workspace).frames
    have = set(frames.loc[(frames["split_expr"] == "train") & frames["crop"].notna(), "EXPR"])
    from abawkit.compound import PAIRS

    assert made == {c for c, (a, b) in PAIRS.items() if {EXPR_NAMES.index(a), EXPR_NAMES.index(b)} <= have}
    again = tmp_path / "again"
    assert runner.invoke(app, ["mix", str(again), "--from", str(prep_workspace), "--per-class", "3", "--mode", "both"]).exit_code == 0
    assert all((out / p).read_bytes() == (again / p).read_bytes() for p in rows["image"])  # deterministic per seed
    got = read_compound(out, "cmp1")  # what prep --compound reads
    assert len(got.names) == len(rows) and set(got.roles) <= {"train", "val"}


def test_mix_cli_bad_input(prep_workspace, tmp_path):
    assert runner.invoke(app, ["mix", "--help"]).exit_code == 0
    res = runner.invoke(app, ["mix", str(tmp_path / "m"), "--from", str(prep_workspace), "--mode", "blend"])
    assert res.exit_code == 2 and "mode" in res.output and not (tmp_path / "m").exists()
    res = runner.invoke(app, ["mix", str(tmp_path / "m"), "--from", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_synth_ce_cli_refuses_bad_sizes(tmp_path):
    res = runner.invoke(app, ["synth", str(tmp_path / "r"), "--track", "ce", "--frames", "10"])
    assert res.exit_code == 2 and "--frames" in res.output and not (tmp_path / "r").exists()


def test_list_in_a_release_alone_is_enough_for_discovery(ce_release, tmp_path):
    from abawkit.release.discover import discover

    lay = discover(ce_release)
    assert lay.challenges == {} and lay.templates["ce"].name == synth_ce.LIST_NAME
    bare = tmp_path / "bare"
    shutil.copytree(ce_release / "videos", bare / "videos")
    with pytest.raises(AbawError, match="no challenge folders"):
        discover(bare)  # neither labels nor a CE list: still an error
