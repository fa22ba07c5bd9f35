"""``abaw demo``: the whole pipeline on the embedded synthetic release, ending in an ablation table.

synth -> prep (+ folds) -> pretrain -> finetune (per task, fold 0) -> extract (vision per task, fbank
audio) -> TMF (vision only on fold 0, vision+audio on every demo fold) -> ensemble (fold test
predictions, weighted by validation score) -> smooth-search (on fold 0 validation) -> submit + validate
(three tracks) -> score the submissions against the synthetic test ground truth.

Every step is an ordinary stage in ``<workdir>``: a finished one is skipped, so an interrupted demo
resumes where it stopped; ``--force`` starts the workspace over. Writes ``<workdir>/demo/ablation.json``
and ``ablation.csv``; the submissions go to ``<workdir>/submissions/<name>/``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from abawkit.config import load_config
from abawkit.console import console, table
from abawkit.errors import AbawError
from abawkit.runs import StageDone, load_stage, read_json

TRUTH_DIRS = {"au": "AU_Detection_Challenge", "expr": "EXPR_Classification_Challenge", "va": "VA_Estimation_Challenge"}


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 0
    tasks: tuple[str, ...] = ("au", "expr", "va")
    tmf_folds: tuple[int, ...] = (0, 1)  # fold 0 (official split) + CV folds, ensembled for the test set
    vision_ablation: bool = True  # also train TMF on vision features alone (fold 0) for the table
    release: str = ""  # an existing release folder; empty = synthesise one into <workdir>/release


def _step(title: str, fn: Callable[[], Any]) -> Any:
    """Run one stage; a stage that already finished is reported and skipped."""
    console.rule(f"[bold]{title}")
    try:
        return fn()
    except StageDone as done:
        console.print(f"[yellow]skip:[/] {done}")
        return None


def _cfg(cls: type, stage: str, recipe: str, seed: int, **changes: Any) -> Any:
    cfg = load_config(cls, stage, recipe, seed=seed)
    return _replace(cfg, changes)


def _replace(cfg: Any, changes: dict[str, Any]) -> Any:
    """``dataclasses.replace`` that also takes ``section.key`` names for nested configs."""
    flat = {k: v for k, v in changes.items() if "." not in k}
    for key, value in changes.items():
        if "." in key:
            head, rest = key.split(".", 1)
            flat[head] = _replace(flat.get(head, getattr(cfg, head)), {rest: value})
    return dataclasses.replace(cfg, **flat)


def _synth(workdir: Path, recipe: str, seed: int) -> Path:
    from abawkit.stages import synth

    cfg = _cfg(synth.SynthConfig, "synth", recipe, seed)
    out = workdir / "release"
    done = out / "synth.json"
    if done.exists() and read_json(done).get("config") == dataclasses.asdict(cfg):
        console.print(f"[yellow]skip:[/] {out} already holds this synthetic release")
        return out
    synth.run(cfg, out, force=True)
    return out


def run(workdir: Path, cfg: DemoConfig, recipe: str, force: bool = False) -> dict:
    """Run every stage; returns the ablation rows (also saved under ``<workdir>/demo/``)."""
    workdir = Path(workdir)
    if force and workdir.exists():
        shutil.rmtree(workdir)
    t0 = time.time()
    release = Path(cfg.release) if cfg.release else _step("synth", lambda: _synth(workdir, recipe, cfg.seed))
    if not release.is_dir():
        raise AbawError(f"release folder {release} not found")
    _front(workdir, cfg, recipe, release)
    vision = {t: _task_models(workdir, cfg, recipe, t) for t in cfg.tasks}
    subs = {t: _finish_task(workdir, cfg, recipe, t) for t in cfg.tasks}
    rows = _ablation(workdir, cfg, release, subs, vision)
    _save(workdir, rows, subs, time.time() - t0)
    return {"rows": rows, "submissions": {t: str(p) for t, p in subs.items()}}


def _front(workdir: Path, cfg: DemoConfig, recipe: str, release: Path) -> None:
    """prep -> pretrain -> audio features (shared by every task)."""
    from abawkit.stages import extract, prep, pretrain

    _step("prep", lambda: prep.run(_cfg(prep.PrepConfig, "prep", recipe, cfg.seed, release=str(release)), workdir))
    pcfg = _cfg(pretrain.PretrainConfig, "pretrain", recipe, cfg.seed)
    faces = release / "pretrain_faces"
    if not pcfg.data.images and faces.is_dir():  # the synthetic stand-in for an external face collection
        pcfg = _replace(pcfg, {"data.images": str(faces)})
    _step("pretrain (MAE)", lambda: pretrain.run(workdir, pcfg))
    ecfg = _cfg(extract.ExtractConfig, "extract", recipe, cfg.seed, **{"audio.model": "fbank"})
    _step("extract audio (fbank)", lambda: extract.run_audio(workdir, ecfg))


def _task_models(workdir: Path, cfg: DemoConfig, recipe: str, task_name: str) -> str | None:
    """finetune (fold 0) -> vision features -> TMF per fold (+ the vision-only ablation).

    Returns the stage holding TMF on vision features alone (fold 0), or None without the ablation."""
    from abawkit.stages import extract, finetune, tmf

    fcfg = _cfg(finetune.FinetuneConfig, "finetune", recipe, cfg.seed, task=task_name, fold=0)
    _step(f"finetune {task_name} fold 0", lambda: finetune.run(workdir, fcfg))
    ecfg = _cfg(extract.ExtractConfig, "extract", recipe, cfg.seed, **{"vision.task": task_name, "vision.fold": 0})
    _step(f"extract vision ({task_name} encoder)", lambda: extract.run_vision(workdir, ecfg))
    base = _cfg(tmf.TMFConfig, "tmf", recipe, cfg.seed, task=task_name)
    vision_only = tuple(getattr(base.features, task_name)) == ("mae",)  # AU in the paper: fold 0 is that run
    if cfg.vision_ablation and not vision_only:
        vis = _replace(base, {"fold": 0, "tag": "vision", f"features.{task_name}": ("mae",)})
        _step(f"tmf {task_name} fold 0 (vision only)", lambda: tmf.run(workdir, vis))
    for fold in cfg.tmf_folds:
        fcfg_ = _replace(base, {"fold": fold})
        _step(f"tmf {task_name} fold {fold}", lambda: tmf.run(workdir, fcfg_))
    if vision_only:
        return f"tmf/{task_name}/fold0"
    return f"tmf/{task_name}/fold0-vision" if cfg.vision_ablation else None


def _finish_task(workdir: Path, cfg: DemoConfig, recipe: str, task_name: str) -> dict[str, Path]:
    """ensemble -> smooth-search -> submit (ensemble and fold 0 alone, for the table)."""
    from abawkit.stages import ensemble, smooth, submit

    folds = [workdir / "tmf" / task_name / f"fold{f}" for f in cfg.tmf_folds]
    ecfg = _cfg(ensemble.EnsembleConfig, "ensemble", recipe, cfg.seed)
    _step(f"ensemble {task_name} ({len(folds)} folds)", lambda: ensemble.run(
        workdir, ecfg, [f / "pred_test.parquet" for f in folds], val_preds=[f / "pred_val.parquet" for f in folds]))
    scfg = _cfg(smooth.SmoothConfig, "smooth", recipe, cfg.seed)
    _step(f"smooth-search {task_name}", lambda: smooth.run(workdir, scfg, task_name, [folds[0] / "pred_val.parquet"]))
    sub = _cfg(submit.SubmitConfig, "submit", recipe, cfg.seed)
    out = workdir / "submissions"
    console.rule(f"[bold]submit {task_name}")
    paths = {"ensemble": submit.run(workdir, sub, task_name, out=out)}
    single = dataclasses.replace(sub, name=f"{sub.name}-fold0", zip=False)
    paths["fold0"] = submit.run(workdir, single, task_name, pred=folds[0] / "pred_test.parquet", out=out)
    return paths


def _val(workdir: Path, name: str, key: str = "val_score") -> float | None:
    try:
        return load_stage(workdir, name)["metrics"].get(key)
    except AbawError:
        return None


def _ablation(workdir: Path, cfg: DemoConfig, release: Path, subs: dict[str, dict[str, Path]],
              vision: dict[str, str | None]) -> list[dict]:
    """One row per task: validation (fold 0) per added component, then test scores of the submissions."""
    from abawkit.labels import task
    from abawkit.submission import score_submission

    rows = []
    for t in cfg.tasks:
        truth = release / "test_ground_truth" / TRUTH_DIRS[t]
        test = {k: score_submission(p, truth, t)["score"] if truth.is_dir() else None for k, p in subs[t].items()}
        rows.append({
            "task": t, "metric": task(t).metric,
            "frame model": _val(workdir, f"finetune/{t}/fold0"),
            "+ TMF (vision)": _val(workdir, vision[t]) if vision[t] else None,
            "+ audio": _val(workdir, f"tmf/{t}/fold0"),
            "+ smoothing": _val(workdir, f"smooth/{t}", "score"),
            "test: fold 0": test.get("fold0"),
            "test: ensemble": test.get("ensemble"),
        })
    return rows


def _save(workdir: Path, rows: list[dict], subs: dict[str, dict[str, Path]], seconds: float) -> None:
    import pandas as pd

    from abawkit.runs import write_json, write_text

    cols = list(rows[0]) if rows else []
    console.print(table("ablation (validation = official split, fold 0; test = synthetic test set after smoothing)",
                        cols, [["-" if r[c] is None else r[c] for c in cols] for r in rows]))
    for t, p in subs.items():
        console.print(f"submission {t}: {p['ensemble']}")
    write_json(workdir / "demo" / "ablation.json", {"columns": cols, "rows": rows, "seconds": round(seconds, 1),
                                                   "submissions": {t: str(p["ensemble"]) for t, p in subs.items()}})
    write_text(workdir / "demo" / "ablation.csv", pd.DataFrame(rows).to_csv(index=False))
    console.print(f"demo finished in {seconds / 60:.1f} min; report: abaw report --workdir {workdir}")
