"""``abaw train video``: a video-level model (A/H of ABAW 10/11, EMI) for one track and fold.

Reads ``prep`` (``frames.parquet``: a video's label is its first frame's ``AH`` / ``emi_*`` value, -1 =
unlabelled; its split is ``split_<track>``; CV folds from ``splits.parquet`` through ``data.tables.fold_videos``)
and the chosen feature stores ``features/<name>`` (vision, audio, text; a name resolves to
``<name>-<track>-fold<N>``, then ``<name>-<track>``, then ``<name>``, as the TMF's). Trains ``models.video``
through ``abawkit.engine`` (AdamW, schedule, bf16, DDP, resume) on whole videos, ``sample.frames`` frames each,
and evaluates on the fold's validation videos every epoch (the best epoch: ``epoch_record``). Writes ``video/<track>/fold<N>/``:

- ``best.pt``: ``models.checkpoints.save_checkpoint`` kind ``video`` with its ``arch``, the feature stores in
  order, ``frames`` and the best epoch's record (its A/H ``threshold`` included), so
  ``models.video.load_video_model`` rebuilds it alone;
- ``pred_val.parquet`` / ``pred_test.parquet``: one row per video, ``video`` + ``value_columns(spec)``
  (A/H: the probabilities ``no_ah``, ``ah`` and ``pred``, 1 where ``ah`` >= the threshold tuned on validation;
  EMI: the 6 intensities);
- ``metrics.json``: A/H macro-F1 at the tuned threshold (the score), at 0.5, average precision; EMI mean
  Pearson (the score) and per emotion.

The metrics here (``ah_scores``, ``tune_threshold``, ``emi_scores``) are minimal stand-ins until the tracks'
metrics module lands; they follow the challenges' definitions (macro-F1 = mean of both classes' F1).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abawkit.engine import TrainConfig
from abawkit.errors import AbawError
from abawkit.labels import TaskSpec, task
from abawkit.metrics import f1_counts
from abawkit.models.video_arch import VideoSettings
from abawkit.workspace import identity as ident
from abawkit.workspace import layout
from abawkit.workspace.layout import PREP


@dataclass(frozen=True)
class VideoFeatures:
    """Feature stores per video-level track (the issue: faces, voices and words)."""

    ah: tuple[str, ...] = ("mae", "fbank", "text")
    emi: tuple[str, ...] = ("mae", "fbank", "text")


@dataclass(frozen=True)
class SampleConfig:
    frames: int = 128  # frames per video the model sees: one per equal segment (all of a shorter video)
    repeats: int = 1  # training: draws of each video per epoch (other frames each draw)


@dataclass(frozen=True)
class LossConfig:
    mse_weight: float = 0.1  # EMI: weight of the MSE term beside 1 - Pearson


@dataclass(frozen=True)
class VideoConfig:
    seed: int = 0
    task: str = "ah"
    fold: int = 0
    tag: str = ""  # stage name suffix: video/<task>/fold<N>-<tag> (e.g. "notext" for an ablation)
    features: VideoFeatures = field(default_factory=VideoFeatures)
    sample: SampleConfig = field(default_factory=SampleConfig)
    model: VideoSettings = field(default_factory=VideoSettings)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=30, batch_size=8, lr=3e-4))


def stage_name(cfg: VideoConfig) -> str:
    return layout.video_model(cfg.task, cfg.fold, cfg.tag)


def value_columns(spec: TaskSpec) -> list[str]:
    """The prediction table's value columns: A/H probabilities + ``pred``; EMI's intensities."""
    return [*spec.names, "pred"] if spec.head.kind == "multiclass" else list(spec.names)


# ----------------------------------------------------------------------------- minimal metrics
def ah_scores(labels: np.ndarray, p_ah: np.ndarray, threshold: float) -> dict[str, Any]:
    """labels [N] in {0, 1}, p_ah [N]: macro-F1 (mean of both classes' F1) at ``threshold``, per class, AP."""
    from sklearn.metrics import average_precision_score

    y, pred = labels.astype(bool), p_ah >= threshold
    f1 = f1_counts(np.array([(~y & ~pred).sum(), (y & pred).sum()]), np.array([(~y).sum(), y.sum()]),
                   np.array([(~pred).sum(), pred.sum()]))
    ap = float(average_precision_score(y, p_ah)) if y.any() else 0.0
    return {"score": float(f1.mean()), "per_class": [float(v) for v in f1], "ap": ap, "threshold": float(threshold)}


def tune_threshold(labels: np.ndarray, p_ah: np.ndarray) -> float:
    """The threshold on ``p_ah`` with the best macro-F1 (ties: the one nearest 0.5), among 0.5 and midpoints
    between the sorted probabilities (any threshold between two neighbours decides alike)."""
    s = np.unique(p_ah)
    cands = np.unique(np.concatenate([[0.5], (s[1:] + s[:-1]) / 2, s[:1]]))  # [K]
    y, pred = labels.astype(bool)[None], p_ah[None] >= cands[:, None]  # [1, N], [K, N]
    n_true = np.array([(~y).sum(), y.sum()])
    tp = np.stack([(~y & ~pred).sum(1), (y & pred).sum(1)], 1)  # [K, 2]
    n_pred = np.stack([(~pred).sum(1), pred.sum(1)], 1)
    f1 = f1_counts(tp, n_true[None], n_pred).mean(1)  # [K]
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return float(cands[best[np.argmin(np.abs(cands[best] - 0.5))]])


def emi_scores(labels: np.ndarray, preds: np.ndarray) -> dict[str, Any]:
    """labels, preds [N, 6]: Pearson's r per emotion over the videos (a constant column: 0) and their mean."""
    x, y = preds - preds.mean(0), labels - labels.mean(0)
    den = np.sqrt((x**2).sum(0) * (y**2).sum(0))
    r = np.divide((x * y).sum(0), den, out=np.zeros(x.shape[1]), where=den > 0)
    return {"score": float(r.mean()), "per_class": [float(v) for v in r]}


def scores(spec: TaskSpec, labels: np.ndarray, preds: np.ndarray, threshold: float | None = None) -> dict[str, Any]:
    """The track's metrics on the labelled videos; A/H tunes its threshold here unless one is given."""
    valid = (labels > spec.head.invalid).all(1)
    labels, preds = labels[valid], preds[valid]
    if spec.head.kind != "multiclass":
        return emi_scores(labels, preds)
    y, p = labels[:, 0], preds[:, 1]
    t = tune_threshold(y, p) if threshold is None else threshold
    return {**ah_scores(y, p, t), "score_at_0.5": ah_scores(y, p, 0.5)["score"]}


def epoch_record(spec: TaskSpec, labels: np.ndarray, preds: np.ndarray) -> dict[str, Any]:
    """An epoch's validation record: the track's metrics, ``metric`` the official one, and ``score``, what the best
    epoch is chosen by: the official metric, where A/H ties (a small validation set saturates macro-F1 at 1 while
    the probabilities still sit near 0.5) going to the lower validation cross-entropy, the better-trained epoch."""
    res = {k: v for k, v in scores(spec, labels, preds).items() if k != "per_class"}
    res["metric"] = res["score"]
    if spec.head.kind == "multiclass":
        valid = labels[:, 0] > spec.head.invalid
        p = preds[valid, labels[valid, 0].astype(int)]
        res["nll"] = float(-np.log(np.clip(p, 1e-12, 1.0)).mean())
        res["score"] -= 1e-9 * min(res["nll"], 10.0)  # < 1e-8: below any two macro-F1s of < 7000 videos apart
    return res


# ----------------------------------------------------------------------------- inputs
def resolve_stores(workdir: Path, names: tuple[str, ...], spec: TaskSpec, fold: int) -> dict[str, Any]:
    """Feature name -> FeatureStore, preferring the track/fold-specific store; a missing one is one line."""
    from abawkit.features.store import open_store

    out = {}
    for name in names:
        cands = dict.fromkeys((layout.vision_store(spec.name, fold, name), layout.vision_store(spec.name, 0, name), name))
        found = next((c for c in cands if (workdir / layout.features(c) / "manifest.json").is_file()), None)
        out[found or name] = open_store(workdir, found or name)  # none: raises the one-line hint
    return out


def video_inputs(prep, videos: tuple[str, ...], stores: dict, spec: TaskSpec) -> list:
    """One ``VideoInputs`` per video: memory-mapped store arrays and its label, its first frame's."""
    from abawkit.data.video import VideoInputs

    frames = prep.frames[prep.frames["video"].isin(videos)].sort_values(["video", "frame"])
    cols = list(spec.label_columns)
    out = []
    for vid, g in frames.groupby("video", sort=True):
        parts = tuple(s.read(str(vid), len(g)) for s in stores.values())
        out.append(VideoInputs(str(vid), parts, g[cols].iloc[0].to_numpy(np.float32)))
    return out


def check_prep(prep, spec: TaskSpec) -> None:
    """The frame table holds this track's labels and split (else one line naming the file and the column)."""
    need = [*spec.label_columns, f"split_{spec.name}"]
    missing = [c for c in need if c not in prep.frames.columns]
    if missing:
        raise AbawError(f"{prep.dir / 'frames.parquet'}: no column {missing[0]!r}: prepare a release with the "
                        f"{spec.name} track (`abaw prep`)")


# ----------------------------------------------------------------------------- predictions
def predict(model, data: list, frames: int, device, batch: int = 16) -> np.ndarray:
    """[V, C] activated predictions, one row per video of ``data``: ``inference.video.predict_videos``, the loop
    ``abaw predict`` runs too."""
    from abawkit.inference.video import predict_videos

    return predict_videos(model, data, frames, device, batch)


def prediction_table(data: list, preds: np.ndarray, spec: TaskSpec, threshold: float | None) -> pd.DataFrame:
    """``video`` + ``value_columns(spec)``, one row per video."""
    df = pd.DataFrame(preds.astype(np.float32), columns=list(spec.names))
    if spec.head.kind == "multiclass":
        df["pred"] = (df[spec.names[1]] >= (0.5 if threshold is None else threshold)).astype(np.int8)
    df.insert(0, "video", [vd.video for vd in data])
    return df


def labels_of(data: list) -> np.ndarray:
    return np.stack([vd.label for vd in data]) if data else np.zeros((0, 1), np.float32)


# ----------------------------------------------------------------------------- the stage
def run(workdir: str | Path, cfg: VideoConfig, force: bool = False, resume: bool = True) -> dict[str, Any]:
    """Train the video-level model for (cfg.task, cfg.fold); returns the stage metrics."""
    from abawkit import distributed
    from abawkit.console import console
    from abawkit.data.tables import fold_videos, load_prep
    from abawkit.workspace.stage import stage

    workdir, spec = Path(workdir), task(cfg.task)
    if spec.level != "video":
        raise AbawError(f"abaw train video: track {spec.name} is predicted per frame; use `abaw train tmf`")
    cfg = replace(cfg, task=spec.name)
    if cfg.sample.frames < 1 or cfg.sample.repeats < 1:
        raise AbawError(f"sample: need frames >= 1 and repeats >= 1, got {cfg.sample.frames} and {cfg.sample.repeats}")
    names = getattr(cfg.features, spec.name)
    if not names:
        raise AbawError(f"features.{spec.name} is empty: name at least one feature store")
    prep = load_prep(workdir)
    check_prep(prep, spec)
    split = fold_videos(prep, spec, cfg.fold)
    stores = resolve_stores(workdir, tuple(names), spec, cfg.fold)
    train, val, test = (video_inputs(prep, v, stores, spec) for v in (split.train, split.val, split.test))
    train = [vd for vd in train if (vd.label > spec.head.invalid).all()]
    if not train or not any((vd.label > spec.head.invalid).all() for vd in val):
        raise AbawError(f"{spec.name} fold {cfg.fold}: no labelled training or validation videos")
    inputs = {"prep": ident.upstream(PREP), **{layout.features(n): ident.upstream(ident.recorded_path(workdir, s.root))
                                              for n, s in stores.items()}}
    if (prep.dir / "splits.parquet").exists():
        inputs["splits"] = ident.file(prep.dir / "splits.parquet")
    info = distributed.info()
    with stage(workdir, stage_name(cfg), cfg, seed=cfg.seed, force=force, main_process=info.is_main,
               inputs=inputs) as st:
        if not resume and info.is_main:
            st.path("last.pt").unlink(missing_ok=True)
        model, fit = _fit(st, cfg, spec, stores, train, val)
        if info.is_main:
            _finish(st, model, cfg, spec, val, test, fit)
    console.print(f"{stage_name(cfg)}: val {spec.metric} {st.metrics.get('val_score', float('nan')):.4f}")
    return st.metrics


def _fit(st, cfg: VideoConfig, spec: TaskSpec, stores: dict, train: list, val: list) -> tuple[Any, Any]:
    """Build the model and train it; ``best.pt`` is written at every better validation score."""
    import torch

    from abawkit import engine
    from abawkit.data.video import VideoDataset, collate
    from abawkit.losses import class_weights
    from abawkit.losses_video import video_loss
    from abawkit.models.checkpoints import save_checkpoint
    from abawkit.models.video import KIND, build_video_model

    torch.manual_seed(cfg.seed)
    model = build_video_model(cfg.model, tuple(s.dim for s in stores.values()), spec)
    kind = spec.head.kind
    weights = class_weights(spec, labels_of(train)[:, 0]) if kind == "multiclass" else None

    def loss_fn(m, batch):
        return video_loss(kind, m(batch["x"], batch["pos"], batch["pad"]), batch["y"], weights, cfg.loss.mse_weight)

    def eval_fn():
        return epoch_record(spec, labels_of(val), predict(model, val, cfg.sample.frames, next(model.parameters()).device))

    def on_best(m, record):
        save_checkpoint(st.path("best.pt"), m.state_dict(), m.arch, KIND, features=list(stores), task=spec.name,
                        fold=cfg.fold, frames=cfg.sample.frames, record=engine.plain(record))

    ds = VideoDataset(train, cfg.sample.frames, train=True, repeats=cfg.sample.repeats)
    fit = engine.fit(model, loss_fn, ds, cfg.train, seed=cfg.seed, eval_fn=eval_fn, on_best=on_best,
                     checkpoint_path=st.path("last.pt"), run=st, collate_fn=collate)
    return model, fit


def _finish(st, model, cfg: VideoConfig, spec: TaskSpec, val: list, test: list, fit) -> None:
    """Reload the best epoch, write the per-video predictions (A/H: at the threshold tuned on validation), metrics."""
    from abawkit.io import write_parquet
    from abawkit.models.checkpoints import read_checkpoint

    best = read_checkpoint(st.path("best.pt"))
    model.load_state_dict(best["model"])
    st.add_output("best.pt")
    device = next(model.parameters()).device
    val_preds = predict(model, val, cfg.sample.frames, device)
    result = scores(spec, labels_of(val), val_preds)
    threshold = result.get("threshold")
    for name, data, preds in (("pred_val.parquet", val, val_preds),
                              ("pred_test.parquet", test, predict(model, test, cfg.sample.frames, device) if test else None)):
        if data:
            write_parquet(st.path(name), prediction_table(data, preds, spec, threshold), {"track": spec.name})
            st.add_output(name)
    st.path("last.pt").unlink(missing_ok=True)
    st.metrics = {"val_score": result["score"], **{f"val_{k}": v for k, v in result.items() if k != "score"},
                  "best_epoch": (fit.best or {}).get("epoch"), "steps": fit.steps, "features": list(best["features"])}
