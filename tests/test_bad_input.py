"""What a real user runs into: Ctrl-C, a full or read-only disk, files that are not what they claim,
a resume checkpoint from another model, OpenCV builds without the Haar cascade. Each ends in one line,
a non-zero exit code and nothing half-written."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.errors import AbawError
from abawkit.workspace.locks import lock_path

runner = CliRunner()


def one_line(output: str) -> str:
    assert "Traceback" not in output
    return " ".join(output.split())


def test_ctrl_c_keeps_partial_and_exits_130(tmp_path, synth_release, monkeypatch):
    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr("abawkit.stages.prep.probe_sources", interrupt)
    w = tmp_path / "w"
    result = runner.invoke(app, ["prep", "--release", str(synth_release), "-w", str(w)])
    assert result.exit_code == 130, result.output
    line = one_line(result.output)
    assert "interrupted: prep was interrupted" in line and "run the same command again to resume it" in line
    assert (w / "prep.partial" / "config.json").exists() and not (w / "prep").exists()
    assert not lock_path(w, "prep").exists()


@pytest.mark.parametrize("code, hint", [(errno.ENOSPC, "free some space"), (errno.EROFS, "read-only")])
def test_full_or_read_only_disk_is_one_line(tmp_path, synth_release, monkeypatch, code, hint):
    import os

    def no_space(path):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr("abawkit.io._create_temp", no_space)
    w = tmp_path / "w"
    result = runner.invoke(app, ["prep", "--release", str(synth_release), "-w", str(w)])
    assert result.exit_code == 2, result.output
    line = one_line(result.output)
    assert "config.json: cannot write" in line and os.strerror(code) in line and hint in line
    assert not (w / "prep").exists() and not lock_path(w, "prep").exists()


def test_a_wav_that_is_not_a_wav(tmp_path):
    from abawkit.features.audio import Fbank, extract_frames

    (tmp_path / "a.wav").write_text("RIFF? no, a text file\n")
    with pytest.raises(AbawError, match="a.wav: unreadable audio"):
        extract_frames(Fbank(), tmp_path / "a.wav", 30, 30.0)


def test_feature_files_that_are_not_feature_arrays(tmp_path):
    from abawkit.features.store import FeatureStore

    store = FeatureStore(tmp_path)
    np.save(tmp_path / "v1.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(AbawError, match="v1.npy: not a feature array"):
        store.read("v1")
    np.save(tmp_path / "v2.npy", np.zeros(5, np.float16))
    with pytest.raises(AbawError, match=r"v2.npy: features must be \[n_frames, dim\]"):
        store.read("v2")


def test_resume_checkpoint_of_another_model_is_a_user_error(tmp_path):
    from test_engine import CFG, NoisyRegression, mse, tiny_model

    from abawkit.engine import fit

    fit(tiny_model(), mse, NoisyRegression(), CFG, seed=0, progress=False, checkpoint_path=tmp_path / "c.pt", stop_at=1)
    wider = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Linear(32, 1))
    with pytest.raises(AbawError, match="c.pt: the resume checkpoint does not fit this model"):
        fit(wider, mse, NoisyRegression(), CFG, seed=0, progress=False, checkpoint_path=tmp_path / "c.pt")


def test_haar_asked_for_without_cascade_and_mtcnn_fallback_warns_once(monkeypatch, capsys):
    import cv2

    from abawkit.console import console
    from abawkit.video.media import FaceDetector

    monkeypatch.delattr(cv2, "CascadeClassifier")
    with pytest.raises(AbawError, match="detector haar: this OpenCV .* has no Haar face cascade"):
        FaceDetector("haar")
    det = FaceDetector("mtcnn", device="cpu")
    blank = [np.zeros((64, 64, 3), np.uint8)] * 2
    with console.capture() as cap:
        for _ in range(2):  # warned once, however many calls
            assert [len(d.boxes) for d in det.detect_faces(blank)] == [0, 0]
    assert cap.get().count("MTCNN detects faces alone") == 1


def test_prep_with_mtcnn_works_without_cascade(tmp_path, monkeypatch):
    import cv2
    import pandas as pd

    from abawkit.stages.synth import SynthConfig, run

    run(SynthConfig(videos=3, frames=30, size=32, faces=0, seed=1), tmp_path / "rel")
    monkeypatch.delattr(cv2, "CascadeClassifier")
    w = tmp_path / "w"
    result = runner.invoke(app, ["prep", "--release", str(tmp_path / "rel"), "-w", str(w), "--detector", "mtcnn",
                                 "--size", "32"])
    assert result.exit_code == 0, result.output
    frames = pd.read_parquet(w / "prep" / "frames.parquet")
    made = frames[frames.crop.str.contains("/prep/crops/", na=False)]
    detected = sum(d["detected"] for d in json.loads((w / "prep" / "summary.json").read_text())["detected"].values())
    assert 0 < len(made) == detected <= 30  # MTCNN alone found faces; only frames with one have a crop


def test_a_library_write_failing_on_a_full_disk_names_the_file(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from abawkit.engine import save_state

    def failing_save(obj, f):
        open(f, "wb").write(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1603456 vs 1603344")

    monkeypatch.setattr(torch, "save", failing_save)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: namedtuple("U", "total used free")(10, 10, 0))
    with pytest.raises(OSError) as err:
        save_state(tmp_path / "last.pt", {"x": 1})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []  # the half-written temp file is gone


def test_ctrl_c_outside_a_stage_exits_130(tmp_path, monkeypatch):
    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr("abawkit.stages.synth.run", interrupt)
    result = runner.invoke(app, ["synth", str(tmp_path / "r")])
    assert result.exit_code == 130 and "run the same command again" in one_line(result.output)


def test_first_line_cuts_long_library_messages_at_a_sentence():
    from abawkit.errors import first_line

    msg = "\n  Reader failed. " + "This is a long explanation " * 20 + "\nsecond line"
    got = first_line(RuntimeError(msg), limit=60)
    assert got.startswith("Reader failed.") and got.endswith(" …") and len(got) <= 62 and "second" not in got
    assert first_line(ValueError("")) == "ValueError"
