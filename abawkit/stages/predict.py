"""``abaw predict VIDEO``: per-frame affect for any video with the models of a workspace.

Decodes the video, detects and crops the face in every frame (MTCNN, Haar fallback), extracts the
audio track, runs the trained models of ``<workdir>`` (TMF with its own feature extractors, or the
fine-tuned frame model), smooths with the saved policy of each task, and writes
``<workdir>/predict/<video>/``: ``predictions.csv`` (frame, time, face, AUs, expression and its
probabilities, valence, arousal), ``timeline.png``, and the crops and WAV it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.console import console, table
from abawkit.errors import AbawError
from abawkit.runs import MANIFEST, read_json


@dataclass(frozen=True)
class PredictConfig:
    seed: int = 0
    model: str = "tmf"  # tmf | frame
    fold: int = 0  # which fold's models to use
    tasks: tuple[str, ...] = ("au", "expr", "va")
    size: int = 112  # face crop side
    detector: str = "mtcnn"  # mtcnn | haar
    smooth: bool = True  # apply <workdir>/smooth/<task>/policy.json when present


@dataclass
class Clip:
    """The video as the models see it: crops per frame, audio, frame times."""

    path: Path
    n_frames: int
    fps: float
    crops: list[str]  # one jpg per frame
    wav: Path | None


def prepare(video: Path, folder: Path, cfg: PredictConfig) -> Clip:
    """Crop faces and extract audio into ``folder``."""
    from abawkit.data.media import FaceDetector, crop_video, extract_audio, probe_video

    info = probe_video(video)
    console.print(f"{video.name}: {info.n_frames} frames at {info.fps:.2f} fps, {info.width}x{info.height}")
    counts = crop_video(video, folder / "crops", cfg.size, FaceDetector(cfg.detector))
    console.print(f"faces found in {counts['detected']}/{counts['frames']} frames")
    wav = folder / "audio.wav"
    has_audio = info.has_audio and extract_audio(video, wav)
    crops = [str(folder / "crops" / f"{k:05d}.jpg") for k in range(1, counts["frames"] + 1)]
    return Clip(video, counts["frames"], info.fps, crops, wav if has_audio else None)


def frame_model_values(workdir: Path, task_name: str, fold: int, clip: Clip) -> np.ndarray:
    """Activated per-frame outputs [n, C] of ``finetune/<task>/fold<N>/best.pt``."""
    import torch

    from abawkit.data.faces import FaceCrops, eval_loader
    from abawkit.models.checkpoints import load_frame_model
    from abawkit.stages.finetune import predict

    ckpt = _stage_dir(workdir, f"finetune/{task_name}/fold{fold}", f"abaw finetune --task {task_name} --fold {fold}")
    model, _ = load_frame_model(ckpt / "best.pt")
    loader = eval_loader(FaceCrops(clip.crops, model.arch.img_size, False), 64)
    return predict(model, loader, task_name, torch.device("cpu"), False)


def feature_part(workdir: Path, store_name: str, clip: Clip) -> np.ndarray:
    """Re-run the extractor that made ``features/<store_name>`` on this clip: [n, dim]."""
    from abawkit.features.audio import build_audio_extractor, extract_frames
    from abawkit.features.store import extraction_precision
    from abawkit.features.vision import VisionSettings, encode_crops
    from abawkit.stages.extract import load_vision_encoder

    d = _stage_dir(workdir, f"features/{store_name}", "abaw extract")
    info, manifest = read_json(d / "store.json"), read_json(d / MANIFEST)
    s = info["settings"]
    if "model" in s:  # audio
        ckpt = manifest["inputs"].get("checkpoint", {}).get("path")
        extraction_precision(info, d / "store.json", supported=("fp32",))  # audio extractors run in fp32
        ext = build_audio_extractor(s["model"], ckpt, s.get("layer") or -1, "cpu", **{k: v for k, v in s.items()
                                                                                     if k in ("n_mels", "hop_s")})
        return extract_frames(ext, clip.wav, clip.n_frames, clip.fps)
    ckpt = manifest["inputs"].get("checkpoint", {}).get("path")
    if not ckpt or not Path(ckpt).exists():  # a file, or a downloaded folder (transformers, timm hub)
        raise AbawError(f"{d}/{MANIFEST}: no encoder checkpoint recorded; re-run `abaw extract vision --force`")
    encoder, arch, _ = load_vision_encoder(Path(ckpt), s.get("arch", ""), int(s["img_size"]))
    vs = VisionSettings(img_size=int(s["img_size"]), pool=s["pool"], batch_size=64, workers=0,
                        precision=extraction_precision(info, d / "store.json"))
    import torch

    return np.concatenate(list(encode_crops(encoder, clip.crops, vs, torch.device("cpu"))))


def tmf_values(workdir: Path, task_name: str, fold: int, clip: Clip) -> np.ndarray:
    """Activated per-frame outputs [n, C] of ``tmf/<task>/fold<N>``, features re-extracted for the clip."""
    import torch

    from abawkit.config import from_dict
    from abawkit.data.clips import VideoData
    from abawkit.models.checkpoints import read_checkpoint
    from abawkit.stages.tmf import TMFConfig, build_model, predict

    d = _stage_dir(workdir, f"tmf/{task_name}/fold{fold}", f"abaw train tmf --task {task_name} --fold {fold}")
    cfg = from_dict(TMFConfig, read_json(d / MANIFEST)["config"], str(d / MANIFEST))
    ckpt = read_checkpoint(d / "best.pt")
    parts = tuple(feature_part(workdir, name, clip).astype(np.float32) for name in ckpt["features"])
    dims = [p.shape[1] for p in parts]
    if sum(dims) != ckpt["arch"]["in_dim"]:
        raise AbawError(f"{d}: trained on {ckpt['arch']['in_dim']} feature dims, but features/"
                        f"{{{','.join(ckpt['features'])}}} now give {'+'.join(map(str, dims))} (re-extracted with "
                        f"another extractor?): re-run `abaw train tmf --task {task_name} --fold {fold} --force`")
    model = build_model(cfg, sum(dims))
    model.load_state_dict(ckpt["model"])
    data = [VideoData(clip.path.stem, parts, np.zeros((clip.n_frames, 1), np.float32))]
    return predict(model.eval(), data, cfg, torch.device("cpu"))[0]


def _stage_dir(workdir: Path, name: str, hint: str) -> Path:
    from abawkit.runs import load_stage

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


def to_table(clip: Clip, faces: np.ndarray, results: dict[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """The per-frame CSV: frame, time, face, then each task's columns."""
    from abawkit.labels import AU_NAMES, EXPR_NAMES, VA_NAMES

    df = pd.DataFrame({"frame": np.arange(1, clip.n_frames + 1), "time": np.arange(clip.n_frames) / clip.fps,
                       "face": faces.astype(int)})
    if "au" in results:
        sm, dec = results["au"]
        for i, n in enumerate(AU_NAMES):
            df[n], df[f"p_{n}"] = dec[:, i], sm[:, i].round(4)
    if "expr" in results:
        sm, dec = results["expr"]
        df["expression"] = [EXPR_NAMES[i] for i in dec[:, 0]]
        for i, n in enumerate(EXPR_NAMES):
            df[f"p_{n}"] = sm[:, i].round(4)
    if "va" in results:
        _, dec = results["va"]
        for i, n in enumerate(VA_NAMES):
            df[n] = dec[:, i].round(4)
    return df


def run(video: Path, workdir: Path, cfg: PredictConfig, force: bool = False) -> Path:
    """Predict every frame of ``video``; returns the CSV path."""
    from abawkit.runs import stage, write_text

    video, workdir = Path(video), Path(workdir)
    if not video.is_file():
        raise AbawError(f"{video}: video file not found")
    if cfg.model not in ("tmf", "frame"):
        raise AbawError(f"model must be tmf or frame, got {cfg.model!r}")
    with stage(workdir, f"predict/{video.stem}", cfg, seed=cfg.seed, force=force) as run_:
        run_.add_input("video", video)
        clip = prepare(video, run_.dir, cfg)
        faces = _faces(clip)
        results = {}
        for t in cfg.tasks:
            values = tmf_values(workdir, t, cfg.fold, clip) if cfg.model == "tmf" else \
                frame_model_values(workdir, t, cfg.fold, clip)
            results[t] = smooth_and_decide(workdir, t, values, cfg.smooth)
        df = to_table(clip, faces, results)
        write_text(run_.add_output("predictions.csv"), df.to_csv(index=False, float_format="%.4f"))
        _timeline(run_.add_output("timeline.png"), df)
        run_.metrics = {"frames": clip.n_frames, "faces": int(faces.sum()), "audio": clip.wav is not None}
        out = run_.final_dir
    _summary(df)
    console.print(f"wrote {out / 'predictions.csv'} and {out / 'timeline.png'}")
    return out / "predictions.csv"


def _faces(clip: Clip) -> np.ndarray:
    return np.array([Path(c).is_file() for c in clip.crops])


def _summary(df: pd.DataFrame) -> None:
    rows = []
    if "expression" in df:
        top = df["expression"].value_counts()
        rows.append(("expression (most frequent)", f"{top.index[0]} ({top.iloc[0]}/{len(df)} frames)"))
    for col in ("valence", "arousal"):
        if col in df:
            rows.append((f"mean {col}", f"{df[col].mean():+.3f}"))
    au = [c for c in df.columns if c.startswith("AU")]
    if au:
        rates = df[au].mean().sort_values(ascending=False)
        rows.append(("most active AUs", ", ".join(f"{k} {v:.0%}" for k, v in rates.head(3).items())))
    console.print(table("prediction summary", ["what", "value"], rows))


def _timeline(path: Path, df: pd.DataFrame) -> None:
    """Valence/arousal lines, expression track and AU raster over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from abawkit.labels import AU_NAMES, EXPR_NAMES
    from abawkit.runs import atomic_path

    fig, axes = plt.subplots(3, 1, figsize=(10, 6), sharex=True)
    t = df["time"].to_numpy()
    for col, color in (("valence", "#C44E52"), ("arousal", "#4C72B0")):
        if col in df:
            axes[0].plot(t, df[col], color=color, label=col)
    axes[0].set_ylim(-1, 1)
    axes[0].legend(loc="upper right", fontsize=8)
    if "expression" in df:
        axes[1].scatter(t, [EXPR_NAMES.index(e) for e in df["expression"]], s=4, c="k")
        axes[1].set_yticks(range(len(EXPR_NAMES)), EXPR_NAMES, fontsize=7)
    if AU_NAMES[0] in df:
        axes[2].imshow(df[list(AU_NAMES)].to_numpy().T, aspect="auto", cmap="Greys", interpolation="nearest",
                       extent=(t[0], t[-1] if len(t) > 1 else 1, len(AU_NAMES) - 0.5, -0.5))
        axes[2].set_yticks(range(len(AU_NAMES)), AU_NAMES, fontsize=6)
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
