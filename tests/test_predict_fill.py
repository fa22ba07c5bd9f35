"""`abaw predict`'s table of frames and faces: which rows exist and what fills them (no model runs).

``face_values`` is replaced by a stand-in whose valence is the track's own frame number, so each
filled cell tells which frame (and which face) it was copied from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from abawkit.stages import predict as pr

N = 12  # frames; face 0 is in frames 0-4, face 1 in frames 7-9; frames 5, 6, 10, 11 have no face


def fake_values(models, task_name, clip, face, frames, crops):
    """[n, 2]: valence = the frame of this face nearest to each frame / 100, arousal = face id / 10."""
    src = frames[pr.nearest_index(clip.n_frames, frames)]
    return np.stack([src / 100, np.full(clip.n_frames, face / 10)], axis=1)


def table(tmp_path: Path, faces: str, fill: str, monkeypatch):
    monkeypatch.setattr(pr, "face_values", fake_values)
    frame = np.r_[0:5, 7:10]
    clip = pr.Clip(Path("v.mp4"), np.arange(N) / 10, 10.0, frame, np.r_[[0] * 5, [1] * 3],
                   [f"{k}.jpg" for k in frame], None)
    cfg = pr.PredictConfig(tasks=("va",), faces=faces, fill=fill, smooth=False)
    return pr.predict_table(pr.Models(tmp_path, cfg, None), clip)


def test_all_faces_fill_nearest_fills_each_track(tmp_path, monkeypatch):
    """Every track gets a row in every frame, valued from that same track's nearest frame (main: the
    fill was ignored, 12 rows with 4 empty no-face rows)."""
    df = table(tmp_path, "all", "nearest", monkeypatch)
    assert len(df) == 2 * N and (df.groupby("frame").size() == 2).all()
    assert df["valence"].notna().all() and df["face_id"].notna().all()
    for fid, first, last in ((0, 0, 4), (1, 7, 9)):
        rows = df[df["face_id"] == fid].set_index("frame")
        want = np.clip(np.arange(N), first, last) / 100  # nearest frame of this track (a track is contiguous)
        assert np.allclose(rows["valence"].to_numpy(), want)
        assert (rows["arousal"] == fid / 10).all()  # never another face's values
        assert rows["face"].tolist() == [int(first <= k <= last) for k in range(N)]  # filled rows still say 0


def test_all_faces_without_fill_keeps_one_empty_row_per_faceless_frame(tmp_path, monkeypatch):
    df = table(tmp_path, "all", "none", monkeypatch)
    assert len(df) == N
    empty = df[df["face_id"].isna()]
    assert empty["frame"].tolist() == [6, 7, 11, 12] and empty["valence"].isna().all() and (empty["face"] == 0).all()


@pytest.mark.parametrize("fill", ["none", "nearest"])
def test_largest_fill_is_unchanged(tmp_path, monkeypatch, fill):
    df = table(tmp_path, "largest", fill, monkeypatch)
    assert len(df) == N and df["valence"].notna().sum() == (N if fill == "nearest" else 8)
