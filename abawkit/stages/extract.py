"""``abaw extract vision|audio|text``: fill ``<workdir>/features/<extractor>/`` from the prep workspace.

Reads ``prep`` (frames/videos tables) and an encoder checkpoint (vision: a file, or the finetune
stage's ``best.pt``; audio: a transformers folder or VGGish weights, none for fbank; text: a Whisper
folder, PocketSphinx or given transcripts, and a transformers text encoder folder). Writes one
float16 ``<video>.npy`` per video plus ``store.json`` (extractor key, dim, per-video flags), and for
text one ``transcripts/<video>.json`` per video (``features.text``). The
stage config *is* the extractor key (store name, registry model, checkpoint sha256, every field of the
model's typed settings from ``features.registry``), so extraction is skipped when nothing changed and
redone automatically when the checkpoint or a setting (``chunk_s`` too) changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from abawkit.devices import resolve_precision
from abawkit.errors import AbawError
from abawkit.features import registry
from abawkit.workspace import identity as ident
from abawkit.workspace import layout
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
    chunk_s: float = 20.0  # hubert / wav2vec2 / wavlm window (whisper: always its own 30 s); in the key
    device: str = "auto"


@dataclass(frozen=True)
class TextConfig:
    asr: str = ""  # a local Whisper folder, or "pocketsphinx"
    transcripts: str = ""  # instead of asr: a folder of <video>.json transcripts (features.text's format)
    encoder: str = ""  # a local transformers text encoder folder (AutoModel + AutoTokenizer), or "hashing" (no weights)
    width: int = 256  # encoder "hashing": embedding width
    name: str = "text"  # the store: features/<name>
    language: str = ""  # Whisper language (e.g. "en"); empty = the checkpoint's own
    max_new_tokens: int = 0  # Whisper tokens per 30 s window; 0 = the checkpoint's own limit
    max_tokens: int = 128  # encoder tokens per segment
    device: str = "auto"


@dataclass(frozen=True)
class ExtractConfig:
    seed: int = 0
    threads: int = 0  # CPU intra-op threads; 0 = torch's default
    dist_timeout_min: float = 0.0  # under torchrun: how long ranks wait for each other; 0 = the default (2 h)
    vision: VisionConfig = field(default_factory=VisionConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    text: TextConfig = field(default_factory=TextConfig)


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

    manifest = load_stage(workdir, layout.finetune(cfg.task, cfg.fold),
                          hint=f"abaw finetune --task {cfg.task} --fold {cfg.fold}")
    return cfg.name or layout.vision_store(cfg.task, cfg.fold), Path(manifest["dir"]) / "best.pt"


def run_vision(workdir: str | Path, cfg: ExtractConfig, force: bool = False) -> dict[str, Any]:
    """Extract vision features for every video of the prep workspace."""
    from abawkit.data.augment import MEAN, STD
    from abawkit.features.vision import VisionExtractor
    from abawkit.inference.extractors import (
        load_vision_encoder,  # torch: lazy, as every import of this stage
    )
    from abawkit.models.backbones import POOLS, default_pool, pooling_key

    workdir = Path(workdir)
    v = cfg.vision
    if v.pool not in ("", *POOLS):
        raise AbawError(f"vision.pool must be one of {', '.join(POOLS)}, got {v.pool!r}")
    name, ckpt = vision_source(workdir, v)
    encoder, arch, own_pool = load_vision_encoder(ckpt, v.arch, v.img_size)
    pool = v.pool or own_pool or default_pool(encoder)  # the model's own embedding (EVA-02: mean via fc_norm)
    # mean / std are the backbone's own (the encoder re-normalises the ImageNet-normalised input);
    # pooling_key: EVA-02 pools through fc_norm (its older stores are redone); precision: resolved in _run
    entry = registry.get(registry.VISION)
    settings = registry.make_settings(entry, {
        "img_size": arch.img_size, "pool": pool, "arch": v.arch, "mean": list(getattr(arch, "mean", MEAN)),
        "std": list(getattr(arch, "std", STD)), **pooling_key(encoder)}, "extract config [vision]")

    def work(prep, videos, store, device, at, done):
        ext = VisionExtractor(encoder, arch, at, device)
        ext.extract(prep.frames, videos, store, v.batch_size, v.workers, on_video=done)
        return ext.dim, {}

    return _run(workdir, name, entry, ckpt, settings, v.device, work, force, cfg.threads, precision=v.precision,
                timeout_min=cfg.dist_timeout_min)


def run_audio(workdir: str | Path, cfg: ExtractConfig, force: bool = False) -> dict[str, Any]:
    """Extract audio features (``cfg.audio.model``) for every video, aligned to its frames.

    The model's registry settings take their fields from ``[audio]`` (``layer``, ``n_mels``, ``hop_s``,
    ``chunk_s``: whichever the model has), so each of them is in the store's key."""
    from abawkit.features.audio import extract_frames

    a = cfg.audio
    entry = registry.audio(a.model)
    settings = registry.from_config(entry, a, "extract config [audio]", precision="fp32")
    ckpt = Path(a.checkpoint) if a.checkpoint else None
    entry.require_checkpoint(ckpt)
    if ckpt is not None and not ckpt.exists():
        raise AbawError(f"{ckpt}: audio checkpoint not found")

    def work(prep, videos, store, device, at, done):
        ext = entry.build(at, ckpt, device)
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

    return _run(Path(workdir), a.model, entry, ckpt, settings, a.device, work, force, cfg.threads, precision="fp32",
                timeout_min=cfg.dist_timeout_min)


def _text_source(t: TextConfig) -> tuple[str, str, Path | None]:
    """(asr kind, asr_id, folder to identify as an input) of ``[text]``: exactly one of asr / transcripts."""
    from abawkit.features.asr import PocketsphinxASR, asr_kind
    from abawkit.workspace.fingerprints import content_sha256

    if bool(t.asr) == bool(t.transcripts):
        raise AbawError("abaw extract text needs one of --asr (a Whisper folder or 'pocketsphinx') or --transcripts DIR")
    if t.transcripts or asr_kind(t.asr) == "whisper":
        folder = Path(t.transcripts or t.asr)
        if not folder.is_dir():
            raise AbawError(f"{folder}: {'--transcripts' if t.transcripts else '--asr'} folder not found")
        return ("transcripts" if t.transcripts else "whisper"), content_sha256(folder), folder
    return "pocketsphinx", PocketsphinxASR.version(), None


def run_text(workdir: str | Path, cfg: ExtractConfig, force: bool = False) -> dict[str, Any]:
    """Transcribe every video's audio (or read its transcript), embed each segment, put it on its frames."""
    from abawkit.features.text import TRANSCRIPTS, read_transcript, transcribe, video_text_features, write_transcript

    t = cfg.text
    entry = registry.get(registry.TEXT)
    kind, asr_id, folder = _text_source(t)
    hashing = t.encoder == "hashing"
    settings = registry.make_settings(entry, {"asr": kind, "asr_id": asr_id, "language": t.language,
                                              "max_new_tokens": t.max_new_tokens, "max_tokens": t.max_tokens,
                                              "encoder": "hashing" if hashing else "transformers", "width": t.width},
                                      "extract config [text]")
    entry.require_checkpoint(t.encoder)
    ckpt = None if hashing else Path(t.encoder)
    if ckpt is not None and not ckpt.is_dir():
        raise AbawError(f"{ckpt}: --encoder folder not found")

    def work(prep, videos, store, device, at, done):
        from abawkit.features.asr import build_asr

        encoder = entry.build(at, ckpt, device)
        asr = None if kind == "transcripts" else build_asr(t.asr, str(device), t.language, t.max_new_tokens)
        flags, rows, heard = {}, prep.videos.set_index("video"), {}  # heard: _left / _right share one track
        for vid in videos:
            r = rows.loc[vid]
            audio = r["audio"] if isinstance(r["audio"], str) and r["audio"] else None
            source = Path(t.transcripts) / f"{vid}.json" if kind == "transcripts" else audio
            if source is None or not Path(source).is_file():  # no speech to read: all frames flagged 0
                flags[vid] = {"missing_transcript" if kind == "transcripts" else "missing_audio": True}
            if not store.has(vid):
                if kind == "transcripts":
                    segs, duration = (read_transcript(Path(source)) if vid not in flags else []), None
                else:
                    segs, duration = heard[audio] if audio in heard else transcribe(asr, audio)
                    heard[audio] = (segs, duration)
                write_transcript(store.root / TRANSCRIPTS / f"{vid}.json", vid, asr.name if asr else kind, segs, duration)
                store.write(vid, video_text_features(encoder, segs, int(r["n_frames"]), float(r["fps"])))
            done(vid)
        return encoder.dim + 1, flags

    extra = {"asr": ident.checkpoint(folder)} if kind == "whisper" else {}
    extra.update({"transcripts": ident.folder(folder)} if kind == "transcripts" else {})
    return _run(Path(workdir), t.name, entry, ckpt, settings, t.device, work, force, cfg.threads, precision="fp32",
                timeout_min=cfg.dist_timeout_min, extra_inputs=extra)


def _run(workdir: Path, name: str, entry: registry.Extractor, ckpt: Path | None, settings: Any, device_name: str,
         work: Callable, force: bool, threads: int = 0, precision: str = "auto",
         timeout_min: float = 0.0, extra_inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Open ``features/<name>``, shard videos over ranks, run ``work``, record the store info.

    The key is the registry entry, every field of ``settings`` and the checkpoint's content. The precision
    the extractor runs at (``auto`` resolved on this rank's device) is a setting, so bf16 GPU features and
    fp32 CPU ones are never mixed; the device is recorded beside it. ``work(prep, videos, store, device,
    settings, done)`` gets the settings with that precision.
    """
    from abawkit import distributed
    from abawkit.console import console, progress
    from abawkit.data.tables import load_prep
    from abawkit.features.store import ExtractorKey, FeatureStore, extractor_key
    from abawkit.workspace.stage import load_stage, stage

    prep = load_prep(workdir)
    device = _device(device_name, timeout_min)
    settings = dataclasses.replace(settings, precision=resolve_precision(precision, device))
    key = extractor_key(name, ckpt, settings, entry.name)
    if threads:
        import torch

        torch.set_num_threads(threads)
    with contextlib.suppress(AbawError):
        old = FeatureStore(Path(load_stage(workdir, layout.features(name))["dir"]))
        if not old.matches(key):
            force = True  # the checkpoint or a setting changed: the cached features are stale
    info = distributed.info()
    inputs = {"prep": ident.upstream(PREP)}  # and the checkpoint, resolved: `abaw predict` re-runs the extractor from it
    inputs.update({"checkpoint": ident.checkpoint(ckpt)} if ckpt is not None else {})
    inputs.update(extra_inputs or {})
    with stage(workdir, layout.features(name), ExtractorKey(**key), force=force, main_process=info.is_main,
               inputs=inputs) as run:
        store = FeatureStore(run.dir)
        videos = sorted(prep.videos["video"])
        mine = videos[info.rank::info.world]
        with progress() as bar:
            t = bar.add_task(f"extract {name}", total=len(mine))
            dim, flags = work(prep, mine, store, device, settings, lambda v: bar.advance(t))
        flags = _gather_flags(flags)
        distributed.barrier()
        missing = [v for v in videos if not store.has(v)]
        if missing:
            raise RuntimeError(f"features missing for {len(missing)} videos, e.g. {missing[0]}")
        if info.is_main:
            store.write_info({**key, "device": device.type}, dim, flags)
            run.add_output("store.json")
        run.metrics = {"videos": len(videos), "dim": dim, "missing_audio": sum(1 for f in flags.values() if f)}
    console.print(f"{layout.features(name)}: {len(videos)} videos, dim {dim}")
    return run.metrics


def _gather_flags(flags: dict) -> dict:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flags
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, flags)
    return {k: v for p in parts for k, v in p.items()}

