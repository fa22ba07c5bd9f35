"""Submission writer/validator per edition: round trips, and every corruption caught at its line."""

import numpy as np
import pandas as pd
import pytest

from abawkit import submission as sub
from abawkit.errors import AbawError
from abawkit.labels import AU_NAMES, task
from abawkit.metrics import score

EXPECTED = {"vidA": np.arange(1, 6), "vidB": np.arange(1, 4)}  # 8 frames


def _rows(expected=EXPECTED):
    return pd.DataFrame([(v, f) for v, fs in expected.items() for f in fs], columns=["video", "frame"])


def _outputs(track, n, seed=0):
    rng = np.random.default_rng(seed)
    if track == "au":
        return rng.integers(0, 2, (n, 12))
    if track == "expr":
        return rng.integers(0, 8, (n, 1))
    return rng.uniform(-1, 1, (n, 2))


def _write(tmp_path, track, edition="abaw5"):
    rows = _rows()
    return sub.write_submission(tmp_path / "out", task(track), rows, _outputs(track, len(rows)), edition)


@pytest.mark.parametrize("track", ["au", "expr", "va"])
@pytest.mark.parametrize("edition", ["abaw5", "abaw3"])
def test_written_submission_validates(tmp_path, track, edition):
    path = _write(tmp_path, track, edition)
    assert sub.validate(path, task(track), EXPECTED, edition) == []


def test_abaw5_layout(tmp_path):
    lines = _write(tmp_path, "au").read_text().split("\n")
    assert lines[0] == "image_location," + ",".join(AU_NAMES)
    assert lines[1].startswith("vidA/00001.jpg,") and len(lines[1].split(",")) == 13
    assert lines[6].startswith("vidB/00001.jpg,")
    expr = _write(tmp_path, "expr").read_text().split("\n")
    assert len(expr[1].split(",")) == 2


def _corrupt(path, fn):
    lines = path.read_text().split("\n")[:-1]
    path.write_text("\n".join(fn(lines)) + "\n")


CORRUPTIONS = {  # name -> (track, edit of the list of lines, expected line, words in the message)
    "header": ("au", lambda ls: ["image_location,AU1"] + ls[1:], 1, "wrong header"),
    "no header": ("va", lambda ls: ls[1:], 1, "missing header"),
    "missing video": ("au", lambda ls: ls[:6], 7, "missing video vidB"),
    "extra video": ("expr", lambda ls: ls + ["vidZ/00001.jpg,3"], 10, "extra video"),
    "missing frame": ("expr", lambda ls: ls[:3] + ls[4:], 4, "missing frame(s) 3"),
    "missing last frames": ("expr", lambda ls: ls[:4] + ls[6:], 5, "missing frame(s) 4..5"),
    "duplicate": ("va", lambda ls: ls[:3] + [ls[2]] + ls[3:], 4, "duplicate frame 2"),
    "out of order": ("va", lambda ls: ls[:2] + [ls[3], ls[2]] + ls[4:], 4, "out of order"),
    "beyond video": ("expr", lambda ls: ls[:6] + ["vidA/00009.jpg,1"] + ls[6:], 7, "not one of its 5 frames"),
    "columns": ("au", lambda ls: ls[:2] + [ls[2] + ",1,0"] + ls[3:], 3, "expected 13 columns"),
    "non-numeric": ("va", lambda ls: ls[:5] + ["vidA/00005.jpg,abc,0.1"] + ls[6:], 6, "non-numeric"),
    "nan": ("va", lambda ls: ls[:2] + ["vidA/00002.jpg,nan,0.1"] + ls[3:], 3, "not a finite"),
    "inf": ("au", lambda ls: ls[:2] + ["vidA/00002.jpg,inf" + ",0" * 11] + ls[3:], 3, "not a finite"),
    "au not binary": ("au", lambda ls: ls[:8] + ["vidB/00003.jpg,2" + ",0" * 11], 9, "AU must be 0 or 1"),
    "expr range": ("expr", lambda ls: ls[:3] + ["vidA/00003.jpg,8"] + ls[4:], 4, "integer 0..7"),
    "expr float": ("expr", lambda ls: ls[:3] + ["vidA/00003.jpg,2.5"] + ls[4:], 4, "integer 0..7"),
    "va range": ("va", lambda ls: ls[:7] + ["vidB/00002.jpg,0.5,-1.2"] + ls[8:], 8, "[-1, 1]"),
    "bad location": ("va", lambda ls: ls[:7] + ["vidB-2.png,0.5,0.2"] + ls[8:], 8, "not video/00001.jpg"),
    "regrouped": ("expr", lambda ls: ls[:1] + ls[6:8] + ls[1:6] + ls[8:], 9, "appears again"),
    "empty line": ("expr", lambda ls: ls[:3] + [""] + ls[3:], 4, "empty line"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_is_caught_at_its_line(tmp_path, name):
    track, edit, line, words = CORRUPTIONS[name]
    path = _write(tmp_path, track)
    _corrupt(path, edit)
    problems = sub.validate(path, task(track), EXPECTED)
    assert any(p.startswith(f"{path}:{line}: ") and words in p for p in problems), problems


def test_byte_level_problems(tmp_path):
    path = _write(tmp_path, "va")
    text = path.read_text()
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    problems = sub.validate(path, task("va"), EXPECTED)
    assert any(f"{path}:1: " in p and "BOM" in p for p in problems)
    assert any(f"{path}:1: " in p and "CRLF" in p for p in problems)
    assert len(problems) == 2  # nothing else is wrong
    path.write_text("")
    assert sub.validate(path, task("va"), EXPECTED) == [f"{path}:1: empty file"]


def test_trailing_comma_rows_are_accepted(tmp_path):
    path = _write(tmp_path, "expr")
    _corrupt(path, lambda ls: [ls[0]] + [line + "," for line in ls[1:]])
    assert sub.validate(path, task("expr"), EXPECTED) == []


def test_abaw3_problems(tmp_path):
    folder = _write(tmp_path, "va", "abaw3")
    (folder / "vidB.txt").unlink()
    a = folder / "vidA.txt"
    a.write_text("\n".join(a.read_text().split("\n")[:4]) + "\n")  # header + 3 of 5 frames
    (folder / "vidQ.txt").write_text("valence,arousal\n0,0\n")
    problems = sub.validate(folder, task("va"), EXPECTED, "abaw3")
    assert any(p.startswith(f"{a}:5: missing frames 4..5") for p in problems), problems
    assert any("missing video vidB" in p for p in problems)
    assert any("extra video 'vidQ'" in p for p in problems)


def test_template_with_trailing_commas(tmp_path):
    t = tmp_path / "CVPR_5th_ABAW_AU_test_set_example.txt"
    t.write_text("image_location,AU1,\nv1/00001.jpg,\nv1/00002.jpg,\nv2/00001.jpg,\n")
    got = sub.read_template(t)
    assert list(got) == ["v1", "v2"] and got["v1"].tolist() == [1, 2]
    t.write_text("image_location\nv1/1.png\n")
    with pytest.raises(AbawError, match=":2"):
        sub.read_template(t)


def test_unknown_edition():
    with pytest.raises(AbawError, match="unknown edition"):
        sub.edition("abaw9")


@pytest.mark.parametrize("track", ["au", "expr", "va"])
def test_score_submission_against_annotation_files(tmp_path, track):
    spec = task(track)
    rows = _rows()
    outputs = _outputs(track, len(rows), seed=4)
    path = sub.write_submission(tmp_path, spec, rows, outputs)
    truth = tmp_path / "truth"
    truth.mkdir()
    for video, idx in rows.groupby("video").indices.items():
        body = np.round(outputs[idx], 6) if track == "va" else outputs[idx]
        if track == "expr":  # the annotation file has the 8 names as header and one class per line
            lines = [",".join(spec.names)] + [str(int(v)) for v in body[:, 0]]
        else:
            lines = [",".join(spec.names)] + [",".join(map(str, r)) for r in body]
        (truth / f"{video}.txt").write_text("\n".join(lines) + "\n")
    result = sub.score_submission(path, truth, track)
    assert result["frames"] == len(rows)
    labels = outputs[:, 0] if track == "expr" else outputs
    assert result["score"] == pytest.approx(score(track, labels, labels)["score"], abs=1e-6)
