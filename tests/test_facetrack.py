"""Faces in real formats: alignment, tracking, frames without a face, timestamps, audio codecs, memory."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
import soundfile as sf
from videos import clip, face_scene, write_video

from abawkit.video.align import align_face, eye_angle
from abawkit.video.facetrack import Detections, TrackSettings, find_faces, link, select
from abawkit.video.media import FaceDetector, crop_video, extract_audio


@pytest.fixture(scope="module")
def mtcnn():
    return FaceDetector("mtcnn", device="cpu")


def _eyes(det: FaceDetector, img: np.ndarray) -> np.ndarray:
    found = det.detect_faces([img])[0]
    assert len(found.boxes) >= 1, "no face found"
    return found.landmarks[int(found.scores.argmax())]


def test_face_rotated_20_degrees_comes_out_upright(mtcnn):
    img = face_scene(400, 400, angle=20)
    lm = _eyes(mtcnn, img)
    assert abs(abs(eye_angle(lm)) - 20) < 5  # the detector sees the tilt
    aligned = align_face(img, lm, 112)
    assert aligned.shape == (112, 112, 3)
    again = _eyes(mtcnn, cv2.resize(aligned, (224, 224)))  # an independent look at the output
    assert abs(eye_angle(again)) <= 3
    from abawkit.video.media import square_crop

    plain = square_crop(img, mtcnn.detect_faces([img])[0].boxes[0], 112)  # --align none keeps the tilt
    assert abs(eye_angle(_eyes(mtcnn, cv2.resize(plain, (224, 224))))) > 12


def _det(*boxes):
    b = np.array(boxes, np.float32).reshape(-1, 4)
    return Detections(b, np.ones(len(b), np.float32), np.tile(b[:, None, :2], (1, 5, 1)))


def test_link_keeps_ids_bridges_short_gaps_only():
    a, b = [0, 0, 10, 10], [50, 50, 70, 70]
    dets = {0: _det(a, b), 5: _det(b, [1, 1, 11, 11]), 10: _det([2, 2, 12, 12]), 40: _det([2, 2, 12, 12])}
    tracks = link(dets, max_gap=5)
    assert len(tracks) == 3  # a (frames 0-10), b (0-5), a again after a gap of 30 > 5: a new face
    first = next(t for t in tracks if t.frames[0] == 0 and t.boxes[0][0] == 0)
    assert first.frames.tolist() == list(range(11)) and first.detected.sum() == 3
    assert np.allclose(first.boxes[3], [0.6, 0.6, 10.6, 10.6])  # interpolated between frames 0 and 5
    second = next(t for t in tracks if t.boxes[0][0] == 50)
    assert second.frames.tolist() == list(range(6))
    assert [t.frames.tolist() for t in tracks if t.frames[0] == 40] == [[40]]


def test_select_largest_or_all():
    tracks = link({0: _det([0, 0, 10, 10], [50, 50, 80, 80]), 1: _det([0, 0, 10, 10])}, max_gap=1)
    big = select(tracks, "largest")
    assert big.frame.tolist() == [0, 1] and big.boxes[0][2] == 80 and big.boxes[1][2] == 10
    every = select(tracks, "all")
    assert every.frame.tolist() == [0, 0, 1] and len(set(every.face_id.tolist())) == 2


@pytest.mark.parametrize("every", [1, 4])
def test_face_leaves_and_a_cartoon_follows(tmp_path, mtcnn, every):
    video = clip(tmp_path / "leaves.mp4", [("face", 15), ("cartoon", 15)])
    scan, rows = find_faces(video, mtcnn, TrackSettings(every=every))
    assert scan.n_frames == 30
    frames = set(rows.frame.tolist())
    assert frames <= set(range(15)) and len(frames) >= 12  # only while the face is there


def test_cartoon_first_then_face(tmp_path, mtcnn):
    video = clip(tmp_path / "late.mp4", [("cartoon", 10), ("face", 10)])
    _, rows = find_faces(video, mtcnn, TrackSettings(every=3))
    assert set(rows.frame.tolist()) <= set(range(10, 20)) and len(rows) >= 7


def test_no_face_clip_writes_no_crop(tmp_path, mtcnn):
    video = clip(tmp_path / "sky.mp4", [("sky", 20)])
    counts = crop_video(video, tmp_path / "crops", 64, mtcnn)
    assert counts == {"frames": 20, "detected": 0} and not list((tmp_path / "crops").iterdir())


def test_crops_only_for_face_frames_and_halves(tmp_path, mtcnn):
    video = clip(tmp_path / "two.mp4", [("faces2", 6), ("sky", 4)], w=480, h=200)
    counts = crop_video(video, tmp_path / "crops", 64, mtcnn, half="right")
    assert counts == {"frames": 10, "detected": 6}
    assert sorted(p.name for p in (tmp_path / "crops").iterdir()) == [f"{k:05d}.jpg" for k in range(1, 7)]
    _, rows = find_faces(video, mtcnn, TrackSettings(), half="right")
    assert (rows.boxes[:, 0] >= 240 - 5).all()  # the right person only
    _, both = find_faces(video, mtcnn, TrackSettings(faces="all"))
    assert len(set(both.face_id.tolist())) == 2 and len(both) == 12


@pytest.mark.parametrize("suffix,vcodec", [(".mp4", "libx264"), (".mov", "libx265")])
def test_time_comes_from_each_frames_timestamp(tmp_path, suffix, vcodec):
    rng = np.random.default_rng(0)
    times = np.round(np.cumsum(np.r_[0, rng.choice([0.02, 0.04, 0.1], 24)]), 3)  # variable frame rate
    frames = [face_scene(160, 128, i) for i in range(len(times))]
    video = write_video(tmp_path / f"vfr{suffix}", frames, times, vcodec)
    scan, _ = find_faces(video, FaceDetector("haar"), TrackSettings(every=5))
    assert np.allclose(scan.times, times, atol=1e-3)


@pytest.mark.parametrize("suffix,vcodec,acodec,rate", [(".mp4", "libx264", "aac", 44100), (".mov", "libx265", "aac", 48000),
                                                       (".mp4", "libx264", "mp3", 44100), (".mp4", "libx264", "mp3", 48000)])
def test_audio_codecs_and_rates(tmp_path, suffix, vcodec, acodec, rate):
    frames = [face_scene(96, 96)] * 10
    video = write_video(tmp_path / f"a{suffix}", frames, np.arange(10) / 10, vcodec, (acodec, rate))
    wav = tmp_path / "a.wav"
    assert extract_audio(video, wav)
    samples, sr = sf.read(str(wav))
    assert sr == 16000 and abs(len(samples) / sr - 1.0) < 0.1
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.fft.rfftfreq(len(samples), 1 / sr)[spectrum.argmax()] - 220) < 5  # the tone survived


def test_memory_does_not_grow_with_length(tmp_path):
    """Both passes stream: the peak of Python-tracked memory (numpy frames included) is about the same
    for a 6x longer video."""
    det = FaceDetector("haar")

    def peak(n: int) -> int:
        video = clip(tmp_path / f"m{n}.mp4", [("face", n)], w=320, h=240)
        tracemalloc.start()
        crop_video(video, tmp_path / f"c{n}", 32, det, settings=TrackSettings(every=3))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    short, long = peak(20), peak(120)
    assert long < short * 1.5 + 2_000_000, (short, long)


def test_crop_video_aligns_unless_told_not_to(tmp_path, mtcnn):
    """The same choice as predict's --align: 5pt crops come out upright, none keeps the tilt."""
    frames = [face_scene(320, 320, i, angle=20) for i in range(3)]
    video = write_video(tmp_path / "tilt.mp4", frames, np.arange(3) / 10)
    for mode in ("5pt", "none"):
        crop_video(video, tmp_path / mode, 112, mtcnn, settings=TrackSettings(align=mode))
        crop = cv2.cvtColor(cv2.imread(str(tmp_path / mode / "00002.jpg")), cv2.COLOR_BGR2RGB)
        tilt = abs(eye_angle(_eyes(mtcnn, cv2.resize(crop, (224, 224)))))
        assert tilt <= 3 if mode == "5pt" else tilt > 12, (mode, tilt)


def test_prep_rejects_an_unknown_align(tmp_path):
    from typer.testing import CliRunner

    from abawkit.cli import app

    result = CliRunner().invoke(app, ["prep", "--release", str(tmp_path), "-w", str(tmp_path / "w"), "--align", "3pt"])
    assert result.exit_code == 2 and "align '3pt': expected 5pt or none" in result.output
    assert not (tmp_path / "w" / "prep").exists()


def test_a_haar_hit_leaves_the_other_frames_aligned():
    """A frame MTCNN missed and the Haar fallback found has no landmarks: only the frames that need it are
    cut as squares, not the whole video (one fallback hit used to drop alignment for every crop)."""
    from abawkit.video.facetrack import Detections, link, select

    box, one = np.array([[10, 10, 50, 50]], np.float32), np.ones(1, np.float32)
    lm = np.arange(10, dtype=np.float32).reshape(1, 5, 2)
    dets = {0: Detections(box, one, lm), 4: Detections(box, one, None), 8: Detections(box, one, lm + 4),
            12: Detections(box, one, lm + 8)}
    rows = select(link(dets, max_gap=15), "largest")
    aligned = [rows.has_landmarks(r) for r in range(len(rows))]
    assert aligned == [True] + [False] * 7 + [True] * 5  # frames 1-7 border the Haar hit; 8-12 do not
    assert rows.unaligned() == 7 and np.allclose(rows.landmarks[10], (lm[0] + 4 + lm[0] + 8) / 2)
