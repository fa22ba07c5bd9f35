"""Devices: which GPU each parallel job of ``abaw run`` gets, and the one rule every stage resolves its
``device`` setting with.

A scheduler (SLURM, a shared box's allotment) often starts us with ``CUDA_VISIBLE_DEVICES=4,5,6,7``.
A job's own ``CUDA_VISIBLE_DEVICES`` must then name GPUs *from that list*: ``--gpus 0,1`` means the
first two GPUs we were given (physical 4 and 5), never physical 0 and 1, which belong to someone
else; without an inherited list ``--gpus`` counts the GPUs of the machine. An index beyond them is
refused. Without ``--gpus``, ``--jobs N`` spreads the N job slots round-robin over every visible GPU
(instead of stacking them all on ``cuda:0``); with no GPU they are CPU slots.

``resolve_device`` turns ``auto | cpu | cuda | cuda:N`` into a torch device for predict, the
distributed set-up (every training and extraction stage) and the face detector: asking for CUDA where
torch sees no device is an error, never a quiet run on the CPU. Reads the environment, torch's view
of CUDA and ``/dev/nvidia<N>``; writes nothing.
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
        visible = visible_gpus(environ, dev)
        beyond = [g for g in ids if int(g) >= len(visible)]
        if beyond:
            source = f"{CVD}={environ[CVD]}" if CVD in environ else \
                f"{dev}/nvidia<N>; no {CVD} inherited, which would name GPUs that have no such file"
            raise AbawError(f"--gpus {gpus}: GPU {beyond[0]} is not one of the {len(visible)} this process may use "
                            f"({source}); --gpus counts from 0 within those")
        return [visible[int(g)] for g in ids]
    if jobs < 1:
        raise AbawError(f"--jobs must be >= 1, got {jobs}")
    visible = visible_gpus(environ, dev)
    return [visible[i % len(visible)] if visible else None for i in range(jobs)]


# ----------------------------------------------------------------------------- a stage's device
DEVICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str = "auto", local_rank: int = 0, environ: Mapping[str, str] | None = None):
    """A ``device`` setting -> ``torch.device``: the one rule of every stage, so none falls back quietly.

    ``auto``: this rank's GPU when torch sees one, else the CPU; but when the environment names GPUs
    (a job slot of ``abaw run``) and torch sees none, an error, since ``abaw status`` says that job runs
    on a GPU. ``cuda``: this rank's GPU (``local_rank``); ``cuda:N``: that one. CUDA asked for where torch
    sees no device, or fewer than asked, is an ``AbawError`` (one line), never a CPU run.
    """
    import torch

    environ = os.environ if environ is None else environ
    name = (name or "auto").strip()
    m = re.fullmatch(r"(auto|cpu|cuda)(?::(\d+))?", name)
    if m is None or (m.group(2) is not None and m.group(1) != "cuda"):
        raise AbawError(f"device must be {DEVICES}, got {name!r}")
    if m.group(1) == "cpu":
        return torch.device("cpu")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    named = CVD in environ and bool(visible_gpus(environ))
    if m.group(1) == "auto" and not n and not named:
        return torch.device("cpu")
    index = int(m.group(2)) if m.group(2) is not None else local_rank
    if index < n:
        return torch.device("cuda", index)
    given = f" ({CVD}={environ[CVD]})" if CVD in environ else ""
    sees = f"torch sees {n} CUDA GPU{'' if n == 1 else 's'}{given}" if n else f"no CUDA GPU is visible to torch{given}"
    if m.group(1) == "auto" and not n:
        raise AbawError(f"device auto: {CVD}={environ[CVD]} names a GPU but {sees.replace(given, '')}; "
                        "check the GPU index (abaw run --gpus) or set device = cpu")
    which = f"GPU {index} (LOCAL_RANK {local_rank})" if m.group(2) is None and local_rank else f"cuda:{index}"
    raise AbawError(f"device {name}: {sees}, so {which} is not there; set device = cpu or auto, or run where "
                    "the GPU is visible")


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


def amp_precision(device: object, amp: bool) -> str:
    """A trainer's ``amp`` switch -> its precision: ``bf16`` on CUDA when on, ``fp32`` otherwise (training
    keeps fp32 on the CPU, where bf16 is slow)."""
    import torch

    return "bf16" if amp and torch.device(device).type == "cuda" else "fp32"


def precision_autocast(device: object, precision: str):
    """The context a model runs in at ``precision``: bf16 autocast (CUDA or CPU), or nothing for fp32.
    The one autocast of abawkit: training (``engine``, via ``amp_precision``) and feature extraction.

    bf16 is honoured on the CPU too, so ``abaw predict`` on a laptop can reproduce features that were
    extracted in bf16 on a GPU instead of silently computing them in fp32.
    """
    import contextlib

    import torch

    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
