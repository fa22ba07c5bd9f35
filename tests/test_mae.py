"""MAE: masking, patchify, loss on masked patches only, learning on synthetic crops; model sweep."""

from __future__ import annotations

import pytest
import torch

from abawkit.errors import AbawError
from abawkit.models.heads import FrameModel
from abawkit.models.mae import ENCODERS, MAE, encoder_arch, random_masking

SMALL = dict(decoder_dim=32, decoder_depth=1, decoder_heads=2)


def test_random_masking_keeps_exact_count():
    x = torch.randn(5, 16, 4)
    kept, mask, restore = random_masking(x, 0.75)
    assert kept.shape == (5, 4, 4)
    assert torch.equal(mask.sum(1), torch.full((5,), 12.0))
    # kept tokens are exactly the unmasked ones
    for n in range(5):
        want = x[n][mask[n] == 0]
        assert torch.equal(torch.sort(kept[n], 0).values, torch.sort(want, 0).values)


def test_patchify_roundtrip_and_loss_counts_only_masked():
    m = MAE(encoder_arch("micro"), **SMALL)
    imgs = torch.rand(2, 3, 32, 32)
    assert torch.equal(m.unpatchify(m.patchify(imgs)), imgs)
    target = m.patchify(imgs)
    mask = torch.zeros(2, 16)
    mask[:, :4] = 1
    pred = target.clone()
    pred[:, 4:] += 5.0  # huge error on visible patches must not count
    assert m.loss(imgs, pred, mask).item() == 0.0
    pred[:, :4] += 1.0
    assert m.loss(imgs, pred, mask).item() == pytest.approx(1.0)


def test_tiny_mae_loss_falls_on_synthetic_crops():
    torch.manual_seed(0)
    m = MAE(encoder_arch("micro", img_size=16, patch=4), **SMALL)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    blob = lambda c: torch.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) * 4)  # noqa: E731
    imgs = torch.stack([blob(torch.rand(2) - 0.5).expand(3, 16, 16) for _ in range(32)])
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    losses = []
    for _ in range(150):
        loss = m(imgs)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10


@pytest.mark.parametrize("name", ["micro", "tiny"])
def test_every_parameter_gets_a_gradient(name):
    arch = encoder_arch(name, img_size=32, patch=8 if name == "micro" else 16)
    for model in (MAE(arch, **SMALL), FrameModel(arch, 12, pool="mean")):
        out = model(torch.rand(2, 3, 32, 32))
        loss = out[0] if isinstance(out, tuple) else out.pow(2).mean()
        loss.backward()
        for n, p in model.named_parameters():
            if p.requires_grad:
                assert p.grad is not None and torch.isfinite(p.grad).all(), n


def test_sizes_and_bad_names():
    assert ENCODERS["base"].dim == 768 and ENCODERS["base"].patch == 16
    with pytest.raises(AbawError, match="unknown encoder"):
        encoder_arch("huge9")
    with pytest.raises(AbawError, match="multiple"):
        encoder_arch("micro", img_size=30)


def test_layer_decay_scales_learning_rates_by_depth():
    from abawkit.engine import param_groups
    from abawkit.models.heads import layer_decay

    model = FrameModel(encoder_arch("micro"), 2)
    scale = layer_decay(model, 0.5)
    assert scale("head.weight") == 1.0 and scale("encoder.blocks.3.mlp.fc1.weight") == 0.5
    assert scale("encoder.pos_embed") == 0.5**5
    groups = param_groups(model, 0.05, scale)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert {g["lr_scale"] for g in groups} == {0.5**k for k in range(6)}
