"""The MTL submission format (formats/mtl.py): writer -> validator round trip, every mutation refused, readers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abawkit.formats import mtl as fmt
from abawkit.labels import TASKS

SPEC = TASKS["mtl"]
EXPECTED = {"video45_1": np.array([1, 8, 17]), "a-b_left": np.array([2, 3])}  # the test list's order, not sorted


def _rows():
    return pd.DataFrame([(v, f) for v, fr in EXPECTED.items() for f in fr], columns=["video", "frame"])


def _outputs(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-1, 1, (n, 2)), rng.integers(0, 8, n), rng.integers(0, 2, (n, 12))])


@pytest.fixture
def good(tmp_path):
    return fmt.write(tmp_path, SPEC, _rows(), _outputs())


def test_write_validate_read_round_trip(good):
    lines = good.read_text().splitlines()
    assert good.name == fmt.FILE and lines[0] == "image,valence,arousal,expression,aus"
    assert [ln.split(",")[0] for ln in lines[1:]] == ["video45_1/00001.jpg", "video45_1/00008.jpg",
                                                      "video45_1/00017.jpg", "a-b_left/00002.jpg", "a-b_left/00003.jpg"]
    assert all(len(ln.split(",")) == 16 for ln in lines[1:])
    assert fmt.validate(good, SPEC, EXPECTED) == []
    got = fmt.read(good, SPEC)
    assert list(got.columns) == ["video", "frame", *fmt.value_columns(SPEC)] and fmt.n_values(SPEC) == 15
    np.testing.assert_allclose(got[fmt.value_columns(SPEC)].to_numpy(), _outputs(), atol=1e-6)
    assert got["frame"].tolist() == [1, 8, 17, 2, 3]


def _lines(path):
    return path.read_text().splitlines(keepends=True)


def _set_field(k, value):
    def mutate(lines):
        cells = lines[2].rstrip("\n").split(",")
        cells[k] = value
        lines[2] = ",".join(cells) + "\n"
        return lines
    return mutate


MUTATIONS = {  # name -> (mutation of the good file's lines, first problem expected)
    "wrong header": (lambda ls: ["image_location,valence,arousal,expression,aus\n"] + ls[1:], ":1: wrong header"),
    "missing header": (lambda ls: ls[1:], ":1: missing header"),
    "missing frame": (lambda ls: ls[:2] + ls[3:], ":3: missing 1 row(s) of the test list: video45_1/00008.jpg"),
    "repeated frame": (lambda ls: ls[:3] + ls[2:], ":4: repeated row: video45_1/00008.jpg (first at line 3)"),
    "extra frame": (lambda ls: ls + ["video45_1/00099.jpg" + ls[1][ls[1].index(","):]],
                    ":7: extra row: video45_1/00099.jpg is not in the test list"),
    "two rows swapped": (lambda ls: [ls[0], ls[2], ls[1]] + ls[3:],
                         ":3: row out of order: the test list has video45_1/00001.jpg before the row at line 2"),
    "expression out of range": (_set_field(3, "8"), ":3: expression: must be an integer 0..7, got 8"),
    "expression not an integer": (_set_field(3, "2.5"), ":3: expression: must be an integer 0..7, got 2.5"),
    "AU not 0/1": (_set_field(6, "2"), ":3: AU4: AU must be 0 or 1, got 2"),
    "VA outside [-1,1]": (_set_field(1, "1.5"), ":3: valence: must be in [-1, 1], got 1.5"),
    "NaN": (_set_field(2, "nan"), ":3: arousal: nan is not a finite number"),
    "non-numeric": (_set_field(2, "high"), ":3: arousal: non-numeric value 'high'"),
    "column count": (lambda ls: ls[:2] + [ls[2].rstrip("\n").rsplit(",", 1)[0] + "\n"] + ls[3:],
                     ":3: expected 16 columns, got 15"),
    "BOM": (lambda ls: ["\ufeff" + ls[0]] + ls[1:], ":1: file starts with a UTF-8 BOM"),
    "CRLF": (lambda ls: [ln.replace("\n", "\r\n") for ln in ls], ":1: Windows (CRLF) line endings"),
    "empty file": (lambda ls: [], ":1: empty file"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_each_mutation_is_refused_with_file_and_line(good, name):
    mutate, expect = MUTATIONS[name]
    good.write_text("".join(mutate(_lines(good))), newline="")
    problems = fmt.validate(good, SPEC, EXPECTED)
    assert problems, name
    assert problems[0].startswith(str(good)) and problems[0][len(str(good)):].startswith(expect), problems


def test_a_missing_video_is_reported_at_the_end(good):
    good.write_text("".join(_lines(good)[:4]))
    assert fmt.validate(good, SPEC, EXPECTED) == [f"{good}:5: missing 2 row(s) of the test list: a-b_left/00002.jpg .. "
                                                  f"a-b_left/00003.jpg"]


def test_read_truth_file_or_folder_keeps_masked_labels(tmp_path):
    truth = tmp_path / "truth"
    truth.mkdir()
    (truth / "test_set_annotations.txt").write_text(
        "image,valence,arousal,expression,aus\n"
        "a-b_left/00003.jpg,0.5,-5,2," + ",".join(["1"] * 11 + ["-1"]) + "\n"
        "video45_1/00001.jpg,-5,-5,-1," + ",".join(["0"] * 12) + "\n")
    for path in (truth, truth / "test_set_annotations.txt"):
        t = fmt.read_truth(path, SPEC)
        assert list(t.columns) == ["video", "frame", *SPEC.label_columns]
        assert t[["video", "frame"]].values.tolist() == [["a-b_left", 3], ["video45_1", 1]]
        np.testing.assert_allclose(t.iloc[0, 2:].to_numpy(np.float64), [0.5, -5, 2] + [1] * 11 + [-1])
        np.testing.assert_allclose(t.iloc[1, 2:].to_numpy(np.float64), [-5, -5, -1] + [0] * 12)
    assert len(fmt.value_columns(SPEC)) == len(SPEC.label_columns)  # aligned for scoring a file
