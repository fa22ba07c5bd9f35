"""Filling, smoothing and the policy search: exact equality with the slow reference, and gains."""

import numpy as np
import pandas as pd
import pytest

from abawkit import postprocess as pp
from abawkit.labels import AU_NAMES, EXPR_NAMES, task

SMALL_GRID = {"median": (3, 4, 9), "mean": (2, 5, 10), "gaussian": (0.7, 2.0, 5.0)}
THRESHOLDS = (0.3, 0.5, 0.7)


# ----------------------------------------------------------------------------- shared test data
def _segments(rng, n, values, min_len=20, max_len=120):
    """[n] piecewise-constant series drawing each segment's value from ``values``."""
    out, t = np.empty(n, dtype=np.float64), 0
    while t < n:
        d = int(rng.integers(min_len, max_len))
        out[t:t + d] = rng.choice(values)
        t += d
    return out


def synthetic_frames(n_videos=6, n_frames=(150, 400), seed=0, split="val"):
    """A prep-style frame table with temporally smooth labels (a few frames unannotated)."""
    rng = np.random.default_rng(seed)
    parts = []
    for v in range(n_videos):
        n = int(rng.integers(*n_frames))
        df = pd.DataFrame({"video": f"vid{v:02d}", "frame": np.arange(1, n + 1, dtype=np.int32)})
        for au in AU_NAMES:
            df[au] = _segments(rng, n, [0, 0, 1]).astype(np.int8)
        df["EXPR"] = _segments(rng, n, np.arange(8)).astype(np.int8)
        for dim in ("valence", "arousal"):
            walk = np.cumsum(rng.normal(size=n)) / 8
            df[dim] = np.tanh(walk - walk.mean()).astype(np.float32)
        gap = slice(n // 3, n // 3 + 5)  # unannotated frames
        df.loc[df.index[gap], list(AU_NAMES) + ["EXPR"]] = -1
        df.loc[df.index[gap], ["valence", "arousal"]] = -5
        for t in ("au", "expr", "va"):
            df[f"split_{t}"] = split
        df["fill_frame"] = df["frame"]
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def noisy_predictions(frames, task_name, seed=0, drop=0.05, noise=0.35, face_seed=0):
    """Label-derived predictions with frame-wise noise; ``drop`` of the frames (drawn with
    ``face_seed``, the same for every model by default) have no face."""
    rng = np.random.default_rng(seed)
    spec = task(task_name)
    frames = frames.reset_index(drop=True)
    keep = np.random.default_rng(face_seed).random(len(frames)) >= drop
    keep[frames.groupby("video").head(1).index] = True  # every video keeps one frame
    f = frames[keep].reset_index(drop=True)
    if spec.name == "au":
        y = f[list(AU_NAMES)].to_numpy(np.float64).clip(0, 1)
        vals = np.clip(0.25 + 0.5 * y + rng.normal(0, noise, y.shape), 0, 1)
    elif spec.name == "expr":
        logits = np.eye(8)[f["EXPR"].clip(0, 7)] * 1.5 + rng.normal(0, noise * 3, (len(f), 8))
        vals = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    else:
        y = f[["valence", "arousal"]].to_numpy(np.float64).clip(-1, 1)
        vals = np.clip(y + rng.normal(0, noise, y.shape), -1, 1)
    out = f[["video", "frame"]].copy()
    for i, col in enumerate(spec.pred_columns):
        out[col] = vals[:, i].astype(np.float32)
    return out


# ----------------------------------------------------------------------------- filling
def test_fill_missing_takes_nearest_frame_ties_to_earlier():
    pred = pd.DataFrame({"video": ["a", "a", "a", "b"], "frame": [2, 5, 9, 3], "v": [2.0, 5.0, 9.0, 30.0]})
    target = pd.DataFrame({"video": ["a"] * 10 + ["b"] * 2, "frame": list(range(1, 11)) + [1, 2]})
    got = pp.fill_missing(pred, target, ["v"])[:, 0]
    assert got.tolist() == [2, 2, 2, 5, 5, 5, 5, 9, 9, 9, 30, 30]  # frame 7: 5 and 9 tie -> 5


def test_fill_missing_rejects_video_without_predictions():
    pred = pd.DataFrame({"video": ["a"], "frame": [1], "v": [0.0]})
    target = pd.DataFrame({"video": ["a", "zz"], "frame": [1, 1]})
    with pytest.raises(pp.AbawError, match="zz"):
        pp.fill_missing(pred, target, ["v"])


# ----------------------------------------------------------------------------- smoothing
@pytest.mark.parametrize("filt,param", [("median", 1), ("median", 4), ("median", 25), ("mean", 6), ("mean", 51),
                                        ("gaussian", 0.5), ("gaussian", 5.0), ("gaussian", 25.0)])
def test_batched_smoothing_is_bit_identical_to_per_video(filt, param):
    rng = np.random.default_rng(3)
    lengths = [1, 2, 7, 60, 300]
    x = rng.random((3, sum(lengths)))
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    got = pp.smooth(x, bounds, filt, param)
    want = np.concatenate([pp.smooth_video(x[:, s:e], filt, param) for s, e in zip(bounds[:-1], bounds[1:])], 1)
    assert np.array_equal(got, want)


def test_smoothing_stays_inside_each_video():
    x = np.r_[np.zeros(50), np.ones(50)][None]
    got = pp.smooth(x, np.array([0, 50, 100]), "gaussian", 10.0)
    assert np.array_equal(got, x)


def test_unknown_filter_is_an_error():
    with pytest.raises(pp.AbawError, match="unknown filter"):
        pp.smooth(np.zeros((1, 4)), np.array([0, 4]), "bilateral", 3)


# ----------------------------------------------------------------------------- search
@pytest.mark.parametrize("task_name", ["au", "expr", "va"])
def test_search_equals_reference_exactly(task_name):
    spec = task(task_name)
    frames = synthetic_frames(n_videos=4, seed=5)
    pred = noisy_predictions(frames, task_name, seed=6)
    data = pp.search_data(pred, frames, spec)
    got = pp.search(data, SMALL_GRID, THRESHOLDS)
    full = frames.sort_values(["video", "frame"]).reset_index(drop=True)
    filled = pp.fill_missing(pred, full, spec.pred_columns)
    groups = full.groupby("video", sort=False).indices.values()
    labels = full[list(spec.label_columns)].to_numpy(np.float64)
    want = pp.reference_search([filled[g] for g in groups], [labels[g] for g in groups], task_name,
                               SMALL_GRID, THRESHOLDS)
    assert [(r["filter"], r["param"]) for r in got] == [(r["filter"], r["param"]) for r in want]
    assert [r["score"] for r in got] == [r["score"] for r in want]
    assert [r["thresholds"] for r in got] == [r["thresholds"] for r in want]


def test_parallel_search_equals_serial():
    frames = synthetic_frames(n_videos=3, seed=1)
    data = pp.search_data(noisy_predictions(frames, "expr"), frames, task("expr"))
    assert pp.search(data, SMALL_GRID, THRESHOLDS, jobs=2) == pp.search(data, SMALL_GRID, THRESHOLDS, jobs=1)


@pytest.mark.parametrize("task_name", ["au", "expr", "va"])
def test_smoothing_improves_noisy_predictions_of_smooth_labels(task_name):
    frames = synthetic_frames(n_videos=5, seed=11)
    data = pp.search_data(noisy_predictions(frames, task_name, seed=12), frames, task(task_name))
    ranked = pp.rank(pp.search(data, SMALL_GRID, np.arange(1, 10) / 10))
    none = next(r for r in ranked if r["filter"] == "none")
    assert ranked[0]["filter"] != "none"
    assert ranked[0]["score"] > none["score"] + 0.02


def test_policy_roundtrip_and_decisions():
    result = {"filter": "gaussian", "param": 5.0, "score": 0.5, "thresholds": {n: 0.3 for n in AU_NAMES}}
    policy = pp.policy_from(result, "au")
    assert policy["sigma"] == 5.0 and policy["size"] is None and pp.policy_param(policy) == 5.0
    out = pp.decide(np.full((2, 12), 0.35), task("au"), policy)
    assert out.tolist() == [[1] * 12] * 2
    assert pp.decide(np.eye(8)[[3, 7]], task("expr"), None).ravel().tolist() == [3, 7]
    assert pp.decide(np.array([[1.5, -2.0]]), task("va"), None).tolist() == [[1.0, -1.0]]
    assert len(EXPR_NAMES) == 8


@pytest.mark.parametrize("recipe", ["demo", "abaw5"])
def test_recipe_grids_hold_ten_settings_and_the_paper_values(recipe):
    from abawkit.config import load_config
    from abawkit.stages.smooth import SmoothConfig

    cfg = load_config(SmoothConfig, "smooth", recipe)
    paper = {"au": (10, 5.0), "expr": (25, 25.0), "va": (50, 25.0)}  # window, sigma
    for name, (window, sigma) in paper.items():
        grid = getattr(cfg, name)
        assert min(len(grid.median), len(grid.mean), len(grid.gaussian)) >= 10
        assert window in grid.median and window in grid.mean and sigma in grid.gaussian
