"""``abaw smooth-search``: choose the post-processing policy of a task on validation predictions.

Reads validation prediction files (one per fold, disjoint videos) and the prep labels. Writes the
stage ``<workdir>/smooth/<task>/``: ``policy.json`` (the best filter, its size/sigma and, for AU,
per-AU thresholds), ``ranking.csv`` (every setting, best first) and the manifest. ``abaw submit``
applies the policy to the test predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from abawkit import postprocess as pp
from abawkit.console import console, progress, table
from abawkit.data.tables import load_prep
from abawkit.errors import AbawError
from abawkit.io import write_json
from abawkit.labels import TaskSpec, task
from abawkit.predictions import read_predictions
from abawkit.scoring import hash_inputs
from abawkit.workspace import layout
from abawkit.workspace.stage import stage

__all__ = ["FilterGrid", "SmoothConfig", "SmoothRun", "hash_inputs", "load_val_predictions", "run"]
from abawkit.workspace import identity as ident
from abawkit.workspace.layout import PREP


@dataclass(frozen=True)
class FilterGrid:
    """Settings tried per filter: window sizes (median, mean) and sigmas (gaussian)."""

    median: tuple[int, ...] = ()
    mean: tuple[int, ...] = ()
    gaussian: tuple[float, ...] = ()


@dataclass(frozen=True)
class SmoothConfig:
    seed: int = 0
    jobs: int = 1
    thresholds: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # AU decision thresholds
    au: FilterGrid = field(default_factory=FilterGrid)
    expr: FilterGrid = field(default_factory=FilterGrid)
    va: FilterGrid = field(default_factory=FilterGrid)


@dataclass(frozen=True)
class SmoothRun:
    """What the stage's result depends on: settings, task and the input files' hashes."""

    cfg: SmoothConfig
    task: str
    preds: tuple[str, ...]



def load_val_predictions(paths: Sequence[Path], spec: TaskSpec | str):
    """Concatenate validation prediction files; two files predicting the same video is an error."""
    if not paths:
        raise AbawError("no validation prediction files given (--pred)")
    owner: dict[str, Path] = {}
    parts = []
    for p in paths:
        pred = read_predictions(p, spec)
        for video in pred.df["video"].unique():
            if video in owner:
                raise AbawError(f"{p} and {owner[video]} both predict video {video}; pass disjoint validation folds")
            owner[video] = p
        parts.append(pred.df)
    return pd.concat(parts, ignore_index=True).sort_values(["video", "frame"], kind="stable").reset_index(drop=True)


def _ranking_table(ranked: list[dict], spec: TaskSpec) -> pd.DataFrame:
    rows = [{"rank": i + 1, "filter": r["filter"], "param": r["param"], "score": r["score"], **r["per_class"]}
            for i, r in enumerate(ranked)]
    return pd.DataFrame(rows, columns=["rank", "filter", "param", "score", *spec.names])


def run(workdir: Path, cfg: SmoothConfig, task_name: str, preds: Sequence[Path], force: bool = False) -> dict:
    spec = task(task_name)
    grid = getattr(cfg, spec.name)
    grid_d = {"median": grid.median, "mean": grid.mean, "gaussian": grid.gaussian}
    key = SmoothRun(cfg, spec.name, hash_inputs(preds))
    inputs = {"prep": ident.upstream(PREP), **{f"pred{i}": ident.file(p) for i, p in enumerate(preds)}}
    with stage(workdir, layout.smooth(spec.name), key, seed=cfg.seed, force=force, inputs=inputs) as run_:
        data = pp.search_data(load_val_predictions(preds, spec), load_prep(workdir).frames, spec)
        n = len(pp.grid_settings(grid_d))
        with progress(transient=True) as bar:
            t = bar.add_task(f"smooth-search {spec.name} ({n} settings)", total=n)
            results = pp.search(data, grid_d, cfg.thresholds, cfg.jobs, progress=lambda: bar.advance(t))
        ranked = pp.rank(results)
        none = next(r for r in results if r["filter"] == "none")
        policy = pp.policy_from(ranked[0], spec)
        policy["score_none"] = none["score"]
        write_json(run_.add_output(layout.POLICY), policy)
        _ranking_table(ranked, spec).to_csv(run_.add_output("ranking.csv"), index=False)
        run_.metrics = {"score": ranked[0]["score"], "score_none": none["score"], "settings": n,
                        "frames": int(len(data.labelled))}
        run_.log("search", best=policy)
    show = ranked[:10] + ([none] if none not in ranked[:10] else [])
    console.print(table(f"smooth-search {spec.name}: {spec.metric} on {len(data.labelled)} frames (top 10)",
                        ["rank", "filter", "size/sigma", spec.metric],
                        [(ranked.index(r) + 1, r["filter"], "-" if r["param"] is None else r["param"], r["score"])
                         for r in show]))
    console.print(f"policy: {policy['filter']} {pp.policy_param(policy) or ''} -> {workdir}/smooth/{spec.name}/policy.json")
    return policy
