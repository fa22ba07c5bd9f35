"""uint8 crops out of the workers, augmentation on the device: bytes, sizes, seeds, exactness, resume."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from abawkit.data.augment import (
    BatchAugment,
    colour_jitter,
    draw_params,
    identity_params,
    normalize,
    to_model_input,
)
from abawkit.data.faces import FaceCrops, collate_faces, jpeg_side
from abawkit.engine import SeededDataset, TrainConfig, fit, item_seed
from abawkit.errors import AbawError

FLOAT_BYTES_224 = 3 * 224 * 224 * 4  # what the float32 worker pipeline shipped per image: 602112


def write_faces(folder, n: int, size: int, suffix: str = ".png") -> list[str]:
    rng = np.random.default_rng(size)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{size}_{i:03d}{suffix}"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def test_workers_ship_uint8_at_stored_size_a_tenth_of_the_float_bytes(tmp_path):
    data = FaceCrops(write_faces(tmp_path, 4, 112, ".jpg"), 224, train=True, labels=np.zeros((4, 12)))
    img, params, label = data[0]
    assert img.dtype == torch.uint8 and img.shape == (3, 112, 112)  # never upsampled to 224
    per_image = img.nbytes + params.nbytes + label.nbytes
    assert per_image <= FLOAT_BYTES_224 / 10
    x = to_model_input(img[None], params[None], 224, train=True)
    assert x.dtype == torch.float32 and x.shape == (1, 3, 224, 224)


def test_mixed_stored_sizes_share_a_batch(tmp_path):
    paths = write_faces(tmp_path, 3, 112) + write_faces(tmp_path, 3, 96) + write_faces(tmp_path, 2, 256, ".jpg")
    data = FaceCrops(paths, 64, train=False)
    assert data.decode_size == 64  # bigger than the model needs: shrunk in the worker, still uint8
    imgs, params, _ = next(iter(DataLoader(data, batch_size=8, collate_fn=collate_faces)))
    assert imgs.dtype == torch.uint8 and imgs.shape == (8, 3, 64, 64) and params.shape == (8, 8)  # one size: no side column
    data = FaceCrops(paths[3:], 224, train=False)
    assert data.decode_size == 224  # from the model, not from the first file (96 px)
    imgs, params, _ = next(iter(DataLoader(data, batch_size=5, collate_fn=collate_faces)))
    assert imgs.shape == (5, 3, 224, 224) and params[:, 8].tolist() == [96, 96, 96, 224, 224]
    assert torch.equal(imgs[0, :, :96, :96], data[0][0]) and not imgs[0, :, 96:].any()  # never upsampled


@pytest.mark.parametrize("train", [False, True])
def test_a_mixed_batch_gives_what_each_image_gives_alone(tmp_path, train):
    paths = write_faces(tmp_path, 2, 96) + write_faces(tmp_path, 2, 160, ".jpg") + write_faces(tmp_path, 1, 48)
    data = FaceCrops(paths, 128, train=train)
    torch.manual_seed(0)
    items = [data[i] for i in range(len(data))]
    imgs, params, _ = collate_faces(items)
    x = to_model_input(imgs, params, 128, train)  # [5, 3, 128, 128]
    for i, item in enumerate(items):
        alone = to_model_input(*collate_faces([item])[:2], 128, train)
        torch.testing.assert_close(x[i : i + 1], alone, rtol=0, atol=1e-5)


def _jpeg(path, size: int, seed: int) -> str:
    """A smooth face-like JPEG (noise would hide the loss of detail being tested)."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    img = (img.astype(np.float32) + rng.normal(0, 12, img.shape)).clip(0, 255).astype(np.uint8)  # fine detail
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return str(path)


def test_each_image_is_decoded_at_its_own_stored_size(tmp_path):
    """A 112 px crop after a 448 px one (``--images`` of mixed sources): read whole, not at 1/4 then upsampled."""
    big, small = _jpeg(tmp_path / "a_448.jpg", 448, 1), _jpeg(tmp_path / "b_112.jpg", 112, 2)
    data = FaceCrops([big, small], 112, train=False)
    got = data[1][0]  # [3, 112, 112]
    plain = torch.from_numpy(cv2.cvtColor(cv2.imread(small), cv2.COLOR_BGR2RGB)).permute(2, 0, 1)
    assert got.shape == plain.shape
    assert (got.float() - plain.float()).abs().mean() < 0.5  # the same pixels (main: 13.7 / 255 off)
    first = data[0][0]  # the 448 px one at 1/4 scale: exactly 112, no resize
    quarter = cv2.imread(big, cv2.IMREAD_REDUCED_COLOR_4)
    assert torch.equal(first, torch.from_numpy(cv2.cvtColor(quarter, cv2.COLOR_BGR2RGB)).permute(2, 0, 1))


def test_jpeg_side_reads_the_frame_header(tmp_path):
    assert jpeg_side(Path(_jpeg(tmp_path / "x.jpg", 72, 0)).read_bytes()) == 72
    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(tmp_path / "p.jpg", progressive=True)
    assert jpeg_side((tmp_path / "p.jpg").read_bytes()) == 50
    assert jpeg_side(b"not a jpeg at all") == 0


def test_params_follow_the_item_seed():
    def draw(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return draw_params(0.8, 0.2)

    a, b, c = draw(7), draw(7), draw(8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    box = a[:4]
    area = (box[2] - box[0]) * (box[3] - box[1])
    assert 0 <= box.min() and box.max() <= 1 and 0.8 - 1e-6 <= area <= 1
    assert ((a[5:] >= 0.8) & (a[5:] <= 1.2)).all()


def test_same_key_same_sample_through_seeded_dataset(tmp_path):
    data = SeededDataset(FaceCrops(write_faces(tmp_path, 2, 32), 32, train=True))
    key = (1, item_seed(0, 3, 1))
    x1, p1, _ = data[key]
    x2, p2, _ = data[key]
    assert torch.equal(x1, x2) and torch.equal(p1, p2)
    assert not torch.equal(p1, data[(1, item_seed(0, 4, 1))][1])


def test_identity_crop_flip_and_box_are_exact():
    torch.manual_seed(0)
    imgs = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    ident = identity_params().expand(2, 8).clone()
    expect = normalize(imgs.float() / 255)
    assert torch.allclose(to_model_input(imgs, ident, 16, train=True), expect, atol=1e-5)
    assert torch.allclose(to_model_input(imgs, ident, 16, train=False), expect, atol=1e-5)
    flip = ident.clone()
    flip[1, 4] = 1
    out = to_model_input(imgs, flip, 16, train=True)
    assert torch.allclose(out[1], expect[1].flip(-1), atol=1e-5) and torch.allclose(out[0], expect[0], atol=1e-5)
    quarter = ident.clone()
    quarter[:, :4] = torch.tensor([0.5, 0.0, 1.0, 0.5])  # top-right quadrant at its own size
    out = to_model_input(imgs, quarter, 8, train=True)
    assert torch.allclose(out, expect[:, :, :8, 8:], atol=1e-5)


def test_eval_resize_is_antialiased_bilinear():
    imgs = torch.randint(0, 256, (2, 3, 24, 24), dtype=torch.uint8)
    out = to_model_input(imgs, identity_params().expand(2, 8), 12, train=False)
    ref = F.interpolate(imgs.float() / 255, size=(12, 12), mode="bilinear", antialias=True)
    assert torch.allclose(out, normalize(ref.clamp(0, 1)), atol=1e-5)


def test_colour_jitter_matches_torchvision():
    x = torch.rand(2, 3, 8, 8)
    f = torch.tensor([[1.15, 0.85, 1.1], [0.9, 1.2, 0.8]])
    out = colour_jitter(x, f)
    for i in range(2):
        ref = TF.adjust_brightness(x[i], float(f[i, 0]))
        ref = TF.adjust_saturation(TF.adjust_contrast(ref, float(f[i, 1])), float(f[i, 2]))
        assert torch.allclose(out[i], ref, atol=1e-5)


class Flat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def brightness_loss(model: nn.Module, batch) -> torch.Tensor:
    x, _ = batch
    return ((model(x).squeeze(-1) - x.mean(dim=(1, 2, 3))) ** 2).mean()


def test_resume_with_device_augmentation_matches_uninterrupted(tmp_path):
    data = FaceCrops(write_faces(tmp_path / "img", 32, 16), 8, train=True)
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.05, weight_decay=0.0, log_every=1)
    hook = BatchAugment(8, train=True)
    full = Flat()
    fit(full, brightness_loss, data, cfg, seed=3, progress=False, batch_transform=hook)
    part = Flat()
    fit(part, brightness_loss, data, cfg, seed=3, progress=False, batch_transform=hook,
        checkpoint_path=tmp_path / "b.pt", stop_at=5)
    resumed = Flat()
    res = fit(resumed, brightness_loss, data, cfg, seed=3, progress=False, batch_transform=hook,
              checkpoint_path=tmp_path / "b.pt")
    assert res.steps == 8
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


@pytest.mark.gpu
def test_device_augmentation_on_cuda_matches_cpu():
    torch.manual_seed(0)
    imgs = torch.randint(0, 256, (16, 3, 112, 112), dtype=torch.uint8)
    params = torch.stack([draw_params(0.8, 0.2) for _ in range(16)])
    for train in (True, False):
        cpu = to_model_input(imgs, params, 224, train)
        gpu = to_model_input(imgs.cuda(), params.cuda(), 224, train)
        assert gpu.is_cuda and torch.allclose(gpu.cpu(), cpu, atol=1e-3)


@pytest.mark.gpu
def test_cuda_extraction_matches_cpu_through_pinned_copies(tmp_path):
    from abawkit.features.vision import VisionSettings, encode_crops
    from abawkit.models.mae import ViTEncoder, encoder_arch

    paths = write_faces(tmp_path, 10, 64, ".jpg")
    torch.manual_seed(0)
    encoder = ViTEncoder(encoder_arch("micro")).eval()
    s = VisionSettings(img_size=32, pool="cls", batch_size=4, workers=1)
    cpu = np.concatenate(list(encode_crops(encoder, paths, s, torch.device("cpu"))))
    gpu = np.concatenate(list(encode_crops(encoder.cuda(), paths, s, torch.device("cuda"))))  # bf16 autocast
    assert gpu.dtype == np.float16 and gpu.shape == cpu.shape == (10, 96)
    assert np.allclose(gpu.astype(np.float32), cpu.astype(np.float32), atol=0.1)


def test_unreadable_images_are_one_line(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    for path in (tmp_path / "bad.jpg", tmp_path / "gone.jpg"):
        with pytest.raises(AbawError, match=f"{path.name}: cannot read image"):
            FaceCrops([path], 112, train=False)[0]
