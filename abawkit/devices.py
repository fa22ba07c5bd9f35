"""Which GPU each parallel job of ``abaw run`` gets, read through an inherited ``CUDA_VISIBLE_DEVICES``.

A scheduler (SLURM, a shared box's allotment) often starts us with ``CUDA_VISIBLE_DEVICES=4,5,6,7``.
A job's own ``CUDA_VISIBLE_DEVICES`` must then name GPUs *from that list*: ``--gpus 0,1`` means the
first two GPUs we were given (physical 4 and 5), never physical 0 and 1, which belong to someone
else. Without ``--gpus``, ``--jobs N`` spreads the N job slots round-robin over every visible GPU
(instead of stacking them all on ``cuda:0``); with no GPU they are CPU slots. Reads the environment
and ``/dev/nvidia<N>``; writes nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

from abawkit.errors import AbawError

CVD = "CUDA_VISIBLE_DEVICES"


def visible_gpus(environ: Mapping[str, str] | None = None, dev: Path = Path("/dev")) -> list[str]:
    """The GPUs this process may use, each as a ``CUDA_VISIBLE_DEVICES`` entry for a child process.

    The inherited list when set (indices, UUIDs or MIG names; CUDA stops at a ``-1`` entry), else
    ``0..N-1`` for the N ``/dev/nvidia<k>`` device files (inside a container these are the allotted
    cards, whatever their host numbers, and CUDA numbers them from 0).
    """
    environ = os.environ if environ is None else environ
    if CVD in environ:
        out = []
        for g in (g.strip() for g in environ[CVD].split(",")):
            if not g or g == "-1":
                break
            out.append(g)
        return out
    n = sum(1 for p in dev.glob("nvidia*") if re.fullmatch(r"nvidia\d+", p.name)) if dev.is_dir() else 0
    return [str(i) for i in range(n)]


def job_gpus(gpus: str | None, jobs: int, environ: Mapping[str, str] | None = None,
             dev: Path = Path("/dev")) -> list[str | None]:
    """``CUDA_VISIBLE_DEVICES`` of each parallel job slot (None: a CPU slot).

    ``gpus`` ("0,1"): one slot per listed GPU, counted within the inherited ``CUDA_VISIBLE_DEVICES``
    when there is one (list a GPU twice for two jobs on it). Else ``jobs`` slots over the visible GPUs.
    """
    environ = os.environ if environ is None else environ
    if gpus:
        ids = [g.strip() for g in gpus.split(",") if g.strip()]
        if not ids or not all(g.isdigit() for g in ids):
            raise AbawError(f"--gpus {gpus!r}: expected comma-separated GPU indices, e.g. 0,1,2,3")
        if CVD not in environ:
            return list(ids)
        visible = visible_gpus(environ, dev)
        beyond = [g for g in ids if int(g) >= len(visible)]
        if beyond:
            raise AbawError(f"--gpus {gpus}: GPU {beyond[0]} is not one of the {len(visible)} this process may use "
                            f"({CVD}={environ[CVD]}); --gpus counts from 0 within that list")
        return [visible[int(g)] for g in ids]
    if jobs < 1:
        raise AbawError(f"--jobs must be >= 1, got {jobs}")
    visible = visible_gpus(environ, dev)
    return [visible[i % len(visible)] if visible else None for i in range(jobs)]


# ----------------------------------------------------------------------------- precision
PRECISIONS = ("bf16", "fp32")


def default_precision(device: object) -> str:
    """``bf16`` on CUDA (autocast, as training runs there), ``fp32`` elsewhere."""
    import torch

    return "bf16" if torch.device(device).type == "cuda" else "fp32"


def resolve_precision(name: str, device: object) -> str:
    """A config's ``auto`` | ``bf16`` | ``fp32`` -> the precision used on ``device``."""
    if name in ("", "auto"):
        return default_precision(device)
    if name not in PRECISIONS:
        raise AbawError(f"precision must be auto, bf16 or fp32, got {name!r}")
    return name


def precision_autocast(device: object, precision: str):
    """The context a model runs in at ``precision``: bf16 autocast (CUDA or CPU), or nothing for fp32.

    bf16 is honoured on the CPU too, so ``abaw predict`` on a laptop can reproduce features that were
    extracted in bf16 on a GPU instead of silently computing them in fp32.
    """
    import contextlib

    import torch

    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
