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
from abawkit.labels import TaskSpec, head_track, task
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
    thresholds: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # AU and A/H (class 1) thresholds
    au: FilterGrid = field(default_factory=FilterGrid)
    expr: FilterGrid = field(default_factory=FilterGrid)
    va: FilterGrid = field(default_factory=FilterGrid)
    ce: FilterGrid = field(default_factory=FilterGrid)
    ah: FilterGrid = field(default_factory=FilterGrid)  # A/H per frame (ABAW 8); a head's grid is the field of its name (MTL: va, expr, au)


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
    """Search each head's filter (and AU thresholds) on the validation predictions; a track of several
    heads gets one policy per head (``policy["heads"]``), its score the sum of the heads' (P_MTL)."""
    spec = task(task_name)
    key = SmoothRun(cfg, spec.name, hash_inputs(preds))
    inputs = {"prep": ident.upstream(PREP), **{f"pred{i}": ident.file(p) for i, p in enumerate(preds)}}
    with stage(workdir, layout.smooth(spec.name), key, seed=cfg.seed, force=force, inputs=inputs) as run_:
        df, frames = load_val_predictions(preds, spec), load_prep(workdir).frames
        found = {h.name: _search_head(df, frames, head_track(spec, h), cfg) for h in spec.heads}
        if len(spec.heads) == 1:
            ranked, none, data = found[spec.head.name]
            policy = pp.policy_from(ranked[0], spec)
            policy["score_none"] = none["score"]
            _ranking_table(ranked, spec).to_csv(run_.add_output("ranking.csv"), index=False)
        else:
            heads = {h: pp.policy_from(r[0][0], spec) | {"score_none": r[1]["score"]} for h, r in found.items()}
            policy = {"task": spec.name, "heads": heads, "score": sum(p["score"] for p in heads.values()),
                      "score_none": sum(p["score_none"] for p in heads.values())}
            for h, (ranked, _, _) in found.items():
                _ranking_table(ranked, head_track(spec, next(x for x in spec.heads if x.name == h))).to_csv(
                    run_.add_output(f"ranking_{h}.csv"), index=False)
        write_json(run_.add_output(layout.POLICY), policy)
        labelled = max(len(d.labelled) for _, _, d in found.values())
        run_.metrics = {"score": policy["score"], "score_none": policy["score_none"], "frames": labelled,
                        "settings": sum(len(r) for r, _, _ in found.values())}
        run_.log("search", best=policy)
    for h, (ranked, none, data) in found.items():
        _show(head_track(spec, next(x for x in spec.heads if x.name == h)), ranked, none, data)
    console.print(f"policy -> {workdir}/smooth/{spec.name}/policy.json")
    return policy


def _search_head(df: pd.DataFrame, frames: pd.DataFrame, spec: TaskSpec, cfg: SmoothConfig):
    """(results best first, the "none" result, the search data) of one head on every setting of its grid."""
    grid = getattr(cfg, spec.head.name)
    grid_d = {"median": grid.median, "mean": grid.mean, "gaussian": grid.gaussian}
    data = pp.search_data(df, frames, spec)
    n = len(pp.grid_settings(grid_d))
    with progress(transient=True) as bar:
        t = bar.add_task(f"smooth-search {spec.name} ({n} settings)", total=n)
        results = pp.search(data, grid_d, cfg.thresholds, cfg.jobs, progress=lambda: bar.advance(t))
    return pp.rank(results), next(r for r in results if r["filter"] == "none"), data


def _show(spec: TaskSpec, ranked: list[dict], none: dict, data) -> None:
    show = ranked[:10] + ([none] if none not in ranked[:10] else [])
    console.print(table(f"smooth-search {spec.name}: {spec.metric} on {len(data.labelled)} frames (top 10)",
                        ["rank", "filter", "size/sigma", spec.metric],
                        [(ranked.index(r) + 1, r["filter"], "-" if r["param"] is None else r["param"], r["score"])
                         for r in show]))
    best = ranked[0]
    console.print(f"policy {spec.name}: {best['filter']} {'' if best['param'] is None else best['param']}")
