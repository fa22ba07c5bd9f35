"""The A/H (trial, frame-level) and EMI submission formats: write -> validate round trips, and each
mutation of a correct file refused with a ``file:line`` problem (the mutation tables of issue 27)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abawkit.formats import ah, ah_frames, emi
from abawkit.labels import TASKS

AH, EMI = TASKS["ah"], TASKS["emi"]
VIDEOS = ["82964_Question_1_2025-04-12_15-24-21_Video", "82964_Question_2_2025-04-12 15-31-38_Video",
          "83195_Question_5_2025-07-31_19-17-00_Video"]
IDS = ["00007", "00003", "00012"]


def _rows(videos):
    return pd.DataFrame({"video": videos, "frame": 0})


def _ah_file(tmp_path, probs=True):
    out = np.array([[0.3, 0.7, 1], [0.5, 0.5, 0], [0.9, 0.1, 0]]) if probs else np.array([[1], [0], [0]])
    return ah.write(tmp_path, AH, _rows(VIDEOS), out)


def test_ah_write_matches_the_organisers_shape(tmp_path):
    lines = _ah_file(tmp_path).read_text().splitlines()
    assert lines[0] == "Videos/82964/Visite_1/82964_Question_1_2025-04-12_15-24-21_Video.mp4,0.3000,0.7000,1"
    assert lines[1].endswith(",0.5000,0.5000,0")  # as the organisers' example: a tie is class 0
    assert _ah_file(tmp_path, probs=False).read_text().splitlines()[2].endswith("_Video.mp4,0")
    two = ah.write(tmp_path, AH, _rows(VIDEOS), np.array([[0.3, 0.7], [0.5, 0.5], [0.9, 0.1]])).read_text()
    assert two.splitlines()[0].endswith(",0.3000,0.7000,1") and two.splitlines()[1].endswith(",0.5000,0.5000,0")


def test_ah_probabilities_sum_to_exactly_one_and_pred_is_their_argmax(tmp_path):
    rng = np.random.default_rng(0)
    p1 = np.concatenate([rng.random(500), [0.50004, 0.49996, 0.5]])
    pred = np.concatenate([(rng.random(500) > 0.5), [1, 0, 1]]).astype(int)  # some disagree: nudged to agree
    videos = [f"{i}_Question_1_Video" for i in range(len(p1))]
    path = ah.write(tmp_path, AH, _rows(videos), np.c_[1 - p1, p1, pred])
    expected = {v: np.array([0]) for v in videos}
    assert ah.validate(path, AH, expected) == []
    got = ah.read(path, AH)
    assert ((got["p0"] + got["p1"]) == 1.0).all() and (got["pred"].to_numpy() == pred).all()


def test_ah_read_list_reads_trial_0_and_split_files(tmp_path):
    trial = tmp_path / "trial-0.txt"
    trial.write_text("".join(f"{ah.location(v)},0.5000,0.5000,0\n" for v in VIDEOS))
    split = tmp_path / "test.txt"
    split.write_text("".join(f"{ah.location(v)},1,Well, I think, maybe.\n" for v in VIDEOS))
    assert list(ah.read_list(trial)) == VIDEOS == list(ah.read_list(split))
    assert ah.read_truth(split, AH)["AH"].tolist() == [1, 1, 1]


# ----------------------------------------------------------------------------- mutations
def _mutate(lines: list[str], how: str) -> str:
    """A correct file's lines -> the text of one mutation."""
    L = list(lines)
    if how == "bom":
        return "\ufeff" + "\n".join(L) + "\n"
    if how == "crlf":
        return "\r\n".join(L) + "\r\n"
    if how == "empty":
        return ""
    if how == "missing row":
        del L[-2]
    elif how == "repeated row":
        L.insert(2, L[1])
    elif how == "extra row":
        L.append(L[-1].replace("Question_5", "Question_6").replace("00012", "00099"))
    elif how == "reordered rows":
        L[-1], L[-2] = L[-2], L[-1]
    elif how == "truncated file":
        L = L[:-1]
    elif how == "blank line":
        L.insert(len(L) - 1, "")
    else:
        L[-1] = how(L[-1])
    return "\n".join(L) + "\n"


COMMON = ["bom", "crlf", "empty", "missing row", "repeated row", "extra row", "reordered rows", "truncated file",
          "blank line"]
AH_EDITS = {
    "header added": lambda s: s,  # handled below
    "p0+p1 != 1": lambda s: s.replace("0.9000,0.1000", "0.9000,0.1001"),
    "p out of [0,1]": lambda s: s.replace("0.9000,0.1000", "1.1000,-0.1000"),
    "pred not argmax": lambda s: s.rsplit(",", 1)[0] + ",1",
    "pred not 0/1": lambda s: s.rsplit(",", 1)[0] + ",2",
    "pred 1.0": lambda s: s.rsplit(",", 1)[0] + ",0.0",
    "non-numeric p": lambda s: s.replace("0.9000", "abc"),
    "nan p": lambda s: s.replace("0.9000,0.1000", "nan,nan"),
    "column dropped": lambda s: s.rsplit(",", 1)[0],
    "column added": lambda s: s + ",0",
    "variant mixed": lambda s: s.split(",")[0] + ",0",
    "wrong visit folder": lambda s: s.replace("Visite_1", "Visite_2"),
    "wrong pid folder": lambda s: s.replace("Videos/83195/", "Videos/83196/"),
    "no Videos/ prefix": lambda s: s.replace("Videos/", ""),
    "space after comma": lambda s: s.replace(",0.9000", ", 0.9000"),
}


@pytest.mark.parametrize("how", COMMON + list(AH_EDITS))
def test_ah_validator_refuses_each_mutation(tmp_path, how):
    good = _ah_file(tmp_path / "good")
    expected = {v: np.array([0]) for v in VIDEOS}
    assert ah.validate(good, AH, expected) == []
    lines = good.read_text().splitlines()
    bad = tmp_path / "trial-2.txt"
    if how == "header added":
        bad.write_text("video,p0,p1,pred\n" + "\n".join(lines) + "\n")
    else:
        bad.write_text(_mutate(lines, AH_EDITS.get(how, how)))
    problems = ah.validate(bad, AH, expected)
    assert problems, how
    assert all(p.startswith(f"{bad}:") for p in problems)


EMI_EDITS = {
    "header missing": None, "header renamed": None, "header reordered": None,
    "value > 1": lambda s: s.replace("0.250000", "1.250000", 1),
    "value < 0": lambda s: s.replace("0.250000", "-0.250000", 1),
    "nan": lambda s: s.replace("0.250000", "nan", 1),
    "inf": lambda s: s.replace("0.250000", "inf", 1),
    "non-numeric": lambda s: s.replace("0.250000", "high", 1),
    "column dropped": lambda s: s.rsplit(",", 1)[0],
    "column added": lambda s: s + ",0.1",
    "id without zeros": lambda s: s.replace("00012", "12"),
    "empty id": lambda s: "," + s.split(",", 1)[1],
}


def _emi_file(tmp_path):
    out = np.array([[0.25, 0, 1, 0.5, 0.125, 0.75], [0.1] * 6, [0.25] * 6])
    return emi.write(tmp_path, EMI, _rows(IDS), out)


@pytest.mark.parametrize("how", COMMON + list(EMI_EDITS))
def test_emi_validator_refuses_each_mutation(tmp_path, how):
    good = _emi_file(tmp_path / "good")
    expected = {v: np.array([0]) for v in IDS}
    assert emi.validate(good, EMI, expected) == []
    header, *rows = good.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    if how == "header missing":
        bad.write_text("\n".join(rows) + "\n")
    elif how == "header renamed":
        bad.write_text(header.replace("Empathic Pain", "Empathic_Pain") + "\n" + "\n".join(rows) + "\n")
    elif how == "header reordered":
        bad.write_text(header.replace("Joy", "X").replace("Admiration", "Joy").replace("X", "Admiration") + "\n"
                       + "\n".join(rows) + "\n")
    else:
        text = _mutate(rows, EMI_EDITS.get(how, how))
        bad.write_text(text if how in ("empty",) else (("\ufeff" if how == "bom" else "") + header
                                                       + ("\r\n" if how == "crlf" else "\n") + text.lstrip("\ufeff")))
    problems = emi.validate(bad, EMI, expected)
    assert problems, how
    assert all(p.startswith(f"{bad}:") for p in problems)


def test_emi_round_trip_scores_columns(tmp_path):
    path = _emi_file(tmp_path)
    got = emi.read(path, EMI)
    assert got["video"].tolist() == IDS and got[emi.value_columns(EMI)].shape == (3, 6)
    assert got.loc[0, "Joy"] == 0.75
    truth = tmp_path / "truth.csv"
    truth.write_text(path.read_text())
    assert list(emi.read_truth(truth, EMI).columns[2:]) == list(EMI.label_columns)


AHF_EDITS = {
    "1-based frame name": lambda s: s.replace("frame-1.jpg", "frame-2.jpg"),
    "value 2": lambda s: s[:-1] + "2",
    "value missing": lambda s: s.rsplit(",", 1)[0],
    "no .mp4 folder": lambda s: s.replace(".mp4/", "/"),
}


@pytest.mark.parametrize("how", COMMON + list(AHF_EDITS))
def test_ah_frame_validator_refuses_each_mutation(tmp_path, how):
    rows = pd.DataFrame({"video": [VIDEOS[0]] * 2 + [VIDEOS[2]] * 2, "frame": [1, 2, 1, 2]})
    good = ah_frames.write(tmp_path / "good", AH, rows, np.array([0, 1, 1, 0]))
    assert good.read_text().splitlines()[0].endswith("_Video.mp4/frame-0.jpg,0")
    expected = {VIDEOS[0]: np.array([1, 2]), VIDEOS[2]: np.array([1, 2])}
    assert ah_frames.validate(good, AH, expected) == []
    listed = tmp_path / "list.txt"
    listed.write_text(good.read_text())
    assert {v: f.tolist() for v, f in ah_frames.read_list(listed).items()} == {v: f.tolist() for v, f in expected.items()}
    bad = tmp_path / "bad.txt"
    lines = good.read_text().splitlines()
    if how == "extra row":
        bad.write_text("\n".join(lines + [lines[-1].replace("frame-1", "frame-2")]) + "\n")
    else:
        bad.write_text(_mutate(lines, AHF_EDITS.get(how, how)))
    problems = ah_frames.validate(bad, AH, expected)
    assert problems, how
