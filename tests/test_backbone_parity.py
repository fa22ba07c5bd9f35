"""Backbones give the model's own embedding: DINOv2 ViT-g loads, and every timm family pools as it does itself.

References are each library's own pooled output on the same pixels (timm ``forward_head(forward_features(x),
pre_logits=True)``, transformers ``pooler_output``); ours goes through the code of ``abaw extract vision``
(``inference.extractors.load_vision_encoder`` / ``models.backbones.default_pool`` / ``features.vision.encode_crops``)
or of ``abaw finetune --init`` (``stages.finetune.build_model``). Random-init models with real architectures
(depth reduced through timm's ``depth=``), nothing downloaded.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import timm
import torch
import transformers as T
from test_backbones import crops, own_norm

from abawkit.errors import AbawError
from abawkit.features.vision import VisionSettings, encode_crops
from abawkit.models.backbones import (
    CLIP_NORM,
    IMAGENET,
    BackboneArch,
    TimmBackbone,
    default_pool,
)
from abawkit.inference.extractors import load_vision_encoder

CPU = torch.device("cpu")


def encode(encoder, paths: list[str], size: int, pool: str) -> np.ndarray:
    return np.concatenate(list(encode_crops(encoder, paths, VisionSettings(size, pool, 8, 0), CPU))).astype(np.float32)


def cosines(a: np.ndarray, b: torch.Tensor) -> np.ndarray:
    b = b.detach().float().numpy()
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# ----------------------------------------------------------------------------- DINOv2 ViT-g (SwiGLU)
def hf_giant(width: int, heads: int, depth: int, image_size: int):
    """A transformers DINOv2 with ViT-g's structure (SwiGLU FFN, mlp_ratio 4 -> fused hidden 2 x 2/3 x 4 x width)."""
    torch.manual_seed(0)
    cfg = T.Dinov2Config(hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads, mlp_ratio=4,
                         use_swiglu_ffn=True, image_size=image_size, patch_size=14, layerscale_value=0.5)
    return T.Dinov2Model(cfg).eval()


def official_layout(hf_folder) -> dict:
    """A ``save_pretrained`` folder's weights -> the facebookresearch/dinov2 release names (``mlp.w12`` / ``w3``)."""
    from safetensors.torch import load_file

    out = {}
    for k, v in load_file(hf_folder / "model.safetensors").items():
        k = k.replace("embeddings.patch_embeddings.projection", "patch_embed.proj")
        k = {"embeddings.cls_token": "cls_token", "embeddings.mask_token": "mask_token",
             "embeddings.position_embeddings": "pos_embed"}.get(k, k)
        k = re.sub(r"^encoder\.layer\.", "blocks.", k).replace("layernorm.", "norm.")
        k = re.sub(r"layer_scale(\d)\.lambda1", r"ls\1.gamma", k).replace("attention.output.dense", "attn.proj")
        out[k.replace("mlp.weights_in", "mlp.w12").replace("mlp.weights_out", "mlp.w3")] = v
    for i in {int(k.split(".")[1]) for k in out if k.startswith("blocks.")}:
        for p in ("weight", "bias"):
            parts = [out.pop(f"blocks.{i}.attention.attention.{n}.{p}") for n in ("query", "key", "value")]
            out[f"blocks.{i}.attn.qkv.{p}"] = torch.cat(parts)
    return out


def check_giant(tmp_path, width: int, heads: int, depth: int, size: int) -> None:
    """Official ``.pth`` and transformers folder of a ViT-g-shaped DINOv2 load and give its ``pooler_output``."""
    model = hf_giant(width, heads, depth, size)
    model.save_pretrained(tmp_path / "giant")
    sd = official_layout(tmp_path / "giant")
    assert sd["blocks.0.mlp.w12.weight"].shape == (2 * ((int(width * 4 * 2 / 3) + 7) // 8 * 8), width)
    torch.save(sd, tmp_path / "dinov2_vitg14_pretrain.pth")
    paths, pixels = crops(tmp_path, size)
    with torch.no_grad():
        ref = model(pixel_values=own_norm(pixels, IMAGENET)).pooler_output  # layernorm(cls)
    for source in (tmp_path / "dinov2_vitg14_pretrain.pth", tmp_path / "giant"):
        encoder, arch, _ = load_vision_encoder(source, "", size)
        assert arch.timm == "vit_giant_patch14_dinov2" and default_pool(encoder) == "cls"
        assert cosines(encode(encoder, paths, size, "cls"), ref).min() >= 0.999


def test_dinov2_giant_structure_loads_official_and_transformers(tmp_path):
    check_giant(tmp_path, 96, 2, 2, 56)


@pytest.mark.slow  # ~30 M parameters built four times and written twice
def test_dinov2_giant_real_shapes_match_timm_vitg(tmp_path):
    """Real ViT-g widths (embed 1536, SwiGLU hidden 4096: ``w12`` out 8192), one block: the file's shapes are
    exactly timm's ``vit_giant_patch14_dinov2``, so the released 40-block file loads by inference or by name."""
    check_giant(tmp_path, 1536, 24, 1, 56)
    ours = load_vision_encoder(tmp_path / "dinov2_vitg14_pretrain.pth", "", 56)[0].model.state_dict()
    timm_g = timm.create_model("vit_giant_patch14_dinov2", pretrained=False, num_classes=0, depth=1, img_size=56)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in timm_g.state_dict().items()}
    assert ours["blocks.0.mlp.fc1.weight"].shape == (8192, 1536) and ours["blocks.0.mlp.fc2.weight"].shape == (1536, 4096)


def test_dinov2_giant_by_the_wrong_name_suggests_vit_giant(tmp_path):
    hf_giant(96, 2, 1, 28).save_pretrained(tmp_path / "giant")
    torch.save(official_layout(tmp_path / "giant"), tmp_path / "g.pth")
    with pytest.raises(AbawError, match=r"--set vision\.arch=vit_giant_patch14_dinov2"):
        load_vision_encoder(tmp_path / "g.pth", "vit_small_patch14_dinov2", 28)


# ----------------------------------------------------------------------------- every timm family
FAMILIES = [  # timm name, family, native size (timm's default config), own norm, create_model overrides
    pytest.param("vit_small_patch14_dinov2", "dinov2", 518, IMAGENET, {"depth": 1}, id="dinov2-S"),
    pytest.param("vit_base_patch14_dinov2", "dinov2", 518, IMAGENET, {"depth": 1}, id="dinov2-B"),
    pytest.param("vit_large_patch14_dinov2", "dinov2", 518, IMAGENET, {"depth": 1}, id="dinov2-L"),
    pytest.param("vit_giant_patch14_dinov2", "dinov2", 518, IMAGENET, {"depth": 1}, id="dinov2-g",
                 marks=pytest.mark.slow),
    pytest.param("vit_small_patch14_reg4_dinov2", "dinov2", 518, IMAGENET, {"depth": 1}, id="dinov2-S-reg4"),
    pytest.param("vit_base_patch16_clip_224", "clip", 224, CLIP_NORM, {"depth": 1}, id="clip-B"),
    pytest.param("eva02_base_patch14_224", "eva", 224, CLIP_NORM, {"depth": 1}, id="eva02-B"),
    pytest.param("eva02_tiny_patch14_224", "eva", 224, CLIP_NORM, {}, id="eva02-Ti"),
    pytest.param("convnext_tiny", "convnext", 224, IMAGENET, {"depths": (1, 1, 1, 1)}, id="convnext-T"),
]


def timm_pair(name: str, family: str, size: int, norm: tuple, kwargs: dict):
    """(the timm reference model, our ``TimmBackbone`` holding its weights)."""
    torch.manual_seed(0)
    ref = timm.create_model(name, pretrained=False, num_classes=0, **kwargs).eval()
    with torch.no_grad():  # random init leaves norms at 1 / 0: make the final norm matter
        for n, p in ref.named_parameters():
            if re.match(r"(fc_)?norm\.|head\.norm\.", n):
                p.add_(torch.randn_like(p) * 0.5)
    arch = BackboneArch(name, family, size, 0, 0, 0 if family == "convnext" else 1, *norm, kwargs)
    ours = TimmBackbone(arch).eval()
    ours.model.load_state_dict(ref.state_dict())
    return ref, ours


@pytest.mark.parametrize("name, family, size, norm, kwargs", FAMILIES)
def test_default_pool_is_the_models_own_embedding(tmp_path, name, family, size, norm, kwargs):
    assert timm.models.get_pretrained_cfg(name).input_size[-1] == size  # the native size
    ref, ours = timm_pair(name, family, size, norm, kwargs)
    paths, pixels = crops(tmp_path, size, n=1)
    with torch.no_grad():
        own = ref.forward_head(ref.forward_features(own_norm(pixels, norm)), pre_logits=True)
    feats = encode(ours, paths, size, default_pool(ours))
    assert cosines(feats, own).min() >= 0.999
    assert np.allclose(np.linalg.norm(feats, axis=1), own.norm(dim=1).numpy(), rtol=2e-2)


def test_eva02_cls_and_mean_take_the_final_norm(tmp_path):
    """EVA-02's last norm is ``fc_norm`` (after pooling): ``mean`` is its own embedding, ``cls`` the class
    token through that norm (timm's same weights with ``global_pool='token'``), ``cls+mean`` both."""
    ref, ours = timm_pair("eva02_tiny_patch14_224", "eva", 56, CLIP_NORM, {"img_size": 56})
    token = timm.create_model("eva02_tiny_patch14_224", pretrained=False, num_classes=0, global_pool="token",
                              img_size=56).eval()
    token.load_state_dict({re.sub(r"^fc_norm\.", "norm.", k): v for k, v in ref.state_dict().items()})
    paths, pixels = crops(tmp_path, 56)
    x = own_norm(pixels, CLIP_NORM)
    with torch.no_grad():
        mean = ref.forward_head(ref.forward_features(x), pre_logits=True)
        cls = token.forward_head(token.forward_features(x), pre_logits=True)
    assert default_pool(ours) == "mean"
    assert cosines(encode(ours, paths, 56, "mean"), mean).min() >= 0.999
    assert cosines(encode(ours, paths, 56, "cls"), cls).min() >= 0.999
    assert cosines(encode(ours, paths, 56, "cls+mean"), torch.cat([cls, mean], 1)).min() >= 0.999


def test_dinov2_mean_is_the_mean_of_normed_patch_tokens(tmp_path):
    """DINOv2 / CLIP normalise every token (``norm``) before pooling: ``mean`` = timm's ``avg`` pool without
    a second norm (DINOv2's ``x_norm_patchtokens`` average, registers excluded)."""
    ref, ours = timm_pair("vit_small_patch14_reg4_dinov2", "dinov2", 56, IMAGENET, {"depth": 1, "img_size": 56})
    avg = timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False, num_classes=0, depth=1, img_size=56,
                            global_pool="avg", fc_norm=False).eval()
    avg.load_state_dict(ref.state_dict())
    paths, pixels = crops(tmp_path, 56)
    with torch.no_grad():
        mean = avg.forward_head(avg.forward_features(own_norm(pixels, IMAGENET)), pre_logits=True)
    assert cosines(encode(ours, paths, 56, "mean"), mean).min() >= 0.999


def test_cls_on_a_model_without_class_token_is_refused():
    arch = BackboneArch("vit_base_patch16_siglip_224", "vit", 32, 0, 0, 0, kwargs={"depth": 1, "img_size": 32})
    with pytest.raises(AbawError, match="no class token"):
        TimmBackbone(arch).pooled(torch.zeros(1, 3, 32, 32), "cls")


# ----------------------------------------------------------------------------- finetune / extract / predict
def eva_file(tmp_path, size: int):
    """An EVA-02 Ti state dict file (as a user downloads it, position grid for ``size`` px) and its timm model."""
    from safetensors.torch import save_file

    ref, _ = timm_pair("eva02_tiny_patch14_224", "eva", size, CLIP_NORM, {"img_size": size})
    save_file(ref.state_dict(), tmp_path / "eva02.safetensors")
    return tmp_path / "eva02.safetensors", ref


def test_finetune_init_pools_like_extract(tmp_path):
    """``abaw finetune --init`` builds its model through the same door and pooling as ``extract vision``."""
    from abawkit.stages.finetune import FinetuneConfig, FrameModelConfig, build_model

    path, ref = eva_file(tmp_path, 56)
    cfg = FinetuneConfig(init=str(path), model=FrameModelConfig(arch="eva02_tiny_patch14_224", img_size=56, pool=""))
    model = build_model(tmp_path, cfg)[0].eval()
    assert model.pool == "mean" and model.head.in_features == 192
    _, pixels = crops(tmp_path, 56)
    x = own_norm(pixels, CLIP_NORM)
    imgs = (pixels - torch.tensor(IMAGENET[0]).view(1, 3, 1, 1)) / torch.tensor(IMAGENET[1]).view(1, 3, 1, 1)
    with torch.no_grad():
        own = ref.forward_head(ref.forward_features(x), pre_logits=True)
        assert cosines(model.features(imgs).numpy(), own).min() >= 0.999


def test_fine_tuned_checkpoints_saved_before_keep_their_pooling(tmp_path):
    """A fine-tuned EVA-02 saved before pooling went through the final norm (no ``pooling`` in its arch)
    keeps pooling as it was trained: the raw class token, no ``fc_norm``."""
    from abawkit.models.checkpoints import load_frame_model, save_checkpoint
    from abawkit.models.heads import FrameModel

    _, ours = timm_pair("eva02_tiny_patch14_224", "eva", 56, CLIP_NORM, {"img_size": 56})
    model = FrameModel(ours.arch, 3, "cls", 0.0, encoder=ours).eval()
    old = {k: v for k, v in ours.arch.to_dict().items() if k != "pooling"}
    save_checkpoint(tmp_path / "best.pt", model.state_dict(), ours.arch, "frame", n_outputs=3, pool="cls")
    obj = torch.load(tmp_path / "best.pt", weights_only=False)
    obj["arch"] = old
    torch.save(obj, tmp_path / "old.pt")
    imgs = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        raw = ours.model.forward_features(imgs * ours.scale + ours.shift)[:, 0]
        legacy = load_frame_model(tmp_path / "old.pt")[0].features(imgs)
        now = load_frame_model(tmp_path / "best.pt")[0].features(imgs)
    assert torch.allclose(legacy, raw, atol=1e-5)
    assert torch.allclose(now, ours.model.fc_norm(raw), atol=1e-5)


def test_extract_eva02_stores_its_own_embedding_under_a_new_key(prep_workspace, tmp_path):
    """``abaw extract vision`` of an EVA-02 file pools as the model does by default (``mean`` through
    ``fc_norm``) and records the final norm in the store's key, so stores written without it are redone
    (the key differs) and ``predict`` refuses to recompute such a store with the new pooling."""
    from typer.testing import CliRunner

    from abawkit.cli import app
    from abawkit.data.tables import load_prep
    from abawkit.features.store import open_store
    from abawkit.io import write_json
    from abawkit.inference.extractors import vision_part
    from abawkit.inference.models import Models
    from abawkit.stages.predict import PredictConfig

    work = tmp_path / "work"
    shutil.copytree(prep_workspace, work)
    path, _ = eva_file(tmp_path, 28)
    res = CliRunner().invoke(app, ["extract", "vision", "--checkpoint", str(path), "--name", "eva", "--workdir",
                                   str(work), "--set", "vision.arch=eva02_tiny_patch14_224", "--set", "vision.img_size=28",
                                   "--set", "vision.workers=0"])
    assert res.exit_code == 0, res.output
    store = open_store(work, "eva")
    info = store.info()
    assert info["settings"]["pool"] == "mean" and info["settings"]["final_norm"] == "fc_norm"
    frames = load_prep(work).frames
    video = sorted(frames["video"].unique())[1]
    rows = frames[(frames["video"] == video) & frames["crop"].notna()].sort_values("frame")
    paths = list(rows["crop"].astype(str))[:4]
    stored = store.read(video, int((frames["video"] == video).sum()))[rows["frame"].to_numpy()[:4] - 1]
    encoder = load_vision_encoder(path, "eva02_tiny_patch14_224", 28)[0]
    assert cosines(stored.astype(np.float32), torch.from_numpy(encode(encoder, paths, 28, "mean"))).min() >= 0.999
    models = Models(work, PredictConfig(), CPU)
    assert np.allclose(vision_part(models, "eva", paths), stored, atol=2e-2)
    del info["settings"]["final_norm"]  # as abawkit wrote EVA-02 stores before: pooled without fc_norm
    write_json(store.root / "store.json", info)
    with pytest.raises(AbawError, match="re-extract"):
        vision_part(Models(work, PredictConfig(), CPU), "eva", paths)
