"""Releases and face folders as real disks hold them: symlinked folders (shared GPU servers) and the
hidden files a Mac leaves beside every file (``._*`` AppleDouble, ``.DS_Store``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import TINY
from PIL import Image
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.data.faces import image_folder
from abawkit.labels import task
from abawkit.release.discover import annotation_items, discover
from abawkit.submission import read_truth

runner = CliRunner()
APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02\x00\x00\x00\t\x00\x00\x002"


def _touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _tiny_release(r: Path) -> None:
    """Annotations, one crop root, raw videos, a template: just enough for discovery."""
    _touch(r / "EXPR_Recognition_Challenge" / "Train_Set" / "v1.txt", b"Neutral,Anger\n0\n")
    for k in (1, 2):
        _touch(r / "cropped_aligned" / "v1" / f"{k:05d}.jpg")
    _touch(r / "batch1" / "v9.mp4")
    _touch(r / "CVPR_6th_ABAW_Expr_test_set_sample.txt", b"image_location,Neutral\n")


def test_discovery_follows_symlinked_folders_and_stops_at_cycles(tmp_path):
    r, disk2 = tmp_path / "release", tmp_path / "disk2"
    _tiny_release(r)
    shutil.move(str(r / "cropped_aligned"), str(disk2 / "faces"))  # on another disk, linked back
    shutil.move(str(r / "batch1"), str(disk2 / "videos"))
    (r / "cropped_aligned").symlink_to(disk2 / "faces", target_is_directory=True)
    (r / "batch1").symlink_to(disk2 / "videos", target_is_directory=True)
    (r / "batch1" / "again").symlink_to(r, target_is_directory=True)  # a cycle: disk2/videos/again -> release
    (r / "mirror").symlink_to(disk2 / "videos", target_is_directory=True)  # the same folder twice
    lay = discover(r)
    assert lay.crops == {"v1": r / "cropped_aligned" / "v1"}
    assert lay.videos == {"v9": r / "batch1" / "v9.mp4"} and not lay.duplicates  # entered once
    assert set(lay.challenges) == {"expr"} and set(lay.templates) == {"expr"}


def test_hidden_files_are_not_release_parts(tmp_path):
    r = tmp_path / "release"
    _tiny_release(r)
    _touch(r / "._CVPR_6th_ABAW_Expr_test_set_sample.txt", APPLEDOUBLE)  # sorts first
    _touch(r / "EXPR_Recognition_Challenge" / "Train_Set" / "._v1.txt", APPLEDOUBLE)
    _touch(r / "EXPR_Recognition_Challenge" / "Train_Set" / ".DS_Store", APPLEDOUBLE)
    _touch(r / "batch1" / "._v9.mp4", APPLEDOUBLE)
    _touch(r / "cropped_aligned" / "v1" / "._00001.jpg", APPLEDOUBLE)
    _touch(r / "cropped_aligned" / "._v2" / "00001.jpg")
    _touch(r / "._Expression_Recognition_Challenge_test_set_release.txt", APPLEDOUBLE)
    lay = discover(r)
    assert lay.templates == {"expr": r / "CVPR_6th_ABAW_Expr_test_set_sample.txt"}
    assert lay.videos == {"v9": r / "batch1" / "v9.mp4"}
    assert set(lay.crops) == {"v1"} and not lay.test_lists
    assert [name for name, _, _ in annotation_items(lay)["expr"]] == ["v1"]
    assert next(row for row in lay.roots() if row["kind"] == "annotations expr")["count"] == 1


def test_face_folder_follows_links_and_skips_hidden_images(tmp_path):
    faces, other = tmp_path / "faces", tmp_path / "other"
    for folder, name in ((faces / "a", "1.jpg"), (other, "2.png")):
        folder.mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / name)
    _touch(faces / "a" / "._1.jpg", APPLEDOUBLE)
    _touch(faces / ".thumbnails" / "3.jpg", APPLEDOUBLE)
    (faces / "b").symlink_to(other, target_is_directory=True)
    (faces / "b" / "up").symlink_to(faces, target_is_directory=True)  # cycle
    assert image_folder(faces) == [faces / "a" / "1.jpg", faces / "b" / "2.png"]


def test_ground_truth_folder_skips_appledouble(tmp_path):
    _touch(tmp_path / "v1.txt", b"valence,arousal\n0.5,0.25\n")
    _touch(tmp_path / "._v1.txt", APPLEDOUBLE)
    truth = read_truth(tmp_path, task("va"))
    assert truth["video"].tolist() == ["v1"] and truth["valence"].tolist() == [0.5]


def test_prep_reads_a_linked_release_with_mac_files_like_the_plain_one(synth_release, prep_workspace, tmp_path):
    root, disk2 = tmp_path / "release", tmp_path / "disk2"
    shutil.copytree(synth_release, root)
    for name in ("cropped_aligned", "videos"):
        shutil.move(str(root / name), str(disk2 / name))
        (root / name).symlink_to(disk2 / name, target_is_directory=True)
    for p in [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()][:: 7]:
        _touch(p.with_name("._" + p.name), APPLEDOUBLE)
    for d in (disk2 / "videos", next((disk2 / "cropped_aligned").iterdir())):
        for p in list(d.iterdir())[:3]:
            _touch(p.with_name("._" + p.name), APPLEDOUBLE)
    res = runner.invoke(app, ["prep", "--release", str(root), "-w", str(tmp_path / "w"), "--size", str(TINY["size"])])
    assert res.exit_code == 0, res.output
    from abawkit.data.tables import load_prep

    a, b = load_prep(prep_workspace), load_prep(tmp_path / "w")
    pd.testing.assert_frame_equal(a.frames.drop(columns="crop"), b.frames.drop(columns="crop"))
    assert a.frames.crop.notna().tolist() == b.frames.crop.notna().tolist()
    assert a.videos["video"].tolist() == b.videos["video"].tolist()
    assert os.path.realpath(b.frames.crop.dropna().iloc[0]).startswith(str(disk2))


def test_submission_zip_leaves_mac_files_out(tmp_path):
    import zipfile

    from abawkit.submission import zip_submission

    sub = tmp_path / "sub"
    _touch(sub / "v1.txt", b"valence,arousal\n0.5,0.25\n")
    _touch(sub / "._v1.txt", APPLEDOUBLE)
    _touch(sub / ".DS_Store", APPLEDOUBLE)
    with zipfile.ZipFile(zip_submission(sub, tmp_path / "sub.zip")) as z:
        assert z.namelist() == ["sub/v1.txt"]
