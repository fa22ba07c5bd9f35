"""``abaw demo --track ah|emi``: ``abaw run`` of a video-level track on its synthetic release, and its table.

synth (talking clips with transcripts) -> the plan of ``run/build_video.py`` (prep, a frame encoder, vision,
fbank and hashed-text features, the video model per fold, submit, validate) plus the table's jobs: the video
model on fold 0 with faces alone and with faces + voice. Then the submission (folds averaged) is scored
against the synthetic test truth twice: through ``formats.score_file`` (the toolkit's metrics) and recomputed
from the file with scikit-learn / SciPy (``recompute``); the two must agree.

Reads ``recipes/<recipe>/`` (run, video, extract, synth); writes the workspace's stages, and
``<workdir>/demo/table.json`` + ``table.csv``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from abawkit import formats
from abawkit.console import console, table
from abawkit.errors import AbawError
from abawkit.io import write_json, write_text
from abawkit.labels import task
from abawkit.run import build, launch
from abawkit.run.build_video import add, video_features
from abawkit.run.jobs import synth_job
from abawkit.workspace import layout
from abawkit.workspace.stage import load_stage

TRUTH = {"ah": "test_ground_truth/AH/test.txt", "emi": "test_ground_truth/EMI/labels.csv"}
ABLATION = (("faces", ("mae",)), ("+ voice", ("mae", "fbank")))  # fold 0 rows of the table (+ words = the full model)


def ablation_tag(features: tuple[str, ...]) -> str:
    return "-".join(features)


def run(workdir: Path, cfg, recipe: str, rcfg, release: Path, gpus: str | None = None) -> dict:
    """Run every job; returns the table's rows (also saved under ``<workdir>/demo/``). Called by ``demo.run``,
    which has cleared ``workdir`` (``--force``), loaded ``run.toml`` (``rcfg``) and checked ``release``."""
    t0 = time.time()
    inp = build.RunInputs(workdir, build.resolve_recipe(recipe), release, seed=cfg.seed)
    b = build.Builder(inp)
    if not cfg.release:
        synth_job(b, release, cfg.seed)
    launch.run(rcfg, inp, gpus, before=b.jobs, after=ablation_jobs(build.Builder(inp), rcfg))
    name = build.submission_name(rcfg, inp.recipe)
    rows = [row(workdir, release, t, name) for t in rcfg.tasks]
    save(workdir, rows, time.time() - t0)
    return {"rows": rows}


def ablation_jobs(b, rcfg) -> list:
    """The video model on fold 0 with fewer feature stores (the table's first columns)."""
    for t in rcfg.tasks:
        full = video_features(b.inp.recipe, t)
        for _, feats in ABLATION:
            if set(feats) < set(full):
                deps = [layout.video_model(t, 0)]  # after the full model: its features are then all there
                add(b, layout.video_model(t, 0, ablation_tag(feats)), "video",
                    ["train", "video", "--task", t, "--fold", "0", "--features", ",".join(feats),
                     "--set", f'tag="{ablation_tag(feats)}"'], deps)
    return b.jobs


def _val(workdir: Path, stage: str) -> float | None:
    try:
        return load_stage(workdir, stage)["metrics"].get("val_score")
    except AbawError:
        return None


def recompute(track: str, file: Path, truth: Path) -> float:
    """The test score straight from the files with scikit-learn (A/H macro-F1) or SciPy (EMI mean Pearson)."""
    from scipy.stats import pearsonr
    from sklearn.metrics import f1_score

    spec = task(track)
    fmt = formats.get(spec)
    sub = fmt.read(file, spec).set_index("video")
    gt = fmt.read_truth(truth, spec).set_index("video").loc[sub.index]
    if spec.name == "ah":
        return float(f1_score(gt[spec.label_columns[0]], sub["pred"], average="macro"))
    return float(np.mean([pearsonr(gt[c], sub[n])[0] for c, n in zip(spec.label_columns, fmt.value_columns(spec))]))


def row(workdir: Path, release: Path, t: str, name: str) -> dict:
    """Validation (fold 0) per feature set, then the averaged folds' submission on the test truth."""
    spec, truth = task(t), release / TRUTH[t]
    file = layout.path(workdir, layout.submission(name)) / formats.file_name(t)
    val = {label: _val(workdir, layout.video_model(t, 0, ablation_tag(f))) for label, f in ABLATION}
    test = formats.score_file(t, file, truth) if file.is_file() and truth.is_file() else {}
    return {"track": t, "metric": spec.metric, **val, "+ words (all)": _val(workdir, layout.video_model(t, 0)),
            "test: submission": test.get("score"),
            "test: sklearn/scipy": recompute(t, file, truth) if test else None, "file": str(file)}


def save(workdir: Path, rows: list[dict], seconds: float) -> None:
    import pandas as pd

    cols = [c for c in rows[0] if c != "file"] if rows else []
    console.print(table("video-level demo (validation = official split, fold 0; test = synthetic test set, folds averaged)",
                        cols, [["-" if r[c] is None else r[c] for c in cols] for r in rows]))
    for r in rows:
        console.print(f"submission {r['track']}: {r['file']}")
    write_json(layout.path(workdir, layout.demo_file("table.json")), {"columns": cols, "rows": rows, "seconds": round(seconds, 1)})
    write_text(layout.path(workdir, layout.demo_file("table.csv")), pd.DataFrame(rows).to_csv(index=False))
    console.print(f"demo finished in {seconds / 60:.1f} min")
