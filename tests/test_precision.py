"""Extraction precision (bf16 / fp32) and device are part of a feature store's record, and `abaw predict`
re-runs an extractor at the precision its features were made with."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_tmf import make_encoder, make_prep
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.devices import default_precision, resolve_precision
from abawkit.errors import AbawError
from abawkit.features.store import extraction_precision, open_store

runner = CliRunner()


def extract(work, enc, *extra):
    res = runner.invoke(app, ["extract", "vision", "-w", str(work), "--checkpoint", str(enc),
                              "--set", "vision.workers=0", "--set", "vision.device=cpu", *extra])
    assert res.exit_code == 0, res.output
    return res.output


def test_precision_follows_the_device():
    assert default_precision("cuda") == "bf16" and default_precision(torch.device("cuda", 3)) == "bf16"
    assert default_precision("cpu") == "fp32" and resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(AbawError, match="auto, bf16 or fp32"):
        resolve_precision("fp16", "cpu")


def test_precision_and_device_are_recorded_and_a_change_re_extracts(tmp_path):
    work = make_prep(tmp_path / "w")
    enc = make_encoder(tmp_path / "enc.pt")
    extract(work, enc)
    info = open_store(work, "mae").info()
    assert info["settings"]["precision"] == "fp32" and info["device"] == "cpu"  # main: neither recorded
    fp32 = np.asarray(open_store(work, "mae").read("v1", 40), np.float32)
    out = extract(work, enc, "--set", "vision.precision=bf16")
    assert "skip" not in out  # another precision is another extractor key
    store = open_store(work, "mae")
    assert store.info()["settings"]["precision"] == "bf16"
    assert np.abs(np.asarray(store.read("v1", 40), np.float32) - fp32).max() > 1e-3  # bf16 really ran


def test_predict_reextracts_at_the_recorded_precision(tmp_path):
    import torch

    from abawkit.inference.extractors import vision_part
    from abawkit.inference.models import Models
    from abawkit.stages.predict import PredictConfig

    def reextract():  # a new Models each time: it keeps the encoder it loaded for the whole run
        return vision_part(Models(work, PredictConfig(), torch.device("cpu")), "mae", [str(p) for p in crops])

    work = make_prep(tmp_path / "w")
    enc = make_encoder(tmp_path / "enc.pt")
    extract(work, enc, "--set", "vision.precision=bf16")
    crops = sorted((work / "crops" / "v1").glob("*.jpg"))
    frames = np.array([int(p.stem) for p in crops])
    stored = np.asarray(open_store(work, "mae").read("v1", 40), np.float32)[frames - 1]
    again = reextract()
    gap_bf16 = np.abs(again - stored).mean()
    (work / "features" / "mae" / "store.json").write_text(  # the same features, recorded as fp32
        (work / "features" / "mae" / "store.json").read_text().replace('"bf16"', '"fp32"'))
    gap_fp32 = np.abs(reextract() - stored).mean()
    assert gap_bf16 < gap_fp32 / 5  # main re-extracts in fp32 whatever the store says


def test_unrecorded_or_unsupported_precision(tmp_path, capsys):
    assert extraction_precision({"settings": {"pool": "cls"}}, tmp_path / "store.json") == "fp32"
    with pytest.raises(AbawError, match="extracted in bf16, but this extractor runs only in fp32"):
        extraction_precision({"settings": {"model": "fbank", "precision": "bf16"}}, "store.json", ("fp32",))
