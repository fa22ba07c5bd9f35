"""torch.distributed set-up from ``torchrun`` environment variables (RANK, WORLD_SIZE, LOCAL_RANK).

Without those variables everything runs as a single process (rank 0 of 1). Backend: nccl on CUDA,
gloo on CPU. The process group's timeout (how long a rank may wait in a collective for the others) is
``DEFAULT_TIMEOUT_MIN`` unless a recipe sets ``train.dist_timeout_min`` / ``dist_timeout_min``: NCCL's
own 10 minutes are too short when one rank still decodes a split of a million frames while the others
wait. Work that ends a stage is shared out instead of left to rank 0 (``shard`` + ``gather_concat``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from abawkit.console import console
from abawkit.devices import resolve_device

DEFAULT_TIMEOUT_MIN = 120.0


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def info() -> DistInfo:
    """Rank and world size of an initialised process group (or from the env), else 0 of 1."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def setup(device: str = "auto", timeout_min: float = 0.0) -> tuple[DistInfo, torch.device]:
    """Initialise the process group when launched by torchrun; pick this rank's device
    (``devices.resolve_device``: ``cuda`` where torch sees no GPU is an error).

    ``timeout_min`` (0 = ``DEFAULT_TIMEOUT_MIN``) applies to every collective of the group; the first
    call of a process decides it (stages call ``setup`` before the engine does).
    """
    env = info()
    dev = resolve_device(device, env.local_rank)  # cuda without a GPU: an error, not a CPU run
    want_cuda = dev.type == "cuda"
    if env.world > 1 and not dist.is_initialized():
        timeout = timedelta(minutes=timeout_min or DEFAULT_TIMEOUT_MIN)
        dist.init_process_group(backend="nccl" if want_cuda else "gloo", timeout=timeout)
        _say_where()
    env = info()
    if not env.is_main:  # one set of progress bars and tables per job, not one per rank

        console.quiet = True
    if want_cuda:
        torch.cuda.set_device(dev)
    return env, dev


def _say_where() -> None:
    """Every rank, once: which host it runs on (a multi-node job's log shows where each rank ran)."""

    console.print(f"rank {dist.get_rank()} of {dist.get_world_size()} on {socket.gethostname()}", markup=False,
                  highlight=False)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(obj: object, src: int = 0) -> object:
    """Send a picklable object from ``src`` to every rank (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(value: float, device: torch.device) -> float:
    """Average a scalar over ranks (for logging)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def shard(n: int) -> slice:
    """This rank's contiguous share of ``n`` ordered items (shares differ by at most one item)."""
    env = info()
    return slice(n * env.rank // env.world, n * (env.rank + 1) // env.world)


def gather_concat(part: np.ndarray) -> np.ndarray:
    """Every rank's ``part`` [n_r, ...] concatenated in rank order, on every rank (identity alone).

    With ``shard`` this gives each rank the whole result while each computed only its share.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return part
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, np.ascontiguousarray(part))
    return np.concatenate(parts)


def cleanup() -> None:
    """Tear the process group down once every rank got here (a rank leaving early aborts gloo peers)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
