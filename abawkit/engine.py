"""The one training loop every training stage shares (MAE pre-training, fine-tuning, TMF).

``fit(model, loss_fn, dataset, cfg, ...)`` trains ``model`` by minimising ``loss_fn(model, batch)``
over ``dataset`` with:

- AdamW (no weight decay on biases, norms, position embeddings and tokens), linear warm-up then
  cosine decay, per optimizer step; gradient accumulation (``accum_steps`` micro-batches per step;
  the effective batch is ``batch_size * accum_steps * world_size``); optional gradient clipping;
- bf16 autocast on CUDA, fused AdamW on CUDA, optional ``torch.compile`` (``compile``);
  DistributedDataParallel + a distributed sampler when a process group is initialised
  (``abawkit.distributed.setup`` under ``torchrun``);
- exact resume: ``checkpoint_path`` holds model, optimizer, scheduler, step, history, best score and
  the RNG states of python/numpy/torch and of this rank's CUDA device (one small ``.rankN`` file per
  extra rank; any device count resumes it), in plain types so it loads with ``weights_only=True`` like
  any other file (``models.checkpoints.load_file``). The data
  order is a function of (seed, epoch) and every sample's augmentation is seeded by (seed, epoch,
  index), so a run resumed mid-epoch sees exactly the batches the uninterrupted run would have seen;
- an optional ``eval_fn() -> {"score": float, ...}`` after every epoch (rank 0 only; the model is
  in eval mode under ``torch.no_grad``); ``on_best(model, record)`` is called when the score improves;
- JSON lines through ``run.log`` (a ``runs.StageRun``): ``train`` every ``log_every`` steps (with
  the throughput ``img_s`` since the previous record), ``epoch`` after each epoch.

The dataset is passed (not a loader) so the engine owns the sampler, which is what makes resume exact.
``batch`` is whatever the DataLoader yields (with ``collate_fn``), moved to the device and passed
through ``batch_transform`` (no grad; e.g. ``data.augment.BatchAugment``: uint8 crops in, augmented
float images out: at 224 px from 112 px crops workers ship 1/16 of the bytes, and the device augments).
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info

from abawkit import distributed
from abawkit.errors import AbawError, first_line
from abawkit.statefile import plain, save_state  # noqa: F401 - re-exported: engine.save_state / engine.plain


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every training stage (a ``[train]`` table in recipes)."""

    epochs: int = 1
    max_steps: int = 0  # optimizer steps; 0 = epochs * steps per epoch
    batch_size: int = 64  # per rank and micro-step
    accum_steps: int = 1
    lr: float = 1e-3
    min_lr: float = 0.0
    weight_decay: float = 0.05
    betas: tuple[float, ...] = (0.9, 0.95)
    warmup_epochs: float = 0.0
    clip_grad: float = 0.0  # 0 = off
    num_workers: int = 0
    checkpoint_every: int = 0  # optimizer steps; 0 = only at epoch ends
    log_every: int = 10
    amp: bool = True  # bf16 autocast (CUDA only)
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch CPU threads of this process; 0 = torch's default
    compile: bool = False  # torch.compile the model (worth it for long GPU runs; the first steps compile)
    dist_timeout_min: float = 0.0  # multi-GPU: how long ranks wait for each other; 0 = distributed.DEFAULT_TIMEOUT_MIN


@dataclass
class FitResult:
    steps: int
    history: list[dict] = field(default_factory=list)  # one record per epoch
    best: dict | None = None  # the best epoch record (by eval score)


# ----------------------------------------------------------------------------- data order
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


def make_loader(dataset: Dataset, cfg: TrainConfig, seed: int, info: distributed.DistInfo,
                collate_fn: Callable | None = None, pin: bool = False) -> tuple[DataLoader, ResumableSampler]:
    """Training DataLoader with a resumable sampler; workers decode/augment, memory pinned on CUDA."""
    sampler = ResumableSampler(dataset, info.world, info.rank, seed)
    loader = DataLoader(
        SeededDataset(dataset), batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
        num_workers=cfg.num_workers, pin_memory=pin, persistent_workers=cfg.num_workers > 0,
        collate_fn=collate_fn, generator=torch.Generator().manual_seed(seed),  # keeps global RNG untouched
    )
    return loader, sampler


# ----------------------------------------------------------------------------- optimiser
def param_groups(model: nn.Module, weight_decay: float, lr_scale: Callable[[str], float] | None = None) -> list[dict]:
    """AdamW groups: decay on matrices, none on biases/norms/pos_embed/tokens.

    ``lr_scale(name)`` optionally scales a parameter's learning rate (e.g. layer-wise decay).
    """
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim <= 1 or name.endswith(("pos_embed", "cls_token", "mask_token"))
        key = (0.0 if skip else weight_decay, lr_scale(name) if lr_scale else 1.0)
        groups.setdefault(key, []).append(p)
    return [{"params": ps, "weight_decay": wd, "lr_scale": sc} for (wd, sc), ps in groups.items()]


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# ----------------------------------------------------------------------------- RNG + checkpoints
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


def _rank_file(path: Path, rank: int) -> Path:
    return path.with_name(f"{path.name}.rank{rank}")


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op elsewhere."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ----------------------------------------------------------------------------- the loop
@dataclass
class _Loop:
    """Everything ``fit`` threads through its helpers."""

    model: nn.Module  # the raw model
    ddp: nn.Module  # DDP-wrapped (or the raw model)
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    cfg: TrainConfig
    info: distributed.DistInfo
    device: torch.device
    total: int
    per_epoch: int
    ckpt: Path | None
    run: Any
    transform: Callable | None = None
    step: int = 0
    history: list = field(default_factory=list)
    best: dict | None = None

    def log(self, event: str, **fields: Any) -> None:
        if self.run is not None and self.info.is_main:
            self.run.log(event, **fields)

    def save(self) -> None:
        if self.ckpt is None:
            return
        if self.info.is_main:
            save_state(self.ckpt, {
                "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "step": self.step, "history": plain(self.history),
                "best": plain(self.best), "rng": portable_rng_state(),
            })
        else:
            save_state(_rank_file(self.ckpt, self.info.rank), {"rng": portable_rng_state(), "step": self.step})
        distributed.barrier()

    def load(self) -> bool:
        """Resume from our own checkpoint; read like any file (``weights_only``: no code runs)."""
        from abawkit.models.checkpoints import load_file

        if self.ckpt is None or not self.ckpt.exists():
            return False
        state = load_file(self.ckpt, map_location=self.device)
        try:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:  # inputs or model settings changed since the save
            raise AbawError(f"{self.ckpt}: the resume checkpoint does not fit this model ({first_line(exc)}); "
                            "the stale run was cleared, run the command again to start afresh") from None
        self.sched.load_state_dict(state["scheduler"])
        self.step, self.history, self.best = state["step"], state["history"], state["best"]
        rng = state["rng"]
        if not self.info.is_main:
            rng = load_file(_rank_file(self.ckpt, self.info.rank))["rng"]
        set_rng_state(rng)
        return True


def _train_step(loop: _Loop, it: Any, loss_fn: Callable) -> float:
    """One optimizer step over ``accum_steps`` micro-batches; returns the mean loss."""
    total = 0.0
    for micro in range(loop.cfg.accum_steps):
        batch = _to(next(it), loop.device)
        if loop.transform is not None:
            batch = loop.transform(batch)
        sync = micro == loop.cfg.accum_steps - 1 or not loop.info.enabled
        with (contextlib.nullcontext() if sync else loop.ddp.no_sync()), autocast(loop.device, loop.cfg.amp):
            loss = loss_fn(loop.ddp, batch)
            if not torch.isfinite(loss):
                raise AbawError(f"loss is {loss.item()} at step {loop.step}; lower the learning rate")
            (loss / loop.cfg.accum_steps).backward()
        total += float(loss.detach())
    if loop.cfg.clip_grad > 0:
        nn.utils.clip_grad_norm_(loop.model.parameters(), loop.cfg.clip_grad)
    loop.opt.step()
    loop.sched.step()
    loop.opt.zero_grad(set_to_none=True)
    loop.step += 1
    return total / loop.cfg.accum_steps


def _end_epoch(loop: _Loop, epoch: int, losses: list[float], eval_fn: Callable | None,
               on_best: Callable | None) -> None:
    """Evaluate (rank 0), update best, log the epoch and save a checkpoint."""
    record: dict[str, Any] = {"epoch": epoch, "step": loop.step,
                              "loss": distributed.all_reduce_mean(float(np.mean(losses)) if losses else float("nan"), loop.device)}
    if eval_fn is not None and loop.info.is_main:
        loop.model.eval()
        with torch.no_grad(), autocast(loop.device, loop.cfg.amp):
            record.update(eval_fn())
        loop.model.train()
        if loop.best is None or record["score"] > loop.best["score"]:
            loop.best = dict(record)
            if on_best is not None:
                on_best(loop.model, record)
    loop.history.append(record)
    loop.log("epoch", **record)
    loop.save()


def fit(
    model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], dataset: Dataset, cfg: TrainConfig,
    *, seed: int = 0, eval_fn: Callable[[], dict] | None = None, on_best: Callable[[nn.Module, dict], None] | None = None,
    checkpoint_path: str | Path | None = None, run: Any = None, collate_fn: Callable | None = None,
    device: torch.device | None = None, progress: bool = True, stop_at: int | None = None,
    lr_scale: Callable[[str], float] | None = None, batch_transform: Callable[[Any], Any] | None = None,
) -> FitResult:
    """Train ``model`` (see the module docstring). Resumes from ``checkpoint_path`` if it exists.

    ``stop_at`` ends the run after that many optimizer steps (checkpoint saved), as if interrupted.
    ``lr_scale(param_name) -> factor`` scales learning rates per parameter (layer-wise decay).
    ``batch_transform(batch) -> batch`` runs on the device before ``loss_fn`` (on-device augmentation).
    """
    info, auto_device = distributed.setup(cfg.device, cfg.dist_timeout_min)
    device = device or auto_device
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model.to(device).train()
    loader, sampler = make_loader(dataset, cfg, seed, info, collate_fn, pin=device.type == "cuda")
    per_epoch = sampler.num_samples // (cfg.batch_size * cfg.accum_steps)
    if per_epoch < 1:
        raise AbawError(f"{len(dataset)} training samples are fewer than one step "  # type: ignore[arg-type]
                        f"(batch_size {cfg.batch_size} x accum_steps {cfg.accum_steps} x {info.world} ranks)")
    total = cfg.max_steps or cfg.epochs * per_epoch
    groups = param_groups(model, cfg.weight_decay, lr_scale)
    for g in groups:
        g["lr"] = cfg.lr * g["lr_scale"]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), fused=(device.type == "cuda") or None)
    warmup = int(cfg.warmup_epochs * per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup, cfg.min_lr / cfg.lr))
    ddp = model
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.compile:
        ddp = torch.compile(ddp)  # state dicts stay the raw model's (loop.model)
    seed_everything(seed + info.rank)
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    loop = _Loop(model, ddp, opt, sched, cfg, info, device, total, per_epoch, ckpt, run, batch_transform)
    if loop.load():
        loop.log("resume", step=loop.step)
    _run_epochs(loop, loader, sampler, loss_fn, eval_fn, on_best, progress and info.is_main, stop_at or total)
    return FitResult(loop.step, loop.history, loop.best)


class _Throughput:
    """Images per second (all ranks) between two log records; the first window includes loader start."""

    def __init__(self, images_per_step: int, step: int) -> None:
        self.per_step, self.step, self.t = images_per_step, step, time.perf_counter()
        self.last = 0.0

    def update(self, step: int) -> float:
        now = time.perf_counter()
        self.last = (step - self.step) * self.per_step / max(now - self.t, 1e-9)
        self.step, self.t = step, now
        return self.last


def _run_epochs(loop: _Loop, loader: DataLoader, sampler: ResumableSampler, loss_fn: Callable,
                eval_fn: Callable | None, on_best: Callable | None, show: bool, stop_at: int) -> None:
    from abawkit.console import progress

    cfg = loop.cfg
    with progress(transient=True) if show else contextlib.nullcontext() as bar:
        task = bar.add_task("train", total=loop.total, completed=loop.step) if bar else None
        while loop.step < min(loop.total, stop_at):
            epoch, done = divmod(loop.step, loop.per_epoch)
            sampler.start(epoch, done * cfg.batch_size * cfg.accum_steps)
            it, losses, t0 = iter(loader), [], time.time()
            meter = _Throughput(cfg.batch_size * cfg.accum_steps * loop.info.world, loop.step)
            for _ in range(done, loop.per_epoch):
                losses.append(_train_step(loop, it, loss_fn))
                if bar:
                    bar.update(task, completed=loop.step, description=f"train {meter.last:.0f} img/s" if meter.last else "train")
                if loop.step % cfg.log_every == 0:
                    loop.log("train", step=loop.step, epoch=epoch, loss=losses[-1], lr=loop.opt.param_groups[0]["lr"],
                             sec=round(time.time() - t0, 3), img_s=round(meter.update(loop.step), 1))
                if loop.step >= min(loop.total, stop_at):
                    break
                if cfg.checkpoint_every and loop.step % cfg.checkpoint_every == 0:
                    loop.save()
            if loop.step % loop.per_epoch == 0 or loop.step == loop.total:
                _end_epoch(loop, epoch, losses, eval_fn, on_best)
            elif loop.step >= stop_at:
                loop.save()
