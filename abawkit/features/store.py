"""Per-video feature arrays on disk: one float16 ``<video>.npy`` of shape [n_frames, dim] per extractor.

A store is a folder (``<workdir>/features/<extractor>/`` once the extract stage has finished). Row
``i`` holds the feature of frame ``i + 1`` of the video, for *every* frame: frames without a face
carry the feature of their ``fill_frame``; audio features are resampled to the frame times. Arrays
are written atomically and read memory-mapped, so a training run over millions of frames only pages
in the clips it touches.

``store.json`` beside the arrays records the extractor key (store name, registry model name, checkpoint
sha256, and every field of the model's typed settings (``features.registry``), the ``precision`` --
bf16 or fp32 -- included), the device type it ran on, the feature dim and per-video flags (e.g.
``missing_audio``). Extraction is redone only when the key changes; a partly written store resumes
video by video.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abawkit.errors import AbawError
from abawkit.features.registry import Extractor, hint, settings_from_store
from abawkit.io import atomic_path, read_json, write_json
from abawkit.workspace import layout
from abawkit.workspace.fingerprints import content_sha256

INFO = "store.json"


@dataclass(frozen=True)
class ExtractorKey:
    """What identifies an extraction (also the extract stage's config, so its manifest records it)."""

    extractor: str
    checkpoint_sha256: str | None
    settings: dict[str, Any]
    seed: int = 0
    model: str = ""  # the registry name (features.registry): vision, fbank, hubert, ...


def extractor_key(name: str, checkpoint: str | Path | None, settings: Any, model: str = "") -> dict[str, Any]:
    """Store name, registry ``model`` name, checkpoint sha256 (or None) and settings (a registry settings
    dataclass: every field), as plain JSON values."""
    sha = content_sha256(checkpoint) if checkpoint else None
    values = dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else settings
    return {"extractor": name, "model": model, "checkpoint_sha256": sha,
            "settings": json.loads(json.dumps(values, default=str))}


@dataclass
class FeatureStore:
    """Read/write access to one extractor's folder of per-video arrays."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def file(self, video: str) -> Path:
        return self.root / f"{video}.npy"

    def has(self, video: str) -> bool:
        return self.file(video).is_file()

    def write(self, video: str, features: np.ndarray) -> Path:
        """Save ``features`` [n_frames, dim] as float16, atomically (a crash never leaves half a file)."""
        arr = np.asarray(features)
        if arr.ndim != 2:
            raise ValueError(f"features of {video} must be [n_frames, dim], got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"features of {video} contain NaN/inf")
        with atomic_path(self.file(video)) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, arr.astype(np.float16))
        return self.file(video)

    def read(self, video: str, n_frames: int | None = None) -> np.ndarray:
        """Memory-mapped [n_frames, dim] float16 array; checks the frame count when given."""
        path = self.file(video)
        if not path.is_file():
            raise AbawError(f"{path}: no features for video {video} (re-run `abaw extract`)")
        try:
            arr = np.load(path, mmap_mode="r")  # allow_pickle stays off: a store never runs code
        except (ValueError, OSError) as exc:
            raise AbawError(f"{path}: not a feature array ({exc}); re-run `abaw extract`") from None
        if arr.ndim != 2:
            raise AbawError(f"{path}: features must be [n_frames, dim], got shape {arr.shape}; re-run `abaw extract`")
        if n_frames is not None and arr.shape[0] != n_frames:
            raise AbawError(f"{path}: {arr.shape[0]} feature rows but the video has {n_frames} frames")
        return arr

    # ------------------------------------------------------------------ metadata
    def info(self) -> dict[str, Any]:
        path = self.root / INFO
        return read_json(path) if path.is_file() else {}

    def write_info(self, key: dict[str, Any], dim: int, flags: dict[str, dict[str, Any]] | None = None) -> Path:
        return write_json(self.root / INFO, {**key, "dim": int(dim), "dtype": "float16", "flags": flags or {}})

    def matches(self, key: dict[str, Any]) -> bool:
        """True if the store was written by exactly this extractor key."""
        info = self.info()
        return bool(info) and all(info.get(k) == v for k, v in key.items())

    def extractor(self) -> tuple[Extractor, Any]:
        """(registry entry, typed settings) that made this store: ``entry.build(settings, checkpoint, device)``
        rebuilds its extractor. Older stores read with defaults; bad fields are a one-line error naming store.json."""
        return settings_from_store(self.info(), self.root / INFO)

    @property
    def dim(self) -> int:
        return int(self.info()["dim"])


def open_store(workdir: str | Path, extractor: str) -> FeatureStore:
    """The finished store of ``extractor`` (fails with a hint if it was not extracted)."""
    from abawkit.workspace.stage import load_stage

    manifest = load_stage(workdir, layout.features(extractor), hint=hint(extractor))
    return FeatureStore(Path(manifest["dir"]))


def extraction_precision(info: dict[str, Any], where: str | Path, supported: tuple[str, ...] = ("bf16", "fp32")) -> str:
    """The precision to re-run a store's extractor at (``abaw predict``): the one recorded with the features.

    Features extracted in bf16 on a GPU and recomputed in fp32 differ (mean |diff| ~0.005 on a ViT),
    which a model trained on them sees as a shift. Stores written before the precision was recorded
    give fp32 with a note; a recorded precision this extractor cannot run at is an error that says so.
    """
    from abawkit.console import console

    recorded = (info.get("settings") or {}).get("precision")
    if recorded is None:
        console.print(f"[yellow]note[/] {where}: extraction precision not recorded (older store); "
                      "re-extracting in fp32, which may differ from the features the models were trained on")
        return "fp32"
    if recorded not in supported:
        raise AbawError(f"{where}: features were extracted in {recorded}, but this extractor runs only in "
                        f"{' or '.join(supported)}; predictions would differ from training: re-extract the store")
    return str(recorded)


def concat_features(stores: list[FeatureStore], video: str, n_frames: int) -> np.ndarray:
    """[n_frames, sum(dims)] float32: the chosen feature sets of one video side by side."""
    return np.concatenate([np.asarray(s.read(video, n_frames), dtype=np.float32) for s in stores], axis=1)
