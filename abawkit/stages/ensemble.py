"""``abaw ensemble``: average fold prediction files into one (optionally weighted by validation scores).

Reads prediction files (``abawkit/predictions.py``) and, for ``--val`` weighting, the prep
workspace labels. Writes the averaged file to ``--out``, or the stage ``<workdir>/ensemble/<task>/``
(``<split>.parquet`` + manifest) that ``abaw submit`` picks up by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from abawkit.console import console, table
from abawkit.ensemble import average
from abawkit.errors import AbawError
from abawkit.labels import TaskSpec
from abawkit.predictions import read_predictions, write_predictions
from abawkit.scoring import evaluate_predictions, hash_inputs
from abawkit.workspace import identity as ident
from abawkit.workspace import layout
from abawkit.workspace.stage import stage


@dataclass(frozen=True)
class EnsembleConfig:
    seed: int = 0
    weights: tuple[float, ...] = ()  # one per file; empty = equal (or validation scores with --val)


@dataclass(frozen=True)
class EnsembleRun:
    """What the stage's result depends on (config + input file hashes)."""

    cfg: EnsembleConfig
    preds: tuple[str, ...]


def val_weights(workdir: Path, val_preds: Sequence[Path], spec: TaskSpec | str) -> list[float]:
    """Each fold's validation score (its own metric on prep labels), used as its weight.

    A score below zero (a CCC can be) counts as zero; if no fold scores above zero, weights are equal.
    """
    scores = [max(0.0, evaluate_predictions(workdir, p, spec)["score"]) for p in val_preds]
    return scores if sum(scores) > 0 else [1.0] * len(scores)


def run(workdir: Path, cfg: EnsembleConfig, preds: Sequence[Path], out: Path | None = None,
        val_preds: Sequence[Path] = (), force: bool = False) -> Path:
    hashes = hash_inputs([*preds, *val_preds])
    loaded = [read_predictions(p) for p in preds]
    weights = list(cfg.weights)
    if val_preds:
        if len(val_preds) != len(preds):
            raise AbawError(f"--val needs one validation file per prediction file ({len(val_preds)} vs {len(preds)})")
        weights = val_weights(workdir, val_preds, loaded[0].task)
    ens = average(loaded, [str(p) for p in preds], weights)
    shown = weights or [1.0] * len(preds)
    console.print(table(f"ensemble of {len(preds)} {ens.task.name} files", ["file", "fold", "weight"],
                        [(str(p), lp.fold, float(w)) for p, lp, w in zip(preds, loaded, shown)]))
    if out is not None:
        write_predictions(out, ens)
        console.print(f"wrote {out} ({len(ens.df)} frames)")
        return out
    key = EnsembleRun(cfg, hashes)
    inputs = {f"pred{i}": ident.file(p) for i, p in enumerate(preds)}
    with stage(workdir, layout.ensemble(ens.task.name), key, seed=cfg.seed, force=force, inputs=inputs) as run_:
        write_predictions(run_.add_output(f"{ens.split}.parquet"), ens)
        run_.metrics = {"n_files": len(preds), "weights": shown, "frames": len(ens.df)}
        path = run_.final_dir / f"{ens.split}.parquet"
    console.print(f"wrote {path} ({len(ens.df)} frames)")
    return path
