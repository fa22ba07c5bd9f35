"""``abaw predict`` speed: seconds of video per wall-clock second, and where the time goes.

Writes a test video per size (scikit-image's astronaut face drifting across a grey frame, H.264,
30 fps, AAC audio), runs the predict stage with the models of a workspace trained by ``abaw demo``,
and prints, per size, the real-time factor and the share of decode / detect / crop / audio /
encode (image encoder) / temporal model / write. The reference row runs the detector on every
frame at full resolution (what predict did before detection went to downscaled frames every Nth
frame); ``ratio`` is the speed-up over it.
Run: ``.venv/bin/python benchmarks/bench_predict.py --workdir /work/demo-ws [--seconds 10] [--device cpu]``;
``--videos A.mp4 B.mov`` times those videos instead (no reference).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from abawkit.stages.predict import PredictConfig, run
from abawkit.workspace.stage import MANIFEST

SIZES = ((640, 360), (1280, 720))
SHARES = ("decode", "detect", "crop", "audio", "encode", "temporal", "write")


def make_video(path: Path, w: int, h: int, seconds: float, fps: int = 30) -> Path:
    """H.264 + AAC: a real face (the astronaut photo) drifting and zooming slowly; streamed, any length."""
    import av
    import cv2
    from skimage import data

    face = data.astronaut()  # [512, 512, 3]
    bg = np.full((h, w, 3), 100, np.uint8)
    with av.open(str(path), "w") as box:
        vs = box.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "veryfast"}
        aus = box.add_stream("aac", rate=48000)
        aus.layout = "mono"
        for i in range(int(seconds * fps)):
            side = int(h * (0.55 + 0.1 * np.sin(i / 90)))
            x = int((w - side) / 2 + (w - side) / 3 * np.sin(i / 60))
            img = bg.copy()
            img[(h - side) // 2:(h - side) // 2 + side, x:x + side] = cv2.resize(face, (side, side))
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                box.mux(pkt)
        tone = (0.1 * np.sin(2 * np.pi * 200 * np.arange(int(seconds * 48000)) / 48000)).astype(np.float32)
        for k in range(0, len(tone), 48000):
            af = av.AudioFrame.from_ndarray(tone[None, k:k + 48000], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, k, Fraction(1, 48000)
            for pkt in aus.encode(af):
                box.mux(pkt)
        for stream in (vs, aus):
            for pkt in stream.encode(None):
                box.mux(pkt)
    return path


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed_run(video: Path, workdir: Path, cfg: PredictConfig) -> dict:
    """Wall and CPU seconds and the stage's own per-step timings for one video.

    On a machine shared with other work, wall time measures the neighbours too: the CPU seconds
    (divided by the cores used) bound what the same run takes alone."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    run([video], workdir, cfg, force=True)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    metrics = json.loads((workdir / "predict" / video.stem / MANIFEST).read_text())["metrics"]
    return {"wall": wall, "cpu": cpu, "video_s": metrics["seconds"], "timings": metrics["timings"],
            "faces": metrics["frames_with_face"], "frames": metrics["frames"]}


def row(name: str, r: dict, ref: dict | None) -> str:
    tm = r["timings"]
    total = sum(tm.get(k, 0.0) for k in SHARES) or 1.0
    shares = " ".join(f"{k} {tm.get(k, 0.0) / total:4.0%}" for k in SHARES)
    speed = r["video_s"] / r["wall"]
    ratio = f"{speed / (ref['video_s'] / ref['wall']):5.2f}x" if ref else "    -"
    return (f"{name:<26} {r['video_s']:6.1f} s video {r['wall']:7.1f} s wall  {speed:5.2f}x real time  "
            f"{r['cpu']:7.1f} CPU s ({r['video_s'] / r['cpu']:5.2f} video s per CPU s)  ratio {ratio}  "
            f"faces {r['faces']}/{r['frames']}  | {shares}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True, help="workspace trained by `abaw demo`")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="tmf")
    ap.add_argument("--every", type=int, default=PredictConfig.detect_every)
    ap.add_argument("--no-reference", action="store_true", help="skip the detect-every-frame reference")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--videos", type=Path, nargs="*", default=[], help="time these videos instead of the synthetic ones")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cfg = PredictConfig(device=args.device, model=args.model, detect_every=args.every)
    ref_cfg = dataclasses.replace(cfg, detect_every=1, detect_size=100_000, min_face=20)
    with tempfile.TemporaryDirectory() as tmp:
        timed_run(make_video(Path(tmp) / "warmup.mp4", 320, 180, 1.0), args.workdir, cfg)  # imports, model loads
        for video in args.videos:
            print(row(video.name, timed_run(video, args.workdir, cfg), None), flush=True)
        if args.videos:
            return
        for w, h in SIZES:
            video = make_video(Path(tmp) / f"bench_{w}x{h}.mp4", w, h, args.seconds)
            new = timed_run(video, args.workdir, cfg)
            ref = None if args.no_reference else timed_run(video, args.workdir, ref_cfg)
            print(row(f"{w}x{h} every {cfg.detect_every}, {cfg.detect_size}px", new, ref), flush=True)
            if ref:
                print(row(f"{w}x{h} reference", ref, None), flush=True)


if __name__ == "__main__":
    main()
