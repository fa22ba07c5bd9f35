"""``abaw synth OUT``: write a synthetic release (see ``release/synth/``) into folder OUT.

``layout = "shipped"`` writes the same release rearranged as the organisers' archives unpack
(``data/synthetic.ship_layout``). ``track = "mtl"`` writes the same people in s-Aff-Wild2's layout instead
(``release/synth/mtl.py``: sparse listed images, per-task gaps, ``MTL.txt``). Writes into ``OUT.partial/`` and renames it to ``OUT`` when complete, so a crash never leaves a
half-written release that prep would accept. ``OUT/synth.json`` records the settings.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from abawkit.config import to_dict
from abawkit.console import console, progress
from abawkit.errors import AbawError
from abawkit.io import write_json
from abawkit.release import synth as syn
from abawkit.release.synth import ah as synth_ah
from abawkit.release.synth import ce as synth_ce
from abawkit.release.synth import emi as synth_emi
from abawkit.release.synth import mtl as syn_mtl
from abawkit.release.synth.clips import ClipSpec
from abawkit.workspace import layout
from abawkit.workspace.stage import swap_in


@dataclass(frozen=True)
class SynthConfig:
    seed: int = 0
    videos: int = 24  # annotation names (_left/_right pairs count twice)
    frames: int = 300  # frames per video
    size: int = 112  # crop side (pixels)
    fps: int = 30
    audio_rate: int = 16000
    faces: int = 8000  # unlabelled faces for MAE pre-training (pretrain_faces/); 0 = none
    layout: str = "tidy"  # tidy (official layout) | shipped (as the organisers' archives unpack)
    track: str = "classic"  # classic (Aff-Wild2: AU, EXPR, VA) | mtl (s-Aff-Wild2) | ce (C-EXPR-DB) | ah or ah_frames (BAH) | emi (Hume-Vidmimic2)


def run(cfg: SynthConfig, out: Path, force: bool = False) -> dict:
    """Render the release; returns a summary (names per role, seconds)."""
    if cfg.track in SAME_RELEASE:  # a track whose synthetic release is another's (ah_frames: BAH's)
        cfg = replace(cfg, track=SAME_RELEASE[cfg.track])
    if cfg.track in VIDEO_LEVEL:  # ah | emi: short talking clips, one label per video
        return run_video_level(cfg, Path(out), force)
    if cfg.track == "ce":
        return run_ce(cfg, out, force)
    if cfg.layout not in ("tidy", "shipped"):
        raise AbawError(f"synth: layout must be tidy or shipped, got {cfg.layout!r}")
    if cfg.track not in ("classic", "mtl"):
        raise AbawError(f"synth: track must be classic, mtl, ce, ah, ah_frames or emi, got {cfg.track!r}")
    if cfg.track == "mtl" and cfg.layout != "tidy":
        raise AbawError("synth: --layout shipped is for the classic track; s-Aff-Wild2 ships flat files")
    if cfg.videos < 3 or cfg.frames < 30 or cfg.size < 32 or cfg.faces < 0:
        raise AbawError(f"synth: need --videos >= 3, --frames >= 30, --size >= 32 and --faces >= 0 "
                        f"(got {cfg.videos}, {cfg.frames}, {cfg.size}, {cfg.faces})")
    out = Path(out)
    partial = fresh_partial(out, force)
    t0 = time.time()
    spec = syn.SynthSpec(cfg.videos, cfg.frames, cfg.size, cfg.fps, cfg.audio_rate, cfg.seed)
    sources = syn.plan_release(spec)
    write_source = syn_mtl.write_source if cfg.track == "mtl" else syn.write_source
    with progress() as bar:
        job = bar.add_task("synth videos", total=len(sources))
        for src in sources:
            write_source(partial, src, spec)
            bar.advance(job)
        chunk = 500
        job = bar.add_task("synth pretrain faces", total=cfg.faces)
        for start in range(0, cfg.faces, chunk):
            syn.write_face_pool(partial, spec, start, min(cfg.faces, start + chunk))
            bar.advance(job, min(chunk, cfg.faces - start))
    if cfg.track == "mtl":
        syn_mtl.write_lists(partial, sources, spec)
    else:
        syn.write_test_lists(partial, sources, spec)
    if cfg.layout == "shipped":
        syn.ship_layout(partial, sources)
    people = [p for s in sources for p in s.people]
    summary = {r: sum(p.role == r for p in people) for r in ("train", "val", "test")}
    summary.update(names=len(people), sources=len(sources), pretrain_faces=cfg.faces, no_crop=[p.name for p in people if not p.has_crops and cfg.track == "classic"],
                   seconds=round(time.time() - t0, 2))
    write_json(partial / layout.SYNTH_RECORD, {"config": to_dict(cfg), "summary": summary})
    swap_in(partial, out)
    console.print(f"synthetic {cfg.track} release ({cfg.layout}): {out} ({summary['names']} videos: {summary['train']} train, "
                  f"{summary['val']} val, {summary['test']} test; {summary['seconds']} s)")
    return summary


def fresh_partial(out: Path, force: bool) -> Path:
    """``OUT.partial``, emptied, where a release is written before ``swap_in`` renames it to ``out``; an existing
    ``out`` without ``force`` is a one-line error (a user's release is never overwritten unasked)."""
    if out.exists() and not force:
        raise AbawError(f"{out} already exists; pass --force to replace it")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    return partial


SAME_RELEASE = {"ah_frames": "ah"}  # the frame-level A/H track of ABAW 8 is in the BAH release (release/synth/ah.py)
VIDEO_LEVEL = {"ah": synth_ah.write_release, "emi": synth_emi.write_release}


def run_video_level(cfg: SynthConfig, out: Path, force: bool = False) -> dict:
    """``--track ah|emi``: ``cfg.videos`` clips of 4-6 s at ``cfg.fps`` and ``cfg.size`` (``release/synth/ah.py``,
    ``emi.py``), written into ``OUT.partial/`` and renamed into place."""
    track = cfg.track
    if cfg.videos < 10 or cfg.size < 32:
        raise AbawError(f"synth --track {track}: need --videos >= 10 and --size >= 32 (got {cfg.videos}, {cfg.size})")
    partial = fresh_partial(out, force)
    t0 = time.time()
    spec = ClipSpec(videos=cfg.videos, fps=cfg.fps, size=cfg.size, audio_rate=cfg.audio_rate, seed=cfg.seed)
    partial.mkdir(parents=True)
    with progress() as bar:
        job = bar.add_task(f"synth {track} clips", total=cfg.videos)
        summary = VIDEO_LEVEL[track](partial, spec, lambda: bar.advance(job))
    summary.update(track=track, seconds=round(time.time() - t0, 2))
    write_json(partial / layout.SYNTH_RECORD, {"config": to_dict(cfg), "summary": summary})
    swap_in(partial, out)
    console.print(f"synthetic {track} release: {out} ({summary['train']} train, {summary['val']} val, "
                  f"{summary['test']} test clips; {summary['seconds']} s)")
    return summary


def run_ce(cfg: SynthConfig, out: Path, force: bool = False) -> dict:
    """``--track ce``: a C-EXPR-DB-like release (``release/synth/ce.py``); ``faces`` = compound faces per class."""
    if cfg.videos < 1 or cfg.frames < 30 or cfg.size < 32 or cfg.faces < 1:
        raise AbawError(f"synth --track ce: need --videos >= 1, --frames >= 30, --size >= 32 and --faces >= 1 "
                        f"(got {cfg.videos}, {cfg.frames}, {cfg.size}, {cfg.faces})")
    out = Path(out)
    partial = fresh_partial(out, force)
    t0 = time.time()
    spec = synth_ce.CeSynth(cfg.videos, cfg.frames, cfg.size, cfg.fps, cfg.audio_rate, cfg.seed, cfg.faces)
    summary = synth_ce.write_release(partial, spec) | {"seconds": round(time.time() - t0, 2)}
    write_json(partial / layout.SYNTH_RECORD, {"config": to_dict(cfg), "summary": summary})
    swap_in(partial, out)
    console.print(f"synthetic CE release: {out} ({summary['videos']} videos of {cfg.frames} frames, "
                  f"{sum(summary['compound_faces'].values())} compound faces; {summary['seconds']} s)")
    return summary
