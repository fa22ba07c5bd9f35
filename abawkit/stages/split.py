"""``abaw split``: (re)compute the cross-validation folds in ``<workdir>/prep/splits.parquet``.

Prep calls ``write_splits`` at its end; ``abaw split`` redoes the folds of a finished prep with
another seed or method, rewrites ``splits.parquet`` atomically and updates prep's manifest (the
output hash and a ``split`` entry with its config), so downstream stages see what they read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class SplitConfig:
    seed: int = 0
    n_folds: int = 5
    method: str = "stratified"  # stratified | random


def write_splits(frames: pd.DataFrame, cfg: SplitConfig, path: Path) -> tuple[pd.DataFrame, dict]:
    """Make the folds, write them to ``path``; return them with a per-task balance report."""
    from abawkit.io import write_parquet
    from abawkit.release.splits import fold_counts, imbalance, make_splits

    splits = make_splits(frames, cfg.n_folds, cfg.seed, cfg.method)
    write_parquet(path, splits, {"seed": str(cfg.seed), "method": cfg.method})
    report = {}
    for t in splits["task"].unique():
        counts = fold_counts(frames, splits, t)
        report[t] = {"imbalance": imbalance(counts), "per_fold": counts.to_dict(orient="index")}
    return splits, report


def show(report: dict) -> None:
    """Per-fold label counts as rich tables."""
    from abawkit.console import console, table

    for t, r in report.items():
        rows = [[f, *c.values()] for f, c in r["per_fold"].items()]
        cols = ["fold", *next(iter(r["per_fold"].values())).keys()] if rows else ["fold"]
        console.print(table(f"{t} folds (imbalance {r['imbalance']:.3f})", cols, rows))


def run(cfg: SplitConfig, workdir: Path, force: bool = False) -> dict:
    """Recompute the folds of an existing prep; a no-op if prep already has folds from this config."""
    from abawkit.config import to_dict
    from abawkit.data.tables import load_prep
    from abawkit.io import write_json
    from abawkit.workspace.fingerprints import sha256_file
    from abawkit.workspace.stage import MANIFEST, StageDone

    prep = load_prep(workdir)
    manifest = {k: v for k, v in prep.manifest.items() if k != "dir"}
    if manifest.get("split", {}).get("config") == to_dict(cfg) and not force:
        raise StageDone(prep.dir / "splits.parquet")
    _, report = write_splits(prep.frames, cfg, prep.dir / "splits.parquet")
    manifest["outputs"]["splits.parquet"] = sha256_file(prep.dir / "splits.parquet")
    manifest["split"] = {"config": to_dict(cfg), "report": report}
    write_json(prep.dir / "split_report.json", report)
    write_json(prep.dir / MANIFEST, manifest)
    show(report)
    return report
