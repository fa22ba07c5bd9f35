"""``abaw predict`` over the corpus of real-world video forms (``tests/corpus.py``): one table row per clip.

Writes the corpus (PyAV), builds the tests' tiny trained workspace unless ``--workdir`` names one (a micro
ViT on 16 px crops + filter banks, TMF for EXPR: the models cost little, so decoding and face detection
are most of the time), runs the predict stage on every clip and prints a Markdown table: clip,
container/codecs, frames, frames with a face, the first frame's timestamp in the file and in the CSV,
whether the audio rows line up with the frames (the clip's 1 kHz beep lands on the frames it was written
under), and predict's CPU seconds (user + system of this process) per second of video.
Run: ``.venv/bin/python benchmarks/bench_corpus.py [--workdir WS --tasks expr]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from corpus import BEEP, write_corpus  # noqa: E402  (tests/ holds the corpus writer)

from abawkit.stages.predict import PredictConfig, run  # noqa: E402
from abawkit.workspace.stage import MANIFEST  # noqa: E402


def cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def tiny_workspace(root: Path) -> Path:
    """The tests' workspace (``test_corpus.workspace``): prep, vision + fbank features, TMF for EXPR."""
    from test_corpus import FAST
    from test_tmf import make_encoder, make_prep
    from typer.testing import CliRunner

    from abawkit.cli import app

    work, enc = make_prep(root / "w"), make_encoder(root / "enc.pt")
    for args in (["extract", "vision", "--checkpoint", str(enc), "--set", "vision.workers=0"],
                 ["extract", "audio", "--model", "fbank"],
                 ["train", "tmf", "--task", "expr", "--features", "mae,fbank", *FAST]):
        res = CliRunner().invoke(app, [*args, "-w", str(work)])
        if res.exit_code:
            raise SystemExit(res.output)
    return work


def first_pts(path: Path) -> float:
    import av

    with av.open(str(path)) as box:
        for frame in box.decode(video=0):
            return float(frame.time or 0.0)
    return 0.0


def audio_aligned(out: Path, times: np.ndarray, fps: float) -> str:
    """yes / no / - (no audio): the WAV predict used, as filter banks at the CSV's frame times."""
    from abawkit.features.audio import Fbank, extract_frames

    wav = out / "audio.wav"
    if not wav.is_file() or len(times) < 2:
        return "-"
    feats = extract_frames(Fbank(), wav, len(times), fps, times)
    energy = feats[:, :-1].mean(axis=1)
    loud = energy > (energy.min() + energy.max()) / 2
    inside = (times >= BEEP[0] + 0.04) & (times < BEEP[1] - 0.04)
    outside = (times < BEEP[0] - 0.04) | (times >= BEEP[1] + 0.04)
    return "yes" if loud[inside].all() and not loud[outside].any() and feats[:-1, -1].all() else "no"


def main() -> None:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="a trained workspace (default: build the tests' tiny one)")
    ap.add_argument("--tasks", default="expr", help="comma-separated tasks the workspace has models for")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    cfg = PredictConfig(tasks=tuple(args.tasks.split(",")), threads=args.threads, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or tiny_workspace(Path(tmp) / "ws")
        clips = write_corpus(Path(tmp) / "corpus")
        run([clips["landscape_h264.mp4"][1]], work, cfg, force=True)  # warm-up: imports, model loads
        print("| clip | container / codecs | frames | frames with a face | first frame: file pts / CSV (s) "
              "| audio rows aligned | predict CPU s per video s |")
        print("|---|---|---|---|---|---|---|")
        for name, (spec, path) in clips.items():
            c0 = cpu_seconds()
            run([path], work, cfg, force=True)
            cpu = cpu_seconds() - c0
            out = work / "predict" / path.stem
            df = pd.read_csv(out / "predictions.csv")
            seconds = json.loads((out / MANIFEST).read_text())["metrics"]["seconds"]
            times = df["time"].to_numpy(np.float64)
            print(f"| {name} | {spec.codecs} | {len(df)} | {int(df['face'].sum())} | {first_pts(path):.3f} / "
                  f"{times[0]:.3f} | {audio_aligned(out, times, spec.fps)} | {cpu / seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
