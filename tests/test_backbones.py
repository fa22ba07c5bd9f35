"""Today's vision backbones from the files users download, against each library's own forward pass.

Every test builds a tiny random-init model with its own library (transformers, open_clip, timm), saves
it the way it is distributed, loads it through ``inference.extractors.load_vision_encoder`` (the path of
``abaw extract vision`` / ``predict``) and encodes PNG crops through ``features.vision.encode_crops``
(ImageNet-normalised input, re-normalised by the backbone). The reference is the library's forward
pass on the same pixels with the backbone's own mean / std.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import timm
import torch
import transformers as T
from PIL import Image

from abawkit.errors import AbawError
from abawkit.features.vision import VisionSettings, encode_crops
from abawkit.models.backbones import CLIP_NORM, IMAGENET
from abawkit.inference.extractors import load_vision_encoder

CPU = torch.device("cpu")


def crops(tmp_path, size: int, n: int = 2) -> tuple[list[str], torch.Tensor]:
    """``n`` random PNG crops of ``size`` px -> (paths, pixels [n, 3, size, size] in [0, 1])."""
    rng = np.random.default_rng(size)
    paths, pixels = [], []
    for i in range(n):
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        path = tmp_path / f"crop{size}_{i}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
        pixels.append(torch.from_numpy(img).permute(2, 0, 1).float() / 255)
    return paths, torch.stack(pixels)


def own_norm(x: torch.Tensor, norm: tuple) -> torch.Tensor:
    return (x - torch.tensor(norm[0]).view(1, 3, 1, 1)) / torch.tensor(norm[1]).view(1, 3, 1, 1)


def ours(tmp_path, source, size: int, pool: str, arch: str = "") -> np.ndarray:
    """abawkit's features: load like ``abaw extract vision --checkpoint`` and encode PNG crops."""
    encoder, _, _ = load_vision_encoder(source, arch, size)
    paths, _ = crops(tmp_path, size)
    return np.concatenate(list(encode_crops(encoder, paths, VisionSettings(size, pool, 8, 0), CPU))).astype(np.float32)


def assert_close(a: np.ndarray, b: torch.Tensor, cos: float) -> None:
    b = b.detach().float().numpy()
    assert a.shape == b.shape
    sims = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert sims.min() >= cos, sims


def hf_pools(out, prefix: int) -> dict[str, torch.Tensor]:
    """cls / mean / cls+mean of a transformers model's normalised last hidden state."""
    h = out.last_hidden_state
    cls, mean = h[:, 0], h[:, prefix:].mean(1)
    return {"cls": cls, "mean": mean, "cls+mean": torch.cat([cls, mean], -1)}


# ----------------------------------------------------------------------------- DINOv2
def tiny_dinov2(registers: int = 0, image_size: int = 518):
    """A transformers DINOv2 with the release's 518 px position grid (37 x 37 at patch 14), tiny width."""
    torch.manual_seed(0)
    kw = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512,
              image_size=image_size, patch_size=14, layerscale_value=0.5)
    if registers:
        return T.Dinov2WithRegistersModel(T.Dinov2WithRegistersConfig(num_register_tokens=registers, **kw)).eval()
    return T.Dinov2Model(T.Dinov2Config(**kw)).eval()


def official_names(hf_sd: dict) -> dict:
    """transformers' DINOv2 file names -> the official facebookresearch/dinov2 release names."""
    out = {}
    for k, v in hf_sd.items():
        k = k.replace("embeddings.patch_embeddings.projection", "patch_embed.proj")
        k = {"embeddings.cls_token": "cls_token", "embeddings.mask_token": "mask_token",
             "embeddings.position_embeddings": "pos_embed", "embeddings.register_tokens": "register_tokens"}.get(k, k)
        k = re.sub(r"^encoder\.layer\.", "blocks.", k).replace("layernorm.", "norm.")
        k = re.sub(r"layer_scale(\d)\.lambda1", r"ls\1.gamma", k).replace("attention.output.dense", "attn.proj")
        out[k] = v
    for i in range(2):
        for p in ("weight", "bias"):
            parts = [out.pop(f"blocks.{i}.attention.attention.{n}.{p}") for n in ("query", "key", "value")]
            out[f"blocks.{i}.attn.qkv.{p}"] = torch.cat(parts)
    return out


def hf_state(model) -> dict:
    """The state dict as ``save_pretrained`` writes it (transformers 4.x names)."""
    import tempfile

    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        return load_file(f"{d}/model.safetensors")


@pytest.mark.parametrize("registers", [0, 4])
def test_dinov2_official_release_format(tmp_path, registers):
    model = tiny_dinov2(registers)
    sd = official_names(hf_state(model))
    assert "mask_token" in sd and "blocks.0.ls1.gamma" in sd and sd["pos_embed"].shape[1] == 1 + 37 * 37
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(sd, path)
    _, pixels = crops(tmp_path, 518)
    with torch.no_grad():
        ref = hf_pools(model(pixel_values=own_norm(pixels, IMAGENET)), 1 + registers)
    assert_close(ours(tmp_path, path, 518, "cls+mean"), ref["cls+mean"], 0.999)  # both poolings at once
    _, small = crops(tmp_path, 112)  # the 518 px grid interpolated to 8 x 8
    with torch.no_grad():
        ref = hf_pools(model(pixel_values=own_norm(small, IMAGENET)), 1 + registers)
    assert_close(ours(tmp_path, path, 112, "cls+mean"), ref["cls+mean"], 0.99)


@pytest.mark.parametrize("registers", [0, 4])
def test_dinov2_transformers_folder(tmp_path, registers):
    model = tiny_dinov2(registers, image_size=56)
    model.save_pretrained(tmp_path / "dinov2")
    for size in (56, 84):  # native grid, then interpolated
        _, pixels = crops(tmp_path, size)
        with torch.no_grad():
            ref = hf_pools(model(pixel_values=own_norm(pixels, IMAGENET)), 1 + registers)
        assert_close(ours(tmp_path, tmp_path / "dinov2", size, "mean"), ref["mean"], 0.999 if size == 56 else 0.99)


# ----------------------------------------------------------------------------- CLIP
def test_clip_transformers_folder(tmp_path):
    torch.manual_seed(0)
    cfg = T.CLIPVisionConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                             image_size=56, patch_size=14, hidden_act="quick_gelu")
    model = T.CLIPVisionModel(cfg).eval()
    model.save_pretrained(tmp_path / "clip")
    _, pixels = crops(tmp_path, 56)
    with torch.no_grad():
        out = model(pixel_values=own_norm(pixels, CLIP_NORM))
        post = getattr(model, "vision_model", model).post_layernorm(out.last_hidden_state)
    assert_close(ours(tmp_path, tmp_path / "clip", 56, "cls"), out.pooler_output, 0.999)
    assert_close(ours(tmp_path, tmp_path / "clip", 56, "mean"), post[:, 1:].mean(1), 0.999)
    _, big = crops(tmp_path, 84)
    with torch.no_grad():
        ref = model(pixel_values=own_norm(big, CLIP_NORM), interpolate_pos_encoding=True).pooler_output
    assert_close(ours(tmp_path, tmp_path / "clip", 84, "cls"), ref, 0.99)


def test_openclip_visual_state_dict(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(0)
    model = open_clip.CLIP(embed_dim=32, vision_cfg=dict(layers=2, width=128, head_width=64, patch_size=14, image_size=56),
                           text_cfg=dict(context_length=8, vocab_size=64, width=32, heads=2, layers=1)).eval()
    torch.save(model.state_dict(), tmp_path / "open_clip_pytorch_model.bin")  # the whole CLIP, as released
    visual = model.visual
    visual.proj = None  # the pooled width-D embedding (abawkit stops before the joint projection)
    _, pixels = crops(tmp_path, 56)
    with torch.no_grad():
        ref = visual(own_norm(pixels, CLIP_NORM))
    assert_close(ours(tmp_path, tmp_path / "open_clip_pytorch_model.bin", 56, "cls"), ref, 0.999)


# ----------------------------------------------------------------------------- by timm name
def test_eva02_by_timm_name(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model("eva02_tiny_patch14_224", pretrained=False, num_classes=0).eval()
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    with pytest.raises(AbawError, match="model.arch"):
        load_vision_encoder(tmp_path / "model.safetensors")
    _, pixels = crops(tmp_path, 224)
    with torch.no_grad():
        x = own_norm(pixels, CLIP_NORM)  # EVA-02 uses CLIP's mean / std
        ref = model.forward_head(model.forward_features(x), pre_logits=True)  # patch mean through fc_norm
    assert_close(ours(tmp_path, tmp_path / "model.safetensors", 224, "mean", "eva02_tiny_patch14_224"), ref, 0.999)


def test_convnext_timm_hub_folder_and_name(tmp_path):
    torch.manual_seed(0)
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=0).eval()
    folder = tmp_path / "convnext"
    folder.mkdir()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps({"architecture": "convnext_atto", "num_features": 320,
                                                    "pretrained_cfg": {"mean": list(IMAGENET[0]), "std": list(IMAGENET[1])}}))
    _, pixels = crops(tmp_path, 64)
    with torch.no_grad():
        ref = model(own_norm(pixels, IMAGENET))  # global average + head norm
    assert_close(ours(tmp_path, folder, 64, "mean"), ref, 0.999)
    assert_close(ours(tmp_path, folder / "pytorch_model.bin", 64, "mean", "convnext_atto"), ref, 0.999)
    with pytest.raises(AbawError, match="no class token"):
        ours(tmp_path, folder, 64, "cls")


def test_wrong_timm_name_is_one_clear_error(tmp_path):
    torch.save(timm.create_model("convnext_atto", num_classes=0).state_dict(), tmp_path / "w.pth")
    with pytest.raises(AbawError, match="unknown timm model"):
        load_vision_encoder(tmp_path / "w.pth", "convnext_nope")
    with pytest.raises(AbawError, match="does not fit convnext_femto"):
        load_vision_encoder(tmp_path / "w.pth", "convnext_femto")


# ----------------------------------------------------------------------------- finetune / extract
def test_layer_decay_any_depth_and_convnext_by_stage():
    from abawkit.models.backbones import BackboneArch, TimmBackbone
    from abawkit.models.heads import FrameModel, layer_decay

    arch = BackboneArch("vit_small_patch14_dinov2", "dinov2", 28, 0, 0,
                        kwargs={"embed_dim": 64, "depth": 5, "num_heads": 1})
    model = FrameModel(arch, 3, "cls+mean", 0.0, encoder=TimmBackbone(arch))
    assert model.head.in_features == 128 and model.arch.depth == 5
    scale = layer_decay(model, 0.5)
    f = {i: scale(f"encoder.model.blocks.{i}.mlp.fc1.weight") for i in range(5)}
    assert scale("head.weight") == 1.0 and all(f[i] < f[i + 1] for i in range(4))
    assert scale("encoder.model.patch_embed.proj.weight") < f[0] and f[4] < 1.0
    conv = FrameModel(BackboneArch("convnext_atto", "convnext", 32, 0, 0, 0), 2, "mean", 0.0)
    scale = layer_decay(conv, 0.5)
    names = [n for n, _ in conv.named_parameters()]
    stage = {s: {scale(n) for n in names if n.startswith(f"encoder.model.stages.{s}.")} for s in range(4)}
    assert all(len(v) == 1 for v in stage.values())  # one factor per stage
    f = [v.pop() for v in stage.values()]
    assert f[0] < f[1] < f[2] < f[3] < 1.0 and scale("encoder.model.stem.0.weight") < f[0]


def test_finetune_init_and_extract_with_a_dinov2_folder(prep_workspace, tmp_path):
    """``abaw finetune --init DINOV2_FOLDER`` then ``extract vision`` (fine-tuned and frozen, cls+mean)."""
    import shutil

    from typer.testing import CliRunner

    from abawkit.cli import app
    from abawkit.features.store import open_store
    from abawkit.models.checkpoints import load_frame_model

    work = tmp_path / "work"
    shutil.copytree(prep_workspace, work)
    tiny_dinov2(image_size=518).save_pretrained(tmp_path / "dinov2")
    fast = ["--set", "train.max_steps=2", "--set", "train.batch_size=8", "--set", "train.global_batch=0", "--set", "train.num_workers=0",
            "--set", "train.compile=false", "--set", "model.img_size=28", "--set", "model.layer_decay=0.7"]
    run = CliRunner().invoke
    res = run(app, ["finetune", "--task", "expr", "--init", str(tmp_path / "dinov2"), "--workdir", str(work), *fast])
    assert res.exit_code == 0, res.output
    model, meta = load_frame_model(work / "finetune/expr/fold0/best.pt")
    assert meta["arch"]["timm"] == "vit_small_patch14_dinov2" and model.arch.img_size == 28
    res = run(app, ["extract", "vision", "--task", "expr", "--workdir", str(work), "--set", "vision.workers=0"])
    assert res.exit_code == 0, res.output
    assert open_store(work, "mae-expr").dim == 128
    res = run(app, ["extract", "vision", "--checkpoint", str(tmp_path / "dinov2"), "--name", "dinov2", "--pool",
                    "cls+mean", "--workdir", str(work), "--set", "vision.img_size=42", "--set", "vision.workers=0"])
    assert res.exit_code == 0, res.output
    store = open_store(work, "dinov2")
    assert store.dim == 256 and store.info()["settings"]["mean"] == list(IMAGENET[0])
    # predict re-runs the recorded extractor (arch, img_size, pool) on a clip's crops: the same rows
    from abawkit.data.tables import load_prep
    from abawkit.inference.extractors import vision_part
    from abawkit.inference.models import Models
    from abawkit.stages.predict import PredictConfig

    frames = load_prep(work).frames
    video = sorted(frames["video"].unique())[1]
    rows = frames[(frames["video"] == video) & frames["crop"].notna()].sort_values("frame")
    models = Models(work, PredictConfig(), torch.device("cpu"))
    again = vision_part(models, "dinov2", list(rows["crop"].astype(str)))
    stored = store.read(video, int((frames["video"] == video).sum()))[rows["frame"].to_numpy() - 1].astype(np.float32)
    assert again.shape == (len(rows), 256) and np.allclose(again, stored, atol=2e-2)


def test_broken_backbone_files_are_one_line_errors(tmp_path):
    sd = official_names(hf_state(tiny_dinov2(image_size=28)))
    del sd["patch_embed.proj.weight"]
    torch.save(sd, tmp_path / "cut.pth")
    with pytest.raises(AbawError, match="lacks 'patch_embed.proj.weight'"):
        load_vision_encoder(tmp_path / "cut.pth")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AbawError, match="no weights"):
        load_vision_encoder(tmp_path / "empty")
