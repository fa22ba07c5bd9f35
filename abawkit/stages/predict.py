"""``abaw predict VIDEO...``: per-frame affect for any video with the models of a workspace.

For each video: finds and follows the faces (``video.facetrack``: detection on a downscaled frame
every ``detect_every`` frames, tracks bridged in between, crops cut from the full-resolution frame
and aligned on MTCNN's five landmarks), extracts the audio track, runs the trained models of
``<workdir>`` (TMF with its own feature extractors, or the fine-tuned frame model; every finished
fold averaged with ``fold = "all"``), smooths with the saved policy of each task, and writes
``<workdir>/predict/<video>/``: ``predictions.csv`` (frame, time from the frame's timestamp, 0 at the first frame,
[face_id,] face, AUs, expression and its probabilities, valence, arousal), ``timeline.png``, and
the crops and WAV it used.

A frame without a face has ``face = 0`` and empty prediction cells (NaN); ``fill = "nearest"``
gives it the prediction of the nearest frame with that face instead (the ABAW submission convention).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from abawkit.console import console, table
from abawkit.devices import resolve_device
from abawkit.errors import AbawError
from abawkit.io import read_json
from abawkit.workspace.stage import MANIFEST


@dataclass(frozen=True)
class PredictConfig:
    seed: int = 0
    model: str = "tmf"  # tmf | frame
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


@dataclass
class Clip:
    """A video as the models see it: frame times [n], the face rows (crop per row), audio."""

    path: Path
    times: np.ndarray  # [n] seconds, from each frame's timestamp
    fps: float
    frame: np.ndarray  # [M] 0-based frame of each face row
    face_id: np.ndarray  # [M]
    crops: list[str]  # [M] jpg per face row
    wav: Path | None
    timings: dict[str, float] = field(default_factory=dict)
    stopped: str | None = None  # where a cut or damaged file stopped decoding (one line), None when whole

    @property
    def n_frames(self) -> int:
        return len(self.times)

    def people(self, faces: str) -> Iterator[tuple[int, np.ndarray, list[str]]]:
        """(face id or -1, frames [P] of that face, their crops): one sequence per face, or the largest per frame."""
        if faces == "largest":
            yield -1, self.frame, self.crops
            return
        for fid in np.unique(self.face_id):
            idx = np.flatnonzero(self.face_id == fid)
            yield int(fid), self.frame[idx], [self.crops[i] for i in idx]


def check(cfg: PredictConfig) -> None:
    """One line for each kind of bad setting, before any video is read."""
    from abawkit.video.align import check_align
    from abawkit.video.facetrack import check_faces_mode

    if cfg.model not in ("tmf", "frame"):
        raise AbawError(f"model must be tmf or frame, got {cfg.model!r}")
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
    from abawkit.video.decode import decode_break
    from abawkit.video.facetrack import TrackSettings, cut_faces, find_faces
    from abawkit.video.media import extract_audio, probe_video, write_crop

    info = probe_video(video)
    s = TrackSettings(cfg.detect_every, cfg.detect_size, cfg.max_gap, cfg.min_score, align=cfg.align, faces=cfg.faces)
    clock: dict[str, float] = {}
    t0 = time.perf_counter()
    scan, rows = find_faces(video, detector, s, _half(video), clock)
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


def _half(video: Path) -> str | None:
    """``_left`` / ``_right`` names (two people side by side, as in Aff-Wild2): detect in that half only."""
    return "left" if video.stem.endswith("_left") else "right" if video.stem.endswith("_right") else None


def _crop_name(k: int, face_id: int, faces: str) -> str:
    return f"{k + 1:05d}.jpg" if faces == "largest" else f"{k + 1:05d}_f{face_id}.jpg"


class Models:
    """The workspace's models and extractors, loaded once and kept for every video of a run."""

    def __init__(self, workdir: Path, cfg: PredictConfig, device) -> None:
        self.workdir, self.cfg, self.device = workdir, cfg, device
        self._cache: dict[Any, Any] = {}  # models: kept for the whole run
        self.per_video: dict[Any, Any] = {}  # features of the current video: emptied between videos
        self.clock: dict[str, float] = {}  # seconds in the image encoders, per video

    def cached(self, key: Any, make, video: bool = False):
        cache = self.per_video if video else self._cache
        if key not in cache:
            cache[key] = make()
        return cache[key]

    def folds(self, task_name: str) -> list[int]:
        """The folds to average: every finished ``<model dir>/<task>/fold<N>`` with ``fold = "all"``."""
        if self.cfg.fold != "all":
            return [int(self.cfg.fold)]
        base = self.workdir / ("tmf" if self.cfg.model == "tmf" else "finetune") / task_name
        found = sorted(int(m.group(1)) for d in (base.iterdir() if base.is_dir() else ())
                       if (m := re.fullmatch(r"fold(\d+)", d.name)) and (d / MANIFEST).is_file())
        return found or [0]  # none: fold 0's missing-stage error says what to run


def frame_model_values(models: Models, task_name: str, fold: int, crops: list[str]) -> np.ndarray:
    """Activated outputs [P, C] of ``finetune/<task>/fold<N>/best.pt`` on the face crops."""
    from abawkit.data.faces import FaceCrops, eval_loader
    from abawkit.models.checkpoints import load_frame_model
    from abawkit.stages.finetune import predict

    ckpt = _stage_dir(models.workdir, f"finetune/{task_name}/fold{fold}", f"abaw finetune --task {task_name} --fold {fold}")
    model, _ = models.cached(("frame", str(ckpt)), lambda: load_frame_model(ckpt / "best.pt"))
    model = model.to(models.device)
    loader = eval_loader(FaceCrops(crops, model.arch.img_size, False), models.cfg.batch_size,
                         pin=models.device.type == "cuda")
    t0 = time.perf_counter()
    out = predict(model, loader, task_name, models.device, models.device.type == "cuda")
    models.clock["encode"] = models.clock.get("encode", 0.0) + time.perf_counter() - t0
    return out


def vision_part(models: Models, store_name: str, crops: list[str]) -> np.ndarray:
    """Re-run the vision extractor that made ``features/<store_name>`` on the face crops: [P, dim]."""
    import torch

    from abawkit.features.store import extraction_precision
    from abawkit.features.vision import VisionSettings, check_pooling, encode_crops
    from abawkit.stages.extract import load_vision_encoder

    d, info, manifest = _store(models.workdir, store_name)
    s = info["settings"]
    ckpt = _recorded_checkpoint(models.workdir, manifest)
    if not ckpt or not Path(ckpt).exists():  # a file, or a downloaded folder (transformers, timm hub)
        raise AbawError(f"{d}/{MANIFEST}: no encoder checkpoint recorded; re-run `abaw extract vision --force`")
    arch_name, img_size = s.get("arch", ""), int(s["img_size"])
    encoder = models.cached(("enc", ckpt, arch_name, img_size),
                            lambda: load_vision_encoder(Path(ckpt), arch_name, img_size)[0].to(models.device))
    check_pooling(encoder, s, d / "store.json")
    vs = VisionSettings(img_size=img_size, pool=s["pool"], batch_size=models.cfg.batch_size, workers=0,
                        precision=extraction_precision(info, d / "store.json"))
    if not crops:
        return np.zeros((0, 0), np.float32)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = np.concatenate(list(encode_crops(encoder, crops, vs, models.device))).astype(np.float32)
    models.clock["encode"] = models.clock.get("encode", 0.0) + time.perf_counter() - t0
    return out


def _recorded_checkpoint(workdir: Path, manifest: dict) -> str | None:
    """The checkpoint a store was extracted from, as recorded (workspace-relative paths are inside ``workdir``)."""
    from abawkit.workspace.identity import input_path

    rec = manifest["inputs"].get("checkpoint")
    return str(input_path(workdir, rec)) if rec and rec.get("path") else None


def audio_part(models: Models, store_name: str, clip: Clip) -> np.ndarray:
    """Re-run the audio extractor that made ``features/<store_name>`` at the clip's frame times: [n, dim + 1]."""
    from abawkit.features.audio import build_audio_extractor, extract_frames
    from abawkit.features.store import extraction_precision

    d, info, manifest = _store(models.workdir, store_name)
    s = info["settings"]
    ckpt = _recorded_checkpoint(models.workdir, manifest)
    extraction_precision(info, d / "store.json", supported=("fp32",))  # audio extractors run in fp32
    layer = -1 if s.get("layer") is None else int(s["layer"])  # 0 (the embeddings) is a layer too
    ext = models.cached(("audio", store_name), lambda: build_audio_extractor(
        s["model"], ckpt, layer, str(models.device),
        **{k: v for k, v in s.items() if k in ("n_mels", "hop_s")}))
    return extract_frames(ext, clip.wav, clip.n_frames, clip.fps, clip.times).astype(np.float32)


def _store(workdir: Path, store_name: str) -> tuple[Path, dict, dict]:
    d = _stage_dir(workdir, f"features/{store_name}", "abaw extract")
    return d, read_json(d / "store.json"), read_json(d / MANIFEST)


def is_audio_store(workdir: Path, store_name: str) -> bool:
    return "model" in _store(workdir, store_name)[1]["settings"]


def tmf_values(models: Models, task_name: str, fold: int, clip: Clip, face: int, frames: np.ndarray,
               crops: list[str]) -> np.ndarray:
    """Activated per-frame outputs [n, C] of ``tmf/<task>/fold<N>`` for one face; features re-extracted.

    Vision features of frames without this face take the nearest face frame's (as ``abaw extract``)."""

    from abawkit.config import from_dict
    from abawkit.data.clips import VideoData
    from abawkit.models.checkpoints import read_checkpoint
    from abawkit.stages.tmf import TMFConfig, build_model, predict

    d = _stage_dir(models.workdir, f"tmf/{task_name}/fold{fold}", f"abaw train tmf --task {task_name} --fold {fold}")
    cfg = from_dict(TMFConfig, read_json(d / MANIFEST)["config"], str(d / MANIFEST))
    ckpt = models.cached(("tmfckpt", str(d)), lambda: read_checkpoint(d / "best.pt"))
    near = nearest_index(clip.n_frames, frames)
    parts = []
    for name in ckpt["features"]:
        if is_audio_store(models.workdir, name):
            parts.append(models.cached(("a", name), lambda: audio_part(models, name, clip), video=True))
        else:
            feats = models.cached(("v", name, face), lambda: vision_part(models, name, crops), video=True)
            parts.append(feats[near])
    dims = [p.shape[1] for p in parts]
    if sum(dims) != ckpt["arch"]["in_dim"]:
        raise AbawError(f"{d}: trained on {ckpt['arch']['in_dim']} feature dims, but features/"
                        f"{{{','.join(ckpt['features'])}}} now give {'+'.join(map(str, dims))} (re-extracted with "
                        f"another extractor?): re-run `abaw train tmf --task {task_name} --fold {fold} --force`")

    def make():
        model = build_model(cfg, sum(dims))
        model.load_state_dict(ckpt["model"])
        return model.to(models.device).eval()

    model = models.cached(("tmf", str(d)), make)
    data = [VideoData(clip.path.stem, tuple(parts), np.zeros((clip.n_frames, 1), np.float32))]
    return predict(model, data, cfg, models.device)[0]


def nearest_index(n: int, frames: np.ndarray) -> np.ndarray:
    """For each of ``n`` frames, the position in ``frames`` (sorted, non-empty) of the nearest one (ties -> earlier)."""
    pos = np.clip(np.searchsorted(frames, np.arange(n)), 0, len(frames) - 1)
    prev = np.clip(pos - 1, 0, len(frames) - 1)
    use_prev = np.abs(np.arange(n) - frames[prev]) <= np.abs(frames[pos] - np.arange(n))
    return np.where(use_prev, prev, pos)


def face_values(models: Models, task_name: str, clip: Clip, face: int, frames: np.ndarray, crops: list[str]) -> np.ndarray:
    """Fold-averaged activated outputs [n, C] for one face over every frame (absent frames: nearest face frame's)."""
    outs = []
    for fold in models.folds(task_name):
        if models.cfg.model == "tmf":
            outs.append(tmf_values(models, task_name, fold, clip, face, frames, crops))
        else:
            outs.append(frame_model_values(models, task_name, fold, crops)[nearest_index(clip.n_frames, frames)])
    return np.mean(outs, axis=0)  # equal weights, as `abaw ensemble` without --val


def _stage_dir(workdir: Path, name: str, hint: str) -> Path:
    from abawkit.workspace.stage import load_stage

    return Path(load_stage(workdir, name, hint=hint)["dir"])


def smooth_and_decide(workdir: Path, task_name: str, values: np.ndarray, use_policy: bool) -> tuple[np.ndarray, np.ndarray]:
    """(smoothed values [n, C], decisions) with the task's saved policy (if any)."""
    from abawkit import postprocess as pp
    from abawkit.labels import task

    spec = task(task_name)
    path = workdir / "smooth" / task_name / "policy.json"
    policy = read_json(path) if use_policy and path.exists() else None
    sm = pp.apply_policy(values.T, np.array([0, len(values)]), policy).T
    return sm, pp.decide(sm, spec, policy)


def task_columns(task_name: str, sm: np.ndarray, dec: np.ndarray) -> dict[str, np.ndarray]:
    """The CSV columns of one task for the rows of ``sm`` [R, C] / ``dec`` (NaN rows: no face)."""
    from abawkit.labels import AU_NAMES, EXPR_NAMES, VA_NAMES

    missing = np.isnan(sm).any(axis=1)
    cols: dict[str, Any] = {}
    if task_name == "au":
        for i, n in enumerate(AU_NAMES):
            cols[n] = pd.array(np.where(missing, pd.NA, dec[:, i]), dtype="Int64")
            cols[f"p_{n}"] = sm[:, i].round(4)
    elif task_name == "expr":
        cols["expression"] = [None if m else EXPR_NAMES[int(i)] for m, i in zip(missing, np.nan_to_num(dec[:, 0]))]
        for i, n in enumerate(EXPR_NAMES):
            cols[f"p_{n}"] = sm[:, i].round(4)
    else:
        for i, n in enumerate(VA_NAMES):
            cols[n] = dec[:, i].astype(np.float64).round(4)
    return cols


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
    from abawkit.labels import task as spec

    for t in tasks:
        c = len(spec(t).pred_columns)
        for col in task_columns(t, np.full((0, c), np.nan), np.full((0, c), np.nan)):
            if col not in df:
                df[col] = pd.array([pd.NA] * len(df), dtype="Int64") if col.startswith("AU") else np.nan
    return df


def expand_videos(paths: list[Path]) -> list[Path]:
    """Files as given, folders -> their video files (recursive through symlinked folders, sorted, hidden
    and macOS ``._*`` files skipped, as ``files.walk`` lists a release); one line per problem."""
    from abawkit.files import walk
    from abawkit.video.media import VIDEO_EXTS

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
    stems: dict[str, Path] = {}
    for v in out:
        if v.stem in stems and stems[v.stem].resolve() != v.resolve():
            raise AbawError(f"{v} and {stems[v.stem]} would share the output folder predict/{v.stem}: rename one")
        stems[v.stem] = v
    return list(dict.fromkeys(out))


def run(videos: list[Path] | Path, workdir: Path, cfg: PredictConfig, force: bool = False,
        strict: bool = False) -> list[Path]:
    """Predict every frame of each video (finished ones skipped); returns the CSV paths written.

    ``strict``: a video that is cut short or damaged is an error (exit code 1), not a warning."""
    from abawkit.video.media import FaceDetector
    from abawkit.workspace.stage import StageDone

    check(cfg)
    todo = expand_videos([videos] if isinstance(videos, (str, Path)) else list(videos))
    workdir, device = Path(workdir), resolve_device(cfg.device)
    if cfg.threads > 0:
        import torch

        torch.set_num_threads(cfg.threads)
    models = Models(workdir, cfg, device)
    for t in cfg.tasks:  # fail on a missing model before any video is read
        for fold in models.folds(t):
            _stage_dir(workdir, f"{'tmf' if cfg.model == 'tmf' else 'finetune'}/{t}/fold{fold}",
                       f"abaw {'train tmf' if cfg.model == 'tmf' else 'finetune'} --task {t} --fold {fold}")
    detector = FaceDetector(cfg.detector, device=str(device), min_face=cfg.min_face)
    written = []
    for i, video in enumerate(todo, 1):
        console.print(f"[bold]\\[{i}/{len(todo)}][/] {video}", highlight=False, soft_wrap=True)
        try:
            written.append(run_one(video, models, detector, force, strict))
        except StageDone as done:
            console.print(f"[yellow]skip:[/] {done}", soft_wrap=True)
    return written


def run_one(video: Path, models: Models, detector, force: bool = False, strict: bool = False) -> Path:
    """One video -> ``predict/<stem>/``; returns the CSV path."""
    from abawkit.io import write_text
    from abawkit.workspace.stage import stage

    cfg, workdir = models.cfg, models.workdir
    models.per_video.clear()
    models.clock.clear()
    with stage(workdir, f"predict/{video.stem}", cfg, seed=cfg.seed, force=force) as run_:
        run_.add_input("video", video)
        t0 = time.perf_counter()
        clip = prepare(video, run_.dir, cfg, detector, strict)
        df = predict_table(models, clip)
        clip.timings["encode"] = models.clock.get("encode", 0.0)
        clip.timings["temporal"] = clip.timings.pop("models", 0.0) - clip.timings["encode"]
        t1 = time.perf_counter()
        write_text(run_.add_output("predictions.csv"), df.to_csv(index=False, float_format="%.4f"))
        _timeline(run_.add_output("timeline.png"), df)
        clip.timings["write"] = time.perf_counter() - t1
        clip.timings["total"] = time.perf_counter() - t0
        n_face = int(len(np.unique(clip.frame)))
        run_.metrics = {"frames": clip.n_frames, "frames_with_face": n_face, "faces": int(len(np.unique(clip.face_id))),
                        "audio": clip.wav is not None, "stopped": clip.stopped, "seconds": float(clip.times[-1] - clip.times[0] + 1 / clip.fps)
                        if clip.n_frames else 0.0, "timings": {k: round(v, 3) for k, v in clip.timings.items()}}
        out = run_.final_dir
    _summary(df, n_face, clip.n_frames)
    console.print(f"wrote {out / 'predictions.csv'} and {out / 'timeline.png'}")
    return out / "predictions.csv"


def _summary(df: pd.DataFrame, n_face: int, n_frames: int) -> None:
    faces = df[df["face"] == 1]
    rows = [("frames with a face", f"{n_face}/{n_frames} ({n_face / max(n_frames, 1):.0%})")]
    if "face_id" in df and len(faces):
        rows.append(("faces tracked", str(faces["face_id"].nunique())))
    if "expression" in df and faces["expression"].notna().any():
        top = faces["expression"].value_counts()
        rows.append(("expression (most frequent)", f"{top.index[0]} ({top.iloc[0]}/{len(faces)} face rows)"))
    for col in ("valence", "arousal"):
        if col in df and faces[col].notna().any():
            rows.append((f"mean {col}", f"{faces[col].mean():+.3f}"))
    au = [c for c in df.columns if c.startswith("AU")]
    if au and len(faces):
        rates = faces[au].astype(float).mean().sort_values(ascending=False)
        rows.append(("most active AUs", ", ".join(f"{k} {v:.0%}" for k, v in rates.head(3).items())))
    console.print(table("prediction summary", ["what", "value"], rows))


def _timeline(path: Path, df: pd.DataFrame) -> None:
    """Valence/arousal lines, expression track and AU raster over time; gaps where there is no face.

    With several faces, the one seen in the most frames is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from abawkit.io import atomic_path
    from abawkit.labels import AU_NAMES, EXPR_NAMES

    if "face_id" in df and df["face_id"].notna().any():
        main = df["face_id"].value_counts().index[0]
        df = df[(df["face_id"] == main) | df["face_id"].isna()].drop_duplicates("frame")
    fig, axes = plt.subplots(3, 1, figsize=(10, 6), sharex=True)
    t = df["time"].to_numpy()
    for col, color in (("valence", "#C44E52"), ("arousal", "#4C72B0")):
        if col in df:
            axes[0].plot(t, df[col].to_numpy(np.float64), color=color, label=col)  # NaN -> gap
    axes[0].set_ylim(-1, 1)
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
