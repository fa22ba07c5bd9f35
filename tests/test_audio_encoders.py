"""WavLM and the Whisper encoder from transformers folders: the extractor equals the library's forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as T

from abawkit.errors import AbawError
from abawkit.features.audio import SAMPLE_RATE, align_to_frames, build_audio_extractor


def wave(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


def test_wavlm_layer_equals_transformers(tmp_path):
    torch.manual_seed(0)
    cfg = T.WavLMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        conv_dim=(32, 32), conv_stride=(5, 64), conv_kernel=(10, 128), num_conv_pos_embeddings=16,
                        num_conv_pos_embedding_groups=2)
    model = T.WavLMModel(cfg).eval()
    model.save_pretrained(tmp_path / "wavlm")
    w = wave(1.0)
    ext = build_audio_extractor("wavlm", tmp_path / "wavlm", layer=1, chunk_s=20.0)
    feats, times = ext(w)
    with torch.no_grad():
        ref = model(torch.from_numpy(w)[None], output_hidden_states=True).hidden_states[1][0].numpy()
    np.testing.assert_allclose(feats, ref, atol=1e-5)
    assert ext.dim == 32 and np.all(np.diff(times) > 0)
    with pytest.raises(AbawError, match="hidden states 0..2"):
        build_audio_extractor("wavlm", tmp_path / "wavlm", layer=5)


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    torch.manual_seed(0)
    cfg = T.WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2, decoder_layers=1,
                          decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
                          vocab_size=100, max_target_positions=16, pad_token_id=1, bos_token_id=2, eos_token_id=3,
                          decoder_start_token_id=2, suppress_tokens=None, begin_suppress_tokens=None)
    folder = tmp_path_factory.mktemp("whisper") / "whisper-tiny"
    model = T.WhisperModel(cfg).eval()
    model.save_pretrained(folder)
    T.WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder, model


def test_whisper_windows_of_30s_equal_transformers_and_align(whisper):
    folder, model = whisper
    w = wave(41.0)  # two windows: 30 s + 11 s
    ext = build_audio_extractor("whisper", folder, layer=-1)
    feats, times = ext(w)
    fe = T.WhisperFeatureExtractor.from_pretrained(str(folder))
    refs = []
    with torch.no_grad():
        for start in (0, 30 * SAMPLE_RATE):
            x = fe(w[start:start + 30 * SAMPLE_RATE], sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
            refs.append(model.encoder(x).last_hidden_state[0].numpy())
    assert len(feats) == 1500 + 550 and len(times) == len(feats)  # the 2nd window's padding is dropped
    np.testing.assert_allclose(feats[:1500], refs[0], atol=1e-4)
    np.testing.assert_allclose(feats[1500:], refs[1][:550], atol=1e-4)
    assert times[1500] == pytest.approx(30.0) and np.all(np.diff(times) > 0)
    frames = align_to_frames(feats, times, len(w) / SAMPLE_RATE, n_frames=30 * 41 + 30, fps=30.0)
    assert frames.shape == (1260, 33) and frames[:1230, -1].all() and not frames[1230:, -1].any()


def test_whisper_layer_and_no_weights(whisper, tmp_path):
    folder, model = whisper
    ext = build_audio_extractor("whisper", folder, layer=1)
    w = wave(2.0)
    feats, _ = ext(w)
    with torch.no_grad():
        x = T.WhisperFeatureExtractor.from_pretrained(str(folder))(w, sampling_rate=SAMPLE_RATE,
                                                                    return_tensors="pt").input_features
        ref = model.encoder(x, output_hidden_states=True).hidden_states[1][0, :100].numpy()
    np.testing.assert_allclose(feats, ref, atol=1e-4)
    for name in ("whisper", "wavlm"):
        with pytest.raises(AbawError, match="needs --checkpoint"):
            build_audio_extractor(name, None)
        with pytest.raises(AbawError, match="no config.json"):
            build_audio_extractor(name, tmp_path)
