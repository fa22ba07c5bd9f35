"""Clips: starts cover every frame, padding is masked out of the loss, overlaps average back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abawkit.data.clips import (
    ClipDataset,
    VideoData,
    average_clips,
    clip_starts,
    collate,
    flatten_valid,
)
from abawkit.losses import task_loss


@pytest.mark.parametrize("n,k,s", [(1, 4, 4), (4, 4, 4), (5, 4, 4), (10, 4, 2), (250, 100, 100), (3, 100, 50)])
def test_starts_cover_every_frame(n, k, s):
    starts = clip_starts(n, k, s)
    covered = np.zeros(n, bool)
    for st in starts:
        covered[st:st + k] = True
    assert covered.all() and starts[-1] < n and (np.diff(starts) == s).all()
    assert starts[-1] + k >= n and (len(starts) == 1 or starts[-2] + k < n)


def make_videos():
    rng = np.random.default_rng(0)
    return [VideoData("a", rng.normal(size=(7, 3)).astype(np.float32), np.arange(7, dtype=np.float32)[:, None]),
            VideoData("b", rng.normal(size=(3, 3)).astype(np.float32), np.arange(3, dtype=np.float32)[:, None])]


def test_padding_is_masked_and_never_reaches_the_loss():
    ds = ClipDataset(make_videos(), length=4, stride=4)
    assert len(ds) == 3  # a: [0..3], [4..6]+pad; b: [0..2]+pad
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch["x"].shape == (3, 4, 3) and batch["pad"].tolist() == [
        [False] * 4, [False, False, False, True], [False, False, False, True]]
    out = torch.zeros(3, 4, 1)
    out[batch["pad"]] = 1e6  # garbage on padded positions must not matter
    o, y = flatten_valid(out, batch["y"], batch["pad"])
    assert o.shape == (10, 1) and (o == 0).all()
    assert sorted(y[:, 0].tolist()) == sorted(list(range(7)) + list(range(3)))
    # VA loss over the flattened clip: huge padded outputs leave it unchanged
    va_out, va_y = torch.randn(3, 4, 2), torch.rand(3, 4, 2) * 2 - 1
    ref = task_loss("va", *flatten_valid(va_out, va_y, batch["pad"]))
    va_out[batch["pad"]] = 50.0
    assert torch.allclose(task_loss("va", *flatten_valid(va_out, va_y, batch["pad"])), ref)


def test_overlap_averaging():
    starts = clip_starts(8, 4, 2)
    assert starts.tolist() == [0, 2, 4]
    preds = np.stack([np.full((4, 1), v, np.float32) for v in (1.0, 3.0, 5.0)])
    got = average_clips(8, starts, preds)[:, 0]
    np.testing.assert_allclose(got, [1, 1, 2, 2, 4, 4, 5, 5])
    with pytest.raises(ValueError, match="covered by no clip"):
        average_clips(9, starts, preds)


def test_identity_round_trip_through_clips():
    videos = make_videos()
    ds = ClipDataset(videos, length=4, stride=1)
    starts = np.array([s for v, s in ds.index if v == 0])
    clips = np.stack([ds[i]["x"].numpy() for i, (v, _) in enumerate(ds.index) if v == 0])
    np.testing.assert_allclose(average_clips(7, starts, clips), videos[0].features, atol=1e-6)


def test_feature_parts_are_concatenated_per_clip(tmp_path):
    a = np.arange(10, dtype=np.float16).reshape(5, 2)
    np.save(tmp_path / "a.npy", a)
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    vd = VideoData("v", (mm, np.ones((5, 1), np.float32)), np.zeros((5, 1), np.float32))
    item = ClipDataset([vd], length=4, stride=4)[1]
    assert item["x"].shape == (4, 3) and item["x"][0].tolist() == [8.0, 9.0, 1.0] and not item["x"][1:].any()
