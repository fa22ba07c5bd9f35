"""``abaw finetune``: frame-wise fine-tuning of the MAE encoder + a linear head for one task and fold.

Reads ``prep`` (frames with crops, labels, folds) and an encoder checkpoint: the ``pretrain``
stage's ``checkpoint.pt`` by default, any file ``models.checkpoints`` understands (``init`` = a
path), or none (``init = "scratch"``, the paper's "w/o MAE" ablation). Trains through
``abawkit.engine`` with the paper's losses (``abawkit.losses``) on the fold's train frames, scores
the validation frames every epoch with ``abawkit.metrics.score`` and keeps the best epoch.
Writes ``finetune/<task>/fold<N>[-<tag>]/``: ``best.pt`` (abawkit format, kind ``frame``),
``pred_val.parquet`` / ``pred_test.parquet`` (``abawkit.predictions``; every frame with a crop of the
fold's val / test videos; AU sigmoid, EXPR softmax, VA tanh) and ``metrics.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from abawkit import distributed
from abawkit.data.augment import BatchAugment
from abawkit.data.faces import (
    FaceCrops,
    collate_faces,
    eval_loader,
    prep_rows,
    task_labels,
)
from abawkit.data.tables import fold_videos, load_prep
from abawkit.engine import TrainConfig, fit, seed_everything
from abawkit.errors import AbawError
from abawkit.inference.frame import predict_frames
from abawkit.labels import TaskSpec, task
from abawkit.losses import class_weights, task_loss
from abawkit.metrics import score
from abawkit.models.checkpoints import read_checkpoint, save_checkpoint
from abawkit.models.heads import layer_decay
from abawkit.predictions import make_predictions, write_predictions
from abawkit.workspace import identity as ident
from abawkit.workspace import layout
from abawkit.workspace.layout import PREP
from abawkit.workspace.stage import stage


@dataclass(frozen=True)
class FrameModelConfig:
    encoder: str = "micro"  # used for init = "scratch"; otherwise the checkpoint's arch
    img_size: int = 0  # 0 = the checkpoint's (or encoder's) size; else pos_embed is resampled
    patch: int = 0
    arch: str = ""  # timm name for a state dict whose keys cannot tell (EVA-02, ConvNeXt); overrides inference
    pool: str = "cls"  # cls | mean | cls+mean | "" = the backbone's own (models.backbones.default_pool; ConvNeXt: mean)
    drop_path: float = 0.1
    dropout: float = 0.0
    layer_decay: float = 1.0  # layer-wise lr decay (MAE fine-tuning uses 0.65-0.75); 1 = off


@dataclass(frozen=True)
class FinetuneData:
    min_scale: float = 0.8
    jitter: float = 0.2
    eval_batch: int = 256


@dataclass(frozen=True)
class FinetuneConfig:
    seed: int = 0
    task: str = "expr"
    fold: int = 0
    init: str = "pretrain"  # pretrain | scratch | path to a checkpoint
    tag: str = ""  # stage name suffix, e.g. "scratch" -> finetune/<task>/fold<N>-scratch
    model: FrameModelConfig = field(default_factory=FrameModelConfig)
    data: FinetuneData = field(default_factory=FinetuneData)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, batch_size=512, lr=1e-4))


def stage_name(cfg: FinetuneConfig) -> str:
    return layout.finetune(cfg.task, cfg.fold, cfg.tag)


def inputs(workdir: Path, cfg: FinetuneConfig) -> dict[str, ident.Input]:
    """What a fine-tuning reads: prep (its folds too) and the initial checkpoint, by content."""
    from abawkit.workspace.stage import load_stage

    found = {"prep": ident.upstream(PREP)}
    if (Path(workdir) / PREP / "splits.parquet").exists():
        found["splits"] = ident.file(Path(workdir) / PREP / "splits.parquet")
    if cfg.init == "pretrain":
        found["init"] = ident.checkpoint(Path(load_stage(workdir, "pretrain", hint="abaw pretrain")["dir"]) / "checkpoint.pt")
    elif cfg.init != "scratch" and Path(cfg.init).exists():  # a missing one: build_model says so
        found["init"] = ident.checkpoint(cfg.init)
    return found


def build_model(workdir: Path, cfg: FinetuneConfig) -> tuple[Any, Path | None, Any]:
    """(FrameModel, checkpoint path or None, load report) according to ``cfg.init``."""
    from abawkit.labels import task
    from abawkit.models.backbone_files import open_encoder
    from abawkit.models.heads import FrameModel
    from abawkit.models.mae import encoder_arch
    from abawkit.workspace.stage import load_stage

    m = cfg.model
    if cfg.init == "scratch":
        arch = encoder_arch(m.encoder, m.img_size or None, m.patch or None)
        return FrameModel(arch, task(cfg.task).n_outputs, m.pool, m.drop_path, m.dropout), None, None
    if cfg.init == "pretrain":
        ckpt = Path(load_stage(workdir, layout.PRETRAIN, hint="abaw pretrain")["dir"]) / "checkpoint.pt"
    else:
        ckpt = Path(cfg.init)
    encoder, arch, report, _ = open_encoder(ckpt, m.arch, m.img_size, m.drop_path)
    model = FrameModel(arch, task(cfg.task).n_outputs, m.pool, m.drop_path, m.dropout, encoder=encoder)
    return model, ckpt, report


def _datasets(workdir: Path, cfg: FinetuneConfig, img_size: int) -> dict:
    """Train / val / test rows and datasets of the fold."""

    prep = load_prep(workdir)
    fv = fold_videos(prep, cfg.task, cfg.fold)
    rows = {"train": prep_rows(prep.frames, fv.train, cfg.task, labelled=True),
            "val": prep_rows(prep.frames, fv.val), "test": prep_rows(prep.frames, fv.test)}
    for split in ("train", "val"):
        if rows[split].empty:
            raise AbawError(f"{prep.dir}/frames.parquet: no {split} frames with a crop for {cfg.task} fold {cfg.fold}")
    d = cfg.data
    out = {"prep": prep, "rows": rows, "labels": {s: task_labels(r, cfg.task) for s, r in rows.items()}}
    out["train"] = FaceCrops(rows["train"]["crop"], img_size, True, out["labels"]["train"], d.min_scale, d.jitter)
    for split in ("val", "test"):
        out[split] = FaceCrops(rows[split]["crop"], img_size, False, out["labels"][split])
    return out


def run(workdir: str | Path, cfg: FinetuneConfig, *, force: bool = False, resume: bool = True) -> dict:
    """Fine-tune, evaluate every epoch, keep the best, write predictions; returns the metrics."""

    workdir = Path(workdir)
    spec = task(cfg.task)
    info, device = distributed.setup(cfg.train.device, cfg.train.dist_timeout_min)
    with stage(workdir, stage_name(cfg), cfg, seed=cfg.seed, force=force, main_process=info.is_main,
               inputs=inputs(workdir, cfg)) as st:
        seed_everything(cfg.seed)
        model, ckpt, report = build_model(workdir, cfg)
        if ckpt is not None:
            st.log("init", checkpoint=str(ckpt), format=report.format, ignored=len(report.ignored), resized=report.resized)
        data = _datasets(workdir, cfg, model.arch.img_size)
        last = st.dir / "last.pt"
        if not resume and info.is_main:
            last.unlink(missing_ok=True)
        result = _train(st, model, cfg, spec, data, device, last)
        _finish(st, model, cfg, data, device, result, info.is_main)
    return st.metrics | {"stage": stage_name(cfg), "metric": spec.metric}


def _train(st: Any, model: Any, cfg: FinetuneConfig, spec: TaskSpec, data: dict, device: Any, last: Path) -> Any:
    """Run the engine with the task loss; ``best.pt`` is rewritten whenever validation improves."""

    y_train = data["labels"]["train"]  # [N, L]: the track's label columns (each head masked on its own)
    weights = class_weights(spec, y_train)
    val_loader = eval_loader(data["val"], cfg.data.eval_batch, cfg.train.num_workers, device.type == "cuda")
    y_val = data["labels"]["val"]

    def loss_fn(m: Any, batch: Any) -> Any:
        return task_loss(spec, m(batch[0]).float(), batch[1], weights)

    def eval_fn() -> dict:
        preds = predict_frames(model, val_loader, spec, device, cfg.train.amp)
        s = score(spec, y_val, preds)
        return {"score": s["score"], "per_class": s["per_class"]}

    def on_best(m: Any, record: dict) -> None:
        save_checkpoint(st.dir / "best.pt", m.state_dict(), m.arch, "frame", task=cfg.task, fold=cfg.fold,
                        n_outputs=m.head.out_features, pool=m.pool, epoch=record["epoch"], score=record["score"])

    scale = layer_decay(model, cfg.model.layer_decay) if cfg.model.layer_decay < 1 else None
    return fit(model, loss_fn, data["train"], cfg.train, seed=cfg.seed, eval_fn=eval_fn, on_best=on_best,
               checkpoint_path=last, run=st, lr_scale=scale, collate_fn=collate_faces, batch_transform=BatchAugment(model.arch.img_size, True))


def _finish(st: Any, model: Any, cfg: FinetuneConfig, data: dict, device: Any, result: Any, main: bool) -> None:
    """Reload the best epoch, write val/test predictions and the metrics.

    Every rank predicts its share of each split (loader workers decoding) and the shares are
    gathered: left to rank 0 alone, a split of a million frames kept the other ranks waiting in the
    stage's closing collective past NCCL's timeout. Only rank 0 writes.
    """

    model.load_state_dict(read_checkpoint(st.dir / "best.pt")["model"])  # rank 0 saved it before fit's last barrier
    if main:
        st.add_output("best.pt")
    for split in ("val", "test"):
        rows = data["rows"][split]
        if rows.empty:
            continue
        values = predict_split(model, data[split], cfg, device)
        if main:
            pred = make_predictions(rows["video"], rows["frame"], values, cfg.task, split, cfg.fold, "finetune")
            write_predictions(st.add_output(f"pred_{split}.parquet"), pred)
    if not main:
        return
    for p in st.dir.glob("last.pt*"):
        p.unlink()
    best = result.best or {}
    st.metrics.update(
        task=cfg.task, fold=cfg.fold, init=cfg.init, val_score=best.get("score"), best_epoch=best.get("epoch"),
        per_class=best.get("per_class"), steps=result.steps, train_frames=len(data["rows"]["train"]),
        effective_batch=result.effective_batch, lr=result.lr,
        epochs=[{"epoch": h["epoch"], "loss": h["loss"], "score": h.get("score")} for h in result.history],
    )


def predict_split(model: Any, crops: Any, cfg: FinetuneConfig, device: Any) -> np.ndarray:
    """Activated predictions [N, C] of a FaceCrops split: this rank's share, then every rank's gathered."""
    from torch.utils.data import Subset

    mine = range(len(crops))[distributed.shard(len(crops))]
    loader = eval_loader(Subset(crops, mine), cfg.data.eval_batch, cfg.train.num_workers, device.type == "cuda")
    values = predict_frames(model, loader, cfg.task, device, cfg.train.amp) if len(mine) else \
        np.zeros((0, model.head.out_features), np.float32)
    return distributed.gather_concat(values)
