"""The video-level model (A/H of ABAW 10/11, EMI): one prediction per video, in training and in ``abaw predict``.

``predict_videos`` is the one prediction loop of a video model (the ``train video`` stage's validation and test
predictions use it too): the frames of each video sampled as at evaluation (``data.video.frame_index``: the
middle frame of ``frames`` equal segments), padded batches. ``video_values`` runs ``video/<track>/fold<N>/best.pt``
(rebuilt from its checkpoint alone, ``models.video.load_video_model``) on one clip whose features are re-extracted
with the extractors of the stores it was trained on (``extractors.clip_parts``), and ``clip_row`` combines the
chosen folds as the submission does (``submission_video.combine``: A/H each fold calibrated to its tuned
threshold, then averaged). Reads ``best.pt``, the fold's manifest (its threshold) and the stores' records.
Writes nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from abawkit.data.video import VideoDataset, VideoInputs, collate
from abawkit.errors import AbawError
from abawkit.inference.clip import Clip
from abawkit.inference.extractors import clip_parts
from abawkit.inference.models import Models, stage_dir, stage_hint
from abawkit.labels import task
from abawkit.models.video import activate, load_video_model
from abawkit.submission_video import combine, fold_threshold
from abawkit.workspace import layout


def predict_videos(model, data: list[VideoInputs], frames: int, device, batch: int = 16) -> np.ndarray:
    """[V, C] activated predictions (probabilities or intensities), one row per video of ``data``."""
    ds, outs = VideoDataset(data, frames, train=False), []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(ds), batch):
            b = collate([ds[j] for j in range(i, min(i + batch, len(ds)))])
            out = model(b["x"].to(device), b["pos"].to(device), b["pad"].to(device)).float()
            outs.append(activate(model.arch.kind, out).cpu().numpy())
    model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0, model.arch.n_outputs), np.float32)


def video_values(models: Models, task_name: str, fold: int, clip: Clip) -> np.ndarray:
    """Activated outputs [C] of ``video/<track>/fold<N>`` for the clip's largest face per frame (its features
    re-extracted; frames without a face take the nearest face frame's vision features, as ``abaw extract``)."""
    name = layout.video_model(task_name, fold)
    d = stage_dir(models.workdir, name)
    model, meta = models.cached(("video", str(d)), lambda: load_video_model(d / "best.pt"))
    _, frames, crops = next(clip.people("largest"))
    parts = clip_parts(models, list(meta["features"]), clip, -1, frames, crops)
    dims = tuple(p.shape[1] for p in parts)
    if dims != tuple(model.arch.parts):
        raise AbawError(f"{d}: trained on features/{{{','.join(meta['features'])}}} of "
                        f"{'+'.join(map(str, model.arch.parts))} dims, which now give {'+'.join(map(str, dims))} "
                        f"(re-extracted with another extractor?): re-run `{stage_hint(name)} --force`")
    model = model.to(models.device)
    data = [VideoInputs(clip.path.stem, tuple(parts), np.zeros(1, np.float32))]
    return predict_videos(model, data, int(meta["frames"]), models.device)[0]


def clip_row(models: Models, task_name: str, clip: Clip) -> pd.DataFrame:
    """One row: ``video`` + the chosen folds' values combined as the submission combines them (A/H: ``p1``, each
    fold calibrated so its tuned threshold is 0.5, then averaged; EMI: the averaged intensities)."""
    spec = task(task_name)
    folds = []
    for fold in models.folds(task_name):
        values = video_values(models, task_name, fold, clip)
        table = pd.DataFrame([values], columns=list(spec.names), index=[clip.path.stem])
        folds.append((table, fold_threshold(stage_dir(models.workdir, layout.video_model(task_name, fold)))))
    return combine(spec, folds)
