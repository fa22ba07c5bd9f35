"""The CE track's files (abawkit/formats/ce.py): list reader, writer, strict validator, reader, truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abawkit.errors import AbawError
from abawkit.formats import ce
from abawkit.labels import CE_NAMES, task

SPEC = task("ce")
HEADER = "image_location," + ",".join(CE_NAMES)


def _list(tmp_path, rows, header=True):
    p = tmp_path / "CE_test_set_example.txt"
    p.write_text((HEADER + "\n" if header else "") + "".join(f"{r}\n" for r in rows))
    return p


def _good(tmp_path):
    """A list of videos 02 (3 frames) then 01 (2 frames): the list's order, not sorted order, rules."""
    rows = ["02/00001.jpg", "02/00002.jpg", "02/00003.jpg", "01/00001.jpg", "01/00002.jpg"]
    expected = ce.read_list(_list(tmp_path, rows))
    frame_rows = pd.DataFrame({"video": ["02", "02", "02", "01", "01"], "frame": [1, 2, 3, 1, 2]})
    path = ce.write(tmp_path, SPEC, frame_rows, np.array([0, 6, 3, 1, 2]))
    return path, expected


def test_read_list_keeps_the_lists_order_with_or_without_header(tmp_path):
    rows = ["02/00001.jpg,", "02/00002.jpg,", "01/00001.jpg,"]
    for header in (True, False):
        got = ce.read_list(_list(tmp_path, rows, header))
        assert list(got) == ["02", "01"]
        assert got["02"].tolist() == [1, 2] and got["01"].tolist() == [1]


@pytest.mark.parametrize("rows, msg", [(["01/00001.jpg", "oops"], ":3: expected a frame"),
                                       (["01/00001.jpg", "01/00001.jpg"], ":3: frame 01/00001.jpg is listed twice"),
                                       ([], "names no frames")])
def test_read_list_names_the_bad_line(tmp_path, rows, msg):
    with pytest.raises(AbawError, match=msg):
        ce.read_list(_list(tmp_path, rows))


def test_write_then_validate_then_read_round_trips(tmp_path):
    path, expected = _good(tmp_path)
    assert path.name == ce.FILE
    text = path.read_text()
    assert text.splitlines()[0] == HEADER
    assert text.splitlines()[1] == "02/00001.jpg,0"
    assert ce.validate(path, SPEC, expected) == []
    back = ce.read(path, SPEC)
    assert back["video"].tolist() == ["02", "02", "02", "01", "01"]
    assert back[ce.value_columns(SPEC)[0]].tolist() == [0, 6, 3, 1, 2]


@pytest.mark.parametrize("bad", [np.array([7]), np.array([-1]), np.array([1.5]), np.array([np.nan])])
def test_writer_refuses_a_class_out_of_range(tmp_path, bad):
    with pytest.raises(AbawError, match="class ids"):
        ce.write(tmp_path, SPEC, pd.DataFrame({"video": ["01"], "frame": [1]}), bad)


def _swap(lines):
    lines[1], lines[2] = lines[2], lines[1]
    return lines


MUTATIONS = {  # name -> (edit of the file's lines, text the problem must contain)
    "wrong header": (lambda ls: ["image_location,Neutral"] + ls[1:], "wrong header"),
    "missing header": (lambda ls: ls[1:], "wrong header"),
    "missing frame": (lambda ls: ls[:3] + ls[4:], "missing 1 row(s) of the list: 02/00003.jpg"),
    "repeated frame": (lambda ls: ls[:3] + [ls[2]] + ls[3:], "repeated row '02/00002.jpg'"),
    "extra frame": (lambda ls: ls + ["01/00003.jpg,0"], "extra row '01/00003.jpg'"),
    "extra video": (lambda ls: ls + ["03/00001.jpg,0"], "extra row '03/00001.jpg'"),
    "swapped rows": (_swap, "row '02/00002.jpg' where the list has '02/00001.jpg'"),
    "videos in sorted order": (lambda ls: ls[:1] + ls[4:] + ls[1:4], "row '01/00001.jpg' where the list has '02/00001.jpg'"),
    "class 7": (lambda ls: ls[:1] + ["02/00001.jpg,7"] + ls[2:], "integer 0..6, got 7"),
    "class -1": (lambda ls: ls[:1] + ["02/00001.jpg,-1"] + ls[2:], "integer 0..6, got -1"),
    "class 1.5": (lambda ls: ls[:1] + ["02/00001.jpg,1.5"] + ls[2:], "integer 0..6, got 1.5"),
    "NaN": (lambda ls: ls[:1] + ["02/00001.jpg,nan"] + ls[2:], "not a finite number"),
    "non-numeric": (lambda ls: ls[:1] + ["02/00001.jpg,happy"] + ls[2:], "non-numeric value 'happy'"),
    "empty class": (lambda ls: ls[:1] + ["02/00001.jpg,"] + ls[2:], "non-numeric value ''"),
    "three columns": (lambda ls: ls[:1] + ["02/00001.jpg,0,1"] + ls[2:], "expected 2 columns"),
    "one-hot row": (lambda ls: ls[:1] + ["02/00001.jpg,1,0,0,0,0,0,0"] + ls[2:], "expected 2 columns"),
}
BYTES = {  # name -> (edit of the file's bytes, text the problem must contain)
    "BOM": (lambda b: b"\xef\xbb\xbf" + b, "BOM"),
    "CRLF": (lambda b: b.replace(b"\n", b"\r\n"), "CRLF"),
    "empty file": (lambda b: b"", "empty file"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_validator_refuses_each_mutation(tmp_path, name):
    path, expected = _good(tmp_path)
    edit, msg = MUTATIONS[name]
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    problems = ce.validate(path, SPEC, expected)
    assert problems, name
    assert any(msg in p for p in problems), problems
    assert all(p.startswith(f"{path}:") for p in problems)


@pytest.mark.parametrize("name", list(BYTES))
def test_validator_refuses_each_byte_mutation(tmp_path, name):
    path, expected = _good(tmp_path)
    edit, msg = BYTES[name]
    path.write_bytes(edit(path.read_bytes()))
    problems = ce.validate(path, SPEC, expected)
    assert any(msg in p for p in problems), problems


def test_the_list_is_the_truth_even_one_frame_past_the_video(tmp_path):
    """A list with one frame more than the video decodes to: the file must hold that row too."""
    expected = ce.read_list(_list(tmp_path, ["01/00001.jpg", "01/00002.jpg", "01/00003.jpg"]))
    rows = pd.DataFrame({"video": ["01", "01"], "frame": [1, 2]})  # what the video decoded to
    path = ce.write(tmp_path, SPEC, rows, np.array([0, 0]))
    assert any("missing 1 row(s) of the list: 01/00003.jpg" in p for p in ce.validate(path, SPEC, expected))


def test_read_truth(tmp_path):
    d = tmp_path / ce.TRUTH_FOLDER
    d.mkdir()
    (d / "01.txt").write_text(",".join(CE_NAMES) + "\n3\n3\n-1\n")
    (d / "02.txt").write_text(",".join(CE_NAMES) + "\n6\n")
    truth = ce.read_truth(tmp_path, SPEC)
    assert truth.columns.tolist() == ["video", "frame", *SPEC.label_columns]
    assert truth.values.tolist() == [["01", 1, 3], ["01", 2, 3], ["01", 3, -1], ["02", 1, 6]]
    (d / "02.txt").write_text("Neutral\n6\n")
    with pytest.raises(AbawError, match="02.txt:1"):
        ce.read_truth(tmp_path, SPEC)


def test_a_file_scores_against_the_truth_as_scikit_learn_does(tmp_path):
    """read + value_columns line up with read_truth's label column: macro F1 over the 7 equals sklearn's."""
    from sklearn.metrics import f1_score

    from abawkit.metrics import expr_scores

    rng = np.random.default_rng(0)
    d = tmp_path / "test_ground_truth" / ce.TRUTH_FOLDER
    d.mkdir(parents=True)
    rows, truth_all = [], []
    for video in ("02", "01"):
        truth = rng.integers(0, 7, 50)
        truth[:3] = -1  # unlabelled frames never count
        (d / f"{video}.txt").write_text(",".join(CE_NAMES) + "\n" + "".join(f"{c}\n" for c in truth))
        rows += [(video, f) for f in range(1, 51)]
        truth_all.append(truth)
    frame_rows = pd.DataFrame(rows, columns=["video", "frame"])
    guess = np.where(rng.random(100) < 0.6, np.concatenate(truth_all).clip(0), rng.integers(0, 7, 100))
    sub = ce.read(ce.write(tmp_path, SPEC, frame_rows, guess), SPEC)
    joined = ce.read_truth(tmp_path, SPEC).merge(sub, on=["video", "frame"], validate="one_to_one")
    labels, preds = joined[list(SPEC.label_columns)].to_numpy()[:, 0], joined[ce.value_columns(SPEC)].to_numpy()[:, 0]
    keep = labels >= 0
    want = f1_score(labels[keep], preds[keep], labels=range(7), average="macro", zero_division=0)
    assert len(joined) == 100 and keep.sum() == 94
    assert expr_scores(labels, preds, len(CE_NAMES)).mean() == pytest.approx(want, abs=1e-12)
