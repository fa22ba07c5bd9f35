"""The shared training loop: learning, accumulation, exact resume, 2-rank gloo DDP."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset

from abawkit.engine import TrainConfig, fit, lr_factor
from abawkit.errors import AbawError


class NoisyRegression(Dataset):
    """y = x @ w; each item adds random noise to x, so augmentation RNG matters for resume."""

    def __init__(self, n: int = 64) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 8, generator=g)
        self.y = self.x @ torch.arange(8.0)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i] + 0.01 * torch.randn(8), self.y[i]


def mse(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return ((model(x).squeeze(-1) - y) ** 2).mean()


def tiny_model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.1), nn.Linear(16, 1))


CFG = TrainConfig(epochs=3, batch_size=8, accum_steps=2, lr=0.05, warmup_epochs=0.5, log_every=1,
                  checkpoint_every=3, weight_decay=0.0)


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_fit_learns_and_evaluates_every_epoch(tmp_path):
    model = tiny_model()
    data = NoisyRegression()
    before = mse(model, (data.x, data.y)).item()
    seen = []
    res = fit(model, mse, data, CFG, seed=0, progress=False,
              eval_fn=lambda: {"score": -mse(model, (data.x, data.y)).item()},
              on_best=lambda m, rec: seen.append(rec["epoch"]))
    assert res.steps == 3 * 64 // 16
    assert len(res.history) == 3 and seen and seen[0] == 0
    assert -res.best["score"] < before / 2


def test_resume_after_interrupt_matches_uninterrupted(tmp_path):
    full = tiny_model()
    fit(full, mse, NoisyRegression(), CFG, seed=5, progress=False, checkpoint_path=tmp_path / "a.pt")
    part = tiny_model()
    res = fit(part, mse, NoisyRegression(), CFG, seed=5, progress=False, checkpoint_path=tmp_path / "b.pt", stop_at=5)
    assert res.steps == 5  # stopped mid-epoch 1 (4 steps per epoch)
    resumed = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.1), nn.Linear(16, 1))  # different init
    res = fit(resumed, mse, NoisyRegression(), CFG, seed=5, progress=False, checkpoint_path=tmp_path / "b.pt")
    assert res.steps == 12
    for a, b in zip(weights(full), weights(resumed)):
        assert torch.equal(a, b)


def test_too_small_dataset_is_a_user_error():
    with pytest.raises(AbawError, match="fewer than one step"):
        fit(tiny_model(), mse, NoisyRegression(4), CFG, progress=False)


def test_lr_schedule_warms_up_then_decays():
    f = [lr_factor(s, 100, 10, 0.1) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[-1] == pytest.approx(0.1, abs=1e-3)


def _rank_main(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from abawkit import distributed

    model = tiny_model()
    if rank == 1:  # DDP must broadcast rank 0's initial weights
        torch.nn.init.zeros_(model[0].weight)
    cfg = TrainConfig(epochs=2, batch_size=4, lr=0.05, weight_decay=0.0, device="cpu")
    res = fit(model, mse, NoisyRegression(), cfg, seed=0, progress=False)
    torch.save({"w": weights(model), "steps": res.steps}, f"{out}/rank{rank}.pt")
    distributed.cleanup()


def test_two_rank_gloo_ddp_ends_with_identical_weights(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank_main, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["steps"] == r1["steps"] == 2 * 64 // (2 * 4)  # each rank sees half the data
    for a, b in zip(r0["w"], r1["w"]):
        assert torch.equal(a, b)


@pytest.mark.gpu
def test_cuda_bf16_autocast_trains():
    model = tiny_model()
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.05, weight_decay=0.0, device="cuda")
    res = fit(model, mse, NoisyRegression(), cfg, seed=0, progress=False,
              eval_fn=lambda: {"score": 0.0})
    assert next(model.parameters()).is_cuda and res.steps == 16
