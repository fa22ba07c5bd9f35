"""Device consistency of every model and extractor, checked without a GPU.

Each model is moved to the ``meta`` device (standing in for CUDA) and driven through its real call
path; any CPU tensor mixed in raises exactly as it would on a card ("stft input and window must be on
the same device", "Tensor on device meta is not on the expected device cpu"). Meta tensors hold no
data, so ``meta_host`` lets the final copy to the host (``.cpu()`` / ``.numpy()``) return zeros of the
right shape: the path runs to its end, only the numbers are not real.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

META = torch.device("meta")


@contextlib.contextmanager
def meta_host(monkeypatch: pytest.MonkeyPatch):
    """``meta_tensor.cpu()`` / ``.numpy()`` -> zeros of its shape and dtype (host copies of a fake device)."""
    cpu, numpy = torch.Tensor.cpu, torch.Tensor.numpy

    def fake_cpu(self, *a, **k):
        return torch.zeros(self.shape, dtype=self.dtype) if self.is_meta else cpu(self, *a, **k)

    def fake_numpy(self, *a, **k):
        return numpy(fake_cpu(self), *a, **k) if self.is_meta else numpy(self, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(torch.Tensor, "cpu", fake_cpu)
        m.setattr(torch.Tensor, "numpy", fake_numpy)
        yield


def wave(seconds: float = 2.0) -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000))).astype(np.float32)


def test_vggish_extractor_keeps_the_waveform_on_the_model_device(tmp_path, monkeypatch):
    from abawkit.features.audio import build_audio_extractor
    from abawkit.models.vggish import VGGish

    torch.save(VGGish().state_dict(), tmp_path / "vggish.pt")
    ext = build_audio_extractor("vggish", tmp_path / "vggish.pt", hop_s=0.48, device="meta")
    with meta_host(monkeypatch):
        feats, times = ext(wave(2.0))  # on main: "stft input and window must be on the same device"
    assert feats.shape == (3, 128) and len(times) == 3


@pytest.mark.parametrize("kind", ["hubert", "wav2vec2"])
def test_transformers_audio_on_another_device(tmp_path, monkeypatch, kind):
    import transformers

    from abawkit.features.audio import build_audio_extractor

    cfg_cls, model_cls = ((transformers.HubertConfig, transformers.HubertModel) if kind == "hubert"
                          else (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model))
    cfg = cfg_cls(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                  conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    model_cls(cfg).save_pretrained(tmp_path / kind)
    ext = build_audio_extractor(kind, tmp_path / kind, layer=1, device="meta")
    with meta_host(monkeypatch):
        feats, times = ext(wave(1.0))
    assert feats.shape == (len(times), 16) and len(times) > 0


def test_vision_encoder_extraction_path_on_another_device(tmp_path, monkeypatch):
    from PIL import Image

    from abawkit.features.vision import VisionSettings, encode_crops
    from abawkit.models.mae import ViTEncoder, encoder_arch

    paths = []
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.jpg")
        paths.append(str(tmp_path / f"{i}.jpg"))
    encoder = ViTEncoder(encoder_arch("micro", img_size=32, patch=8)).eval().to(META)
    with meta_host(monkeypatch):
        out = list(encode_crops(encoder, paths, VisionSettings(img_size=32, pool="mean", batch_size=2, workers=0), META))
    assert [o.shape for o in out] == [(2, encoder.arch.dim), (1, encoder.arch.dim)]


def test_mae_pretraining_forward_on_another_device():
    from abawkit.models.mae import MAE, encoder_arch

    model = MAE(encoder_arch("micro", img_size=32, patch=8), decoder_dim=16, decoder_depth=1, decoder_heads=2).to(META)
    loss, pred, mask = model(torch.zeros(2, 3, 32, 32, device=META))  # random masking draws on the model's device
    assert loss.device == META and pred.shape[:2] == mask.shape


@pytest.mark.parametrize("train", [True, False])
def test_augmentation_runs_where_the_batch_is(train):
    from abawkit.data.augment import BatchAugment, draw_params, identity_params

    params = torch.stack([draw_params() if train else identity_params() for _ in range(2)]).to(META)
    imgs = torch.zeros(2, 3, 16, 16, dtype=torch.uint8, device=META)
    x, y = BatchAugment(32, train)((imgs, params, torch.zeros(2, 1, device=META)))
    assert x.shape == (2, 3, 32, 32) and x.device == META and x.dtype == torch.float32


def test_frame_model_prediction_path_on_another_device(tmp_path, monkeypatch):
    """finetune.predict (the path `abaw predict --model frame` and the finetune stage use) on a saved best.pt."""
    from PIL import Image

    from abawkit.data.faces import FaceCrops, eval_loader
    from abawkit.models.checkpoints import load_frame_model, save_checkpoint
    from abawkit.models.heads import FrameModel
    from abawkit.models.mae import encoder_arch
    from abawkit.inference.frame import predict_frames as predict

    arch = encoder_arch("micro", img_size=16, patch=8)
    m = FrameModel(arch, 8, pool="cls")
    save_checkpoint(tmp_path / "best.pt", m.state_dict(), arch, "frame", task="expr", fold=0, n_outputs=8, pool="cls")
    model, _ = load_frame_model(tmp_path / "best.pt")
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.jpg")
    loader = eval_loader(FaceCrops([str(tmp_path / f"{i}.jpg") for i in range(3)], 16, False), 2)
    with meta_host(monkeypatch):
        values = predict(model.to(META), loader, "expr", META, amp=True)
    assert values.shape == (3, 8)


@pytest.mark.parametrize("positions", ["learnable", "sinusoidal"])
def test_tmf_prediction_path_on_another_device(monkeypatch, positions):
    """stages.tmf.predict (the TMF stage's val/test predictions and `abaw predict --model tmf`)."""
    from abawkit.data.clips import VideoData
    from abawkit.stages.tmf import (
        ClipConfig,
        ModelConfig,
        TMFConfig,
        build_model,
        predict,
    )

    cfg = TMFConfig(task="va", clips=ClipConfig(length=8, stride=4, eval_stride=4),
                    model=ModelConfig(d_model=8, layers=1, heads=2, positions=positions))
    model = build_model(cfg, 6).to(META)
    data = [VideoData("v", (np.zeros((10, 4), np.float16), np.zeros((10, 2), np.float32)), np.zeros((10, 2), np.float32))]
    with meta_host(monkeypatch):
        (values,) = predict(model, data, cfg, META)
    assert values.shape == (10, 2)


def test_meta_host_catches_a_cpu_tensor_mixed_in(monkeypatch):
    """The check itself: a model fed a CPU tensor while its weights are on the device fails here."""
    lin = torch.nn.Linear(3, 2).to(META)
    with meta_host(monkeypatch), pytest.raises(RuntimeError, match="device"):
        lin(torch.zeros(1, 3))
