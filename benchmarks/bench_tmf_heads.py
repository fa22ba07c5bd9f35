"""TMF temporal heads x modality dropout x seeds on a demo-size workspace's features.

    .venv/bin/python benchmarks/bench_tmf_heads.py --workspace abaw-demo [--out /tmp/bench-tmf]
        [--heads transformer,tcn,gru] [--dropout 0,0.3] [--seeds 0,1,2] [--tasks au,expr,va] [--threads 1]
        [--set train.epochs=4 ...]

Copies the workspace's ``prep/`` and ``features/`` (the source is never written) to ``--out``, then
trains only the TMF stage of the demo recipe (``recipes/demo/tmf.toml``: same features, clips, optimiser,
epochs) once per (task, head, modality dropout, seed), fold 0, and prints the mean +- sd (over seeds)
of the validation metric per task. Runs already in ``--out`` are reused (each is a stage with its tag).
A task fusing one feature set has nothing to drop: its dropout rows repeat the dropout-0 runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from abawkit.config import load_config  # noqa: E402
from abawkit.io import read_json  # noqa: E402
from abawkit.labels import task  # noqa: E402
from abawkit.stages import tmf as tmf_stage  # noqa: E402
from abawkit.workspace.stage import StageDone  # noqa: E402


def copy_inputs(src: Path, out: Path) -> None:
    """``prep/`` and ``features/`` of ``src`` into ``out`` (once)."""
    for name in ("prep", "features"):
        if not (out / name).exists():
            shutil.copytree(src / name, out / name)


def one_run(out: Path, base: tmf_stage.TMFConfig, t: str, head: str, drop: float, seed: int) -> float:
    """Train TMF for one setting; returns its validation score."""
    cfg = dataclasses.replace(base, task=t, seed=seed, tag=f"{head}-md{drop:g}-s{seed}",
                              model=dataclasses.replace(base.model, temporal=head, modality_dropout=drop))
    try:
        return float(tmf_stage.run(out, cfg)["val_score"])
    except StageDone:  # trained by an earlier (cut-short) run of this script
        return float(read_json(out / tmf_stage.stage_name(cfg) / "metrics.json")["val_score"])


def table(scores: dict, tasks: list[str], heads: list[str], drops: list[float]) -> str:
    """Markdown table: one row per (head, dropout), mean +- sd over seeds per task."""
    head = "| head | modality dropout | " + " | ".join(f"{t.upper()} ({task(t).metric})" for t in tasks) + " |"
    lines = [head, "|" + "---|" * (2 + len(tasks))]
    for h in heads:
        for d in drops:
            cells = []
            for t in tasks:
                v = np.array(scores.get((t, h, d), []))
                cells.append(f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f} (n={len(v)})" if len(v) else "-")
            lines.append(f"| {h} | {d:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, required=True, help="A finished demo workspace (prep + features).")
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-tmf-heads"))
    ap.add_argument("--heads", default="transformer,tcn,gru")
    ap.add_argument("--dropout", default="0,0.3")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--tasks", default="au,expr,va")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--recipe", default="demo")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="tmf.toml override, e.g. train.epochs=4")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    heads, tasks = a.heads.split(","), a.tasks.split(",")
    drops, seeds = [float(x) for x in a.dropout.split(",")], [int(x) for x in a.seeds.split(",")]
    a.out.mkdir(parents=True, exist_ok=True)
    copy_inputs(a.workspace, a.out)
    base = load_config(tmf_stage.TMFConfig, "tmf", a.recipe, a.sets)
    base = dataclasses.replace(base, train=dataclasses.replace(base.train, device="cpu", threads=a.threads))
    scores: dict = {}
    t0 = time.time()
    for s in seeds:  # seeds outermost: a cut-short run still has every setting at the first seeds
        for t in tasks:
            for h in heads:
                for d in drops:
                    single = len(getattr(base.features, t)) < 2 and d > 0  # nothing to drop: same as d = 0
                    score = scores[(t, h, 0.0)][-1] if single and (t, h, 0.0) in scores else one_run(a.out, base, t, h, d, s)
                    scores.setdefault((t, h, d), []).append(score)
        print(f"seed {s} done at {time.time() - t0:.0f} s", flush=True)
    print(f"\n{len(seeds)} seeds, {time.time() - t0:.0f} s, {a.threads} thread(s); validation metric, fold 0:\n")
    print(table(scores, tasks, heads, drops))


if __name__ == "__main__":
    main()
