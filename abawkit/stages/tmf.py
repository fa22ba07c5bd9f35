"""``abaw train tmf``: the temporal multi-modal fusion model for one task and fold.

Reads ``prep`` (frames, labels, folds) and the chosen feature stores ``features/<name>`` (a name
``mae`` resolves to ``mae-<task>-fold<N>``, then ``mae-<task>``, then ``mae``). Trains ``models.tmf``
(``model.temporal``: transformer | tcn | gru; ``model.modality_dropout``) on clips of K frames through
``abawkit.engine`` (the shared loop: AdamW, schedule, bf16, DDP, resume), evaluating on the fold's validation videos every epoch. Writes ``tmf/<task>/fold<N>/``:
``best.pt`` (``models.checkpoints.save_tmf``: the common format, kind ``tmf``, with its ``arch``, the
feature store names and the eval stride: ``abaw predict`` rebuilds the model from it alone), ``pred_val.parquet`` and ``pred_test.parquet``
(every frame; overlapping clips averaged) and ``metrics.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from abawkit.engine import TrainConfig
from abawkit.errors import AbawError
from abawkit.models.tmf_arch import TMFSettings
from abawkit.workspace import identity as ident
from abawkit.workspace import layout
from abawkit.workspace.layout import PREP


@dataclass(frozen=True)
class FeatureSets:
    """Feature stores per task (the paper: audio helps EXPR/VA, AU uses vision only; ``text``: the
    ``abaw extract text`` store, what was said on each frame)."""

    au: tuple[str, ...] = ("mae",)
    expr: tuple[str, ...] = ("mae", "fbank")
    va: tuple[str, ...] = ("mae", "fbank")
    mtl: tuple[str, ...] = ("mae", "fbank")
    ce: tuple[str, ...] = ("mae",)
    ah_frames: tuple[str, ...] = ("mae", "fbank", "text")  # ABAW 8's A/H: the teams who placed used the words


@dataclass(frozen=True)
class ClipConfig:
    length: int = 100
    stride: int = 50  # training clips
    eval_stride: int = 50  # validation/test clips (overlaps averaged)


ModelConfig = TMFSettings  # tmf.toml [model]: the one list of the TMF's settings (models.tmf_arch)


@dataclass(frozen=True)
class TMFConfig:
    seed: int = 0
    task: str = "expr"
    fold: int = 0
    tag: str = ""  # stage name suffix: tmf/<task>/fold<N>-<tag> (e.g. "vision" for a feature ablation)
    features: FeatureSets = field(default_factory=FeatureSets)
    clips: ClipConfig = field(default_factory=ClipConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, batch_size=32, lr=1e-4))


def stage_name(cfg: TMFConfig) -> str:
    """``tmf/<task>/fold<N>`` plus ``-<tag>`` when the config is tagged."""
    return layout.tmf(cfg.task, cfg.fold, cfg.tag)


def resolve_stores(workdir: Path, names: tuple[str, ...], task_name: str, fold: int) -> dict[str, Any]:
    """Feature name -> FeatureStore, preferring the task/fold-specific store."""
    from abawkit.features.store import FeatureStore, open_store

    out: dict[str, FeatureStore] = {}
    for name in names:
        for cand in (f"{name}-{task_name}-fold{fold}", f"{name}-{task_name}", name):
            if (workdir / "features" / cand / "manifest.json").is_file():
                out[cand] = open_store(workdir, cand)
                break
        else:
            open_store(workdir, name)  # raises the one-line hint
    return out


def video_data(prep, videos: tuple[str, ...], stores: dict, task_name: str) -> list:
    """One ``VideoData`` per video: memory-mapped feature parts and the task's labels [n, C]."""
    from abawkit.data.clips import VideoData
    from abawkit.labels import task

    cols = list(task(task_name).label_columns)
    frames = prep.frames[prep.frames["video"].isin(videos)].sort_values(["video", "frame"])
    out = []
    for vid, g in frames.groupby("video", sort=True):
        n = len(g)
        parts = tuple(s.read(vid, n) for s in stores.values())
        out.append(VideoData(str(vid), parts, g[cols].to_numpy(np.float32)))
    return out


def evaluate(model, data: list, cfg: TMFConfig, device) -> tuple[dict, list[np.ndarray]]:
    """Official metric on the labelled frames of ``data`` and the per-video predictions."""
    from abawkit.metrics import score

    preds = predict(model, data, cfg, device)
    labels = np.concatenate([vd.labels for vd in data])
    p = np.concatenate(preds)
    return score(cfg.task, labels, p), preds


def build_model(cfg: TMFConfig, in_dim: int, parts: tuple[int, ...] = ()):
    """A new TMF of ``cfg.model`` for clips of ``cfg.clips.length``; ``parts``: the feature sets' widths."""
    from abawkit.inference.tmf import (
        build_tmf,  # torch: lazy, so planning (`abaw status`) loads none
    )

    return build_tmf(cfg.model, cfg.task, in_dim, cfg.clips.length, parts)


def predict(model, data: list, cfg: TMFConfig, device) -> list[np.ndarray]:
    """Per-video activated predictions [n, C] (``inference.tmf.predict_clips`` at ``cfg.clips.eval_stride``)."""
    from abawkit.inference.tmf import predict_clips  # torch: lazy, as above

    return predict_clips(model, data, cfg.task, cfg.clips.eval_stride, device)


def write_split_predictions(run, name: str, data: list, preds: list[np.ndarray], cfg: TMFConfig, split: str) -> None:
    """Every frame of every video of ``split`` in the shared prediction format."""
    from abawkit.predictions import make_predictions, write_predictions

    if not data:
        return
    videos = np.concatenate([[vd.video] * len(vd) for vd in data])
    frames = np.concatenate([np.arange(1, len(vd) + 1) for vd in data])
    pred = make_predictions(videos, frames, np.concatenate(preds), cfg.task, split, cfg.fold, "tmf")
    write_predictions(run.path(name), pred)
    run.add_output(name)


def run(workdir: str | Path, cfg: TMFConfig, force: bool = False, resume: bool = True) -> dict[str, Any]:
    """Train TMF for (cfg.task, cfg.fold); returns the stage metrics. ``resume=False`` drops ``last.pt``."""
    import torch

    from abawkit import distributed, engine
    from abawkit.console import console
    from abawkit.data.clips import ClipDataset, collate, flatten_valid
    from abawkit.data.tables import fold_videos, load_prep
    from abawkit.labels import task
    from abawkit.losses import class_weights, task_loss
    from abawkit.models.checkpoints import save_tmf
    from abawkit.workspace.stage import stage

    workdir = Path(workdir)
    spec = task(cfg.task)
    cfg = _with_task(cfg, spec.name)
    prep = load_prep(workdir)
    split = fold_videos(prep, spec.name, cfg.fold)
    names = getattr(cfg.features, spec.name)
    if not names:
        raise AbawError(f"features.{spec.name} is empty: name at least one feature store")
    c = cfg.clips
    if not 1 <= c.eval_stride <= c.length or c.stride < 1:
        raise AbawError(f"clips: need 1 <= eval_stride <= length and stride >= 1 (every frame must be predicted), "
                        f"got length={c.length} stride={c.stride} eval_stride={c.eval_stride}")
    stores = resolve_stores(workdir, names, spec.name, cfg.fold)
    train_data, val_data = (video_data(prep, v, stores, spec.name) for v in (split.train, split.val))
    test_data = video_data(prep, split.test, stores, spec.name)
    if not train_data or not val_data:
        raise AbawError(f"{spec.name} fold {cfg.fold}: no training or validation videos")
    info = distributed.info()
    inputs = {"prep": ident.upstream(PREP), **{layout.features(name): ident.upstream(ident.recorded_path(workdir, s.root))
                                              for name, s in stores.items()}}
    if (prep.dir / "splits.parquet").exists():
        inputs["splits"] = ident.file(prep.dir / "splits.parquet")
    with stage(workdir, stage_name(cfg), cfg, seed=cfg.seed, force=force,
               main_process=info.is_main, inputs=inputs) as st:
        if not resume and info.is_main:
            st.path("last.pt").unlink(missing_ok=True)
        torch.manual_seed(cfg.seed)
        in_dim = sum(s.dim for s in stores.values())
        model = build_model(cfg, in_dim, tuple(s.dim for s in stores.values()))
        labels = np.concatenate([vd.labels for vd in train_data])
        weights = class_weights(spec, labels)  # [N, L]: each head masked on its own

        def loss_fn(m, batch):
            out = m(batch["x"], batch["pad"])  # [B, K, C]
            return task_loss(spec, *flatten_valid(out, batch["y"], batch["pad"]), weights)

        def eval_fn():
            result, _ = evaluate(model, val_data, cfg, next(model.parameters()).device)
            return {"score": result["score"]}

        def on_best(m, record):
            save_tmf(st.path("best.pt"), m, list(stores), task=cfg.task, fold=cfg.fold,
                     eval_stride=cfg.clips.eval_stride, record=engine.plain(record))

        train_ds = ClipDataset(train_data, cfg.clips.length, cfg.clips.stride)
        fit = engine.fit(model, loss_fn, train_ds, cfg.train, seed=cfg.seed, eval_fn=eval_fn, on_best=on_best,
                         checkpoint_path=st.path("last.pt"), run=st, collate_fn=collate)
        if info.is_main:
            _finish(st, model, cfg, val_data, test_data, fit)
    console.print(f"{stage_name(cfg)}: val {spec.metric} {st.metrics.get('val_score', float('nan')):.4f}")
    return st.metrics


def _finish(st, model, cfg: TMFConfig, val_data: list, test_data: list, fit) -> None:
    """Reload the best epoch, write val/test predictions and the metrics."""
    from abawkit.models.checkpoints import read_checkpoint

    model.load_state_dict(read_checkpoint(st.path("best.pt"))["model"])
    device = next(model.parameters()).device
    st.add_output("best.pt")
    result, val_preds = evaluate(model, val_data, cfg, device)
    write_split_predictions(st, "pred_val.parquet", val_data, val_preds, cfg, "val")
    if test_data:
        write_split_predictions(st, "pred_test.parquet", test_data, predict(model, test_data, cfg, device), cfg, "test")
    st.path("last.pt").unlink(missing_ok=True)
    st.metrics = {"val_score": result["score"], "per_class": result["per_class"],
                  "best_epoch": (fit.best or {}).get("epoch"), "steps": fit.steps,
                  "features": sorted(st.inputs)}


def _with_task(cfg: TMFConfig, name: str) -> TMFConfig:
    import dataclasses

    return dataclasses.replace(cfg, task=name)
