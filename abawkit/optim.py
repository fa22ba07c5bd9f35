"""The optimiser every training loop uses: AdamW parameter groups and the warm-up + cosine schedule.

Used by ``engine.fit``; reads and writes nothing.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn


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


def make_optimizer(model: nn.Module, cfg: Any, lr_scale: Callable[[str], float] | None, device: torch.device,
                   total: int, warmup: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``param_groups`` at ``cfg.lr`` (times each group's scale), and its per-step schedule
    (``lr_factor``: ``warmup`` steps, cosine to ``cfg.min_lr`` at ``total``); ``cfg``: a ``TrainConfig``."""
    groups = param_groups(model, cfg.weight_decay, lr_scale)
    for g in groups:
        g["lr"] = cfg.lr * g["lr_scale"]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), fused=(device.type == "cuda") or None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup, cfg.min_lr / cfg.lr))
    return opt, sched
