"""Resume across a change of visible CUDA devices, simulated on the CPU with N fake CUDA generators.

``FakeCuda(n)`` stands in for ``torch.cuda``'s RNG functions with ``n`` generators, indexed like the
real ones (``set_rng_state_all`` with more states than devices raises ``IndexError``, as torch does).
"""

from __future__ import annotations

import pytest
import torch
from test_engine import CFG, NoisyRegression, mse, tiny_model, weights
from torch import nn

from abawkit import engine
from abawkit.engine import TrainConfig, fit


class FakeCuda:
    """``n`` visible devices, each with its own generator; ``current`` is this process's device."""

    def __init__(self, n: int, current: int = 0, seed: int = 100) -> None:
        self.gens = [torch.Generator().manual_seed(seed + i) for i in range(n)]
        self.current = current

    def _index(self, device: object = "cuda") -> int:
        if isinstance(device, int):
            return device
        d = torch.device(device)
        return self.current if d.index is None else d.index

    def get_rng_state(self, device: object = "cuda") -> torch.Tensor:
        return self.gens[self._index(device)].get_state()

    def set_rng_state(self, state: torch.Tensor, device: object = "cuda") -> None:
        self.gens[self._index(device)].set_state(state)

    def get_rng_state_all(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.gens]

    def set_rng_state_all(self, states: list[torch.Tensor]) -> None:
        for i, s in enumerate(states):
            self.set_rng_state(s, i)

    def install(self, mp: pytest.MonkeyPatch) -> "FakeCuda":
        mp.setattr(torch.cuda, "is_available", lambda: True)
        mp.setattr(torch.cuda, "current_device", lambda: self.current)
        # the optimizers ask the (absent) accelerator whether a CUDA graph is being captured
        mp.setattr(torch.optim.Optimizer, "_accelerator_graph_capture_health_check", lambda opt: None)
        for name in ("get_rng_state", "set_rng_state", "get_rng_state_all", "set_rng_state_all"):
            mp.setattr(torch.cuda, name, getattr(self, name))
        return self

    def draw(self, device: int | None = None) -> torch.Tensor:
        """Advance a generator, as a CUDA kernel drawing random numbers would."""
        return torch.rand(4, generator=self.gens[self.current if device is None else device])


def test_interrupted_with_8_devices_resumes_with_1_exactly(tmp_path, monkeypatch):
    cfg = TrainConfig(**{**CFG.__dict__, "device": "cpu"})
    full = tiny_model()
    fit(full, mse, NoisyRegression(), cfg, seed=5, progress=False)
    with monkeypatch.context() as m:
        eight = FakeCuda(8).install(m)
        eight.draw()
        fit(tiny_model(), mse, NoisyRegression(), cfg, seed=5, progress=False, checkpoint_path=tmp_path / "b.pt", stop_at=5)
        saved = eight.get_rng_state()
    with monkeypatch.context() as m:
        one = FakeCuda(1, seed=7).install(m)
        resumed = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.1), nn.Linear(16, 1))
        res = fit(resumed, mse, NoisyRegression(), cfg, seed=5, progress=False, checkpoint_path=tmp_path / "b.pt")
        assert torch.equal(one.get_rng_state(), saved)  # on main: IndexError in set_rng_state_all
    assert res.steps == 12
    for a, b in zip(weights(full), weights(resumed)):
        assert torch.equal(a, b)


def test_only_this_process_device_is_saved(monkeypatch):
    fake = FakeCuda(8, current=3).install(monkeypatch)
    fake.draw(3)
    state = engine.rng_state()
    assert "cuda" not in state and torch.equal(state["cuda_device"], fake.gens[3].get_state())
    other = FakeCuda(2, current=1, seed=9).install(monkeypatch)  # e.g. rank 1 of a 2-GPU node
    engine.set_rng_state(state)
    assert torch.equal(other.gens[1].get_state(), fake.gens[3].get_state())
    assert not torch.equal(other.gens[0].get_state(), fake.gens[3].get_state())  # other devices untouched


@pytest.mark.parametrize(("visible", "current"), [(1, 0), (8, 3), (16, 12)])
def test_old_checkpoints_with_one_state_per_device_still_load(tmp_path, monkeypatch, visible, current):
    old = FakeCuda(8, seed=50)
    for i in range(8):
        old.draw(i)
    state = {**engine.portable_rng_state(), "cuda": old.get_rng_state_all()}  # the format saved before
    engine.save_state(tmp_path / "old.pt", {"rng": state})
    from abawkit.models.checkpoints import load_file

    loaded = load_file(tmp_path / "old.pt")["rng"]  # weights_only, as resume reads it
    now = FakeCuda(visible, current=current, seed=1).install(monkeypatch)
    before = now.get_rng_state()
    engine.set_rng_state(loaded)
    expect = old.gens[current].get_state() if current < 8 else before  # a device the old run never had
    assert torch.equal(now.get_rng_state(), expect)
