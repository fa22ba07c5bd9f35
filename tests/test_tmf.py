"""TMF: model shapes/gradients/padding; `abaw extract` + `abaw train tmf` end to end on a tiny workspace."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.labels import AU_NAMES
from abawkit.models.tmf import TMF, TMFArch


@pytest.mark.parametrize("positions", ["learnable", "sinusoidal"])
def test_forward_backward_every_param_gets_gradient(positions):
    torch.manual_seed(0)
    model = TMF(TMFArch(in_dim=10, n_outputs=3, d_model=16, layers=2, heads=4, max_len=12, positions=positions))
    x = torch.randn(2, 12, 10)
    pad = torch.zeros(2, 12, dtype=torch.bool)
    pad[1, 8:] = True
    out = model(x, pad)
    assert out.shape == (2, 12, 3) and torch.isfinite(out).all()
    out[~pad].sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 1e-4, (name, p.grad.abs().max().item())  # real: > 0.5; cancelled by a norm: ~1e-7


def test_padded_frames_do_not_change_real_outputs():
    torch.manual_seed(0)
    model = TMF(TMFArch(in_dim=6, n_outputs=2, d_model=8, layers=2, heads=2, max_len=10)).eval()
    x = torch.randn(1, 10, 6)
    pad = torch.zeros(1, 10, dtype=torch.bool)
    pad[0, 7:] = True
    a = model(x, pad)
    x2 = x.clone()
    x2[0, 7:] = 100.0
    assert torch.allclose(a[0, :7], model(x2, pad)[0, :7], atol=1e-5)
    with pytest.raises(ValueError, match="longer than max_len"):
        model(torch.randn(1, 11, 6))


# ----------------------------------------------------------------------------- stages through the CLI
runner = CliRunner()
FAST = ["--set", "train.epochs=2", "--set", "clips.length=16", "--set", "clips.stride=8",
        "--set", "clips.eval_stride=8", "--set", "train.batch_size=4"]


@dataclass(frozen=True)
class TinyPrep:
    seed: int = 0


def make_prep(work, n_videos=6, n_frames=40, fps=25.0):
    """A tiny prep workspace: crops that encode the expression, WAVs, all three tasks' labels."""
    from PIL import Image

    from abawkit.workspace.stage import stage

    rng = np.random.default_rng(0)
    rows, vids = [], []
    for v in range(n_videos):
        name = f"v{v}"
        expr = np.repeat(rng.integers(0, 8, n_frames // 10 + 1), 10)[:n_frames]
        crops = work / "crops" / name
        crops.mkdir(parents=True)
        has = rng.random(n_frames) > 0.1 if v else np.zeros(n_frames, bool)  # v0: no face at all
        for f in np.flatnonzero(has):
            Image.fromarray(np.full((16, 16, 3), expr[f] * 30, np.uint8)).save(crops / f"{f + 1:05d}.jpg")
        idx = np.flatnonzero(has)
        fill = idx[np.abs(np.arange(n_frames)[:, None] - idx[None]).argmin(1)] + 1 if len(idx) else np.full(n_frames, -1)
        role = "test" if v == 5 else ("val" if v == 4 else "train")
        df = pd.DataFrame({"video": name, "frame": np.arange(1, n_frames + 1, dtype=np.int32),
                           "crop": [str(crops / f"{f + 1:05d}.jpg") if has[f] else None for f in range(n_frames)],
                           "fill_frame": fill.astype(np.int32), "EXPR": expr.astype(np.int8),
                           "valence": np.float32(0.1), "arousal": (expr / 8).astype(np.float32)})
        for i, au in enumerate(AU_NAMES):
            df[au] = ((expr + i) % 3 == 0).astype(np.int8)
        for t in ("au", "expr", "va"):
            df[f"split_{t}"] = role
        rows.append(df)
        wav = None
        if v != 3:  # v3: no audio track
            wav = work / f"{name}.wav"
            sf.write(wav, rng.normal(size=int(n_frames / fps * 16000 * (0.8 if v == 2 else 1.0))) * 0.1, 16000)
        vids.append({"video": name, "source": name, "n_frames": n_frames, "fps": fps,
                     "audio": str(wav) if wav else None})
    with stage(work, "prep", TinyPrep()) as run:
        pd.concat(rows).to_parquet(run.path("frames.parquet"))
        pd.DataFrame(vids).to_parquet(run.path("videos.parquet"))
        pd.DataFrame({"video": [], "task": [], "fold": []}).to_parquet(run.path("splits.parquet"))
    return work


def make_encoder(path, seed=0):
    from abawkit.models.checkpoints import save_checkpoint
    from abawkit.models.mae import ViTEncoder, encoder_arch

    torch.manual_seed(seed)
    arch = encoder_arch("micro", img_size=16, patch=8)
    save_checkpoint(path, ViTEncoder(arch).state_dict(), arch, "encoder")
    return path


def test_help_texts():
    for args in (["extract", "vision", "--help"], ["extract", "audio", "--help"], ["train", "tmf", "--help"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0 and "--workdir" in res.output, args


def test_extract_and_train_tmf_end_to_end(tmp_path):
    from abawkit.features.store import open_store
    from abawkit.predictions import read_predictions

    work = make_prep(tmp_path / "w")
    enc = make_encoder(tmp_path / "enc.pt")
    res = runner.invoke(app, ["extract", "vision", "-w", str(work), "--checkpoint", str(enc), "--set", "vision.workers=0"])
    assert res.exit_code == 0, res.output
    mae = open_store(work, "mae")
    x = mae.read("v1", 40)
    assert x.shape == (40, 96) and not np.asarray(mae.read("v0", 40)).any()  # no face -> zeros
    res = runner.invoke(app, ["extract", "audio", "-w", str(work), "--model", "fbank"])
    assert res.exit_code == 0, res.output
    fb = open_store(work, "fbank")
    assert fb.info()["flags"] == {"v3": {"missing_audio": True}}
    assert not np.asarray(fb.read("v3", 40)).any() and np.asarray(fb.read("v2", 40))[-5:, -1].sum() == 0
    # same key -> skipped; a new checkpoint -> re-extracted without --force
    again = runner.invoke(app, ["extract", "vision", "-w", str(work), "--checkpoint", str(enc), "--set", "vision.workers=0"])
    assert "skip" in again.output
    make_encoder(enc, seed=1)
    res = runner.invoke(app, ["extract", "vision", "-w", str(work), "--checkpoint", str(enc), "--set", "vision.workers=0"])
    assert res.exit_code == 0 and "skip" not in res.output
    new = np.asarray(open_store(work, "mae").read("v1", 40), np.float32)
    assert np.abs(new - x).max() > 0.1  # another encoder moves features by ~1; rounding, float16 included, by < 1e-2

    res = runner.invoke(app, ["train", "tmf", "-w", str(work), "--task", "expr", "--features", "mae,fbank", *FAST])
    assert res.exit_code == 0, res.output
    out = work / "tmf" / "expr" / "fold0"
    val = read_predictions(out / "pred_val.parquet", "expr")
    assert len(val.df) == 40 and np.allclose(val.values().sum(1), 1, atol=1e-4)
    assert len(read_predictions(out / "pred_test.parquet").df) == 40
    assert (out / "best.pt").is_file() and not (out / "last.pt").exists()


def test_train_tmf_bad_inputs(tmp_path):
    work = make_prep(tmp_path / "w")
    res = runner.invoke(app, ["train", "tmf", "-w", str(work), "--task", "expr", "--features", "nope"])
    assert res.exit_code == 2 and "features/nope" in res.output
    res = runner.invoke(app, ["train", "tmf", "-w", str(work), "--task", "expr", "--fold", "x"])
    assert res.exit_code == 2 and "--fold" in res.output
    res = runner.invoke(app, ["extract", "audio", "-w", str(work), "--model", "hubert"])
    assert res.exit_code == 2 and "--checkpoint" in res.output
    res = runner.invoke(app, ["train", "tmf", "-w", str(work), "--task", "va", "--set", "clips.length=10",
                              "--set", "clips.eval_stride=16"])
    assert res.exit_code == 2 and "eval_stride" in res.output and "Traceback" not in res.output
    assert not (work / "tmf" / "va" / "fold0.partial").exists()


def test_tmf_same_seed_same_outputs(tmp_path):
    from abawkit.predictions import read_predictions

    work = make_prep(tmp_path / "w")
    res = runner.invoke(app, ["extract", "audio", "-w", str(work), "--model", "fbank"])
    assert res.exit_code == 0, res.output
    preds = []
    for tag, seed in (("a", 1), ("b", 1), ("c", 2)):
        res = runner.invoke(app, ["train", "tmf", "-w", str(work), "--task", "va", "--features", "fbank", *FAST,
                                  "--seed", str(seed), "--set", f"tag={tag}"])
        assert res.exit_code == 0, res.output
        preds.append(read_predictions(work / "tmf" / "va" / f"fold0-{tag}" / "pred_val.parquet").values())
    assert np.array_equal(preds[0], preds[1])
    assert np.abs(preds[0] - preds[2]).max() > 1e-2  # another seed: ~1 here; a mere rounding change would be ~1e-7


def test_tmf_checkpoint_carries_its_arch_and_rebuilds_alone(tmp_path):
    """best.pt is the common format (kind tmf) with ``arch``: ``load_tmf`` rebuilds the trained model from the
    file alone and gives back its validation predictions. Main saved a private dict (no "format"), and
    predict rebuilt the model from the manifest's config."""
    import dataclasses

    from abawkit.data.clips import VideoData
    from abawkit.features.store import open_store
    from abawkit.inference.tmf import predict_clips
    from abawkit.models.checkpoints import load_tmf, read_checkpoint
    from abawkit.models.tmf_arch import TMFSettings
    from abawkit.predictions import read_predictions

    work = make_prep(tmp_path / "w")
    res = runner.invoke(app, ["extract", "audio", "-w", str(work), "--model", "fbank"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "tmf", "-w", str(work), "--task", "va", "--features", "fbank", *FAST,
                              "--set", "model.d_model=16", "--set", "model.heads=2", "--set", "model.temporal=gru"])
    assert res.exit_code == 0, res.output
    out = work / "tmf" / "va" / "fold0"
    ckpt = read_checkpoint(out / "best.pt")
    assert (ckpt["format"], ckpt["kind"], ckpt["features"], ckpt["eval_stride"]) == ("abawkit", "tmf", ["fbank"], 8)
    arch = ckpt["arch"]
    assert (arch["d_model"], arch["temporal"], arch["max_len"], arch["n_outputs"]) == (16, "gru", 16, 2)
    assert set(arch) == {f.name for f in dataclasses.fields(TMFSettings)} | {"in_dim", "n_outputs", "max_len", "parts"}
    model, meta = load_tmf(out / "best.pt")
    val = read_predictions(out / "pred_val.parquet", "va")
    store = open_store(work, "fbank")
    data = [VideoData("v4", (store.read("v4", 40),), np.zeros((40, 2), np.float32))]
    (values,) = predict_clips(model, data, "va", meta["eval_stride"], torch.device("cpu"))
    assert np.allclose(values, val.values(), atol=1e-5)
