"""Real-world video forms (``tests/corpus.py``): shown upright, on one clock, audio in step, cut files kept.

The corpus is written once per session with PyAV. Decoding checks run on every clip; face counts on the
portrait twins; ``abaw predict`` runs with a tiny trained workspace (the ``test_tmf`` recipe: a micro ViT
on 16 px crops + filter banks, TMF for EXPR).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from corpus import BEEP, Spec, coded, specs, truncate, upright, write, write_corpus
from typer.testing import CliRunner
from videos import predicted

from abawkit.cli import app
from abawkit.errors import AbawError
from abawkit.features.audio import Fbank, extract_frames
from abawkit.video.media import extract_audio, iter_video, probe_video

runner = CliRunner()
NAMES = [s.name for s in specs()]
CUT = {"truncated_mkv.mkv": 15, "truncated_mp4.mp4": 13}  # frames before the break (measured once, checked below)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def decoded(path):
    """(times [n], first frame [H, W, 3] RGB) as predict and prep see them."""
    times, first = [], None
    for t, frame in iter_video(path):
        times.append(t)
        first = frame.to_ndarray(format="rgb24") if first is None else first
    return np.array(times), first


@pytest.mark.parametrize("name", NAMES)
def test_every_clip_decodes_upright_on_a_clock_from_its_first_frame(corpus, name):
    from abawkit.video.decode import decode_break

    spec, path = corpus[name]
    times, first = decoded(path)
    n = CUT.get(name, spec.n_frames)
    assert len(times) == n
    assert np.allclose(times, np.arange(n) / spec.fps, atol=2e-3)  # offset_ts / _mkv: pts start at 1.4 / 2 s
    assert first.shape == upright(spec, 0).shape
    assert np.abs(first.astype(int) - upright(spec, 0)).mean() < 6  # lossy codecs: a few grey levels
    info = probe_video(path)
    assert (info.width, info.height) == spec.size
    assert (decode_break(path, times) is not None) == (name in CUT)


@pytest.mark.parametrize("deg", [0, 90, 180, 270])
@pytest.mark.parametrize("hflip", [False, True])
def test_every_display_matrix_is_applied_as_ffmpeg_does(tmp_path, deg, hflip):
    """All eight orientations (rotations, and mirrors: a front camera), checked on the pixels."""
    spec = Spec(f"o{deg}{hflip}.mp4", size=(96, 64), seconds=1 / 15, audio=(), rotation=(deg, hflip, False))
    _, first = decoded(write(tmp_path / spec.name, spec))
    want = upright(spec, 0)
    assert first.shape == want.shape and np.abs(first.astype(int) - want).mean() < 6
    if deg or hflip:  # what main showed: the stored picture, not the one a person sees
        stored = coded(spec, want)
        assert stored.shape != want.shape or np.abs(stored.astype(int) - want).mean() > 20


def test_portrait_phone_clips_find_the_faces_of_their_upright_twin(corpus):
    """prep's path (``crop_video``) and predict's share the decoder: the face is found in every frame."""
    from abawkit.video.facetrack import TrackSettings
    from abawkit.video.media import FaceDetector, crop_video

    det = FaceDetector("mtcnn", device="cpu", min_face=40)
    s = TrackSettings(every=5, max_gap=15)
    found = {}
    for name in ("portrait_upright.mp4", "portrait_rot90.mp4", "portrait_rot270.mov", "portrait_mirror.mov"):
        _, path = corpus[name]
        found[name] = crop_video(path, path.parent / f"crops_{path.stem}", 64, det, settings=s)["detected"]
    assert found == dict.fromkeys(found, 30), found  # main: 30, 0, 0, 0


def beep_rows(spec, n, wav, frame_t):
    """Filter-bank rows of ``n`` frames at their times (predict: ``frame_t``; training: None, i / fps)
    -> (loud [n], audio flag [n])."""
    feats = extract_frames(Fbank(), wav, n, float(spec.fps), frame_t)
    energy = feats[:, :-1].mean(axis=1)
    return energy > (energy.min() + energy.max()) / 2, feats[:, -1]


def aligned(times, loud, guard=0.04, delay=0.0) -> bool:
    """The loud rows are the frames inside the beep, ``delay`` s later (``guard`` s of slack at its edges:
    the filter-bank window)."""
    lo, hi = BEEP[0] + delay, BEEP[1] + delay
    inside = (times >= lo + guard) & (times < hi - guard)
    outside = (times < lo - guard) | (times >= hi + guard)
    return bool(loud[inside].all() and not loud[outside].any() and inside.any())


@pytest.mark.parametrize("name", [s.name for s in specs() if s.audio and s.n_frames > 1])
def test_audio_rows_line_up_with_frames_in_predict_and_in_training(corpus, tmp_path, name):
    spec, path = corpus[name]
    times, _ = decoded(path)
    wav = tmp_path / "a.wav"
    assert extract_audio(path, wav)
    for frame_t in (times, None):  # predict: each frame's time; `abaw extract audio`: i / fps
        loud, flag = beep_rows(spec, len(times), wav, frame_t)
        assert aligned(times, loud), (name, np.flatnonzero(loud))
        assert flag[:-1].all()  # audio covers every frame (a cut file: all but its last)


@pytest.mark.parametrize("start", [2.0, 1.4])
def test_a_clip_starting_late_gives_the_features_of_the_same_clip_starting_at_zero(tmp_path, start):
    """Main: frame times 2.0 s on against a WAV from its first sample, so frame 5 read audio 2 s later,
    frame 15 on got zeros (flag 0), and only 12 of 30 frames had audio."""
    zero, late = (write(tmp_path / f"{s}.mkv", Spec(f"{s}.mkv", start=s)) for s in (0.0, start))
    feats = []
    for path in (zero, late):
        times, _ = decoded(path)
        wav = tmp_path / f"{path.stem}.wav"
        extract_audio(path, wav)
        feats.append(extract_frames(Fbank(), wav, len(times), 15.0, times))
    assert feats[1][:, -1].all()
    assert np.allclose(feats[0], feats[1], atol=1e-3)


@pytest.mark.parametrize("delay", [0.3, -0.3])
def test_audio_that_starts_after_or_before_the_first_frame_keeps_its_place(tmp_path, delay):
    """One clock from the first frame: audio starting 0.3 s after it is preceded by silence in the WAV,
    audio starting 0.3 s before it loses those 0.3 s, so the beep stays under the frames it was under."""
    spec = Spec("d.mkv", start=1.0, audio_delay=delay)
    path = write(tmp_path / spec.name, spec)
    times, _ = decoded(path)
    wav = tmp_path / "d.wav"
    extract_audio(path, wav)
    loud, _ = beep_rows(spec, len(times), wav, times)
    assert aligned(times, loud, delay=delay), np.flatnonzero(loud)


def test_a_file_cut_before_its_index_is_a_one_line_error(tmp_path):
    """An MP4 whose index (moov) was at the end and is gone: no frame can be read; one line, not a traceback."""
    path = truncate(write(tmp_path / "cut.mp4", Spec("cut.mp4")), 0.6)
    with pytest.raises(AbawError, match=r"cut.mp4: unreadable video \(InvalidDataError"):
        decoded(path)
    assert "\n" not in str(pytest.raises(AbawError, decoded, path).value)


# ------------------------------------------------------------------ abaw predict with a tiny trained workspace
FAST = ["--set", "train.epochs=1", "--set", "clips.length=16", "--set", "clips.stride=8",
        "--set", "clips.eval_stride=8", "--set", "train.batch_size=4"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A prep workspace (``test_tmf.make_prep``) with vision + fbank features and a TMF model for EXPR."""
    from test_tmf import make_encoder, make_prep

    root = tmp_path_factory.mktemp("ws")
    work, enc = make_prep(root / "w"), make_encoder(root / "enc.pt")
    for args in (["extract", "vision", "--checkpoint", str(enc), "--set", "vision.workers=0"],
                 ["extract", "audio", "--model", "fbank"],
                 ["train", "tmf", "--task", "expr", "--features", "mae,fbank", *FAST]):
        res = runner.invoke(app, [*args, "-w", str(work)])
        assert res.exit_code == 0, res.output
    return work


def predict(work, path, *extra):
    return runner.invoke(app, ["predict", str(path), "-w", str(work), "--set", 'tasks=["expr"]',
                               "--set", "threads=1", "--device", "cpu", *extra])


def test_predict_keeps_the_frames_before_a_break_and_strict_fails(workspace, corpus):
    _, path = corpus["truncated_mp4.mp4"]
    res = predict(workspace, path)
    assert res.exit_code == 0, res.output
    assert "decoding stopped at frame 14 (0.87 s) of 30" in " ".join(res.output.split())
    df = pd.read_csv(predicted(workspace, path) / "predictions.csv")
    assert len(df) == 13 and df["face"].sum() == 13
    strict = predict(workspace, path, "--strict", "--force")
    assert strict.exit_code == 1 and "decoding stopped" in strict.output and "Traceback" not in strict.output


def test_predict_gives_the_same_predictions_whatever_the_start_time(workspace, corpus, tmp_path):
    """offset_mkv.mkv (pts from 2 s) and the same frames and audio from 0 s: the same CSV, times included."""
    _, late = corpus["offset_mkv.mkv"]
    zero = write(tmp_path / "zero.mkv", Spec("zero.mkv"))
    dfs = []
    for path in (zero, late):
        res = predict(workspace, path)
        assert res.exit_code == 0, res.output
        dfs.append(pd.read_csv(predicted(workspace, path) / "predictions.csv"))
    assert dfs[0]["time"].iloc[0] == 0 and dfs[0]["face"].all()
    a, b = dfs
    assert list(a.columns) == list(b.columns)
    exact = ["frame", "time", "face"]
    pd.testing.assert_frame_equal(a[exact], b[exact])
    # Values from two encodes of the same frames agree to well below any real difference (a shifted clock
    # moves them by 0.1 and more); a decision is compared only where its probabilities are not a near-tie.
    values = [c for c in a.columns if c.startswith("p_") or c in ("valence", "arousal")]
    np.testing.assert_allclose(a[values].to_numpy(float), b[values].to_numpy(float), atol=2e-3)
    probs = a[[c for c in a.columns if c.startswith("p_")]].to_numpy(float)
    top2 = np.sort(probs, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 5e-3
    assert clear.sum() >= len(a) // 2
    assert (a["expression"][clear] == b["expression"][clear]).all()


@pytest.mark.slow
def test_predict_on_the_whole_corpus(workspace, corpus):
    """Every form through ``abaw predict``: rows = frames decoded, times from 0, the portrait twins alike."""
    faces = {}
    for name in NAMES:
        spec, path = corpus[name]
        res = predict(workspace, path)
        assert res.exit_code == 0, (name, res.output)
        df = pd.read_csv(predicted(workspace, path) / "predictions.csv")
        assert len(df) == CUT.get(name, spec.n_frames) and df["time"].iloc[0] == 0
        faces[name] = int(df["face"].sum())
    assert faces["portrait_rot90.mp4"] == faces["portrait_rot270.mov"] == faces["portrait_upright.mp4"] > 0
    assert faces["portrait_mirror.mov"] == faces["portrait_upright.mp4"]


def test_corpus_writer_uses_the_clock_it_is_given(tmp_path):
    """The offset forms really start late (else the tests above would not test the clock)."""
    import av

    for spec, want in ((Spec("a.mkv", start=2.0), 2.0), (Spec("b.ts", vcodec="mpeg2video", start=1.4,
                                                               audio=(("mp2", 48000, "stereo"),)), 1.4)):
        with av.open(str(write(tmp_path / spec.name, spec))) as box:
            vs = box.streams.video[0]
            assert abs(float(vs.start_time * vs.time_base) - want) < 0.1
