"""What makes a training run repeatable and resumable bit for bit: the data order and the RNG states.

The data order is a function of (seed, epoch) (``ResumableSampler``, which can start part-way into an
epoch) and every sample's augmentation is seeded by (seed, epoch, index) (``SeededDataset``); the RNG
states of python, numpy, torch and this rank's CUDA device are saved in plain types (``portable_rng_state``)
so a resume checkpoint loads with ``weights_only``. Used by ``engine`` (the one training loop); reads and
writes no file.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, get_worker_info


def item_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 10_000_019 + index) % (2**63 - 1)


class ResumableSampler(DistributedSampler):
    """Distributed shuffling by (seed, epoch) that can start part-way into an epoch.

    Yields ``(index, item_seed)`` keys; ``SeededDataset`` seeds the RNGs with ``item_seed``.
    """

    def __init__(self, dataset: Dataset, world: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.skip = 0

    def start(self, epoch: int, skip: int) -> None:
        self.set_epoch(epoch)
        self.skip = skip

    def __iter__(self):  # type: ignore[override]
        indices = list(super().__iter__())[self.skip:]
        return iter([(i, item_seed(self.seed, self.epoch, i)) for i in indices])

    def __len__(self) -> int:
        return self.num_samples - self.skip


class SeededDataset(Dataset):
    """Wraps a dataset so each item's random augmentation depends only on its key's seed."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        in_main = get_worker_info() is None
        saved = rng_state() if in_main else None
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            return self.dataset[index]
        finally:
            if saved is not None:
                set_rng_state(saved)


# ----------------------------------------------------------------------------- RNG states
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """python/numpy/torch RNG states, and the CUDA generator of this process's device only.

    Only that generator is ever drawn from (one device per rank), and saving every visible device's
    state would tie the checkpoint to the device count: a run interrupted with 8 GPUs visible must
    resume with 1 (``abaw run --gpus``) or on a smaller node.
    """
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_device"] = torch.cuda.get_rng_state()
    return state


def portable_rng_state() -> dict:
    """``rng_state()`` in plain types (numpy's key array -> list), so a checkpoint loads with ``weights_only``."""
    state = rng_state()
    name, keys, pos, has_gauss, cached = state["numpy"]
    state["numpy"] = (str(name), keys.tolist(), int(pos), int(has_gauss), float(cached))
    return state


def set_rng_state(state: dict) -> None:
    """Restore ``rng_state()``; any number of visible devices (see ``cuda_device_state``)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())  # a resumed checkpoint may have been mapped to the GPU
    cuda = cuda_device_state(state) if torch.cuda.is_available() else None
    if cuda is not None:
        torch.cuda.set_rng_state(cuda.cpu())


def cuda_device_state(state: dict) -> torch.Tensor | None:
    """The saved CUDA RNG state of this process's device, or None (saved on a CPU, or no such device).

    Older checkpoints hold ``cuda``: one state per device visible at save time; this process's
    device is the one at ``current_device()`` (its local rank), the only one it drew from.
    """
    if state.get("cuda_device") is not None:
        return state["cuda_device"]
    old = state.get("cuda") or []
    i = torch.cuda.current_device()
    return old[i] if i < len(old) else None
