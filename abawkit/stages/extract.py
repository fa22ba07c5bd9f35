"""``abaw extract vision|audio``: fill ``<workdir>/features/<extractor>/`` from the prep workspace.

Reads ``prep`` (frames/videos tables) and an encoder checkpoint (vision: a file, or the finetune
stage's ``best.pt``; audio: a transformers folder or VGGish weights, none for fbank). Writes one
float16 ``<video>.npy`` per video plus ``store.json`` (extractor key, dim, per-video flags). The
stage config *is* the extractor key (name, checkpoint sha256, settings), so extraction is skipped
when nothing changed and redone automatically when the checkpoint or a setting changes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from abawkit.errors import AbawError


@dataclass(frozen=True)
class VisionConfig:
    checkpoint: str = ""  # encoder file; empty = the finetune stage's best.pt of (task, fold)
    task: str = "expr"
    fold: int = 0
    name: str = ""  # extractor name; empty = mae-<task> (fold 0) / mae-<task>-fold<N>, or "mae" for a file
    pool: str = ""  # cls | mean; empty = the fine-tuned model's own pooling (cls for other checkpoints)
    img_size: int = 0  # 0 = the encoder's
    batch_size: int = 64
    workers: int = 2
    device: str = "auto"


@dataclass(frozen=True)
class AudioConfig:
    model: str = "fbank"
    checkpoint: str = ""
    layer: int = -1
    n_mels: int = 64  # fbank
    hop_s: float = 0.16  # vggish example hop
    chunk_s: float = 20.0  # hubert / wav2vec2 window
    device: str = "auto"


@dataclass(frozen=True)
class ExtractConfig:
    seed: int = 0
    threads: int = 0  # CPU intra-op threads; 0 = torch's default
    vision: VisionConfig = field(default_factory=VisionConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)


def _device(name: str):
    """This rank's device; under torchrun this also joins the process group (gloo for "cpu")."""
    from abawkit import distributed

    return distributed.setup(name)[1]


def vision_source(workdir: Path, cfg: VisionConfig) -> tuple[str, Path]:
    """(extractor name, encoder checkpoint path) from the config."""
    if cfg.checkpoint:
        path = Path(cfg.checkpoint)
        if not path.is_file():
            raise AbawError(f"{path}: encoder checkpoint not found")
        return cfg.name or "mae", path
    from abawkit.runs import load_stage

    stage = f"finetune/{cfg.task}/fold{cfg.fold}"
    manifest = load_stage(workdir, stage, hint=f"abaw finetune --task {cfg.task} --fold {cfg.fold}")
    default = f"mae-{cfg.task}" if cfg.fold == 0 else f"mae-{cfg.task}-fold{cfg.fold}"
    return cfg.name or default, Path(manifest["dir"]) / "best.pt"


def load_vision_encoder(path: Path):
    """Encoder module (imgs [N,3,S,S] -> tokens [N,1+L,D]), its arch and its pooling (or None)."""
    from abawkit.models import checkpoints
    from abawkit.models.mae import ViTEncoder

    obj = checkpoints.read_checkpoint(path)
    arch = checkpoints.checkpoint_arch(obj)
    encoder = ViTEncoder(arch)
    checkpoints.load_encoder(encoder, obj)
    return encoder.eval(), arch, obj.get("pool")


def run_vision(workdir: str | Path, cfg: ExtractConfig, force: bool = False) -> dict[str, Any]:
    """Extract vision features for every video of the prep workspace."""
    from abawkit.features.vision import VisionSettings, extract_videos

    workdir = Path(workdir)
    v = cfg.vision
    if v.pool not in ("", "cls", "mean"):
        raise AbawError(f"vision.pool must be cls or mean, got {v.pool!r}")
    name, ckpt = vision_source(workdir, v)
    encoder, arch, own_pool = load_vision_encoder(ckpt)
    pool = v.pool or own_pool or "cls"
    s = VisionSettings(img_size=v.img_size or arch.img_size, pool=pool, batch_size=v.batch_size, workers=v.workers)
    from abawkit.data.augment import MEAN, STD

    # "input" marks the uint8 + on-device resize pipeline (stores made by the older float one are redone)
    settings = {"pool": s.pool, "img_size": s.img_size, "mean": MEAN, "std": STD, "input": "uint8-device"}

    def work(prep, videos, store, device, done):
        extract_videos(encoder, prep.frames, videos, store, s, device, arch.dim, on_video=done)
        return arch.dim, {}

    return _run(workdir, name, ckpt, settings, v.device, work, force, cfg.threads)


def run_audio(workdir: str | Path, cfg: ExtractConfig, force: bool = False) -> dict[str, Any]:
    """Extract audio features (``cfg.audio.model``) for every video, aligned to its frames."""
    from abawkit.features.audio import build_audio_extractor, extract_frames

    a = cfg.audio
    ckpt = Path(a.checkpoint) if a.checkpoint else None
    if ckpt is not None and not ckpt.exists():
        raise AbawError(f"{ckpt}: audio checkpoint not found")
    settings: dict[str, Any] = {"model": a.model, "layer": a.layer if a.model in ("hubert", "wav2vec2") else None}
    settings.update({"fbank": {"n_mels": a.n_mels}, "vggish": {"hop_s": a.hop_s}}.get(a.model, {}))

    def work(prep, videos, store, device, done):
        ext = build_audio_extractor(a.model, ckpt, a.layer, str(device), n_mels=a.n_mels, hop_s=a.hop_s,
                                    chunk_s=a.chunk_s)
        flags = {}
        rows = prep.videos.set_index("video")
        for vid in videos:
            r = rows.loc[vid]
            audio = r["audio"] if isinstance(r["audio"], str) and r["audio"] else None
            if audio is None or not Path(audio).is_file():
                flags[vid] = {"missing_audio": True}
            if not store.has(vid):
                store.write(vid, extract_frames(ext, audio, int(r["n_frames"]), float(r["fps"])))
            done(vid)
        return ext.dim + 1, flags

    return _run(Path(workdir), a.model, ckpt, settings, a.device, work, force, cfg.threads)


def _run(workdir: Path, name: str, ckpt: Path | None, settings: dict, device_name: str,
         work: Callable, force: bool, threads: int = 0) -> dict[str, Any]:
    """Open ``features/<name>``, shard videos over ranks, run ``work``, record the store info."""
    from abawkit import distributed
    from abawkit.console import console, progress
    from abawkit.data.tables import load_prep
    from abawkit.features.store import ExtractorKey, FeatureStore, extractor_key
    from abawkit.runs import load_stage, stage

    prep = load_prep(workdir)
    key = extractor_key(name, ckpt, settings)
    if threads:
        import torch

        torch.set_num_threads(threads)
    with contextlib.suppress(AbawError):
        old = FeatureStore(Path(load_stage(workdir, f"features/{name}")["dir"]))
        if not old.matches(key):
            force = True  # the checkpoint or a setting changed: the cached features are stale
    device = _device(device_name)
    info = distributed.info()
    with stage(workdir, f"features/{name}", ExtractorKey(**key), force=force, main_process=info.is_main) as run:
        run.add_input("prep", prep.dir / "frames.parquet")
        if ckpt is not None:
            run.add_input("checkpoint", ckpt, content=True)  # `abaw predict` re-runs the same extractor from here
        store = FeatureStore(run.dir)
        videos = sorted(prep.videos["video"])
        mine = videos[info.rank::info.world]
        with progress() as bar:
            t = bar.add_task(f"extract {name}", total=len(mine))
            dim, flags = work(prep, mine, store, device, lambda v: bar.advance(t))
        flags = _gather_flags(flags)
        distributed.barrier()
        missing = [v for v in videos if not store.has(v)]
        if missing:
            raise RuntimeError(f"features missing for {len(missing)} videos, e.g. {missing[0]}")
        if info.is_main:
            store.write_info(key, dim, flags)
            run.add_output("store.json")
        run.metrics = {"videos": len(videos), "dim": dim, "missing_audio": sum(1 for f in flags.values() if f)}
    console.print(f"features/{name}: {len(videos)} videos, dim {dim}")
    return run.metrics


def _gather_flags(flags: dict) -> dict:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flags
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, flags)
    return {k: v for p in parts for k, v in p.items()}

