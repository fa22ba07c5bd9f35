"""``abaw extract text --encoder hashing``: a weight-free text embedding (scikit-learn's HashingVectorizer over a
segment's words) for the synthetic release: deterministic, its width and kind in the store key, no checkpoint
asked for, and never a random-weight network standing in."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.data.tables import load_prep
from abawkit.features import registry
from abawkit.features.asr import Segment
from abawkit.features.store import FeatureStore
from abawkit.features.text import HashingEncoder, write_transcript

runner = CliRunner()


def test_hashing_encoder_is_sklearns_hashing_of_the_words_and_deterministic():
    texts = ["maybe but I am unsure", "coffee and then work", ""]
    a, b = HashingEncoder(64)(texts), HashingEncoder(64)(texts)
    ref = HashingVectorizer(n_features=64, alternate_sign=False, norm="l2").transform(texts).toarray()
    assert a.shape == (3, 64) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, ref, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(a[:2], axis=1), 1.0, atol=1e-6)
    assert not a[2].any()  # no words: zeros
    assert not np.array_equal(a[0], a[1])
    assert HashingEncoder(8)([]).shape == (0, 8)


def test_hashing_is_a_setting_in_the_key_and_needs_no_checkpoint():
    entry = registry.get(registry.TEXT)
    hashing = registry.TextSettings(asr="transcripts", asr_id="x", encoder="hashing", width=32)
    assert entry.build(hashing, None, "cpu").dim == 32  # no folder: built without weights
    with pytest.raises(Exception, match="--encoder"):  # a transformers encoder still needs its folder
        entry.build(registry.TextSettings(asr="transcripts", asr_id="x"), None, "cpu")
    with pytest.raises(ValueError, match="encoder must be"):
        registry.TextSettings(asr="transcripts", asr_id="x", encoder="random")


@pytest.fixture
def ws(prep_workspace, tmp_path) -> Path:
    shutil.copytree(prep_workspace, tmp_path / "w")
    return tmp_path / "w"


def test_extract_text_hashing_puts_hashed_words_on_their_frames(ws, tmp_path):
    prep = load_prep(ws)
    v0 = prep.videos["video"].iloc[0]
    given = tmp_path / "given"
    write_transcript(given / f"{v0}.json", v0, "by hand", [Segment(0.5, 1.0, "maybe but unsure")], None)
    args = ["extract", "text", "-w", str(ws), "-s", "threads=1", "--transcripts", str(given), "--encoder", "hashing"]
    result = runner.invoke(app, [*args, "-s", "text.width=16"])
    assert result.exit_code == 0, result.output
    s = FeatureStore(ws / "features" / "text")
    arr = np.asarray(s.read(v0), np.float32)
    fps = float(prep.videos.set_index("video").loc[v0, "fps"])
    k = int(np.argmax(np.arange(len(arr)) / fps >= 0.5))
    assert arr.shape[1] == 17 and arr[k, -1] == 1.0
    np.testing.assert_allclose(arr[k, :-1], HashingEncoder(16)(["maybe but unsure"])[0], atol=2e-3)  # float16
    info = s.info()
    assert info["settings"]["encoder"] == "hashing" and info["settings"]["width"] == 16
    result = runner.invoke(app, [*args, "-s", "text.width=8"])  # another width: another key, redone
    assert result.exit_code == 0, result.output
    assert FeatureStore(ws / "features" / "text").info()["settings"]["width"] == 8
    assert np.asarray(FeatureStore(ws / "features" / "text").read(v0)).shape[1] == 9
