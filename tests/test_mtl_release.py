"""s-Aff-Wild2 (MTL track) files: the annotation reader's dense arrays and every bad-input line, the test list."""

from __future__ import annotations

import numpy as np
import pytest

from abawkit.errors import AbawError
from abawkit.release import mtl as rel
from abawkit.release.discover import mtl_role

HEAD = "image,valence,arousal,expression,aus\n"
GOOD = ("v1/00001.jpg,0.1,0.2,3,0,1,0,0,0,0,0,0,0,0,1,-1\n"
        "v1/00008.jpg,-5,-5,-1,0,1,0,0,0,0,0,0,0,0,1,1\n"
        "v2/00003.jpg,0.5,-1,7,1,1,1,1,1,1,1,1,1,1,1,1\n")


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_dense_arrays_per_head_invalid_values(tmp_path):
    train = _write(tmp_path, "training_set_annotations.txt", HEAD + GOOD)
    val = _write(tmp_path, "validation_set_annotations.txt", HEAD + "v3/00002.jpg,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n")
    ann, listed = rel.read_annotations({"train": train, "val": val})
    assert ann.names == ["v1", "v2", "v3"] and ann.roles == ["train", "train", "val"]
    assert ann.lengths.tolist() == [8, 3, 2] and ann.values.shape == (13, 15)
    assert {v: f.tolist() for v, f in listed.items()} == {"v1": [1, 8], "v2": [3], "v3": [2]}
    v1 = ann.values[:8]
    np.testing.assert_allclose(v1[0], [0.1, 0.2, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, -1], atol=1e-6)
    np.testing.assert_array_equal(v1[7], [-5, -5, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])  # frame 8 = line 8
    unlisted = np.r_[v1[1:7], ann.values[8:10], ann.values[11:12]]  # frames 2-7 of v1, 1-2 of v2, 1 of v3
    assert (unlisted[:, :2] == -5).all() and (unlisted[:, 2:] == -1).all()
    np.testing.assert_allclose(ann.values[10], [0.5, -1, 7] + [1] * 12)
    assert ann.files == [train, train, val]


BAD = [
    ("header", "image,valence,arousal,expr,aus\n" + GOOD, ":1 [header]: expected 'image,valence,arousal,expression,aus'"),
    ("columns", HEAD + "v1/00001.jpg,0.1,0.2,3,0,1\n", ":2: wrong column count: expected 16, got 6"),
    ("non-numeric", HEAD + GOOD + "v4/00001.jpg,0.1,abc,3,0,1,0,0,0,0,0,0,0,0,1,-1\n", ":5 [arousal]: non-numeric value 'abc'"),
    ("va range", HEAD + "v1/00001.jpg,1.5,0.2,3,0,1,0,0,0,0,0,0,0,0,1,-1\n", ":2 [valence]: label 1.5 out of range"),
    ("expr range", HEAD + GOOD + "v4/00002.jpg,0.1,0.2,8,0,1,0,0,0,0,0,0,0,0,1,-1\n", ":5 [expression]: label 8 out of range"),
    ("au value", HEAD + "v1/00001.jpg,0.1,0.2,3,0,1,0,0,0,0,0,0,0,2,1,-1\n", ":2 [AU24]: label 2 out of range"),
    ("image name", HEAD + GOOD + "v4/1.png,0.1,0.2,3,0,1,0,0,0,0,0,0,0,0,1,-1\n", ":5 [image]: expected video/00001.jpg"),
    ("frame zero", HEAD + "v4/00000.jpg,0.1,0.2,3,0,1,0,0,0,0,0,0,0,0,1,-1\n", ":2 [image]: expected video/00001.jpg"),
    ("repeated", HEAD + GOOD + GOOD.splitlines(True)[0], ":5 [image]: v1/00001.jpg is listed twice (first at line 2)"),
    ("empty line", HEAD + GOOD.replace("\nv2", "\n\nv2"), ":4: empty line"),
]


@pytest.mark.parametrize("text,expect", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_annotation_file_names_file_line_field(tmp_path, text, expect):
    p = _write(tmp_path, "training_set_annotations.txt", text)
    with pytest.raises(AbawError) as e:
        rel.read_annotations({"train": p})
    assert str(e.value).startswith(str(p)) and expect in str(e.value) and "\n" not in str(e.value)


def test_a_video_in_both_splits_is_refused(tmp_path):
    train = _write(tmp_path, "training_set_annotations.txt", HEAD + GOOD)
    val = _write(tmp_path, "validation_set_annotations.txt", HEAD + GOOD.splitlines(True)[2])
    with pytest.raises(AbawError, match=r"video v2 is also in .*training_set_annotations.txt"):
        rel.read_annotations({"train": train, "val": val})


def test_test_list_order_header_and_errors(tmp_path):
    p = _write(tmp_path, "MTL.txt", "image\nb/00003.jpg\nb/00001.jpg\na/00002.jpg,\n\n")
    got = rel.read_test_list(p)
    assert list(got) == ["b", "a"] and got["b"].tolist() == [3, 1] and got["a"].tolist() == [2]  # the list's order
    assert {v: f.tolist() for v, f in rel.read_test_list(_write(tmp_path, "x.txt", "b/00003.jpg\n")).items()} == {"b": [3]}
    for text, expect in (("image\nb/00001.jpg\na/00001.jpg\nb/00002.jpg\n", ":4 [image]: video b appears again"),
                         ("image\nb/00001.jpg\nb/00001.jpg\n", ":3 [image]: b/00001.jpg is listed twice"),
                         ("image\nb/frame1.jpg\n", ":2 [image]: expected video/00001.jpg"),
                         ("image\n", "names no image")):
        with pytest.raises(AbawError) as e:
            rel.read_test_list(_write(tmp_path, "MTL.txt", text))
        assert expect in str(e.value)


def test_file_names_of_each_edition():
    assert mtl_role("training_set_annotations.txt") == "train" and mtl_role("training_set_annotations_22.txt") == "train"
    assert mtl_role("validation_set_annotations.txt") == "val"
    assert {mtl_role(n) for n in ("MTL.txt", "MTL_Challenge_test_set_release.txt",
                                  "Multi_Task_Learning_Challenge_test_set_release.txt")} == {"test"}
    assert mtl_role("Action_Unit_Detection_Challenge_test_set_release.txt") is None and mtl_role("train.txt") is None


def test_missing_crops_counts_and_names_the_first():
    crops = {"v1": ("d", np.array([1, 8]), ["00001.jpg", "00008.jpg"])}
    assert rel.missing_crops({"v1": np.array([1, 8])}, crops) == (0, "")
    assert rel.missing_crops({"v1": np.array([1, 5, 8]), "v2": np.array([2, 3])}, crops) == (3, "v1/00005.jpg")
