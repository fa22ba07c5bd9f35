"""Exact track edges at the sparse cadence: a face that enters or leaves between two looks of the detector
is counted from (to) the frame it is really in, at a detector cost per track edge, with bounded memory.

Clips from tests/videos.py (the astronaut photo, a real face, then sky or a cartoon). Looks at
``every = 5`` fall on frames 0, 5, 10, 15 and the last; the faces enter and leave between them.
"""

from __future__ import annotations

import numpy as np
import pytest
from videos import clip

from abawkit.video.facetrack import TrackSettings, find_faces
from abawkit.video.media import FaceDetector


class Counting:
    """A detector that counts the frames it is shown (the cost of pass 1)."""

    def __init__(self, det: FaceDetector) -> None:
        self.det, self.min_face, self.frames, self.calls = det, det.min_face, 0, 0

    def detect_faces(self, frames, min_face=None):
        self.frames += len(frames)
        self.calls += 1
        return self.det.detect_faces(frames, min_face)


@pytest.fixture(scope="module")
def mtcnn():
    return FaceDetector("mtcnn", device="cpu")


@pytest.mark.parametrize("scenes,first,last", [
    ([("sky", 7), ("face", 13)], 7, 19),  # enters after look 5: main began at look 10
    ([("face", 13), ("sky", 7)], 0, 12),  # leaves before look 15: main ended at look 10
    ([("sky", 3), ("face", 9), ("cartoon", 8)], 3, 11),  # both, between the same looks
])
def test_a_tracks_first_and_last_frames_are_exact(tmp_path, mtcnn, scenes, first, last):
    video = clip(tmp_path / "v.mp4", scenes)
    det = Counting(mtcnn)
    scan, rows = find_faces(video, det, TrackSettings(every=5))
    assert sorted(set(rows.frame.tolist())) == list(range(first, last + 1))
    edges = (first > 0) + (last < scan.n_frames - 1)
    assert det.frames == 5 + edges * 4  # looks at 0, 5, 10, 15, 19; the 4 skipped frames of each edge's window


def test_refinement_costs_nothing_without_edges_and_can_be_turned_off(tmp_path, mtcnn):
    always = clip(tmp_path / "face.mp4", [("face", 40)])
    det = Counting(mtcnn)
    scan, rows = find_faces(always, det, TrackSettings(every=5))
    assert det.frames == 9 and scan.refined == 0 and len(rows) == 40  # looks only: 0, 5, ..., 35 and 39
    enters = clip(tmp_path / "enters.mp4", [("sky", 7), ("face", 13)])
    det = Counting(mtcnn)
    _, rows = find_faces(enters, det, TrackSettings(every=5, exact_edges=False))
    assert det.frames == 5 and rows.frame.min() == 10  # the old cadence-rounded edge


def test_held_frames_are_bounded_not_growing_with_length(tmp_path):
    """Skipped frames are held (decoded, unconverted) only until the looks around them are answered: the
    most held at once is the same for a clip 4x longer, and ``hold_mb`` bounds it further."""
    haar = FaceDetector("haar")
    peaks = {}
    for n in (6, 24):  # faces entering and leaving every 10 frames, n times
        video = clip(tmp_path / f"{n}.mp4", [("face", 5), ("sky", 5)] * n, w=240, h=180)
        scan, rows = find_faces(video, haar, TrackSettings(every=5, batch=4))
        peaks[n] = scan.peak_held
        assert scan.refined >= n  # edge windows were looked at all along
        tight, _ = find_faces(video, haar, TrackSettings(every=5, batch=4, hold_mb=0))
        assert tight.peak_held <= 4  # answered at every look: only the frames since the last one
        assert np.array_equal(tight.times, scan.times)
    assert peaks[6] == peaks[24] <= 4 * 4 + 4  # the batch's skipped frames and the next window's
