"""``abaw predict VIDEO...``: per-frame affect for any video with the models of a workspace.

For each video: finds and follows the faces (``video.facetrack``: detection on a downscaled frame
every ``detect_every`` frames, tracks bridged in between, crops cut from the full-resolution frame
and aligned on MTCNN's five landmarks), extracts the audio track, runs the trained models of
``<workdir>`` (TMF with its own feature extractors, or the fine-tuned frame model; every finished
fold averaged with ``fold = "all"``), smooths with the saved policy of each task, and writes
``<workdir>/predict/<video>-<sha256[:8]>/`` (``workspace.layout.predict``: two videos with one file name never
share a folder): ``predictions.csv`` (frame, time from the frame's timestamp, 0 at the first frame,
[face_id,] face, AUs, expression and its probabilities, valence, arousal), ``timeline.png``, and
the crops and WAV it used. The video-level tracks (A/H, EMI; ``model = "video"``) write one row per video
and ``summary.png`` instead (``inference.video_row``).

A result is keyed by content: its manifest records the video's sha256 and the identity of every model and
store it loaded (``inference.checks``). The same video with the same models is skipped; a retrained model
redoes it (one line naming the model); a model that no longer fits what was trained on it stops the run
before any video is read, in one line naming the stage to redo.

A frame without a face has ``face = 0`` and empty prediction cells (NaN); ``fill = "nearest"``
gives it the prediction of the nearest frame with that face instead (the ABAW submission convention).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.console import console, table
from abawkit.devices import resolve_device
from abawkit.errors import AbawError
from abawkit.files import walk
from abawkit.inference.checks import declared, model_inputs
from abawkit.inference.clip import Clip
from abawkit.inference.decide import nearest_index, smooth_and_decide, task_columns
from abawkit.inference.models import Models
from abawkit.inference.values import face_values
from abawkit.inference.video_row import FLOAT_FORMAT, video_level, video_table
from abawkit.io import atomic_path, write_text
from abawkit.labels import AU_NAMES, EXPR_NAMES
from abawkit.labels import task as task_spec
from abawkit.release.annotations import half_of
from abawkit.video.align import check_align
from abawkit.video.decode import decode_break
from abawkit.video.facetrack import (
    TrackSettings,
    check_faces_mode,
    cut_faces,
    find_faces,
)
from abawkit.video.media import (
    VIDEO_EXTS,
    FaceDetector,
    extract_audio,
    probe_video,
    write_crop,
)
from abawkit.workspace import identity as ident
from abawkit.workspace import layout
from abawkit.workspace.fingerprints import sha256_file
from abawkit.workspace.stage import StageDone, stage

__all__ = ["Clip", "Models", "PredictConfig", "face_values", "nearest_index", "predict_table", "run"]


@dataclass(frozen=True)
class PredictConfig:
    seed: int = 0
    model: str = "tmf"  # tmf | frame | video (the video-level tracks ah, emi: one row per video)
    fold: str = "all"  # "all": average every finished fold's outputs; or one fold number ("0")
    tasks: tuple[str, ...] = ("au", "expr", "va")
    size: int = 112  # face crop side
    detector: str = "mtcnn"  # mtcnn (Haar fallback) | haar (no landmarks: never aligned)
    align: str = "5pt"  # 5pt (similarity onto a 112 px five-point template) | none (square around the box)
    faces: str = "largest"  # largest (one row per frame) | all (one row per frame per tracked face)
    fill: str = "none"  # none (no-face frames stay empty) | nearest (nearest face frame's prediction)
    device: str = "auto"  # auto | cpu | cuda | cuda:N (devices.resolve_device)
    detect_every: int = 5  # run the detector on every Nth frame, track in between
    detect_size: int = 640  # longest side of the frame the detector sees
    min_face: int = 40  # smallest face the detector looks for, px in that frame (fewer pyramid levels: faster)
    max_gap: int = 15  # most frames between two detections of one face still bridged
    min_score: float = 0.9  # detector confidence a face needs
    batch_size: int = 64  # face crops per encoder batch
    threads: int = 0  # torch CPU threads; 0 = torch's default (tiny models run faster on 1)
    smooth: bool = True  # apply <workdir>/smooth/<task>/policy.json when present
    transcripts: str = ""  # a TMF fusing text: folder of <video stem>.json transcripts (else the store's recogniser)


def check(cfg: PredictConfig) -> None:
    """One line for each kind of bad setting, before any video is read."""
    if cfg.model not in ("tmf", "frame", "video"):
        raise AbawError(f"model must be tmf, frame or video, got {cfg.model!r}")
    video_level(cfg)  # a mix of per-frame and per-video tracks, or a model that does not fit them: one line
    if cfg.fill not in ("none", "nearest"):
        raise AbawError(f"fill must be none or nearest, got {cfg.fill!r}")
    if cfg.fold != "all" and not cfg.fold.isdigit():
        raise AbawError(f"fold must be all or a fold number, got {cfg.fold!r}")
    if cfg.detect_every < 1 or cfg.detect_size < 32:
        raise AbawError(f"detect_every must be >= 1 and detect_size >= 32, got {cfg.detect_every}, {cfg.detect_size}")
    check_align(cfg.align)
    check_faces_mode(cfg.faces)
    resolve_device(cfg.device)  # cuda where torch sees none: an error before any video is read


def prepare(video: Path, folder: Path, cfg: PredictConfig, detector, strict: bool = False) -> Clip:
    """Find, follow and crop the faces into ``folder/crops``, extract the audio; timings per step.

    A video that stops decoding before its header's end keeps the frames before the break, with a
    one-line warning (``strict``: a one-line error, exit code 1)."""
    info = probe_video(video)
    s = TrackSettings(cfg.detect_every, cfg.detect_size, cfg.max_gap, cfg.min_score, align=cfg.align, faces=cfg.faces)
    clock: dict[str, float] = {}
    t0 = time.perf_counter()
    scan, rows = find_faces(video, detector, s, half_of(video.stem), clock)
    if (stopped := decode_break(video, scan.times)) and strict:
        raise AbawError(stopped, code=1)
    if stopped:
        console.print(f"[yellow]warning:[/] {stopped}", soft_wrap=True, highlight=False)
    if cfg.align == "5pt" and (n := rows.unaligned()):
        console.print(f"[yellow]note:[/] {n}/{len(rows)} faces were found by the Haar detector, which gives no "
                      "landmarks: those crops are squares around the box, not aligned", soft_wrap=True)
    (folder / "crops").mkdir(parents=True, exist_ok=True)
    crops = [str(folder / "crops" / _crop_name(k, f, cfg.faces)) for k, f in zip(rows.frame, rows.face_id)]
    cut_faces(video, rows, cfg.size, cfg.align,
              lambda k, f, crop: write_crop(folder / "crops" / _crop_name(k, f, cfg.faces), crop), clock=clock)
    t2 = time.perf_counter()
    wav = folder / "audio.wav"
    has_audio = info.has_audio and extract_audio(video, wav)
    clock["decode"] = (t2 - t0) - clock.get("detect", 0.0) - clock.get("crop", 0.0)
    clock["audio"] = time.perf_counter() - t2
    span = scan.times[-1] - scan.times[0] if scan.n_frames > 1 else 0.0
    fps = (scan.n_frames - 1) / span if span > 0 else info.fps
    n_face = len(np.unique(rows.frame))
    console.print(f"{video.name}: {scan.n_frames} frames ({fps:.2f} fps), {info.width}x{info.height}; "
                  f"a face in {n_face}/{scan.n_frames} frames", highlight=False)
    return Clip(video, scan.times, fps, rows.frame, rows.face_id, crops, wav if has_audio else None, clock, stopped)


def _crop_name(k: int, face_id: int, faces: str) -> str:
    return f"{k + 1:05d}.jpg" if faces == "largest" else f"{k + 1:05d}_f{face_id}.jpg"


def face_table(models: Models, clip: Clip, face: int, frames: np.ndarray, crops: list[str]) -> pd.DataFrame:
    """Rows of one face, each task's columns: every frame with ``largest``, or with ``fill = "nearest"``
    (frames without this face copy its nearest frame: a full timeline per track); else the frames it is in."""
    n, cfg = clip.n_frames, models.cfg
    present = np.zeros(n, bool)
    present[frames] = True
    keep = present | (cfg.faces == "largest") | (cfg.fill == "nearest")
    df = pd.DataFrame({"frame": np.arange(1, n + 1), "time": clip.times.round(4)})
    if cfg.faces == "all":
        df["face_id"] = face
    df["face"] = present.astype(int)
    for t in cfg.tasks:
        t0 = time.perf_counter()
        values = face_values(models, t, clip, face, frames, crops)
        clip.timings["models"] = clip.timings.get("models", 0.0) + time.perf_counter() - t0
        sm, dec = smooth_and_decide(models.workdir, t, values, cfg.smooth)
        if cfg.fill == "none":
            sm, dec = np.where(present[:, None], sm, np.nan), np.where(present[:, None], dec, np.nan)
        else:  # nearest: each frame without the face copies the nearest frame with it
            src = frames[nearest_index(n, frames)]
            sm, dec = sm[src], dec[src]
        for col, v in task_columns(t, sm, dec).items():
            df[col] = v
    return df[keep]


def predict_table(models: Models, clip: Clip) -> pd.DataFrame:
    """The per-frame CSV: one row per frame (``largest``) or per frame and face (``all``); no-face frames empty
    unless filled (``all`` + ``nearest``: every track has a row in every frame)."""
    cfg = models.cfg
    parts = [face_table(models, clip, f, fr, cr) for f, fr, cr in clip.people(cfg.faces) if len(fr)]
    seen = np.zeros(clip.n_frames, bool)
    seen[clip.frame] = True
    if not parts or (cfg.faces == "all" and cfg.fill == "none"):  # frames without any face: one empty row each
        empty = pd.DataFrame({"frame": np.flatnonzero(~seen) + 1, "time": clip.times[~seen].round(4)})
        if cfg.faces == "all":
            empty["face_id"] = pd.array([pd.NA] * len(empty), dtype="Int64")
        empty["face"] = 0
        parts.append(empty)
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    df = df.sort_values(["frame", "face_id"] if "face_id" in df else ["frame"], kind="stable").reset_index(drop=True)
    if "face_id" in df:
        df["face_id"] = df["face_id"].astype("Int64")
    return _with_all_columns(df, cfg.tasks)


def _with_all_columns(df: pd.DataFrame, tasks: tuple[str, ...]) -> pd.DataFrame:
    """Same columns whether or not any face was found (a no-face video still gets every task's columns)."""
    for t in tasks:
        c = len(task_spec(t).pred_columns)
        for col in task_columns(t, np.full((0, c), np.nan), np.full((0, c), np.nan)):
            if col not in df:
                df[col] = pd.array([pd.NA] * len(df), dtype="Int64") if col.startswith("AU") else np.nan
    return df


def expand_videos(paths: list[Path]) -> list[Path]:
    """Files as given, folders -> their video files (recursive through symlinked folders, sorted, hidden
    and macOS ``._*`` files skipped, as ``files.walk`` lists a release); one line per problem.

    Two videos with one file name get two output folders (``layout.predict``: name and content); the same
    bytes under the same name twice are predicted once, with a note."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = [Path(d) / f for d, _, names in walk(p) for f in names if Path(f).suffix.lower() in VIDEO_EXTS]
            if not found:
                raise AbawError(f"{p}: no video files ({', '.join(VIDEO_EXTS)}) in this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise AbawError(f"{p}: video file not found")
    seen: dict[str, Path] = {}
    for v in dict.fromkeys(out):
        name = layout.predict(v.stem, sha256_file(v))
        if name in seen:
            if seen[name].resolve() != v.resolve():
                console.print(f"note: {v} is the same video as {seen[name]}: predicted once, into {name}",
                              soft_wrap=True, highlight=False)
            continue
        seen[name] = v
    return list(seen.values())


def run(videos: list[Path] | Path, workdir: Path, cfg: PredictConfig, force: bool = False,
        strict: bool = False) -> list[Path]:
    """Predict every frame of each video (finished ones skipped); returns the CSV paths written.

    Every model is checked (``inference.checks``) before any video is read. ``strict``: a video that is cut
    short or damaged is an error (exit code 1), not a warning."""
    check(cfg)
    todo = expand_videos([videos] if isinstance(videos, (str, Path)) else list(videos))
    workdir, device = Path(workdir), resolve_device(cfg.device)
    if cfg.threads > 0:
        import torch  # already loaded by abawkit.inference

        torch.set_num_threads(cfg.threads)
    models = Models(workdir, cfg, device)
    used = model_inputs(models, cfg.tasks, cfg.smooth)  # a missing or stale model stops here, in one line
    detector = FaceDetector(cfg.detector, device=str(device), min_face=cfg.min_face)
    written = []
    for i, video in enumerate(todo, 1):
        console.print(f"[bold]\\[{i}/{len(todo)}][/] {video}", highlight=False, soft_wrap=True)
        try:
            written.append(run_one(video, models, used, detector, force, strict))
        except StageDone as done:
            console.print(f"[yellow]skip:[/] {done}", soft_wrap=True)
    return written


def run_one(video: Path, models: Models, used: dict[str, dict], detector, force: bool = False,
            strict: bool = False) -> Path:
    """One video -> ``predict/<stem>-<sha256[:8]>/``; returns the CSV path. ``used``: the models' records."""
    cfg, workdir = models.cfg, models.workdir
    name = layout.predict(video.stem, sha256_file(video))
    models.per_video.clear()
    models.clock.clear()
    inputs = {"video": ident.file(video), **declared(workdir, used)}  # a retrained model: redone, one line
    said = Path(cfg.transcripts) / f"{video.stem}.json" if cfg.transcripts else None
    if said is not None and said.is_file():  # a corrected transcript is another input: redone
        inputs["transcript"] = ident.file(said)
    with stage(workdir, name, cfg, seed=cfg.seed, force=force, inputs=inputs) as run_:
        t0 = time.perf_counter()
        clip = prepare(video, run_.dir, cfg, detector, strict)
        per_video = cfg.model == "video"
        df = video_table(models, clip) if per_video else predict_table(models, clip)
        clip.timings["encode"] = models.clock.get("encode", 0.0)
        clip.timings["temporal"] = clip.timings.pop("models", 0.0) - clip.timings["encode"]
        t1 = time.perf_counter()
        write_text(run_.add_output("predictions.csv"), df.to_csv(index=False, float_format=FLOAT_FORMAT if per_video
                                                                 else "%.4f"))
        png = "summary.png" if per_video else "timeline.png"
        (_bars if per_video else _timeline)(run_.add_output(png), df)
        clip.timings["write"] = time.perf_counter() - t1
        clip.timings["total"] = time.perf_counter() - t0
        run_.metrics = _metrics(clip)
        out = run_.final_dir
    (_video_summary if per_video else _summary)(df, int(len(np.unique(clip.frame))), clip.n_frames)
    console.print(f"wrote {out / 'predictions.csv'} and {out / png}")
    return out / "predictions.csv"


def _metrics(clip: Clip) -> dict:
    seconds = float(clip.times[-1] - clip.times[0] + 1 / clip.fps) if clip.n_frames else 0.0
    return {"frames": clip.n_frames, "frames_with_face": int(len(np.unique(clip.frame))),
            "faces": int(len(np.unique(clip.face_id))), "audio": clip.wav is not None, "stopped": clip.stopped,
            "seconds": seconds, "timings": {k: round(v, 3) for k, v in clip.timings.items()}}


def _summary(df: pd.DataFrame, n_face: int, n_frames: int) -> None:
    faces = df[df["face"] == 1]
    rows = [("frames with a face", f"{n_face}/{n_frames} ({n_face / max(n_frames, 1):.0%})")]
    if "face_id" in df and len(faces):
        rows.append(("faces tracked", str(faces["face_id"].nunique())))
    if "expression" in df and faces["expression"].notna().any():
        top = faces["expression"].value_counts()
        rows.append(("expression (most frequent)", f"{top.index[0]} ({top.iloc[0]}/{len(faces)} face rows)"))
    for col in [c for c in df.columns if c != "expression" and not pd.api.types.is_numeric_dtype(df[c])]:  # ah, ce
        if faces[col].notna().any():
            top = faces[col].value_counts()
            rows.append((f"{col} (most frequent)", f"{top.index[0]} ({top.iloc[0]}/{len(faces)} face rows)"))
    for col in ("valence", "arousal"):
        if col in df and faces[col].notna().any():
            rows.append((f"mean {col}", f"{faces[col].mean():+.3f}"))
    au = [c for c in df.columns if c.startswith("AU")]
    if au and len(faces):
        rates = faces[au].astype(float).mean().sort_values(ascending=False)
        rows.append(("most active AUs", ", ".join(f"{k} {v:.0%}" for k, v in rates.head(3).items())))
    console.print(table("prediction summary", ["what", "value"], rows))


def _timeline(path: Path, df: pd.DataFrame) -> None:
    """Valence/arousal lines (a two-class track: its class-1 probability), expression track and AU raster over
    time; gaps where there is no face.

    With several faces, the one seen in the most frames is drawn."""
    import matplotlib  # lazy: matplotlib costs ~0.5 s of start-up and only this function draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "face_id" in df and df["face_id"].notna().any():
        main = df["face_id"].value_counts().index[0]
        df = df[(df["face_id"] == main) | df["face_id"].isna()].drop_duplicates("frame")
    fig, axes = plt.subplots(3, 1, figsize=(10, 6), sharex=True)
    t = df["time"].to_numpy()
    lines = [(c, k) for c, k in (("valence", "#C44E52"), ("arousal", "#4C72B0")) if c in df]
    probs = [c for c in df.columns if c.startswith("p_")]
    if not lines and len(probs) == 2:  # a two-class track (A/H per frame): the probability of class 1
        lines = [(probs[1], "#C44E52")]
    for col, color in lines:
        axes[0].plot(t, df[col].to_numpy(np.float64), color=color, label=col)  # NaN -> gap
    axes[0].set_ylim(-1 if "valence" in df else 0, 1)
    if lines:
        axes[0].legend(loc="upper right", fontsize=8)
    if "expression" in df:
        has = df["expression"].notna().to_numpy()
        axes[1].scatter(t[has], [EXPR_NAMES.index(e) for e in df["expression"][has]], s=4, c="k")
        axes[1].set_yticks(range(len(EXPR_NAMES)), EXPR_NAMES, fontsize=7)
    if AU_NAMES[0] in df and len(t):
        grid = np.ma.masked_invalid(df[list(AU_NAMES)].to_numpy(np.float64, na_value=np.nan).T)
        axes[2].imshow(grid, aspect="auto", cmap="Greys", interpolation="nearest",
                       extent=(t[0], t[-1] if len(t) > 1 else 1, len(AU_NAMES) - 0.5, -0.5))
        axes[2].set_yticks(range(len(AU_NAMES)), AU_NAMES, fontsize=6)
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def _video_summary(df: pd.DataFrame, n_face: int, n_frames: int) -> None:
    """The rich table: frames with a face, then each value of the row (a decision with its probability)."""
    rows = [("frames with a face", f"{n_face}/{n_frames} ({n_face / max(n_frames, 1):.0%})")]
    for col in df.columns[1:]:
        v = df[col].iloc[0]
        rows.append((col, "-" if v is None or (isinstance(v, float) and np.isnan(v)) else
                     (f"{v:.3f}" if isinstance(v, (float, np.floating)) else str(v))))
    console.print(table("prediction summary (one per video)", ["what", "value"], rows))


def _bars(path: Path, df: pd.DataFrame) -> None:
    """``summary.png``: the row's probabilities / intensities as bars in [0, 1], the A/H decision line at 0.5."""
    import matplotlib  # lazy: matplotlib costs ~0.5 s of start-up and only this function draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [c for c in df.columns[1:] if pd.api.types.is_numeric_dtype(df[c])]
    values = df[cols].iloc[0].to_numpy(np.float64)
    fig, ax = plt.subplots(figsize=(max(3.0, 0.9 * len(cols) + 1.5), 3))
    ax.bar(range(len(cols)), np.nan_to_num(values), color="#4C72B0")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    if any(c.startswith("p_") for c in cols):
        ax.axhline(0.5, color="#C44E52", lw=1, ls="--")  # the calibrated decision threshold
    ax.set_title(str(df["video"].iloc[0]) + ("" if np.isfinite(values).all() else " (no face)"), fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
