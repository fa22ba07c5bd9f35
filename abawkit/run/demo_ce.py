"""``abaw demo --track ce``: the compound-expression track's three ways to a model, on synthetic releases.

C-EXPR-DB ships no training labels, so the demo builds what teams used, in three workspaces under ``W``:
- ``W/basic``: a small classic release (basic expressions only) -> prep -> MAE pre-training -> an EXPR
  frame model (fold 0). Its encoder and its EXPR model feed the other two.
- ``W`` (the CE workspace): the synthetic C-EXPR-DB (unlabelled videos, the organisers' frame list, a
  RAF-DB-style compound face folder) -> prep (faces found in the videos; the compound faces as training
  rows) -> the **compound folder** way: the recipe's plan (finetune, extract, TMF per fold, ensemble,
  smoothing, submit, validate); the **zero-shot** way: ``abaw zeroshot`` with W/basic's EXPR model (a rule
  over its 8 probabilities), submitted without smoothing; and ``abaw mix``: compound faces cut and mixed from
  W/basic's expression-labelled crops.
- ``W/mixed``: the same release with only the mixed faces as training rows -> the **mixed** way (fold 0).
Each way's submission is validated and scored against the held-out truth (``formats.score_file``).
Writes ``W/demo/ablation.json`` and ``.csv``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from abawkit import formats
from abawkit.config import load_config
from abawkit.console import console, table
from abawkit.errors import AbawError
from abawkit.io import write_json, write_text
from abawkit.run import build, launch
from abawkit.run.build import RunConfig, RunInputs
from abawkit.run.jobs import synth_job
from abawkit.workspace import layout
from abawkit.workspace.stage import load_stage

BASIC_RECIPE = "demo"  # the classic demo's stage settings for the basic-expression workspace
BASIC_RELEASE = ["--videos", "16", "--frames", "200", "--faces", "4000"]  # smaller than the classic demo's


def run(workdir: Path, seed: int, recipe: str, jobs: int | None, gpus: str | None, release: Path | None) -> dict:
    """Run the three ways; returns the table rows (also saved under ``W/demo/``)."""
    t0 = time.time()
    rcfg = load_config(RunConfig, "run", recipe, seed=seed, jobs=jobs)
    basic_w, mixed_w = workdir / "basic", workdir / "mixed"
    mae = _basic(basic_w, seed, jobs, gpus)
    expr_model = layout.path(basic_w, layout.finetune("expr", 0)) / "best.pt"
    ce_release = release or layout.path(workdir, layout.RELEASE)
    inp = RunInputs(workdir, build.resolve_recipe(recipe), ce_release, mae=mae, seed=seed,
                    compound=(ce_release / "compound_faces",))
    b = build.Builder(inp)
    if release is None:
        synth_job(b, ce_release, seed, "--track", "ce")
    name = build.submission_name(rcfg, inp.recipe)
    after = _ce_jobs(build.Builder(inp), name, expr_model, basic_w)
    launch.run(rcfg, inp, gpus, before=b.jobs, after=after)
    mixed = RunInputs(mixed_w, inp.recipe, ce_release, mae=mae, seed=seed, compound=(workdir / "mix",))
    launch.run(dataclasses.replace(rcfg, folds=(0,)), mixed, gpus)
    rows = _table(workdir, mixed_w, ce_release, name)
    _save(workdir, rows, time.time() - t0)
    return {"rows": rows}


def _basic(w: Path, seed: int, jobs: int | None, gpus: str | None) -> Path:
    """W/basic: synth (classic, small) -> prep -> pretrain -> finetune expr fold 0; returns the MAE checkpoint."""
    cfg = load_config(RunConfig, "run", BASIC_RECIPE, seed=seed, jobs=jobs)
    release = layout.path(w, layout.RELEASE)
    inp = RunInputs(w, build.resolve_recipe(BASIC_RECIPE), release, seed=seed, synth_faces=True)
    b = build.Builder(inp)
    b.add("synth", "synth", ["synth", str(release), "--recipe", inp.recipe, "--seed", str(seed), *BASIC_RELEASE],
          marker=f"{layout.RELEASE}/{layout.SYNTH_RECORD}", common=False)
    prep = b.add(layout.PREP, "prep", ["prep", "--release", str(release)], ["synth"])
    pretrain = b.add(layout.PRETRAIN, "pretrain", ["pretrain", "--images", str(release / "pretrain_faces")], ["synth"])
    b.add(layout.finetune("expr", 0), "finetune", ["finetune", "--task", "expr", "--fold", "0"], [prep, pretrain])
    launch.run(cfg, inp, gpus, only=b.jobs)
    return layout.path(w, layout.PRETRAIN) / "checkpoint.pt"


def _ce_jobs(b: build.Builder, name: str, expr_model: Path, basic_w: Path) -> list:
    """The zero-shot way (predict, submit unsmoothed) and the mixed faces for W/mixed, after the recipe's plan."""
    w, subs = b.inp.workdir, str(layout.path(b.inp.workdir, layout.SUBMISSIONS))
    zs = b.add(layout.zeroshot("ce"), "zeroshot", ["zeroshot", "--task", "ce", "--expr-model", str(expr_model)],
               [layout.PREP])
    b.add(layout.submit_job("ce", "zeroshot"), "submit", [
        "submit", "--track", "ce", "--name", f"{name}-zeroshot", "--no-smooth", "--set", "zip=false",
        "--pred", str(layout.path(w, zs) / "pred_test.parquet"), "--out", subs], [zs],
          marker=f"{layout.submission(f'{name}-zeroshot')}/submission_{formats.tag('ce')}.json", force=())
    b.add("mix", "mix", ["mix", str(w / "mix"), "--from", str(basic_w), "--recipe", b.inp.recipe, "--seed",
                         str(b.inp.seed)], [], marker="mix/mix.json", common=False)
    return b.jobs


def _score(path: Path, truth: Path) -> float | None:
    return formats.score_file("ce", path, truth)["score"] if path.is_file() and truth.exists() else None


def _val(workdir: Path, stage: str, key: str = "val_score") -> float | None:
    try:
        return load_stage(workdir, stage)["metrics"].get(key)
    except AbawError:
        return None


def _table(w: Path, mixed_w: Path, release: Path, name: str) -> list[dict]:
    """One row per way: what it trained on, validation macro F1 (frame model, then after TMF and smoothing
    where the way has them) and the test macro F1 of its submission against the held-out truth."""
    truth, file = release / formats.get("ce").TRUTH, formats.file_name("ce")
    sub = lambda ws, n: layout.path(ws, layout.submission(n)) / file  # noqa: E731
    return [
        {"way": "zero-shot (EXPR model + rule)", "trained on": "basic expressions (W/basic)",
         "val: frame model": _val(w, layout.zeroshot("ce")), "val: + TMF": None, "val: + smoothing": None,
         "test": _score(sub(w, f"{name}-zeroshot"), truth)},
        {"way": "compound face folder", "trained on": "compound_faces (RAF-DB layout)",
         "val: frame model": _val(w, layout.finetune("ce", 0)), "val: + TMF": _val(w, layout.tmf("ce", 0)),
         "val: + smoothing": _val(w, layout.smooth("ce"), "score"), "test": _score(sub(w, name), truth)},
        {"way": "mixed compounds (CutMix)", "trained on": "faces mixed from W/basic (val: mixed too)",
         "val: frame model": _val(mixed_w, layout.finetune("ce", 0)), "val: + TMF": _val(mixed_w, layout.tmf("ce", 0)),
         "val: + smoothing": _val(mixed_w, layout.smooth("ce"), "score"), "test": _score(sub(mixed_w, name), truth)},
    ]


def _save(w: Path, rows: list[dict], seconds: float) -> None:
    import pandas as pd

    cols = list(rows[0])
    console.print(table("CE: three ways to a model (macro F1 over 7 compounds; chance ~ 1/7 = 0.143)", cols,
                        [["-" if r[c] is None else r[c] for c in cols] for r in rows]))
    write_json(layout.path(w, layout.demo_file("ablation.json")), {"columns": cols, "rows": rows, "seconds": round(seconds, 1)})
    write_text(layout.path(w, layout.demo_file("ablation.csv")), pd.DataFrame(rows).to_csv(index=False))
    console.print(f"demo finished in {seconds / 60:.1f} min; submissions under {layout.path(w, layout.SUBMISSIONS)} "
                  f"and {layout.path(w / 'mixed', layout.SUBMISSIONS)}")
