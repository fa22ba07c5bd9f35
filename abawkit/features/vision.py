"""Vision features: a (fine-tuned) ViT encoder run over every face crop, one row per video frame.

One DataLoader per rank decodes every crop of its videos to uint8 (``data.faces``, pinned memory on
CUDA); ``data.augment`` resizes and normalises each batch on the device (the fine-tuning evaluation
transform) and the encoder runs under bf16 autocast on CUDA (``VisionSettings.precision``; bf16 is
honoured on a CPU too, so features can be recomputed at the precision they were made with).
Embeddings (pooled by ``models.backbones.embed``, as fine-tuning pools: class token, mean of the patch
tokens, or a timm model's own head) leave the device as float16 through pinned
buffers with non-blocking copies, read one batch later, so the copy never stalls the next batch. Frames without a crop take the feature of
their ``fill_frame``; a video with no crop at all gets zeros. Videos are sharded across torchrun
ranks (``videos[rank::world]``); each video is written to the store (float16) as soon as its last
crop is encoded, and videos already in the store are skipped (resume).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from abawkit.devices import precision_autocast, resolve_precision
from abawkit.errors import AbawError



@dataclass(frozen=True)
class VisionSettings:
    img_size: int
    pool: str = "cls"  # "cls" | "mean" | "cls+mean"
    batch_size: int = 64
    workers: int = 2
    precision: str = ""  # bf16 | fp32; empty = the device's default (bf16 on CUDA), see abawkit.devices


def pool_tokens(tokens: torch.Tensor, pool: str) -> torch.Tensor:
    """tokens: [N, 1+L, D] -> [N, D] (class token or mean of patch tokens; ``cls+mean``: [N, 2D])."""
    from abawkit.models.backbones import pool_tokens as pool_prefixed

    return pool_prefixed(tokens, pool, 1)


def check_pooling(encoder: nn.Module, settings: Any, where: object) -> None:
    """Refuse to recompute a store (``abaw predict``) whose recorded pooling this encoder no longer gives:
    EVA-02 stores made before pooling went through ``fc_norm`` hold other bytes than it computes now."""
    from abawkit.models.backbones import pooling_key

    recorded = dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else settings
    changed = {k: v for k, v in pooling_key(encoder).items() if recorded.get(k) != v}
    if changed:
        raise AbawError(f"{where}: features were pooled without the model's {', '.join(changed.values())} (an older "
                        "abawkit); recomputing them now would differ from training: re-extract the store "
                        "(abaw extract vision --force) and retrain the models that read it")


def encode_crops(encoder: nn.Module, paths: list[str], s: VisionSettings, device: torch.device) -> Iterator[np.ndarray]:
    """Yield [B, D] float16 embeddings of ``paths`` in order, batch by batch."""
    from abawkit.data.augment import device_batches
    from abawkit.data.faces import FaceCrops, eval_loader
    from abawkit.models.backbones import embed

    cuda = device.type == "cuda"
    # the fine-tuning stage's own evaluation transform, so features see exactly what it saw
    loader = eval_loader(FaceCrops(paths, s.img_size, train=False), s.batch_size, s.workers, cuda)
    pending: tuple[torch.Tensor, torch.cuda.Event] | None = None
    precision = resolve_precision(s.precision, device)
    with torch.inference_mode(), precision_autocast(device, precision):
        for imgs, _ in device_batches(loader, device, s.img_size):
            feats = embed(encoder, imgs, s.pool).to(torch.float16)  # [B, D] (cls+mean: [B, 2D])
            if not cuda:
                yield feats.numpy()
                continue
            host = torch.empty(feats.shape, dtype=torch.float16, pin_memory=True)
            host.copy_(feats, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
            if pending is not None:  # the previous batch's copy finished while this batch ran
                pending[1].synchronize()
                yield pending[0].numpy()
            pending = (host, done)
    if pending is not None:
        pending[1].synchronize()
        yield pending[0].numpy()


def fill_rows(crop_frames: np.ndarray, crop_feats: np.ndarray, fill_frame: np.ndarray, dim: int) -> np.ndarray:
    """Per-frame [n, D]: each frame takes the feature of its ``fill_frame`` (-1 -> zeros)."""
    out = np.zeros((len(fill_frame), dim), crop_feats.dtype)
    if len(crop_frames):
        pos = np.searchsorted(crop_frames, fill_frame)
        ok = (fill_frame > 0) & (pos < len(crop_frames))
        ok[ok] = crop_frames[pos[ok]] == fill_frame[ok]
        out[ok] = crop_feats[pos[ok]]
    return out


def extract_videos(
    encoder: nn.Module, frames: pd.DataFrame, videos: list[str], store: Any, s: VisionSettings,
    device: torch.device, dim: int, on_video: Callable[[str], None] | None = None,
) -> None:
    """Encode every crop of ``videos`` (frames table rows) and write one array per video to ``store``."""
    todo = [v for v in videos if not store.has(v)]
    per = {v: g.sort_values("frame") for v, g in frames[frames["video"].isin(todo)].groupby("video", sort=False)}
    crops = {v: g[g["crop"].notna()] for v, g in per.items()}
    paths = [p for v in todo for p in crops[v]["crop"].astype(str)]
    batches = encode_crops(encoder.eval().to(device), paths, s, device) if paths else iter(())
    pending = np.zeros((0, dim), np.float16)
    for v in todo:
        need = len(crops[v])
        while len(pending) < need:
            pending = np.concatenate([pending, next(batches)])
        feats, pending = pending[:need], pending[need:]
        g = per[v]
        rows = fill_rows(crops[v]["frame"].to_numpy(), feats, g["fill_frame"].to_numpy(), dim)
        store.write(v, rows)
        if on_video:
            on_video(v)


class VisionExtractor:
    """An image encoder with the registry settings (``registry.VisionEncoderSettings``) it extracts with.

    ``encode`` gives the features of a list of crops, ``extract`` fills a store; batch size and workers
    are arguments, not settings: they never change the bytes."""

    def __init__(self, encoder: nn.Module, arch: Any, settings: Any, device: torch.device | str) -> None:
        from abawkit.models.backbones import pooled_dim

        self.device = torch.device(device)
        self.encoder, self.arch, self.settings = encoder.eval().to(self.device), arch, settings
        self.dim = pooled_dim(arch, settings.pool)

    @classmethod
    def load(cls, checkpoint: Path | None, settings: Any, device: torch.device | str) -> "VisionExtractor":
        """The encoder of ``checkpoint`` (file or folder) read with the settings' ``arch`` and ``img_size``."""
        from abawkit.models.backbone_files import open_encoder

        if checkpoint is None or not Path(checkpoint).exists():
            raise AbawError(f"{checkpoint}: encoder checkpoint (file or downloaded folder) not found")
        encoder, arch, _, _ = open_encoder(checkpoint, settings.arch, settings.img_size)
        return cls(encoder, arch, settings, device)

    def runtime(self, batch_size: int, workers: int) -> VisionSettings:
        s = self.settings
        return VisionSettings(img_size=s.img_size, pool=s.pool, batch_size=batch_size, workers=workers,
                              precision=s.precision)

    def encode(self, crops: list[str], batch_size: int = 64, workers: int = 0) -> np.ndarray:
        """[P, dim] float32 features of the crop files ``crops``."""
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        parts = encode_crops(self.encoder, crops, self.runtime(batch_size, workers), self.device)
        return np.concatenate(list(parts)).astype(np.float32)

    def extract(self, frames: pd.DataFrame, videos: list[str], store: Any, batch_size: int = 64,
                workers: int = 2, on_video: Callable[[str], None] | None = None) -> None:
        """One array per video of ``videos`` into ``store`` (``extract_videos``)."""
        extract_videos(self.encoder, frames, videos, store, self.runtime(batch_size, workers), self.device,
                       self.dim, on_video)
