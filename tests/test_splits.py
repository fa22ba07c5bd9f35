"""Folds: by video, _left/_right together, stable per seed, rare labels more even than random."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.data.tables import load_prep
from abawkit.release.annotations import source_key
from abawkit.release.splits import fold_counts, imbalance, make_splits

runner = CliRunner()


def _fake_frames(n_videos=60, seed=0):
    """Frame table with heavy-tailed rare-class counts per video (expr only, all train)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_videos):
        n = int(rng.integers(50, 200))
        p = np.array([0.6, *rng.dirichlet([0.3] * 3) * rng.uniform(0, 0.5), 0]) if rng.random() < 0.4 else None
        expr = rng.choice(5, size=n, p=p / p.sum()) if p is not None else np.zeros(n, int)
        name = f"v{i // 2}_left" if i < 10 and i % 2 == 0 else f"v{i // 2}_right" if i < 10 else f"v{i}"
        rows.append(pd.DataFrame({"video": name, "EXPR": expr.astype(np.int8), "AU1": -1, "valence": -5.0}))
    df = pd.concat(rows, ignore_index=True)
    df["split_expr"] = "train"
    df["split_au"] = df["split_va"] = "none"
    return df


def test_folds_by_video_pairs_together_stable():
    frames = _fake_frames()
    s = make_splits(frames, seed=3)
    assert s.groupby("video")["fold"].nunique().max() == 1 and set(s.fold) == {1, 2, 3, 4, 5}
    assert s.assign(src=s.video.map(source_key)).groupby("src")["fold"].nunique().max() == 1
    pd.testing.assert_frame_equal(s, make_splits(frames, seed=3))
    assert not s.equals(make_splits(frames, seed=4))


def test_stratified_beats_random():
    frames = _fake_frames()
    strat = [imbalance(fold_counts(frames, make_splits(frames, seed=k), "expr")) for k in range(5)]
    rand = [imbalance(fold_counts(frames, make_splits(frames, seed=k, method="random"), "expr")) for k in range(5)]
    assert max(strat) < min(rand) and np.mean(strat) < 0.5 * np.mean(rand)


def test_cli_split_reseeds_and_updates_manifest(prep_workspace, tmp_path):
    import shutil

    work = tmp_path / "w"
    shutil.copytree(prep_workspace, work)
    before = load_prep(work).splits
    assert runner.invoke(app, ["split", "--help"]).exit_code == 0
    res = runner.invoke(app, ["split", "-w", str(work), "--seed", "7"])
    assert res.exit_code == 0, res.output
    prep = load_prep(work)
    assert prep.manifest["split"]["config"]["seed"] == 7 and set(prep.splits.video) == set(before.video)
    assert "skip" in runner.invoke(app, ["split", "-w", str(work), "--seed", "7"]).output
    res = runner.invoke(app, ["split", "-w", str(work), "--method", "bogus"])
    assert res.exit_code == 2 and "stratified" in res.output
    assert runner.invoke(app, ["split", "-w", str(tmp_path / "none")]).exit_code == 2
