"""``abaw prep --release DIR``: index a release into ``<workdir>/prep/``.

Finds the release's parts wherever they unpacked (``release/discover.py``; ``--annotations``,
``--crops``, ``--videos`` override discovery), checks that every labelled and test video has face
crops or a raw video to detect faces in, reads the annotations (``release/annotations.py``) and writes
``frames.parquet``, ``videos.parquet`` and ``splits.parquet`` (``data/tables.py`` documents them),
``audio/<source>.wav`` (16 kHz mono), ``crops/<video>/NNNNN.jpg`` for videos without a crop
folder (faces detected, tracked and aligned in the raw video; a frame without a face gets no crop,
as in the organisers' ``cropped_aligned``, so it takes the nearest face frame's features), and ``summary.json`` (the folders used, per task and split
how many videos have crops / only a raw video / audio, the folds). s-Aff-Wild2's files (the MTL track,
``release/mtl.py``), alone or beside the classic challenge folders, give the ``mtl_*`` columns and ``split_mtl``;
every image its annotation files list must have a crop, and its test list is the track's template. A release that would give videos
without frames or faces is an error, never an empty dataset. Paths stored are absolute and
point at the finished ``prep/`` folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abawkit.console import console, progress, table
from abawkit.errors import AbawError, where
from abawkit.io import write_json, write_parquet
from abawkit.labels import CLASSIC, TASKS
from abawkit.release import annotations as rel
from abawkit.release import mtl as mtl_rel
from abawkit.release import ce as ce_release
from abawkit.release.annotations import half_of, list_crops, source_key
from abawkit.release import bah, bah_frames, emi
from abawkit.release.discover import annotation_items, discover, discover_media, read_names
from abawkit.release.videolabels import VideoLabels, to_annotations
from abawkit.release.splits import SplitConfig, show, write_splits
from abawkit.video.align import check_align
from abawkit.video.facetrack import TrackSettings
from abawkit.video.media import FaceDetector, crop_video, extract_audio, probe_video
from abawkit.workspace import identity as ident
from abawkit.workspace import layout
from abawkit.workspace.stage import stage


@dataclass(frozen=True)
class PrepConfig:
    seed: int = 0
    release: str = ""  # release root (absolute after loading)
    annotations: str = ""  # folder holding the challenge folders; empty = found under release
    crops: tuple[str, ...] = ()  # crop roots (folders of per-video crop folders); empty = found under release
    videos: tuple[str, ...] = ()  # folders holding raw videos; empty = found under release
    size: int = 112  # side of crops made from raw videos
    detector: str = "mtcnn"  # mtcnn (Haar fallback) | haar (no landmarks: crops not aligned)
    align: str = "5pt"  # crops from raw videos: 5pt (five landmarks onto a template) | none (square around the box)
    audio_rate: int = 16000
    compound: tuple[str, ...] = ()  # compound-labelled face lists (files or folders): CE train/val rows
    split: SplitConfig = field(default_factory=SplitConfig)


def probe_sources(names: list[str], media: dict[str, Path]) -> dict[str, object]:
    """VideoInfo per distinct media file used by ``names`` (progress bar)."""
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


def release_crops(names, lay) -> dict:
    """{video: (folder, 1-based frame indices [K], file names)} for the videos with a crop folder."""
    return {v: (str(lay.crops[v]), *list_crops(lay.crops[v])) for v in names if v in lay.crops}


def detect_crops(detect: list[str], src_of, run, final: Path, cfg: PrepConfig) -> tuple[dict, dict]:
    """Faces detected in the raw videos of ``detect``: crop index per video, {video: {frames, detected}}."""
    crops, stats = {}, {}
    if not detect:
        return crops, stats
    det = FaceDetector(cfg.detector)
    settings = TrackSettings(align=cfg.align)
    with progress(transient=True) as bar:
        job = bar.add_task("detect faces", total=len(detect))
        for v in detect:
            stats[v] = crop_video(src_of[v], run.path(f"crops/{v}"), cfg.size, det, half=half_of(v), settings=settings)
            run.log("crops", video=v, **stats[v])
            crops[v] = (str(final / "crops" / v), *list_crops(run.dir / "crops" / v))
            bar.advance(job)
    return crops, stats


def show_detected(stats: dict[str, dict], detector: str, align: str) -> None:
    """Frames with a face per raw video (only those frames have a crop), and what alignment was used."""
    if not stats:
        return
    rows = [(v, s["frames"], s["detected"], f"{s['detected'] / max(s['frames'], 1):.0%}") for v, s in sorted(stats.items())]
    rows.append(("all", sum(r[1] for r in rows), sum(r[2] for r in rows), ""))
    console.print(table("faces in raw videos", ["video", "frames", "frames with a face", "share"], rows))
    if detector == "haar" and align == "5pt":
        console.print("[yellow]note:[/] the Haar detector gives no landmarks: its crops are squares around the box, "
                      "not aligned", soft_wrap=True)


def extract_audio_all(infos: dict, run, final: Path, rate: int) -> dict[str, str | None]:
    """16 kHz mono WAV per media file with audio: {media path: final wav path or None}."""
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
    rows = []
    for t, spec in TASKS.items():
        if f"split_{t}" not in frames:
            continue
        for s, g in frames.groupby(f"split_{t}", sort=True):
            if s != "none":
                labelled = np.zeros(len(g), bool)  # a frame any head has a label for
                for h in spec.heads:
                    labelled |= (g[h.columns[0]] != h.invalid).to_numpy()
                rows.append({"task": t, "split": s, "videos": int(g["video"].nunique()), "frames": len(g),
                             "labelled": int(labelled.sum())})
    return rows


def split_videos(anns: dict, tests: dict[str, list[str]], t: str) -> dict[str, list[str]]:
    """{split: video names} of task ``t``: train/val from its annotation folders, test from its test list."""
    groups: dict[str, list[str]] = {}
    if t in anns:
        for name, role in zip(anns[t].names, anns[t].roles):
            groups.setdefault(role, []).append(name)
    groups["test"] = tests.get(t, [])
    return groups


def coverage(lay, anns: dict, tests: dict[str, list[str]], src_of: dict) -> list[dict]:
    """Per task and split: videos, with crops, with only a raw video (faces to detect), with neither, with audio.

    Raises ``AbawError`` naming the first labelled or test video that has neither crops nor a raw video."""
    rows, missing = [], []
    for t in sorted(set(anns) | set(tests)):
        groups = split_videos(anns, tests, t)
        for split in ("train", "val", "test"):
            vids = groups.get(split, [])
            crops = [v for v in vids if v in lay.crops]
            raw = [v for v in vids if v not in lay.crops and src_of[v] is not None]
            missing += [(v, t, split) for v in vids if v not in lay.crops and src_of[v] is None]
            if vids:
                rows.append({"task": t, "split": split, "videos": len(vids), "crops": len(crops), "raw video only": len(raw),
                             "neither": len(vids) - len(crops) - len(raw), "audio": sum(src_of[v] is not None for v in vids)})
    if missing:
        v, t, split = missing[0]
        more = f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""
        raise AbawError(f"{t} {split} video {v} has neither a crop folder nor a raw video{more}; searched crops under "
                        f"{', '.join(lay.searched['crops'])} and videos under {', '.join(lay.searched['videos'])} "
                        f"(pass --crops DIR / --videos DIR)")
    return rows


def check_faces(anns: dict, tests: dict[str, list[str]], crops: dict, detect: list[str], n_frames: dict[str, int]) -> None:
    """Before any long work: no test video without frames, no task split none of whose frames has a face."""
    for t, names in tests.items():
        empty = [v for v in names if n_frames.get(v, 0) <= 0]
        if empty:
            raise AbawError(f"{t} test video {empty[0]} has 0 frames (no video, template row, crop or annotation gives a count)")
    faces = {v: v in detect or bool((crops[v][1] <= n_frames[v]).any()) if v in crops else v in detect for v in n_frames}
    for t in sorted(set(anns) | set(tests)):
        for split, vids in split_videos(anns, tests, t).items():
            if vids and not any(faces[v] for v in vids):
                frames = sum(n_frames[v] for v in vids)
                raise AbawError(f"{t} {split}: none of its {frames} frames in {len(vids)} videos has a face crop "
                                f"(crop file names must be 1-based frame numbers, e.g. {lay_hint(crops, vids)})")


def lay_hint(crops: dict, vids: list[str]) -> str:
    """``00001.jpg``, or what the first crop folder actually holds."""
    v = next((v for v in vids if v in crops and len(crops[v][2])), None)
    return "00001.jpg" if v is None else f"00001.jpg; {crops[v][0]} starts at {crops[v][2][0]}"


def show_found(lay, cover: list[dict]) -> None:
    """Print the folders used and the per-split coverage table."""
    console.print(table(f"release {lay.root}", ["kind", "path", "count"],
                        [[r["kind"], r["path"], "-" if r["count"] is None else r["count"]] for r in lay.roots()]))
    if cover:
        console.print(table("videos per task and split", list(cover[0]), [list(r.values()) for r in cover]))
    for key, paths in sorted(lay.duplicates.items()):
        kind, name = key.split(":", 1)
        console.print(f"[yellow]note:[/] {kind} of {name} found in {len(paths)} places; using {paths[0]} "
                      f"(also: {', '.join(paths[1:])})", soft_wrap=True, highlight=False)


@dataclass
class MtlRelease:
    """What prep reads of s-Aff-Wild2: listed frames per labelled video and the test list ({video: frames})."""

    listed: dict[str, np.ndarray] = field(default_factory=dict)
    test: dict[str, np.ndarray] = field(default_factory=dict)


def read_mtl(lay, anns: dict, tests: dict[str, list[str]]) -> MtlRelease:
    """Add s-Aff-Wild2's annotations (``anns["mtl"]``) and test videos (``tests["mtl"]``, the list's order)."""
    found = MtlRelease()
    if {"train", "val"} & set(lay.mtl):
        anns["mtl"], found.listed = mtl_rel.read_annotations(lay.mtl)
    if "test" in lay.mtl:
        found.test = mtl_rel.read_test_list(lay.mtl["test"])
        tests["mtl"] = list(found.test)
    return found


def check_mtl_crops(found: MtlRelease, crops: dict, searched: list[str]) -> None:
    """Every image s-Aff-Wild2's annotation files list has a crop (else one line: how many lack one, the first);
    test-list images without a crop are only noted (they take the nearest crop's features)."""
    count, first = mtl_rel.missing_crops(found.listed, crops)
    if count:
        raise AbawError(f"mtl: {count} annotated image(s) have no crop, first {first} (searched crops under "
                        f"{', '.join(searched)}; pass --crops DIR)")
    count, first = mtl_rel.missing_crops(found.test, crops)
    if count:
        console.print(f"[yellow]note:[/] mtl: {count} test-list image(s) have no crop, first {first}; they take the "
                      f"nearest crop of their video", soft_wrap=True, highlight=False)


def template_frames(lay, found: MtlRelease) -> dict[str, int]:
    """Frames per test video from the classic templates (rows per video) and the MTL test list (its last frame)."""
    counts = rel.template_counts({t: p for t, p in lay.templates.items() if t in (*CLASSIC, "ce")})
    counts.update({v: int(f.max()) for v, f in found.test.items()})
    return counts


def release_inputs(cfg: PrepConfig) -> dict[str, Any]:
    """What prep reads, by listing (annotation and list files by content): the release, and any folder given
    apart from it (``--annotations``, ``--crops``, ``--videos``)."""
    given = {"release": cfg.release, "annotations": cfg.annotations, **{f"crops{i}": p for i, p in enumerate(cfg.crops)},
             **{f"videos{i}": p for i, p in enumerate(cfg.videos)},
             **{f"compound{i}": p if Path(p).is_dir() else str(Path(p).parent) for i, p in enumerate(cfg.compound)}}
    return {k: ident.data(p) for k, p in given.items() if p and Path(p).is_dir()}  # discovery names what is missing


def run(cfg: PrepConfig, workdir: Path, force: bool = False) -> dict:
    """Index the release, write the tables and folds; returns the summary rows."""
    check_align(cfg.align)
    root = Path(cfg.release)
    with stage(workdir, layout.PREP, cfg, seed=cfg.seed, force=force, inputs=release_inputs(cfg)) as run_:
        final = run_.final_dir.resolve()
        found = find_video_tracks(root)  # BAH / Hume-Vidmimic2: one label per video, no challenge folders
        lay = video_level_layout(root, found) if found else discover(root, cfg.annotations or None, cfg.crops, cfg.videos)
        anns = {t: rel.read_annotations(TASKS[t], items) for t, items in annotation_items(lay).items()}
        tests = {t: read_names(p) for t, p in lay.test_lists.items()} | {t: v.tests for t, v in found.items()} \
            | ce_release.test_videos(lay.templates)
        mtl = read_mtl(lay, anns, tests)
        ah_frames = read_ah_frames(found, lay, tests)
        compounds = ce_release.read_compounds(cfg.compound, cfg.seed)
        names = sorted({n for a in anns.values() for n in a.names} | {n for ns in tests.values() for n in ns}
                       | set(video_level_names(found)))
        src_of = {v: lay.videos.get(v) or lay.videos.get(rel.source_key(v)) for v in names}
        cover = coverage(lay, anns | found, tests, src_of)  # VideoLabels have names and roles too
        infos = probe_sources(names, lay.videos)
        crops = release_crops(names, lay)
        check_mtl_crops(mtl, crops, lay.searched["crops"])
        detect = [v for v in names if v not in crops and src_of[v] is not None]
        n_frames = frame_counts(names, anns, infos, src_of, template_frames(lay, mtl), crops)
        ce_release.fit_list(lay.templates, n_frames)
        anns |= video_level_inputs(found, n_frames)[0]  # each video's label on each of its frames
        anns |= frame_level_ah(ah_frames, found, n_frames)
        check_faces(anns, tests, crops, detect, n_frames)
        show_found(lay, cover)
        made, det = detect_crops(detect, src_of, run_, final, cfg)
        show_detected(det, cfg.detector, cfg.align)
        crops.update(made)
        audio = extract_audio_all(infos, run_, final, cfg.audio_rate)
        names = ce_release.add_compounds(compounds, names, src_of, n_frames, crops, anns)
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
        write_json(run_.add_output("summary.json"), {"rows": rows, "folds": report, "detected": det,
                                                     "layout": lay.to_dict(), "roots": lay.roots(), "coverage": cover,
                                                     "compound": ce_release.compound_summary(compounds)})
    console.print(table("prep", ["task", "split", "videos", "frames", "labelled"], [list(r.values()) for r in rows]))
    show(report)
    return {"rows": rows, "folds": report}


# ----------------------------------------------------------------------------- video-level releases (A/H, EMI)
VIDEO_READERS = {"bah": (bah.present, bah.read_bah), "emi": (emi.present, emi.read_emi)}  # TaskSpec.release -> (is it
# under the root?, reader of its labels and lists)


def find_video_tracks(root: Path) -> dict[str, VideoLabels]:
    """{track: VideoLabels} of every video-level track whose release files are under ``root`` (none: {})."""
    out = {}
    for t, spec in TASKS.items():
        present, read = VIDEO_READERS.get(spec.release, (None, None)) if spec.level == "video" else (None, None)
        if present is not None and present(root):
            out[t] = read(root)
    return out


def video_level_layout(root: Path, found: dict[str, VideoLabels]):
    """The ``Layout`` of a video-level release: crops and media walked as usual (``discover_media``), each
    track's media files (found by its reader) added, and the organisers' list of each track recorded as
    ``templates[track]`` (prep's ``summary.json`` ``layout.templates``, which ``scoring.release_template`` reads)."""
    lay = discover_media(root)
    for t, labels in found.items():
        lay.videos.update(labels.media)
        if labels.template is not None:
            lay.templates[t] = labels.template
    return lay


def video_level_inputs(found: dict[str, VideoLabels], n_frames: dict[str, int]) -> tuple[dict, dict[str, list[str]]]:
    """(anns, tests) for ``build_frames``: each labelled video's label on every one of its ``n_frames``."""
    anns = {t: to_annotations(v, n_frames) for t, v in found.items()}
    return anns, {t: list(v.tests) for t, v in found.items()}


def read_ah_frames(found: dict[str, VideoLabels], lay, tests: dict[str, list[str]]):
    """The frame-level A/H track of a BAH release (ABAW 8: ``video_annotation.yaml`` and a frame list), when it
    has one: its test videos go to ``tests["ah_frames"]`` and its list to ``lay.templates["ah_frames"]``."""
    if "ah" not in found:
        return None
    got = bah_frames.read_frames(found["ah"])
    if got is None:
        return None
    unknown = [v for v in got.tests if v not in set(found["ah"].names) | set(found["ah"].tests)]
    if unknown:
        raise AbawError(f"{got.template}: video {unknown[0]} is in no BAH split file or trial list")
    if got.template is not None:
        tests["ah_frames"] = got.tests
        lay.templates["ah_frames"] = got.template
    return got


def frame_level_ah(got, found: dict[str, VideoLabels], n_frames: dict[str, int]) -> dict:
    """``{"ah_frames": Annotations}`` once frames are counted (a listed frame past a video's end adds it)."""
    if got is None:
        return {}
    if got.template is not None:
        ce_release.grow_to_list(got.listed, n_frames)
    return {"ah_frames": bah_frames.to_annotations(got, found["ah"], n_frames)} if got.labels else {}


def video_level_names(found: dict[str, VideoLabels]) -> list[str]:
    """Every labelled and test video of the video-level tracks, sorted."""
    return sorted({n for v in found.values() for n in [*v.names, *v.tests]})
