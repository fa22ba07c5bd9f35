"""Exact track edges: what looking at the skipped frames around each track edge costs, and what it finds.

Runs pass 1 + linking (``facetrack.find_faces``) with predict's detection settings (MTCNN on the CPU,
every 5th frame at 640 px, faces of 40 px, bridges of 15 frames) on each video three ways: the sparse
cadence alone (``exact_edges`` off, the old path), with edge refinement (the default), and the detector on
every frame (the reference for where a face really starts and ends). Prints, per video and way: frames
with a face, first and last face frame, frames shown to the detector (cadence + edge windows), detector
calls, seconds in the detector, CPU seconds of the pass, and the most decoded frames held at once.
Synthetic clips (tests/videos.py: the astronaut photo entering and leaving between looks) are made in a
temporary folder; ``--videos`` adds real ones.
Run: ``.venv/bin/python benchmarks/bench_track_edges.py [--videos A.mov B.mp4] [--no-reference]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from abawkit.video.facetrack import TrackSettings, find_faces
from abawkit.video.media import FaceDetector

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from videos import clip  # noqa: E402  (the test suite's clip writer)

SYNTHETIC = {  # name -> scenes at 15 fps, 320x240; faces enter and leave off the 5-frame cadence
    "enters.mp4": [("sky", 7), ("face", 33)],
    "leaves.mp4": [("face", 33), ("sky", 7)],
    "in-out x4.mp4": [("sky", 3), ("face", 19), ("cartoon", 17)] * 4,
}


class Counting:
    """The detector, counting the frames it is shown and its calls."""

    def __init__(self, det: FaceDetector) -> None:
        self.det, self.min_face, self.frames, self.calls = det, det.min_face, 0, 0

    def detect_faces(self, frames, min_face=None):
        self.frames, self.calls = self.frames + len(frames), self.calls + 1
        return self.det.detect_faces(frames, min_face)


def measure(video: Path, det: FaceDetector, every: int, exact: bool) -> dict:
    counting, clock = Counting(det), {}
    s = TrackSettings(every=every, detect_size=640, max_gap=15, min_score=0.9, exact_edges=exact)
    t0 = time.process_time()
    scan, rows = find_faces(video, counting, s, clock=clock)
    cpu = time.process_time() - t0
    frames = np.unique(rows.frame)
    return {"frames": scan.n_frames, "face": len(frames), "first": int(frames[0]) if len(frames) else -1,
            "last": int(frames[-1]) if len(frames) else -1, "shown": counting.frames, "refined": scan.refined,
            "calls": counting.calls, "detect_s": clock.get("detect", 0.0), "cpu_s": cpu, "held": scan.peak_held}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", nargs="*", type=Path, default=[])
    ap.add_argument("--no-reference", action="store_true", help="skip the detector-on-every-frame runs")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    det = FaceDetector("mtcnn", device="cpu", min_face=40)
    ways = [("cadence 5", 5, False), ("cadence 5 + edges", 5, True)]
    ways += [] if args.no_reference else [("every frame", 1, False)]
    print("| video | way | frames | with a face | first..last | detector frames (edge) | calls | detect s | CPU s | held |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        videos = [clip(Path(tmp) / name, scenes) for name, scenes in SYNTHETIC.items()] + list(args.videos)
        for video in videos:
            for way, every, exact in ways:
                r = measure(video, det, every, exact)
                print(f"| {video.name} | {way} | {r['frames']} | {r['face']} | {r['first']}..{r['last']} | {r['shown']} "
                      f"({r['refined']}) | {r['calls']} | {r['detect_s']:.2f} | {r['cpu_s']:.2f} | {r['held']} |", flush=True)


if __name__ == "__main__":
    main()
