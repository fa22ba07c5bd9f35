"""The fine-tuned frame model (``finetune/<task>/fold<N>/best.pt``) on face crops.

``predict_frames`` is the one prediction loop of a frame model (the finetune stage's validation and
test predictions use it too). Reads ``best.pt`` through ``models.checkpoints.load_frame_model``.
Writes nothing.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from abawkit.data.augment import device_batches
from abawkit.data.faces import FaceCrops, eval_loader
from abawkit.engine import autocast
from abawkit.inference.models import Models, stage_dir
from abawkit.losses import activate
from abawkit.models.checkpoints import load_frame_model
from abawkit.workspace import layout


def predict_frames(model: Any, loader: Any, task_name: str, device: Any, amp: bool) -> np.ndarray:
    """Activated predictions [N, C] for an ordered loader of FaceCrops (uint8 image, params, label) batches."""
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad(), autocast(device, amp):
        for imgs, _ in device_batches(loader, device, model.arch.img_size):
            out.append(activate(task_name, model(imgs).float()).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def frame_model_values(models: Models, task_name: str, fold: int, crops: list[str]) -> np.ndarray:
    """Activated outputs [P, C] of ``finetune/<task>/fold<N>/best.pt`` on the face crops."""
    ckpt = stage_dir(models.workdir, layout.finetune(task_name, fold))
    model, _ = models.cached(("frame", str(ckpt)), lambda: load_frame_model(ckpt / "best.pt"))
    model = model.to(models.device)
    loader = eval_loader(FaceCrops(crops, model.arch.img_size, False), models.cfg.batch_size,
                         pin=models.device.type == "cuda")
    t0 = time.perf_counter()
    out = predict_frames(model, loader, task_name, models.device, models.device.type == "cuda")
    models.clock["encode"] = models.clock.get("encode", 0.0) + time.perf_counter() - t0
    return out
