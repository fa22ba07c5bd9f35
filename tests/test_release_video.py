"""BAH and Hume-Vidmimic2 readers: split files -> VideoLabels -> per-frame Annotations -> frame table."""

from __future__ import annotations

import numpy as np
import pytest

from abawkit.errors import AbawError
from abawkit.labels import TASKS
from abawkit.formats.ah import location
from abawkit.release.annotations import Annotations, build_frames
from abawkit.release.bah import read_bah
from abawkit.release.emi import read_emi
from abawkit.release.splits import make_splits
from abawkit.release.videolabels import to_annotations

TASKS_AH = TASKS["ah"]

A = "82579_Question_1_2024-10-02 16-03-28_Video"  # BAH names hold spaces
B = "82595_Question_2_2024-10-30_16-17-48_Video"
C = "82646_Question_3_2024-11-12_18-40-35_Video"
T = "83195_Question_5_2025-07-31_19-17-00_Video"


def _bah(root, trial=True):
    split = root / "dataset-splits" / "video-level" / "BAH_DB" / "split-0"
    split.mkdir(parents=True)
    (split / "train.txt").write_text(f"{location(A)},0,I usually get up, shower, and go.\n{location(B)},1,Maybe, but I'm unsure.\n")
    (split / "test.txt").write_text(f"{location(C)},1,I don't know, but yes.\n")
    if trial:
        (root / "trial-0.txt").write_text(f"{location(T)},0\n")
    for v in (A, B, C, T):
        p = root / location(v)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    (root / "test_ground_truth").mkdir()
    (root / "test_ground_truth" / "train.txt").write_text("not a split file\n")  # never read


def test_read_bah_roles_labels_transcripts_and_test_list(tmp_path):
    _bah(tmp_path)
    got = read_bah(tmp_path)
    assert got.names == [A, B, C] and got.roles == ["train", "train", "val"]
    assert got.values[:, 0].tolist() == [0, 1, 1]
    assert got.transcripts[B] == "Maybe, but I'm unsure."  # commas in the transcript kept
    assert got.tests == [T] and got.template.name == "trial-0.txt"
    assert got.media[A] == (tmp_path / location(A)).resolve()


def test_read_bah_without_trial_uses_test_txt_as_the_list(tmp_path):
    _bah(tmp_path, trial=False)
    got = read_bah(tmp_path)
    assert got.names == [A, B] and got.tests == [C] and got.template.name == "test.txt"


@pytest.mark.parametrize("line,msg", [(f"{location(A)},2,text", "[label]"), ("82579/x.mp4,0,text", ":1: expected Videos/")])
def test_read_bah_names_the_bad_line(tmp_path, line, msg):
    _bah(tmp_path)
    bad = tmp_path / "dataset-splits" / "video-level" / "BAH_DB" / "split-0" / "train.txt"
    bad.write_text(line + "\n")
    with pytest.raises(AbawError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        read_bah(tmp_path)


def test_video_labels_fill_every_frame_of_the_frame_table(tmp_path):
    _bah(tmp_path)
    got = read_bah(tmp_path)
    n = {A: 3, B: 2, C: 4, T: 2}
    ann = to_annotations(got, n)
    assert ann.lengths.tolist() == [3, 2, 4] and ann.values[:, 0].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    frames = build_frames(n, {}, {"ah": ann}, {"ah": got.tests})
    by = frames.groupby("video")
    assert by["AH"].apply(list).to_dict() == {A: [0, 0, 0], B: [1, 1], C: [1, 1, 1, 1], T: [-1, -1]}
    assert by["split_ah"].first().to_dict() == {A: "train", B: "train", C: "val", T: "test"}
    with pytest.raises(AbawError, match="has no frames"):
        to_annotations(got, {A: 3})


HEADER = "Filename,Admiration,Amusement,Determination,Empathic Pain,Excitement,Joy\n"


def _emi(root):
    (root / "raw").mkdir(parents=True)
    (root / "train_split.csv").write_text(HEADER + "00001,0.1,0.2,0.3,0.4,0.5,0.6\n00002,0,0,1,0,0,0.333\n")
    (root / "valid_split.csv").write_text(HEADER + "00003,0.5,0.5,0.5,0.5,0.5,0.5\n")
    (root / "test_split.csv").write_text("Filename\n00009\n00004\n")
    for v in ("00001", "00002", "00003", "00004", "00009"):
        (root / "raw" / f"{v}.mp4").write_bytes(b"")


def test_read_emi(tmp_path):
    _emi(tmp_path)
    got = read_emi(tmp_path)
    assert got.names == ["00001", "00002", "00003"] and got.roles == ["train", "train", "val"]
    assert got.values[1].tolist() == pytest.approx([0, 0, 1, 0, 0, 0.333])
    assert got.tests == ["00009", "00004"] and set(got.media) == {"00001", "00002", "00003", "00004", "00009"}
    frames = build_frames({v: 2 for v in got.media}, {}, {"emi": to_annotations(got, {v: 2 for v in got.media})},
                          {"emi": got.tests})
    row = frames[frames.video == "00002"].iloc[1]
    assert row["emi_Determination"] == 1 and row["split_emi"] == "train"
    assert row["emi_Joy"] == pytest.approx(0.333) and frames["emi_Joy"].dtype == np.float32  # not cut to int8


@pytest.mark.parametrize("body,msg", [("00001,0.1,0.2,0.3,0.4,0.5,1.5\n", r"train_split.csv:2 \[Joy\]"),
                                      ("00001,0.1,0.2,x,0.4,0.5,0.5\n", r"train_split.csv:2 \[Determination\]"),
                                      ("00001,0.1,0.2,0.3,0.4,0.5,0.5\n00001,0,0,0,0,0,0\n", r"train_split.csv:3 \[Filename\]")])
def test_read_emi_names_the_bad_cell(tmp_path, body, msg):
    _emi(tmp_path)
    (tmp_path / "train_split.csv").write_text(HEADER + body)
    with pytest.raises(AbawError, match=msg):
        read_emi(tmp_path)


def test_folds_keep_a_bah_participants_answers_together():
    """Folds by participant: a person's face and voice in train and validation would flatter the score."""
    names = [f"{9000 + p}_Question_{q}_x_Video" for p in range(10) for q in range(1, 4)]
    n = {v: 2 for v in names}
    ann = Annotations(TASKS_AH, [], names, ["train"] * len(names), np.full(len(names), 2),
                      np.tile([[0.0], [1.0]], (len(names), 1)))
    frames = build_frames(n, {}, {"ah": ann}, {})
    s = make_splits(frames, 5, 0)
    s = s[s.task == "ah"].assign(pid=lambda d: d.video.str.split("_").str[0])
    assert (s.groupby("pid")["fold"].nunique() == 1).all() and s["fold"].nunique() == 5
