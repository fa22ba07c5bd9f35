"""``abaw extract vision|audio``: fill ``<workdir>/features/<extractor>/`` from the prep workspace.

Reads ``prep`` (frames/videos tables) and an encoder checkpoint (vision: a file, or the finetune
stage's ``best.pt``; audio: a transformers folder or VGGish weights, none for fbank). Writes one
float16 ``<video>.npy`` per video plus ``store.json`` (extractor key, dim, per-video flags). The
stage config *is* the extractor key (name, checkpoint sha256, settings), so extraction is skipped
when nothing changed and redone automatically when the checkpoint or a setting changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from abawkit.devices import resolve_precision
from abawkit.errors import AbawError
from abawkit.workspace import identity as ident
from abawkit.workspace.layout import PREP


@dataclass(frozen=True)
class VisionConfig:
    checkpoint: str = ""  # encoder file; empty = the finetune stage's best.pt of (task, fold)
    task: str = "expr"
    fold: int = 0
    name: str = ""  # extractor name; empty = mae-<task> (fold 0) / mae-<task>-fold<N>, or "mae" for a file
    pool: str = ""  # cls | mean | cls+mean; empty = the fine-tuned model's pooling, else the backbone's own (default_pool)
    arch: str = ""  # timm name where the checkpoint's keys cannot tell (EVA-02, ConvNeXt); overrides inference
    img_size: int = 0  # 0 = the encoder's (DINOv2: 224, CLIP: its pos_embed's, timm names: timm's default)
    batch_size: int = 64
    workers: int = 2
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32; part of the extractor key


@dataclass(frozen=True)
class AudioConfig:
    model: str = "fbank"
    checkpoint: str = ""
    layer: int = -1
    n_mels: int = 64  # fbank
    hop_s: float = 0.16  # vggish example hop
    chunk_s: float = 20.0  # hubert / wav2vec2 / wavlm window (whisper: always its own 30 s)
    device: str = "auto"


@dataclass(frozen=True)
class ExtractConfig:
    seed: int = 0
    threads: int = 0  # CPU intra-op threads; 0 = torch's default
    dist_timeout_min: float = 0.0  # under torchrun: how long ranks wait for each other; 0 = the default (2 h)
    vision: VisionConfig = field(default_factory=VisionConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)


def _device(name: str, timeout_min: float = 0.0):
    """This rank's device; under torchrun this also joins the process group (gloo for "cpu")."""
    from abawkit import distributed

    return distributed.setup(name, timeout_min)[1]


def vision_source(workdir: Path, cfg: VisionConfig) -> tuple[str, Path]:
    """(extractor name, encoder checkpoint path) from the config."""
    if cfg.checkpoint:
        path = Path(cfg.checkpoint)
        if not path.exists():
            raise AbawError(f"{path}: encoder checkpoint (file or downloaded folder) not found")
        return cfg.name or "mae", path
    from abawkit.workspace.stage import load_stage

    stage = f"finetune/{cfg.task}/fold{cfg.fold}"
    manifest = load_stage(workdir, stage, hint=f"abaw finetune --task {cfg.task} --fold {cfg.fold}")
    default = f"mae-{cfg.task}" if cfg.fold == 0 else f"mae-{cfg.task}-fold{cfg.fold}"
    return cfg.name or default, Path(manifest["dir"]) / "best.pt"


def load_vision_encoder(path: Path, arch_name: str = "", img_size: int = 0):
    """Encoder module (pooled through ``models.backbones.embed``), its arch and its own pooling (or None).

    Any format ``models.backbone_files.open_encoder`` reads: ours (pre-trained or fine-tuned), MAE / timm /
    HF ViTMAE, DINOv2, CLIP / OpenCLIP, timm names (EVA-02, ConvNeXt) via ``arch_name``.
    """
    from abawkit.models.backbone_files import open_encoder

    encoder, arch, _, own_pool = open_encoder(path, arch_name, img_size)
    return encoder.eval(), arch, own_pool


def run_vision(workdir: str | Path, cfg: ExtractConfig, force: bool = False) -> dict[str, Any]:
    """Extract vision features for every video of the prep workspace."""
    from abawkit.features.vision import VisionSettings, extract_videos

    workdir = Path(workdir)
    v = cfg.vision
    from abawkit.models.backbones import POOLS, default_pool, pooled_dim, pooling_key

    if v.pool not in ("", *POOLS):
        raise AbawError(f"vision.pool must be one of {', '.join(POOLS)}, got {v.pool!r}")
    name, ckpt = vision_source(workdir, v)
    encoder, arch, own_pool = load_vision_encoder(ckpt, v.arch, v.img_size)
    pool = v.pool or own_pool or default_pool(encoder)  # the model's own embedding (EVA-02: mean via fc_norm)
    s = VisionSettings(img_size=arch.img_size, pool=pool, batch_size=v.batch_size, workers=v.workers)
    from abawkit.data.augment import MEAN, STD

    # "input" marks the uint8 + on-device resize pipeline (stores made by the older float one are redone);
    # mean / std are the backbone's own (the encoder re-normalises the ImageNet-normalised input)
    settings = {"pool": s.pool, "img_size": s.img_size, "mean": list(getattr(arch, "mean", MEAN)),
                "std": list(getattr(arch, "std", STD)), "input": "uint8-device"}
    if v.arch:  # only when named: stores of MAE encoders keep the key they had
        settings["arch"] = v.arch
    settings.update(pooling_key(encoder))  # EVA-02 now pools through fc_norm: its older stores are redone
    dim = pooled_dim(arch, pool)

    def work(prep, videos, store, device, done):
        at = dataclasses.replace(s, precision=resolve_precision(v.precision, device))  # as recorded in the key
        extract_videos(encoder, prep.frames, videos, store, at, device, dim, on_video=done)
        return dim, {}

    return _run(workdir, name, ckpt, settings, v.device, work, force, cfg.threads, precision=v.precision,
                timeout_min=cfg.dist_timeout_min)


def run_audio(workdir: str | Path, cfg: ExtractConfig, force: bool = False) -> dict[str, Any]:
    """Extract audio features (``cfg.audio.model``) for every video, aligned to its frames."""
    from abawkit.features.audio import build_audio_extractor, extract_frames

    a = cfg.audio
    ckpt = Path(a.checkpoint) if a.checkpoint else None
    if ckpt is not None and not ckpt.exists():
        raise AbawError(f"{ckpt}: audio checkpoint not found")
    settings: dict[str, Any] = {"model": a.model, "layer": a.layer if a.model in ("hubert", "wav2vec2", "wavlm", "whisper") else None}
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

    return _run(Path(workdir), a.model, ckpt, settings, a.device, work, force, cfg.threads, precision="fp32",
                timeout_min=cfg.dist_timeout_min)


def _run(workdir: Path, name: str, ckpt: Path | None, settings: dict, device_name: str,
         work: Callable, force: bool, threads: int = 0, precision: str = "auto",
         timeout_min: float = 0.0) -> dict[str, Any]:
    """Open ``features/<name>``, shard videos over ranks, run ``work``, record the store info.

    The precision the extractor runs at (``auto`` resolved on this rank's device) is a setting of the
    key, so bf16 GPU features and fp32 CPU ones are never mixed; the device is recorded beside it.
    """
    from abawkit import distributed
    from abawkit.console import console, progress
    from abawkit.data.tables import load_prep
    from abawkit.features.store import ExtractorKey, FeatureStore, extractor_key
    from abawkit.workspace.stage import load_stage, stage

    prep = load_prep(workdir)
    device = _device(device_name, timeout_min)
    key = extractor_key(name, ckpt, {**settings, "precision": resolve_precision(precision, device)})
    if threads:
        import torch

        torch.set_num_threads(threads)
    with contextlib.suppress(AbawError):
        old = FeatureStore(Path(load_stage(workdir, f"features/{name}")["dir"]))
        if not old.matches(key):
            force = True  # the checkpoint or a setting changed: the cached features are stale
    info = distributed.info()
    inputs = {"prep": ident.upstream(PREP)}  # and the checkpoint, resolved: `abaw predict` re-runs the extractor from it
    inputs.update({"checkpoint": ident.checkpoint(ckpt)} if ckpt is not None else {})
    with stage(workdir, f"features/{name}", ExtractorKey(**key), force=force, main_process=info.is_main,
               inputs=inputs) as run:
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
            store.write_info({**key, "device": device.type}, dim, flags)
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

