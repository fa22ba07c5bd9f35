"""The fast training step: torch.compile, fused attention in the ViT blocks, throughput logs, fused AdamW."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from abawkit.engine import TrainConfig, fit
from abawkit.models.mae import MAE, encoder_arch


class Log:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict]] = []

    def log(self, event: str, **fields) -> None:
        self.records.append((event, fields))


def mse(model: nn.Module, batch) -> torch.Tensor:
    return ((model(batch[0]).squeeze(-1) - batch[1]) ** 2).mean()


def train(cfg: TrainConfig, run=None) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 1))
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(32, 8, generator=g), torch.randn(32, generator=g))
    fit(model, mse, data, cfg, seed=0, progress=False, run=run)
    return model


CFG = TrainConfig(epochs=1, batch_size=8, lr=0.01, weight_decay=0.0, log_every=2)


def test_train_records_carry_throughput():
    run = Log()
    train(CFG, run)
    rates = [f["img_s"] for e, f in run.records if e == "train"]
    assert len(rates) == 2 and all(r > 0 for r in rates)


def test_compiled_step_trains_like_eager(monkeypatch):
    """train.compile wraps the model in torch.compile (dynamo traces the step); weights stay the raw model's.

    The eager backend keeps this fast; the inductor run is the slow test below.
    """
    calls = []
    real = torch.compile

    def spy(model, **kw):
        calls.append(model)
        return real(model, backend="eager", **kw)

    monkeypatch.setattr(torch, "compile", spy)
    compiled = train(TrainConfig(**{**CFG.__dict__, "compile": True}))
    eager = train(CFG)
    assert len(calls) == 1
    for a, b in zip(compiled.parameters(), eager.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.slow
def test_inductor_compiled_step_runs_on_cpu():
    compiled = train(TrainConfig(**{**CFG.__dict__, "compile": True}))
    eager = train(CFG)
    for a, b in zip(compiled.parameters(), eager.parameters()):
        assert torch.allclose(a, b, atol=1e-4)


def test_vit_blocks_use_fused_attention():
    """timm's Attention runs F.scaled_dot_product_attention (flash / memory-efficient kernels on CUDA)."""
    from timm.models.vision_transformer import Attention

    model = MAE(encoder_arch("micro"), decoder_dim=32, decoder_depth=1, decoder_heads=2)
    attn = [m for m in model.modules() if isinstance(m, Attention)]
    assert len(attn) == 5 and all(m.fused_attn for m in attn)


@pytest.mark.gpu
def test_cuda_uses_fused_adamw(monkeypatch):
    made = []
    real = torch.optim.AdamW

    class Spy(real):  # type: ignore[misc, valid-type]
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(torch.optim, "AdamW", Spy)
    model = train(TrainConfig(**{**CFG.__dict__, "device": "cuda"}))
    assert next(model.parameters()).is_cuda and made[0].defaults["fused"] is True


@pytest.mark.gpu
def test_cuda_bf16_mae_step_with_device_augmentation():
    from abawkit.data.augment import BatchAugment, draw_params

    torch.manual_seed(0)
    imgs = torch.randint(0, 256, (16, 3, 112, 112), dtype=torch.uint8)
    data = TensorDataset(imgs, torch.stack([draw_params() for _ in range(16)]), torch.zeros(16, 0))
    model = MAE(encoder_arch("tiny"), decoder_dim=128, decoder_depth=1, decoder_heads=4)
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-4, device="cuda", log_every=1)
    res = fit(model, lambda m, b: m(b[0])[0], data, cfg, progress=False, batch_transform=BatchAugment(224, True))
    assert res.steps == 2 and next(model.parameters()).is_cuda and res.history[0]["loss"] > 0
