"""The one training loop every training stage shares (MAE pre-training, fine-tuning, TMF).

``fit(model, loss_fn, dataset, cfg, ...)`` trains ``model`` by minimising ``loss_fn(model, batch)``
over ``dataset`` with:

- AdamW (no weight decay on biases, norms, position embeddings and tokens), linear warm-up then
  cosine decay, per optimizer step; gradient accumulation (``accum_steps`` micro-batches per step;
  the effective batch is ``batch_size * accum_steps * world_size``); optional gradient clipping;
- a recipe that survives a change of device count (``scaled``): ``global_batch`` fixes the effective
  batch (``accum_steps`` follows the number of ranks, and so does nothing else: same steps per epoch,
  same samples in each step), and ``blr`` is MAE's base rate per 256 samples (``lr = blr * effective
  batch / 256``); both are printed, logged (``schedule``) and returned for the stage's manifest;
- stop requests (``abawkit.preempt``: SLURM's USR1 before a time limit, SIGTERM of a preemption): after
  the step under way, the checkpoint is saved and ``preempt.NotFinished`` raised (exit 75, resumable);
- bf16 autocast on CUDA, fused AdamW on CUDA, optional ``torch.compile`` (``compile``);
  DistributedDataParallel + a distributed sampler when a process group is initialised
  (``abawkit.distributed.setup`` under ``torchrun``);
- exact resume: ``checkpoint_path`` holds model, optimizer, scheduler, step, history, best score, the
  effective batch and the RNG states (one small ``.rankN`` file per extra rank; any device count resumes
  it), in plain types so it loads with ``weights_only=True`` (``models.checkpoints.load_file``); the data
  order and augmentation are seeded (``abawkit.determinism``), so a run resumed mid-epoch sees exactly
  the batches the uninterrupted run would have seen;
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
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from abawkit import distributed, preempt
from abawkit.console import console, progress
from abawkit.determinism import (
    ResumableSampler, SeededDataset, cuda_device_state, item_seed, portable_rng_state, rng_state, seed_everything, set_rng_state,
)
from abawkit.devices import amp_precision, precision_autocast
from abawkit.errors import AbawError, first_line
from abawkit.models.checkpoints import load_file
from abawkit.optim import lr_factor, make_optimizer, param_groups
from abawkit.statefile import plain, save_state


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every training stage (a ``[train]`` table in recipes)."""

    epochs: int = 1
    max_steps: int = 0  # optimizer steps; 0 = epochs * steps per epoch
    batch_size: int = 64  # per rank and micro-step
    accum_steps: int = 1  # ignored when global_batch is set
    global_batch: int = 0  # samples per optimizer step over all ranks (batch_size: the most per micro-step); 0 = off
    lr: float = 1e-3  # absolute; ignored when blr is set
    blr: float = 0.0  # base rate per 256 samples (MAE): lr = blr x effective batch / 256
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
    effective_batch: int = 0  # samples per optimizer step over all ranks
    lr: float = 0.0  # the peak learning rate it trained with


def scaled(cfg: TrainConfig, world: int) -> TrainConfig:
    """The settings a run on ``world`` ranks trains with: with ``global_batch``, each rank's share of it in
    the fewest micro-batches of at most ``batch_size`` (so the effective batch, and with it the schedule,
    does not depend on the device count), and ``lr`` from ``blr`` (MAE's rule)."""
    batch, accum = cfg.batch_size, cfg.accum_steps
    if cfg.global_batch:
        share = cfg.global_batch // world
        accum = -(-share // cfg.batch_size)
        batch = share // max(accum, 1)
        if share * world != cfg.global_batch or batch * accum != share or not share:
            raise AbawError(f"train.global_batch {cfg.global_batch} does not split over {world} rank(s) in equal "
                            f"micro-batches of at most batch_size {cfg.batch_size}: change one of them")
    effective = batch * accum * world
    return replace(cfg, batch_size=batch, accum_steps=accum, lr=cfg.blr * effective / 256 if cfg.blr else cfg.lr)


# ----------------------------------------------------------------------------- data order
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


# ----------------------------------------------------------------------------- checkpoints
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
    """The trainer's autocast: ``devices.precision_autocast`` at ``devices.amp_precision(device, enabled)``
    (bf16 on CUDA when on, nothing elsewhere). A name for callers; the rule lives in ``devices``."""
    return precision_autocast(device, amp_precision(device, enabled))


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

    @property
    def effective_batch(self) -> int:
        return self.cfg.batch_size * self.cfg.accum_steps * self.info.world

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
                "best": plain(self.best), "rng": portable_rng_state(), "effective_batch": self.effective_batch,
            })
        else:
            save_state(_rank_file(self.ckpt, self.info.rank), {"rng": portable_rng_state(), "step": self.step})
        distributed.barrier()

    def load(self) -> bool:
        """Resume from our own checkpoint; read like any file (``weights_only``: no code runs)."""

        if self.ckpt is None or not self.ckpt.exists():
            return False
        state = load_file(self.ckpt, map_location=self.device)
        try:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:  # inputs or model settings changed since the save
            raise AbawError(f"{self.ckpt}: the resume checkpoint does not fit this model ({first_line(exc)}); "
                            "the stale run was cleared, run the command again to start afresh") from None
        if state.get("effective_batch", self.effective_batch) != self.effective_batch:
            raise AbawError(f"{self.ckpt}: saved by a run with an effective batch of {state['effective_batch']}, this one has "
                            f"{self.effective_batch} (another device count?): set train.global_batch to "
                            f"{state['effective_batch']} to resume it")
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
    cfg = scaled(cfg, info.world)
    device = device or auto_device
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model.to(device).train()
    loader, sampler = make_loader(dataset, cfg, seed, info, collate_fn, pin=device.type == "cuda")
    effective = cfg.batch_size * cfg.accum_steps * info.world
    # a fixed global batch: the same steps per epoch on any number of ranks (each rank's sampler holds enough)
    per_epoch = len(dataset) // effective if cfg.global_batch else sampler.num_samples // (effective // info.world)  # type: ignore[arg-type]
    if per_epoch < 1:
        raise AbawError(f"{len(dataset)} training samples are fewer than one step "  # type: ignore[arg-type]
                        f"(batch_size {cfg.batch_size} x accum_steps {cfg.accum_steps} x {info.world} ranks)")
    total = cfg.max_steps or cfg.epochs * per_epoch
    opt, sched = make_optimizer(model, cfg, lr_scale, device, total, int(cfg.warmup_epochs * per_epoch))
    ddp = model
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.compile:
        ddp = torch.compile(ddp)  # state dicts stay the raw model's (loop.model)
    seed_everything(seed + info.rank)
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    loop = _Loop(model, ddp, opt, sched, cfg, info, device, total, per_epoch, ckpt, run, batch_transform)
    _announce(loop, progress)
    if loop.load():
        loop.log("resume", step=loop.step)
    with preempt.catching():
        _run_epochs(loop, loader, sampler, loss_fn, eval_fn, on_best, progress and info.is_main, stop_at or total)
    return FitResult(loop.step, loop.history, loop.best, loop.effective_batch, cfg.lr)


def _announce(loop: _Loop, show: bool) -> None:
    """Print and log the batch and rate this run trains with (they follow the device count; see ``scaled``)."""

    cfg, eff = loop.cfg, loop.effective_batch
    loop.log("schedule", effective_batch=eff, batch_size=cfg.batch_size, accum_steps=cfg.accum_steps,
             ranks=loop.info.world, lr=cfg.lr, steps=loop.total, steps_per_epoch=loop.per_epoch)
    if show and loop.info.is_main:
        blr = f" (blr {cfg.blr:.4g} x {eff} / 256)" if cfg.blr else ""
        console.print(f"effective batch {eff} ({cfg.batch_size} x {cfg.accum_steps} accum x {loop.info.world} rank(s)), "
                      f"lr {cfg.lr:.4g}{blr}, {loop.total} steps")


def _stop(loop: _Loop) -> str:
    """The stop request this step ends on ("" if none): any rank's (``preempt``), agreed by every rank."""
    why = preempt.requested()
    if loop.info.enabled:
        flag = torch.tensor([1.0 if why else 0.0], device=loop.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        why = why or ("another rank's stop request" if flag.item() else "")
    return why


def _stopped(loop: _Loop, why: str) -> preempt.NotFinished:
    return preempt.NotFinished(f"stopped at step {loop.step} of {loop.total} on {why}: checkpoint saved in {loop.ckpt}; "
                               "run the same command again to continue")


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
                if loop.step % loop.per_epoch and (why := _stop(loop)):  # an epoch's last step saves in _end_epoch
                    loop.save()
                    raise _stopped(loop, why)
                if cfg.checkpoint_every and loop.step % cfg.checkpoint_every == 0:
                    loop.save()
            if loop.step % loop.per_epoch == 0 or loop.step == loop.total:
                _end_epoch(loop, epoch, losses, eval_fn, on_best)
                if loop.step < min(loop.total, stop_at) and (why := _stop(loop)):
                    raise _stopped(loop, why)
            elif loop.step >= stop_at:
                loop.save()
