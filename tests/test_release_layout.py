"""The release as teams have it on disk: discovery, the as-shipped synthetic twin, overrides, and the
wrong layouts that must stop prep with one line and exit 2 (never an empty dataset)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.data.tables import load_prep
from abawkit.errors import AbawError
from abawkit.release.discover import discover

runner = CliRunner()


def _prep(root: Path, workdir: Path, *extra: str):
    return runner.invoke(app, ["prep", "--release", str(root), "-w", str(workdir), "--size", str(TINY["size"]), *extra])


def _rel_crop(path):
    """A crop path without the folders above its video folder ("video/00001.jpg")."""
    return None if not isinstance(path, str) else "/".join(Path(path).parts[-2:])


def _same_tables(a: Path, b: Path) -> None:
    """Frame, video and split tables of two prep workspaces agree, paths aside."""
    pa, pb = load_prep(a), load_prep(b)
    pd.testing.assert_frame_equal(pa.frames.drop(columns="crop"), pb.frames.drop(columns="crop"))
    assert pa.frames.crop.map(_rel_crop).tolist() == pb.frames.crop.map(_rel_crop).tolist()
    cols = ["video", "n_frames", "fps"]
    pd.testing.assert_frame_equal(pa.videos[cols], pb.videos[cols])
    for col in ("source", "audio"):
        assert (pa.videos[col].isna() == pb.videos[col].isna()).all()
        assert pa.videos[col].map(lambda p: Path(p).stem if isinstance(p, str) else None).tolist() == pb.videos[col].map(lambda p: Path(p).stem if isinstance(p, str) else None).tolist()
    pd.testing.assert_frame_equal(pa.splits, pb.splits)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The conftest release re-made by ``abaw synth --layout shipped`` and prepared."""
    root = tmp_path_factory.mktemp("shipped") / "release"
    args = ["synth", str(root), "--layout", "shipped", "--faces", "0", "--seed", str(TINY["seed"]),
            *[f"--{k}={TINY[k]}" for k in ("videos", "frames", "size")]]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    work = root.parent / "work"
    res = _prep(root, work)
    assert res.exit_code == 0, res.output
    return root, work, res.output


def test_shipped_layout_has_the_archive_shape(shipped):
    root, _, _ = shipped
    assert (root / "6th ABAW Annotations" / "EXPR_Recognition_Challenge" / "Train_Set").is_dir()
    assert not (root / "AU_Detection_Challenge").exists() and not (root / "videos").exists()
    assert {p.name for p in (root / "cropped_aligned").iterdir()} == {"cropped_aligned", "cropped_aligned_new_50_vids"}
    assert list((root / "new_vids").glob("*.AVI")) and list((root / "batch1").glob("*.mp4"))
    assert (root / "names_of_videos_in_each_test_set" / "Expression_Recognition_Challenge_test_set_release.txt").is_file()
    assert (root / "CVPR_6th_ABAW_Expr_test_set_sample.txt").is_file()


def test_shipped_twin_preps_to_the_same_tables(shipped, prep_workspace):
    _, work, output = shipped
    _same_tables(prep_workspace, work)
    assert "cropped_aligned_new_50_vids" in output and "found in 2 places" in output  # says what it found
    summary = load_prep(work).manifest
    cover = __import__("json").loads((Path(summary["dir"]) / "summary.json").read_text())
    assert {r["kind"] for r in cover["roots"]} >= {"crops", "videos", "annotations expr", "template expr"}
    assert all(r["neither"] == 0 for r in cover["coverage"]) and any(r["raw video only"] for r in cover["coverage"])


def test_submit_and_validate_find_the_release_template(shipped):
    from abawkit.labels import task
    from abawkit.stages.submit import expected_frames, release_template
    from abawkit.submission import read_template

    root, work, _ = shipped
    assert release_template(work, "expr") == root / "CVPR_6th_ABAW_Expr_test_set_sample.txt"
    got = expected_frames(work, task("expr"), None)
    want = read_template(root / "CVPR_6th_ABAW_Expr_test_set_sample.txt")
    assert got.keys() == want.keys() and all((got[v] == want[v]).all() for v in want)
    rows = (root / "CVPR_6th_ABAW_VA_test_set_sample.txt").read_text().splitlines()[1:]
    sub = work / "VA.txt"
    sub.write_text("image_location,valence,arousal\n" + "".join(f"{r.rstrip(',')},0.1,-0.2\n" for r in rows))
    res = runner.invoke(app, ["validate", str(sub), "--track", "va", "-w", str(work)])
    assert "CVPR_6th_ABAW_VA_test_set_sample.txt (found by prep" in res.output and res.exit_code == 0, res.output
    sub.write_text("".join(sub.read_text().splitlines(keepends=True)[:-1]))  # the last frame is missing
    assert runner.invoke(app, ["validate", str(sub), "--track", "va", "-w", str(work)]).exit_code == 1


def test_overrides_reach_what_discovery_cannot(synth_release, prep_workspace, tmp_path):
    deep = tmp_path / "rel" / "a" / "b" / "c" / "d" / "e"
    shutil.copytree(synth_release, deep)
    root = tmp_path / "rel"
    res = _prep(root, tmp_path / "w0")
    assert res.exit_code == 2 and "no challenge folders" in res.output and "--annotations" in res.output
    assert not (tmp_path / "w0" / "prep").exists() and not (tmp_path / "w0" / "prep.partial").exists()
    shutil.move(str(deep / "names_of_videos_in_each_test_set"), str(root))  # test lists: found anywhere shallow
    res = _prep(root, tmp_path / "w", "--annotations", str(deep), "--crops", str(deep / "cropped_aligned"),
                "--videos", str(deep / "videos"))
    assert res.exit_code == 0, res.output
    _same_tables(prep_workspace, tmp_path / "w")
    res = _prep(root, tmp_path / "w2", "--annotations", str(deep), "--crops", str(deep / "videos"))
    assert res.exit_code == 2 and "--crops" in res.output and "no per-video folders" in res.output


def _strip(src: Path, dst: Path, *drop: str) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*drop))
    return dst


def _bad(root: Path, tmp_path: Path, *expect: str) -> None:
    res = _prep(root, tmp_path / "w")
    assert res.exit_code == 2, res.output
    assert all(e in res.output for e in expect), res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output, res.output
    assert not (tmp_path / "w" / "prep").exists() and not (tmp_path / "w" / "prep.partial").exists()


def test_labelled_video_with_neither_crops_nor_video(synth_release, tmp_path):
    root = _strip(synth_release, tmp_path / "rel", "videos")
    _bad(root, tmp_path, "has neither a crop folder nor a raw video", "searched crops under", str(root))


def test_test_video_with_neither(synth_release, tmp_path):
    root = _strip(synth_release, tmp_path / "rel")
    name = (root / "names_of_videos_in_each_test_set" / "Expression_Classification_Challenge_test_set_release.txt").read_text().split()[0]
    shutil.rmtree(root / "cropped_aligned" / name)
    (root / "videos" / f"{name}.mp4").unlink()
    _bad(root, tmp_path, f"test video {name} has neither")


def test_split_without_any_crop(synth_release, tmp_path):
    """Crop folders whose numbers match no frame (e.g. numbered from another offset) are no faces."""
    root = _strip(synth_release, tmp_path / "rel")
    for d in (root / "cropped_aligned").iterdir():
        for img in sorted(d.glob("*.jpg"), reverse=True):
            img.rename(d / f"{int(img.stem) + 90000:05d}.jpg")
    _bad(root, tmp_path, "none of its", "has a face crop")


def test_discovery_rules(tmp_path):
    r = tmp_path / "r"
    (r / "9th ABAW" / "AU_Detection_Challenge" / "Train_Set").mkdir(parents=True)
    for root, n in (("x/cropped_aligned", 3), ("y/cropped_aligned_new_50_vids", 5)):
        (r / root / "vid1").mkdir(parents=True)
        for k in range(1, n + 1):
            (r / root / "vid1" / f"{k:05d}.jpg").write_bytes(b"")
    (r / ".hidden" / "vid9").mkdir(parents=True)
    (r / ".hidden" / "vid9" / "00001.jpg").write_bytes(b"")
    for rel in ("batch1/vid1.avi", "batch2/vid1.mp4", "a/b/c/d/e/vid7.mp4", "new_vids/vid2.MKV"):
        (r / rel).parent.mkdir(parents=True, exist_ok=True)
        (r / rel).write_bytes(b"")
    lay = discover(r)
    assert lay.challenges == {"au": r / "9th ABAW" / "AU_Detection_Challenge"}
    assert lay.crops == {"vid1": r / "y/cropped_aligned_new_50_vids/vid1"}  # the fuller folder wins
    assert lay.duplicates["crops:vid1"] == [str(r / "y/cropped_aligned_new_50_vids/vid1"), str(r / "x/cropped_aligned/vid1")]
    assert lay.videos == {"vid1": r / "batch2/vid1.mp4", "vid2": r / "new_vids/vid2.MKV"}  # mp4 first; 5 levels down: not seen
    (r / "EXPR_Recognition_Challenge" / "Validation_Set").mkdir(parents=True)
    (r / "old" / "EXPR_Set" / "Train_Set").mkdir(parents=True)
    with pytest.raises(AbawError, match="two annotation folders for expr"):
        discover(r)


def test_templates_header_only_and_bad_row(tmp_path):
    from abawkit.release.annotations import template_counts

    empty, good, bad = tmp_path / "e.txt", tmp_path / "g.txt", tmp_path / "b.txt"
    empty.write_text("image_location,valence,arousal\n")
    good.write_text("image_location,AU1\nv1/00001.jpg,\nv1/00002.jpg,\nv2/00001.jpg,\n")
    bad.write_text("image_location,AU1\nv1/00001.jpg,\nv1-00002,\n")
    assert template_counts({"va": empty, "au": good}) == {"v1": 2, "v2": 1}
    with pytest.raises(AbawError, match=r"b\.txt:3: expected video/00001\.jpg, got 'v1-00002'"):
        template_counts({"au": bad})
