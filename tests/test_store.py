"""Feature store: float16 round trip, memory-mapped reads, frame-count checks, extractor keys."""

from __future__ import annotations

import numpy as np
import pytest

from abawkit.errors import AbawError
from abawkit.features.store import FeatureStore, concat_features, extractor_key


def test_round_trip_is_float16_and_memory_mapped(tmp_path):
    store = FeatureStore(tmp_path / "features" / "mae")
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    store.write("vid_left", x)
    got = store.read("vid_left", n_frames=7)
    assert isinstance(got, np.memmap) and got.dtype == np.float16 and got.shape == (7, 5)
    np.testing.assert_allclose(got, x, atol=2e-3)
    assert store.has("vid_left") and not store.has("other")


def test_bad_shapes_and_counts(tmp_path):
    store = FeatureStore(tmp_path)
    with pytest.raises(ValueError):
        store.write("v", np.zeros(3))
    with pytest.raises(ValueError):
        store.write("v", np.full((2, 2), np.nan))
    store.write("v", np.zeros((4, 2)))
    with pytest.raises(AbawError, match="4 feature rows but the video has 5"):
        store.read("v", n_frames=5)
    with pytest.raises(AbawError, match="no features"):
        store.read("missing")


def test_key_invalidation(tmp_path):
    ckpt = tmp_path / "enc.pt"
    ckpt.write_bytes(b"weights-1")
    store = FeatureStore(tmp_path / "s")
    key = extractor_key("mae", ckpt, {"pool": "cls", "img_size": 32})
    store.write_info(key, dim=8, flags={"v": {"missing_audio": True}})
    assert store.matches(key) and store.dim == 8
    assert not store.matches(extractor_key("mae", ckpt, {"pool": "mean", "img_size": 32}))
    ckpt.write_bytes(b"weights-2")  # a new checkpoint invalidates the features
    assert not store.matches(extractor_key("mae", ckpt, {"pool": "cls", "img_size": 32}))
    assert not FeatureStore(tmp_path / "empty").matches(key)


def test_concat_features(tmp_path):
    a, b = FeatureStore(tmp_path / "a"), FeatureStore(tmp_path / "b")
    a.write("v", np.ones((3, 2)))
    b.write("v", np.zeros((3, 4)))
    x = concat_features([a, b], "v", 3)
    assert x.shape == (3, 6) and x.dtype == np.float32 and x[:, :2].sum() == 6
