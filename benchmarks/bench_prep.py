"""Annotation indexing speed: abawkit's bulk reader vs a plain per-line Python reader.

Builds a full-size annotation tree (600 videos, ~3M lines over the three challenges, no images)
(600 annotation files per challenge) in a temp folder, then times ``data.release.read_annotations`` (what ``abaw prep`` runs) against
a line-by-line ``split(",")`` + ``float()`` reader on the same files, and checks they agree.
Run: ``.venv/bin/python benchmarks/bench_prep.py [--videos 600 --frames 5000]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from abawkit.labels import TASKS
from abawkit.release.annotations import find_annotation_files, read_annotations


def build_tree(root: Path, videos: int, frames: int, seed: int = 0) -> int:
    """Write ``videos`` annotation files per challenge (split 80/20 train/val); returns total lines."""
    rng = np.random.default_rng(seed)
    blocks = {  # one shared body per task, to keep building fast
        "au": "\n".join(",".join(map(str, r)) for r in rng.integers(-1, 2, size=(frames, 12)).tolist()),
        "expr": "\n".join(map(str, rng.integers(-1, 8, size=frames).tolist())),
        "va": "\n".join(f"{v:.3f},{a:.3f}" for v, a in rng.uniform(-1, 1, size=(frames, 2)).tolist()),
    }
    for t, spec in TASKS.items():
        for sub in ("Train_Set", "Validation_Set"):
            (root / spec.challenge / sub).mkdir(parents=True)
        text = ",".join(spec.names) + "\n" + blocks[t] + "\n"
        for i in range(videos // 3):
            sub = "Train_Set" if i % 5 else "Validation_Set"
            (root / spec.challenge / sub / f"video{i:04d}.txt").write_text(text)
    return 3 * (videos // 3) * frames


def naive(items: list) -> np.ndarray:
    """Per-line Python parser: the reference the bulk reader is compared with."""
    rows = []
    for _, _, path in items:
        with open(path) as f:
            next(f)
            for line in f:
                rows.append([float(x) for x in line.strip().split(",")])
    return np.asarray(rows, np.float32)


def best_of(repeat: int, fn):
    """(fastest wall time of ``repeat`` calls, last result): one-off timings here vary by ~30%."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=1800, help="annotation files in total (3 challenges)")
    ap.add_argument("--frames", type=int, default=1700, help="lines per file")
    ap.add_argument("--repeat", type=int, default=3, help="time each reader this many times, keep the fastest")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        lines = build_tree(root, args.videos, args.frames)
        print(f"built {args.videos} files, {lines:,} lines in {time.perf_counter() - t0:.1f} s")
        files = find_annotation_files(root)
        t_fast, fast = best_of(args.repeat, lambda: {t: read_annotations(TASKS[t], items) for t, items in files.items()})
        t_slow, slow = best_of(args.repeat, lambda: {t: naive(items) for t, items in files.items()})
        for t in files:
            np.testing.assert_array_equal(fast[t].values, slow[t])
    print(f"abawkit bulk reader: {t_fast:.2f} s   per-line Python: {t_slow:.2f} s   speed-up x{t_slow / t_fast:.1f}"
          f"   (best of {args.repeat}, identical arrays)")


if __name__ == "__main__":
    main()
