"""The extractor registry: typed settings whose every field is in the store key (``chunk_s`` included),
stores that read back into those settings (old ones too), predict rebuilding from them, hints from names."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
import transformers as T
from test_tmf import make_prep
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.errors import AbawError
from abawkit.features import registry
from abawkit.features.registry import (
    AUDIO_NAMES,
    REGISTRY,
    FbankSettings,
    HFAudioSettings,
    VisionEncoderSettings,
    settings_from_store,
)
from abawkit.features.store import extractor_key, open_store

runner = CliRunner()

EXAMPLE = {"vision": dict(img_size=16, pool="cls", mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2)),
           "text": dict(asr="whisper", asr_id="ab")}


def example(entry: registry.Extractor):
    return entry.settings(**EXAMPLE.get(entry.name, {}))


def other(value):
    """A different value of the same JSON kind."""
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, tuple):
        return (*value[:-1], value[-1] + 1.0)
    return value + 1


def test_audio_names_and_pools_come_from_one_place():
    from abawkit.models.backbones import POOLS

    assert set(AUDIO_NAMES) == {"fbank", "vggish", "hubert", "wav2vec2", "wavlm", "whisper"}
    assert registry.POOLS == POOLS
    assert all(REGISTRY[n].kind == "audio" for n in AUDIO_NAMES) and REGISTRY["vision"].kind == "vision"
    assert [n for n in REGISTRY if not REGISTRY[n].needs_checkpoint] == ["fbank"]


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_settings_field_is_in_the_key(name):
    entry = REGISTRY[name]
    s = example(entry)
    assert dataclasses.is_dataclass(s) and entry.settings.__dataclass_params__.frozen
    key = extractor_key(name, None, s, name)
    assert key["model"] == name
    for f in dataclasses.fields(s):
        changed = copy.copy(s)
        object.__setattr__(changed, f.name, other(getattr(s, f.name)))  # valid or not: the key must see it
        assert extractor_key(name, None, changed, name) != key, f"{name}.{f.name} is not in the key"
    # what a store records reads back into the same dataclass
    info = json.loads(json.dumps(key))
    assert settings_from_store(info, "store.json") == (entry, s)


def test_same_settings_other_model_is_another_key():
    s = HFAudioSettings()
    assert extractor_key("a", None, s, "hubert") != extractor_key("a", None, s, "wavlm")


def test_missing_store_hints_name_the_command(tmp_path):
    work = make_prep(tmp_path / "w", n_videos=1)
    for name in ("wavlm", "whisper", "hubert"):
        with pytest.raises(AbawError, match=f"`abaw extract audio --model {name}`"):
            open_store(work, name)
    with pytest.raises(AbawError, match="`abaw extract vision`"):
        open_store(work, "mae-va")
    res = runner.invoke(app, ["train", "tmf", "-w", str(work), "--task", "va", "--features", "wavlm"])
    assert res.exit_code == 2 and "`abaw extract audio --model wavlm`" in res.output, res.output


def test_old_stores_read_with_defaults_or_are_refused_in_one_line():
    """store.json as today's main writes it: the model inside the settings, no chunk_s, layer null for fbank."""
    entry, s = settings_from_store({"extractor": "hubert", "checkpoint_sha256": "ab",
                                    "settings": {"model": "hubert", "layer": 3, "precision": "fp32"}})
    assert entry.name == "hubert" and s == HFAudioSettings(layer=3, chunk_s=20.0)
    entry, s = settings_from_store({"settings": {"model": "fbank", "layer": None, "n_mels": 32, "precision": "fp32"}})
    assert entry.name == "fbank" and s == FbankSettings(n_mels=32)
    old_vision = {"pool": "mean", "img_size": 16, "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2],
                  "input": "uint8-device", "precision": "bf16"}
    entry, s = settings_from_store({"extractor": "mae-va", "settings": old_vision})
    assert entry.name == "vision" and s == VisionEncoderSettings(16, "mean", (0.5,) * 3, (0.2,) * 3, precision="bf16")
    bad = [({"model": "hubert", "settings": {"layer": -1, "chunk": 5}}, "unknown setting 'chunk'"),
           ({"model": "hubert", "settings": {"chunk_s": "long"}}, "chunk_s = 'long' is not a float"),
           ({"model": "hubert", "settings": {"chunk_s": 0}}, "chunk_s must be > 0"),
           ({"model": "fbank", "settings": {"precision": "bf16"}}, "precision must be fp32"),
           ({"model": "nope", "settings": {}}, "unknown extractor 'nope'")]
    for info, message in bad:
        with pytest.raises(AbawError, match=message) as err:
            settings_from_store(info, "w/features/x/store.json")
        assert str(err.value).startswith("w/features/x/store.json: ") and "\n" not in str(err.value)


# ----------------------------------------------------------------------------- chunk_s end to end
@pytest.fixture(scope="module")
def hubert(tmp_path_factory):
    torch.manual_seed(0)
    cfg = T.HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8, 8, 8, 8, 8, 8, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    folder = tmp_path_factory.mktemp("hubert") / "hubert"
    T.HubertModel(cfg).eval().save_pretrained(folder)
    return folder


def extract(work, folder, *sets):
    res = runner.invoke(app, ["extract", "audio", "-w", str(work), "--model", "hubert", "--checkpoint", str(folder),
                              "--set", "audio.device=cpu", *[a for s in sets for a in ("--set", s)]])
    assert res.exit_code == 0, res.output
    return res.output


def predict_features(work, video: str) -> np.ndarray:
    """What `abaw predict` re-extracts for the store's video ``video`` (its prep WAV, its 40 frames at 25 fps)."""
    from pathlib import Path

    from abawkit.inference.clip import Clip
    from abawkit.inference.extractors import audio_part
    from abawkit.inference.models import Models
    from abawkit.stages.predict import PredictConfig

    wav = Path(work / f"{video}.wav")
    clip = Clip(Path(f"{video}.mp4"), np.arange(40) / 25.0, 25.0, np.zeros(0, int), np.zeros(0, int), [], wav)
    return audio_part(Models(work, PredictConfig(), torch.device("cpu")), "hubert", clip)


def test_chunk_s_is_in_the_key_changes_the_features_and_predict_uses_it(tmp_path, hubert):
    work = make_prep(tmp_path / "w", n_videos=2)  # 1.6 s of audio per video
    extract(work, hubert)
    first = np.asarray(open_store(work, "hubert").read("v1", 40), np.float32)
    assert open_store(work, "hubert").info()["settings"]["chunk_s"] == 20.0
    assert "already done" in extract(work, hubert, "audio.chunk_s=20")
    out = extract(work, hubert, "audio.chunk_s=0.5")
    assert "already done" not in out and "skip" not in out
    store = open_store(work, "hubert")
    assert store.info()["settings"] == {"layer": -1, "chunk_s": 0.5, "precision": "fp32"}
    half = np.asarray(store.read("v1", 40), np.float32)
    assert np.abs(half - first).max() > 0.05  # 0.5 s windows encode other context than one 1.6 s window
    again = predict_features(work, "v1")  # predict rebuilds the extractor from store.json: chunk_s 0.5
    np.testing.assert_allclose(again, half, atol=2e-2)
    assert np.abs(again - first).max() > 0.05


def test_an_old_store_predicts_with_the_default_chunk(tmp_path, hubert):
    work = make_prep(tmp_path / "w", n_videos=2)
    extract(work, hubert)
    path = work / "features" / "hubert" / "store.json"
    info = json.loads(path.read_text())
    old = {k: v for k, v in info.items() if k != "model"}  # as today's main wrote it
    old["settings"] = {"model": "hubert", "layer": -1, "precision": "fp32"}
    path.write_text(json.dumps(old))
    stored = np.asarray(open_store(work, "hubert").read("v1", 40), np.float32)
    np.testing.assert_allclose(predict_features(work, "v1"), stored, atol=2e-2)
    assert "already done" not in extract(work, hubert)  # the old key lacks chunk_s: redone, never "done"


def test_bad_audio_settings_are_one_line(tmp_path):
    work = make_prep(tmp_path / "w", n_videos=1)
    for args, message in ((["--model", "nope"], "unknown audio model 'nope'"),
                          (["--model", "hubert", "--checkpoint", str(tmp_path), "--set", "audio.chunk_s=0"],
                           "chunk_s must be > 0"),
                          (["--model", "wavlm"], "--model wavlm needs --checkpoint")):
        res = runner.invoke(app, ["extract", "audio", "-w", str(work), *args])
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output
    assert not (work / "features").exists() or not any((work / "features").iterdir())


def test_a_store_reads_back_its_extractor(tmp_path):
    from abawkit.features.store import FeatureStore

    store = FeatureStore(tmp_path / "hubert")
    store.write_info(extractor_key("hubert", None, HFAudioSettings(layer=2, chunk_s=4.0), "hubert"), 17)
    entry, s = store.extractor()
    assert entry is REGISTRY["hubert"] and s == HFAudioSettings(layer=2, chunk_s=4.0)
    (tmp_path / "hubert" / "store.json").write_text(json.dumps({"model": "hubert", "settings": {"layer": "x"}}))
    with pytest.raises(AbawError, match=r"hubert/store.json: invalid settings for extractor hubert: layer = 'x'"):
        store.extractor()
