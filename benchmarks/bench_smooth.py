"""Smoothing-policy search: abawkit vs the straightforward reference, on AU-sized data.

    .venv/bin/python benchmarks/bench_smooth.py [--videos 300] [--frames 1500] [--jobs 2] [--full-reference]

Data: 300 videos x 1500 frames x 12 AUs (450k frames), temporally smooth labels, noisy probabilities.
Grid: recipes/abaw5/smooth.toml (AU: none + 3 filters x 11 settings, 17 thresholds per AU).
abawkit runs the full grid. The reference (per-video scipy filter in a Python loop + sklearn
``f1_score`` per AU and threshold) needs many minutes for the full grid, so by default it runs on a
subset: "none" plus the paper's settings (median 10, mean 10, gaussian 5) and abawkit is timed on the
same subset for the like-for-like speed-up; ``--full-reference`` compares on the full grid instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from abawkit import postprocess as pp  # noqa: E402
from abawkit.config import load_config  # noqa: E402
from abawkit.labels import task  # noqa: E402
from abawkit.stages.smooth import SmoothConfig  # noqa: E402

PAPER_SUBSET = {"median": (10,), "mean": (10,), "gaussian": (5.0,)}


def make_data(n_videos: int, n_frames: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per video: probabilities [T, 12] and labels [T, 12] (segments of 20..200 frames, 2% unannotated)."""
    rng = np.random.default_rng(seed)
    probs, labels = [], []
    for _ in range(n_videos):
        lab = np.empty((n_frames, 12))
        for c in range(12):
            cuts = np.cumsum(rng.integers(20, 200, size=n_frames // 20))
            seg = np.searchsorted(cuts, np.arange(n_frames), side="right")
            lab[:, c] = (rng.random(seg.max() + 1) < 0.3)[seg]
        lab[rng.random(n_frames) < 0.02] = -1
        probs.append(np.clip(0.25 + 0.5 * lab.clip(0) + rng.normal(0, 0.35, lab.shape), 0, 1))
        labels.append(lab)
    return probs, labels


def to_search_data(probs: list[np.ndarray], labels: list[np.ndarray]) -> pp.SearchData:
    x = np.ascontiguousarray(np.concatenate(probs).T)  # [12, N]
    lab = np.concatenate(labels)
    bounds = np.concatenate([[0], np.cumsum([len(p) for p in probs])])
    labelled = np.flatnonzero((lab >= 0).any(axis=1))
    return pp.SearchData(task("au"), x, bounds, labelled, lab[labelled])


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def same(a: list[dict], b: list[dict]) -> bool:
    key = lambda r: (r["filter"], r["param"], r["score"], r["thresholds"])  # noqa: E731
    return [key(r) for r in a] == [key(r) for r in b]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=300)
    ap.add_argument("--frames", type=int, default=1500)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--full-reference", action="store_true", help="run the reference on the full grid (slow)")
    args = ap.parse_args()

    cfg = load_config(SmoothConfig, "smooth", "abaw5")
    full = {"median": cfg.au.median, "mean": cfg.au.mean, "gaussian": cfg.au.gaussian}
    thr = cfg.thresholds
    probs, labels = make_data(args.videos, args.frames)
    data = to_search_data(probs, labels)
    n_full = len(pp.grid_settings(full))
    print(f"data: {args.videos} videos x {args.frames} frames x 12 AUs = {data.x.shape[1]} frames; "
          f"full grid {n_full} settings x {len(thr)} thresholds per AU; jobs={args.jobs}")

    fast_full, t_fast_full = timed(lambda: pp.search(data, full, thr, jobs=args.jobs))
    print(f"abawkit full grid ({n_full} settings): {t_fast_full:.2f} s; "
          f"best {pp.rank(fast_full)[0]['filter']} {pp.rank(fast_full)[0]['param']}")

    grid = full if args.full_reference else PAPER_SUBSET
    n = len(pp.grid_settings(grid))
    label = "full grid" if args.full_reference else f"subset: none + paper settings {PAPER_SUBSET}"
    ref, t_ref = timed(lambda: pp.reference_search(probs, labels, "au", grid, thr))
    fast, t_fast = timed(lambda: pp.search(data, grid, thr, jobs=1 if n < 8 else args.jobs))
    if not args.full_reference:  # the full-grid run must agree with the subset run on shared settings
        subset_keys = {(r["filter"], r["param"]) for r in ref}
        fast_from_full = [r for r in fast_full if (r["filter"], r["param"]) in subset_keys]
        assert same(fast_from_full, fast), "full-grid results differ from subset results"
    equal = same(ref, fast)
    print(f"like-for-like on the {label} ({n} settings):")
    print(f"  reference time: {t_ref:.2f} s")
    print(f"  abawkit time:   {t_fast:.2f} s")
    print(f"  speed-up:       {t_ref / t_fast:.1f}x")
    if not args.full_reference:
        est = t_ref / n * n_full
        print(f"  reference full grid (extrapolated {n_full}/{n}): ~{est:.0f} s vs abawkit {t_fast_full:.2f} s "
              f"-> ~{est / t_fast_full:.0f}x")
    print(f"scores equal: {equal}")
    if not equal or t_ref / t_fast < 10:
        sys.exit(1)


if __name__ == "__main__":
    main()
