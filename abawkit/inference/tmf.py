"""The TMF: built from settings (training) or from its checkpoint alone (prediction), and run over clips.

``predict_clips`` is the one prediction loop of a TMF (the tmf stage's validation/test predictions use
it too): clips of ``eval_stride`` frames, overlaps averaged. ``tmf_values`` re-extracts a clip's features
with the extractors of the stores the TMF was trained on and runs ``tmf/<task>/fold<N>/best.pt``, rebuilt
from the checkpoint's own ``arch`` (``models.checkpoints.load_tmf``), not from any config.
Reads ``best.pt`` and the feature stores' records. Writes nothing.
"""

from __future__ import annotations

import numpy as np
import torch

from abawkit.data.clips import ClipDataset, VideoData, average_clips, collate
from abawkit.errors import AbawError
from abawkit.inference.clip import Clip
from abawkit.inference.extractors import clip_parts
from abawkit.inference.models import Models, stage_dir, stage_hint
from abawkit.io import read_json
from abawkit.labels import task
from abawkit.losses import activate
from abawkit.models.checkpoints import load_tmf
from abawkit.models.tmf import TEMPORAL, TMF, TMFArch, TMFSettings
from abawkit.workspace import layout
from abawkit.workspace.stage import MANIFEST


def build_tmf(m: TMFSettings, task_name: str, in_dim: int, max_len: int, parts: tuple[int, ...] = ()) -> TMF:
    """A new TMF of settings ``m``; ``parts`` are the feature sets' widths (for modality dropout)."""
    if m.temporal not in TEMPORAL:
        raise AbawError(f"model.temporal must be one of {', '.join(TEMPORAL)}, got {m.temporal!r}")
    if not 0.0 <= m.modality_dropout < 1.0 or (m.temporal == "tcn" and m.kernel % 2 == 0):
        raise AbawError(f"model: need 0 <= modality_dropout < 1 and an odd tcn kernel, got "
                        f"{m.modality_dropout} and {m.kernel}")
    return TMF(TMFArch.of(m, in_dim, task(task_name).n_outputs, max_len, parts))


def predict_clips(model: TMF, data: list[VideoData], task_name: str, eval_stride: int, device) -> list[np.ndarray]:
    """Per-video activated predictions [n, C] (clips of ``max_len`` every ``eval_stride`` frames, overlaps averaged)."""
    length = model.arch.max_len
    ds = ClipDataset(data, length, eval_stride)
    outs = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(ds), 64):
            b = collate([ds[j] for j in range(i, min(i + 64, len(ds)))])
            outs.append(activate(task_name, model(b["x"].to(device), b["pad"].to(device)).float()).cpu().numpy())
    model.train(was_training)
    preds = np.concatenate(outs) if outs else np.zeros((0, length, 1))
    index = np.array([v for v, _ in ds.index])
    starts = np.array([s for _, s in ds.index])
    return [average_clips(len(vd), starts[index == v], preds[index == v]) for v, vd in enumerate(data)]


def eval_stride(folder, meta: dict) -> int:
    """The clip stride the TMF was evaluated with: in its checkpoint, else (older ones) its stage config."""
    if meta.get("eval_stride"):
        return int(meta["eval_stride"])
    clips = read_json(folder / MANIFEST).get("config", {}).get("clips", {})
    return int(clips.get("eval_stride") or max(1, meta["arch"]["max_len"] // 2))


def tmf_values(models: Models, task_name: str, fold: int, clip: Clip, face: int, frames: np.ndarray,
               crops: list[str]) -> np.ndarray:
    """Activated per-frame outputs [n, C] of ``tmf/<task>/fold<N>`` for one face; features re-extracted.

    Vision features of frames without this face take the nearest face frame's (as ``abaw extract``)."""
    name = layout.tmf(task_name, fold)
    d = stage_dir(models.workdir, name)
    model, meta = models.cached(("tmf", str(d)), lambda: load_tmf(d / "best.pt"))
    parts = clip_parts(models, meta["features"], clip, face, frames, crops)
    dims = [p.shape[1] for p in parts]
    if sum(dims) != model.arch.in_dim:
        raise AbawError(f"{d}: trained on {model.arch.in_dim} feature dims, but features/"
                        f"{{{','.join(meta['features'])}}} now give {'+'.join(map(str, dims))} (re-extracted with "
                        f"another extractor?): re-run `{stage_hint(name)} --force`")
    model = model.to(models.device)
    data = [VideoData(clip.path.stem, tuple(parts), np.zeros((clip.n_frames, 1), np.float32))]
    return predict_clips(model, data, task_name, eval_stride(d, meta), models.device)[0]
