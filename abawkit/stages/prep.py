"""``abaw prep --release DIR``: index a release into ``<workdir>/prep/``.

Reads the release (annotations, crops, videos, test lists; see ``data/release.py``) and writes
``frames.parquet``, ``videos.parquet`` and ``splits.parquet`` (``data/tables.py`` documents them),
``audio/<source>.wav`` (16 kHz mono), ``crops/<video>/NNNNN.jpg`` for videos without a crop
folder (face detection on the raw video), and ``summary.json``. Paths stored are absolute and
point at the finished ``prep/`` folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.errors import AbawError, where
from abawkit.stages.split import SplitConfig


@dataclass(frozen=True)
class PrepConfig:
    seed: int = 0
    release: str = ""  # release root (absolute after loading)
    size: int = 112  # side of crops made from raw videos
    detector: str = "mtcnn"  # mtcnn (Haar fallback) | haar
    audio_rate: int = 16000
    split: SplitConfig = field(default_factory=SplitConfig)


def probe_sources(names: list[str], media: dict[str, Path]) -> dict[str, object]:
    """VideoInfo per distinct media file used by ``names`` (progress bar)."""
    from abawkit.console import progress
    from abawkit.data.media import probe_video
    from abawkit.data.release import source_key

    paths = sorted({p for v in names if (p := media.get(v) or media.get(source_key(v)))})
    infos = {}
    with progress(transient=True) as bar:
        job = bar.add_task("probe videos", total=len(paths))
        for p in paths:
            infos[str(p)] = probe_video(p)
            bar.advance(job)
    return infos


def frame_counts(names, anns, infos, src_of, templ, crops) -> dict[str, int]:
    """Frames per video: the media file, else the test template, else the longest annotation/crop."""
    longest: dict[str, tuple[int, Path]] = {}
    for a in anns.values():
        for name, n, path in zip(a.names, a.lengths, a.files):
            if n > longest.get(name, (-1, None))[0]:
                longest[name] = (int(n), path)
    out = {}
    for v in names:
        n_ann, path = longest.get(v, (0, None))
        if src_of[v] is not None:
            out[v] = infos[str(src_of[v])].n_frames
            if n_ann > out[v]:
                raise AbawError(f"{where(path)}: annotation has {n_ann} frames but video {src_of[v]} has {out[v]}")
        else:
            idx = crops[v][1] if v in crops else np.zeros(0, int)
            out[v] = templ.get(v) or max(n_ann, int(idx.max(initial=0)))
    return out


def make_crops(names, root: Path, src_of, run, final: Path, cfg: PrepConfig) -> tuple[dict, dict]:
    """Crop index per video: the release's folder, or faces detected in the raw video."""
    from abawkit.console import progress
    from abawkit.data.media import FaceDetector, crop_video
    from abawkit.data.release import list_crops

    crops, detect, stats = {}, [], {}
    for v in names:
        d = root / "cropped_aligned" / v
        if d.is_dir():
            crops[v] = (str(d.resolve()), *list_crops(d))
        elif src_of[v] is not None:
            detect.append(v)
    if detect:
        det = FaceDetector(cfg.detector)
        with progress(transient=True) as bar:
            job = bar.add_task("detect faces", total=len(detect))
            for v in detect:
                half = "left" if v.endswith("_left") else "right" if v.endswith("_right") else None
                stats[v] = crop_video(src_of[v], run.path(f"crops/{v}"), cfg.size, det, half=half)
                run.log("crops", video=v, **stats[v])
                crops[v] = (str(final / "crops" / v), *list_crops(run.dir / "crops" / v))
                bar.advance(job)
    return crops, stats


def extract_audio_all(infos: dict, run, final: Path, rate: int) -> dict[str, str | None]:
    """16 kHz mono WAV per media file with audio: {media path: final wav path or None}."""
    from abawkit.console import progress
    from abawkit.data.media import extract_audio

    out: dict[str, str | None] = {}
    with progress(transient=True) as bar:
        job = bar.add_task("extract audio", total=len(infos))
        for src, info in infos.items():
            rel = f"audio/{Path(src).stem}.wav"
            ok = info.has_audio and extract_audio(src, run.path(rel), rate)
            out[src] = str(final / rel) if ok else None
            bar.advance(job)
    return out


def summarize(frames: pd.DataFrame) -> list[dict]:
    """Videos, frames and labelled frames per task and split."""
    from abawkit.labels import TASKS

    rows = []
    for t, spec in TASKS.items():
        col = spec.label_columns[0]
        for s, g in frames.groupby(f"split_{t}", sort=True):
            if s != "none":
                rows.append({"task": t, "split": s, "videos": int(g["video"].nunique()), "frames": len(g),
                             "labelled": int((g[col] != spec.invalid).sum())})
    return rows


def run(cfg: PrepConfig, workdir: Path, force: bool = False) -> dict:
    """Index the release, write the tables and folds; returns the summary rows."""
    from abawkit.console import console, table
    from abawkit.data import release as rel
    from abawkit.labels import TASKS
    from abawkit.runs import stage, write_json, write_parquet
    from abawkit.stages.split import show, write_splits

    root = Path(cfg.release)
    with stage(workdir, "prep", cfg, seed=cfg.seed, force=force) as run_:
        final = run_.final_dir.resolve()
        anns = {t: rel.read_annotations(TASKS[t], items) for t, items in rel.find_annotation_files(root).items()}
        tests, templ, media = rel.test_names(root), rel.template_counts(root), rel.find_videos(root)
        run_.add_input("release", root)
        names = sorted({n for a in anns.values() for n in a.names} | {n for ns in tests.values() for n in ns})
        src_of = {v: media.get(v) or media.get(rel.source_key(v)) for v in names}
        infos = probe_sources(names, media)
        crops, det = make_crops(names, root, src_of, run_, final, cfg)
        n_frames = frame_counts(names, anns, infos, src_of, templ, crops)
        audio = extract_audio_all(infos, run_, final, cfg.audio_rate)
        frames = rel.build_frames(n_frames, crops, anns, tests)
        videos = pd.DataFrame({
            "video": names, "source": [str(src_of[v]) if src_of[v] else None for v in names],
            "n_frames": np.array([n_frames[v] for v in names], np.int32),
            "fps": [infos[str(src_of[v])].fps if src_of[v] else 30.0 for v in names],
            "audio": [audio.get(str(src_of[v])) if src_of[v] else None for v in names]})
        write_parquet(run_.add_output("frames.parquet"), frames)
        write_parquet(run_.add_output("videos.parquet"), videos)
        _, report = write_splits(frames, cfg.split, run_.add_output("splits.parquet"))
        rows = summarize(frames)
        run_.metrics.update(videos=len(names), frames=len(frames), detected=det)
        write_json(run_.add_output("summary.json"), {"rows": rows, "folds": report, "detected": det})
    console.print(table("prep", ["task", "split", "videos", "frames", "labelled"], [list(r.values()) for r in rows]))
    show(report)
    return {"rows": rows, "folds": report}
