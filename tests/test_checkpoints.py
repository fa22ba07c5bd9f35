"""Checkpoint adapters: ours, official MAE (+ global-pool), timm ViT, Hugging Face ViTMAE."""

from __future__ import annotations

import pytest
import timm
import torch

from abawkit.errors import AbawError
from abawkit.models.checkpoints import (
    checkpoint_arch,
    detect_format,
    load_encoder,
    load_frame_model,
    read_checkpoint,
    save_checkpoint,
)
from abawkit.models.heads import FrameModel
from abawkit.models.mae import MAE, ViTEncoder, encoder_arch

ARCH = encoder_arch("micro")
SMALL = dict(decoder_dim=32, decoder_depth=1, decoder_heads=2)


def same_encoder(enc: ViTEncoder, ref: dict) -> None:
    for k, v in enc.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_own_formats_roundtrip(tmp_path):
    mae = MAE(ARCH, **SMALL)
    path = save_checkpoint(tmp_path / "m.pt", mae.state_dict(), ARCH, "mae")
    obj = read_checkpoint(path)
    assert detect_format(obj) == "abawkit" and checkpoint_arch(obj) == ARCH
    enc = ViTEncoder(ARCH)
    report = load_encoder(enc, path)
    assert any(k.startswith("decoder_") for k in report.ignored)
    same_encoder(enc, mae.state_dict())
    fm = FrameModel(ARCH, 8, pool="mean")
    save_checkpoint(tmp_path / "f.pt", fm.state_dict(), ARCH, "frame", n_outputs=8, pool="mean", task="expr")
    back, meta = load_frame_model(tmp_path / "f.pt")
    x = torch.rand(2, 3, 32, 32)
    assert meta["task"] == "expr" and torch.allclose(back(x), fm.eval()(x))


def test_official_mae_and_global_pool_variant(tmp_path):
    mae = MAE(ARCH, **SMALL)
    sd = mae.state_dict()
    torch.save({"model": sd}, tmp_path / "mae.pth")
    enc = ViTEncoder(ARCH)
    assert load_encoder(enc, tmp_path / "mae.pth").format == "mae"
    same_encoder(enc, sd)
    gp = {("fc_norm." + k[5:] if k.startswith("norm.") else k): v for k, v in sd.items() if not k.startswith("decoder")}
    gp["head.weight"] = torch.zeros(7, ARCH.dim)
    torch.save({"model": gp}, tmp_path / "gp.pth")
    report = load_encoder(ViTEncoder(ARCH), tmp_path / "gp.pth")
    assert "fc_norm.weight" in report.renamed and "head.weight" in report.ignored


def test_timm_vit_state_dict_gives_same_features():
    vit = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=96, depth=4, num_heads=3, num_classes=5)
    enc = ViTEncoder(ARCH)
    assert load_encoder(enc, vit.state_dict()).format == "timm"
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(enc.eval()(x), vit.eval().forward_features(x), atol=1e-5)


def test_pos_embed_is_resampled_for_another_image_size():
    mae = MAE(encoder_arch("micro", img_size=64), **SMALL)
    enc = ViTEncoder(ARCH)  # 32 px: 4x4 grid instead of 8x8
    report = load_encoder(enc, {"model": mae.state_dict()})
    assert report.resized and enc.pos_embed.shape == (1, 17, 96)


def test_huggingface_vitmae_gives_same_features():
    from transformers import ViTMAEConfig, ViTMAEModel

    cfg = ViTMAEConfig(hidden_size=96, num_hidden_layers=4, num_attention_heads=3, intermediate_size=384,
                       image_size=32, patch_size=8, mask_ratio=0.0, layer_norm_eps=1e-6)
    hf = ViTMAEModel(cfg).eval()
    enc = ViTEncoder(ARCH).eval()
    assert load_encoder(enc, {f"vit.{k}": v for k, v in hf.state_dict().items()}).format == "hf"
    x = torch.rand(2, 3, 32, 32)
    noise = torch.arange(16.0).expand(2, 16)  # identity order: nothing masked, nothing shuffled
    out = hf(pixel_values=x, noise=noise).last_hidden_state
    assert torch.allclose(enc(x), out, atol=1e-4)


def test_mismatches_are_refused(tmp_path):
    other = MAE(encoder_arch("micro", patch=16), **SMALL)
    with pytest.raises(AbawError, match="shape mismatch"):
        load_encoder(ViTEncoder(ARCH), {"model": other.state_dict()})
    sd = MAE(ARCH, **SMALL).state_dict()
    del sd["blocks.3.attn.qkv.weight"]
    with pytest.raises(AbawError, match="missing blocks.3.attn.qkv.weight"):
        load_encoder(ViTEncoder(ARCH), {"model": sd})
    (tmp_path / "junk.pt").write_text("nope")
    with pytest.raises(AbawError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(AbawError, match="unknown checkpoint format"):
        load_encoder(ViTEncoder(ARCH), {"foo": torch.zeros(1)})


def test_checkpoints_do_not_import_the_engine(tmp_path):
    """models/checkpoints.py writes through abawkit.statefile: saving a checkpoint never loads the training loop."""
    import subprocess
    import sys

    code = ("import sys; from abawkit.models.checkpoints import save_checkpoint, read_checkpoint;"
            "from abawkit.models.mae import encoder_arch; import torch;"
            f"save_checkpoint(r'{tmp_path / 'c.pt'}', {{'w': torch.zeros(1)}}, encoder_arch('micro'), 'encoder');"
            f"read_checkpoint(r'{tmp_path / 'c.pt'}'); print('abawkit.engine' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
