"""Audio features at frame times: tone onset alignment, short/long/missing audio, HF and VGGish loading."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from abawkit.errors import AbawError
from abawkit.features.audio import (
    Fbank,
    align_to_frames,
    build_audio_extractor,
    extract_frames,
)
from abawkit.models.vggish import VGGish, load_vggish

SR = 16000


def tone_wav(path, seconds, onset, freq=1000.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    wave = np.where(t >= onset, 0.5 * np.sin(2 * np.pi * freq * t), 0.0).astype(np.float32)
    sf.write(path, wave, sr)
    return path


def onset_frame(feats):
    """1-based index of the first frame whose energy passes half-way between silence and tone."""
    energy = feats[:, :-1].mean(axis=1)
    mid = (energy.min() + energy.max()) / 2
    return int(np.argmax(energy > mid)) + 1


def test_tone_onset_lands_on_the_right_frame(tmp_path):
    # 25 fps: frame 51 is at 2.00 s, frame 52 at 2.04 s. A tone starting at 2.02 s first shows at 52;
    # a 0-based frame-time mix-up would move it by one frame.
    wav = tone_wav(tmp_path / "a.wav", 4.0, onset=2.02)
    feats = extract_frames(Fbank(n_mels=32), wav, n_frames=100, fps=25.0)
    assert feats.shape == (100, 33)
    assert onset_frame(feats) == 52
    assert (feats[:, -1] == 1).all()


def test_resampled_input_keeps_alignment(tmp_path):
    wav = tone_wav(tmp_path / "a.wav", 3.0, onset=1.02, sr=44100)
    assert onset_frame(extract_frames(Fbank(n_mels=16), wav, n_frames=60, fps=25.0)) == 27


def test_short_long_and_missing_audio(tmp_path):
    short = tone_wav(tmp_path / "short.wav", 1.0, onset=0.0)
    feats = extract_frames(Fbank(n_mels=8), short, n_frames=60, fps=30.0)  # video 2 s, audio 1 s
    assert feats[:30, -1].all() and not feats[30:].any()  # uncovered frames: zeros and flag 0
    long = tone_wav(tmp_path / "long.wav", 5.0, onset=0.0)
    assert extract_frames(Fbank(n_mels=8), long, n_frames=30, fps=30.0).shape == (30, 9)
    missing = extract_frames(Fbank(n_mels=8), None, n_frames=12, fps=30.0)
    assert missing.shape == (12, 9) and not missing.any()


def test_align_interpolates_linearly():
    feats = np.array([[0.0], [10.0]])
    out = align_to_frames(feats, np.array([0.0, 1.0]), duration=1.0, n_frames=4, fps=4.0)
    np.testing.assert_allclose(out[:, 0], [0.0, 2.5, 5.0, 7.5])


@pytest.mark.parametrize("kind", ["hubert", "wav2vec2"])
def test_tiny_transformers_checkpoint_loads_from_disk(tmp_path, kind):
    import transformers

    torch.manual_seed(0)
    cfg_cls, model_cls = (
        (transformers.HubertConfig, transformers.HubertModel) if kind == "hubert"
        else (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model)
    )
    cfg = cfg_cls(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                  conv_dim=(8, 8, 8, 8, 8, 8, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    model_cls(cfg).save_pretrained(tmp_path / kind)
    ext = build_audio_extractor(kind, tmp_path / kind, layer=1)
    assert ext.dim == 16
    feats = extract_frames(ext, tone_wav(tmp_path / "a.wav", 2.0, 0.5), n_frames=50, fps=25.0)
    assert feats.shape == (50, 17) and np.isfinite(feats).all() and feats[:, :-1].std() > 0
    with pytest.raises(AbawError, match="--layer 9"):
        build_audio_extractor(kind, tmp_path / kind, layer=9)
    with pytest.raises(AbawError, match="no config.json"):
        build_audio_extractor(kind, tmp_path, layer=1)


def test_vggish_shapes_and_weight_loading(tmp_path):
    torch.manual_seed(0)
    model = VGGish().eval()
    ex = model.examples(torch.randn(SR * 2), hop_frames=48)  # 2 s, hop 0.48 s
    assert ex.shape[1:] == (1, 96, 64) and ex.shape[0] == 3
    with torch.no_grad():
        assert model(ex).shape == (3, 128)
    torch.save(model.state_dict(), tmp_path / "vggish.pt")
    loaded = load_vggish(tmp_path / "vggish.pt")
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(AbawError, match="not a VGGish state dict"):
        load_vggish(tmp_path / "bad.pt")
    ext = build_audio_extractor("vggish", tmp_path / "vggish.pt", hop_s=0.24)
    feats = extract_frames(ext, tone_wav(tmp_path / "a.wav", 1.5, 0.2), n_frames=30, fps=25.0)
    assert feats.shape == (30, 129) and feats[:, -1].all()


def test_fbank_in_chunks_equals_one_pass():
    """Long tracks are cut into chunks of whole windows (bounded memory) without changing a row."""
    from abawkit.features.audio import Fbank

    wave = np.random.default_rng(0).normal(0, 0.1, 16000 * 3 + 123).astype(np.float32)
    whole, t1 = Fbank(n_mels=32, chunk=10**9)(wave)
    parts, t2 = Fbank(n_mels=32, chunk=37)(wave)
    assert whole.shape == parts.shape == (299, 32) and np.array_equal(t1, t2)
    assert np.allclose(whole, parts, atol=1e-4)
