"""The video-level model (issue 27, point 2): shapes, gradients, padding, real frame positions, modality dropout,
its checkpoint; the frame sampling and batching of whole videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abawkit.data.video import VideoDataset, VideoInputs, collate, frame_index
from abawkit.errors import AbawError
from abawkit.labels import task
from abawkit.models.video import VideoModel, build_video_model, load_video_model, modality_keep
from abawkit.models.video_arch import VideoArch, VideoSettings

PARTS = (6, 4, 5)  # vision, audio, text widths


def arch(**kw) -> VideoArch:
    base = dict(d_model=16, layers=2, heads=4, ff_mult=2, dropout=0.0, parts=PARTS, n_outputs=2, kind="multiclass")
    return VideoArch(**{**base, **kw})


def batch(b=3, n=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, sum(PARTS), generator=g)
    pos = torch.arange(n).repeat(b, 1) * 7  # subsampled: every 7th frame
    pad = torch.zeros(b, n, dtype=torch.bool)
    pad[1, 6:] = True
    return x, pos, pad


@pytest.mark.parametrize("pool,kind,n_out", [("attention", "multiclass", 2), ("mean", "intensity", 6)])
def test_forward_backward_every_param_gets_gradient(pool, kind, n_out):
    torch.manual_seed(0)
    model = VideoModel(arch(pool=pool, kind=kind, n_outputs=n_out))
    x, pos, pad = batch()
    out = model(x, pos, pad)
    assert out.shape == (3, n_out) and torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 1e-5, (name, p.grad.abs().max().item())


def test_padding_never_reaches_a_video_and_batching_does_not_change_it():
    torch.manual_seed(0)
    model = VideoModel(arch()).eval()
    x, pos, pad = batch()
    a = model(x, pos, pad)
    x2 = x.clone()
    x2[1, 6:] = 100.0
    assert torch.allclose(a, model(x2, pos, pad), atol=1e-5)
    alone = model(x[1:2, :6], pos[1:2, :6], pad[1:2, :6])  # the short video on its own, unpadded
    assert torch.allclose(a[1], alone[0], atol=1e-5)


def test_real_frame_positions_matter():
    """The same frames read at other places in time give another output (positions are the frames' own)."""
    torch.manual_seed(0)
    model = VideoModel(arch()).eval()
    x, pos, pad = batch()
    assert (model(x, pos, pad) - model(x, pos * 3 + 50, pad)).abs().max() > 1e-3


def test_modality_dropout_drops_whole_modalities():
    """Training: a dropped store of a video does not reach its output at all, whatever its values; the others do;
    never every store; evaluation uses them all."""
    torch.manual_seed(0)
    model = VideoModel(arch(modality_dropout=0.5)).train()  # dropout 0: the store choice is the only randomness
    x, pos, pad = batch(b=16, n=8)
    torch.manual_seed(5)
    keep = modality_keep(16, 3, 0.5)
    assert (~keep[:, 1]).any() and keep[:, 1].any()
    x_text = x.clone()
    x_text[..., PARTS[0] + PARTS[1]:] = 0  # text (store 2) changed
    x_audio = x.clone()
    x_audio[..., PARTS[0]:PARTS[0] + PARTS[1]] = torch.randn(16, 8, PARTS[1])  # audio (store 1) changed
    outs = []
    for inp in (x, x_audio):
        torch.manual_seed(5)
        outs.append(model(inp, pos, pad))
    same = (outs[0] - outs[1]).abs().amax(1) < 1e-5  # [B]
    assert torch.equal(same, ~keep[:, 1])  # exactly the videos whose audio was dropped ignore the new audio
    many = modality_keep(20000, 3, 0.5)
    assert many.any(1).all() and abs((~many).float().mean().item() - (0.5 - 0.125)) < 0.02  # all-dropped rows (1/8) keep all
    model.eval()  # all stores at evaluation
    assert ((model(x, pos, pad) - model(x_text, pos, pad)).abs().amax(1) > 1e-4).all()


def test_checkpoint_rebuilds_the_model_alone(tmp_path):
    from abawkit.models.checkpoints import save_checkpoint

    torch.manual_seed(0)
    model = build_video_model(VideoSettings(d_model=16, heads=2, layers=1), PARTS, task("emi")).eval()
    save_checkpoint(tmp_path / "best.pt", model.state_dict(), model.arch, "video", features=["v", "a", "t"])
    again, meta = load_video_model(tmp_path / "best.pt")
    x, pos, pad = batch()
    assert torch.allclose(model(x, pos, pad), again(x, pos, pad)) and meta["features"] == ["v", "a", "t"]
    assert again.arch == model.arch and again.arch.kind == "intensity" and again.arch.n_outputs == 6
    save_checkpoint(tmp_path / "other.pt", model.state_dict(), model.arch, "tmf")
    with pytest.raises(AbawError, match="not a trained abawkit video-level model"):
        load_video_model(tmp_path / "other.pt")


def test_build_refuses_bad_settings_in_one_line():
    with pytest.raises(AbawError, match="divisible"):
        build_video_model(VideoSettings(d_model=10, heads=4), PARTS, task("ah"))
    with pytest.raises(AbawError, match="modality_dropout"):
        build_video_model(VideoSettings(modality_dropout=1.0), PARTS, task("ah"))
    with pytest.raises(AbawError, match="video-level model predicts"):
        build_video_model(VideoSettings(), PARTS, task("va"))


def test_frame_index_one_frame_per_segment():
    assert frame_index(5, 8).tolist() == [0, 1, 2, 3, 4]  # a short video: every frame
    mid = frame_index(100, 4)  # segments [0,25) [25,50) [50,75) [75,100)
    assert mid.tolist() == [12, 37, 62, 87]
    draws = np.stack([frame_index(100, 4, np.random.default_rng(s)) for s in range(200)])  # [200, 4]
    lo, hi = np.array([0, 25, 50, 75]), np.array([25, 50, 75, 100])
    assert ((draws >= lo) & (draws < hi)).all() and len(np.unique(draws[:, 0])) > 15
    assert np.array_equal(frame_index(100, 4, np.random.default_rng(3)), frame_index(100, 4, np.random.default_rng(3)))


def test_dataset_reads_the_sampled_rows_and_collate_pads():
    feats = np.arange(40, dtype=np.float16).reshape(20, 2)
    videos = [VideoInputs("a", (feats, feats[:, :1]), np.array([1], np.float32)),
              VideoInputs("b", (feats[:3], feats[:3, :1]), np.array([0], np.float32))]
    ds = VideoDataset(videos, frames=4, train=False, repeats=2)
    assert len(ds) == 4
    item = ds[0]
    assert item["pos"].tolist() == [2, 7, 12, 17] and item["x"][:, 0].tolist() == [4, 14, 24, 34]
    b = collate([ds[0], ds[1]])
    assert b["x"].shape == (2, 4, 3) and b["pad"][1].tolist() == [False, False, False, True]
    assert b["y"].tolist() == [[1.0], [0.0]] and b["pos"][1].tolist() == [0, 1, 2, 0]
