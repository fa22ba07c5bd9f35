"""``abaw demo``: ``abaw run`` on the embedded synthetic release, ending in an ablation table.

synth -> prep (+ folds) -> pretrain -> finetune (per task, fold 0) -> extract (vision per task, fbank
audio) -> TMF (vision+audio on every run fold) -> ensemble (weighted by validation score) ->
smooth-search (fold 0 validation) -> submit + validate (three tracks), as the ``run`` engine plans it
from ``recipes/<recipe>/run.toml``; the demo adds three kinds of jobs to that plan: ``synth`` (the
release), TMF on vision features alone (fold 0, the ablation's "+ TMF (vision)" column) and a fold-0-only
submission per track. Then it scores the submissions against the synthetic test ground truth.

Every job is an ordinary stage in ``<workdir>``: a finished one is skipped, so an interrupted demo
resumes where it stopped; ``--force`` starts the workspace over. Writes ``<workdir>/demo/ablation.json``
and ``ablation.csv``; the submissions go to ``<workdir>/submissions/<name>/``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from abawkit.config import load_config
from abawkit.console import console, table
from abawkit.errors import AbawError
from abawkit.io import write_json, write_text
from abawkit import formats
from abawkit.labels import task
from abawkit.run import build, launch
from abawkit.run.build import tmf_features
from abawkit.run.jobs import synth_job
from abawkit.run.plan import Job
from abawkit.stages.synth import SynthConfig
from abawkit.workspace import layout
from abawkit.workspace.stage import load_stage

TRUTH_DIRS = {"au": "AU_Detection_Challenge", "expr": "EXPR_Classification_Challenge", "va": "VA_Estimation_Challenge"}


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 0
    vision_ablation: bool = True  # also train TMF on vision features alone (fold 0) for the table
    release: str = ""  # an existing release folder; empty = synthesise one into <workdir>/release


def run(workdir: Path, cfg: DemoConfig, recipe: str, force: bool = False, jobs: int | None = None,
        gpus: str | None = None) -> dict:
    """Run every job; returns the ablation rows (also saved under ``<workdir>/demo/``)."""

    workdir = Path(workdir).resolve()
    if force and workdir.exists():
        shutil.rmtree(workdir)
    t0 = time.time()
    rcfg = load_config(build.RunConfig, "run", recipe, seed=cfg.seed, jobs=jobs)
    release = Path(cfg.release).resolve() if cfg.release else layout.path(workdir, layout.RELEASE)
    if cfg.release and not release.is_dir():
        raise AbawError(f"release folder {release} not found")
    if tuple(rcfg.tasks) == ("ce",):  # no CE training labels: three ways to a model (run/demo_ce.py)
        from abawkit.run import demo_ce

        return demo_ce.run(workdir, cfg.seed, recipe, jobs, gpus, release if cfg.release else None)
    if task(rcfg.tasks[0]).level == "video":  # A/H, EMI: a video-level model, its own table (run/demo_video.py)
        from abawkit.run import demo_video

        return demo_video.run(workdir, cfg, recipe, rcfg, release, gpus)
    synth_faces = not cfg.release and load_config(SynthConfig, "synth", recipe).faces > 0
    inp = build.RunInputs(workdir, build.resolve_recipe(recipe), release, seed=cfg.seed, synth_faces=synth_faces)
    b = build.Builder(inp)
    if not cfg.release:
        synth_job(b, release, cfg.seed)
    name = build.submission_name(rcfg, inp.recipe)
    before = b.jobs
    after = _ablation_jobs(build.Builder(inp), cfg, rcfg, name)
    launch.run(rcfg, inp, gpus, before=before, after=after)
    subs = {t: _submissions(workdir, name, t) for t in rcfg.tasks}
    vision = {t: _vision_stage(cfg, inp.recipe, t) for t in rcfg.tasks}
    rows = _ablation(workdir, rcfg.tasks, release, subs, vision, inp.recipe)
    _save(workdir, rows, subs, time.time() - t0)
    return {"rows": rows, "submissions": {t: str(p) for t, p in subs.items()}}


def _vision_only(recipe: str, task_name: str) -> bool:
    """AU in the paper: the recipe's TMF already uses vision alone, so fold 0 is the vision-only run."""
    return tmf_features(recipe, task_name) == ("mae",)


def _vision_stage(cfg: DemoConfig, recipe: str, task_name: str) -> str | None:
    """The stage holding TMF on vision features alone (fold 0), or None without the ablation."""
    if _vision_only(recipe, task_name):
        return layout.tmf(task_name, 0)
    return layout.tmf(task_name, 0, "vision") if cfg.vision_ablation else None


def _without_text(recipe: str, task_name: str) -> str | None:
    """The stage of TMF fold 0 on the recipe's features less the words (the "+ audio" column of a track that
    fuses text and audio, whose full TMF is "+ text"), or None when the track fuses no text or no audio."""
    feats = tmf_features(recipe, task_name)
    rest = [f for f in feats if f != build.TEXT]
    return layout.tmf(task_name, 0, "notext") if build.TEXT in feats and rest != [layout.VISION_BASE] else None


def _ablation_jobs(b, cfg: DemoConfig, rcfg, name: str) -> list[Job]:
    """TMF on vision alone and without the words (fold 0) and a fold-0-only submission per task, for the table."""

    w = b.inp.workdir
    for t in rcfg.tasks:
        notext = _without_text(b.inp.recipe, t)
        if notext:
            feats = [f for f in tmf_features(b.inp.recipe, t) if f != build.TEXT]
            b.add(notext, "tmf", ["train", "tmf", "--task", t, "--fold", "0", "--features", ",".join(feats),
                                  "--set", 'tag="notext"'], [layout.tmf(t, 0)])
        if cfg.vision_ablation and not _vision_only(b.inp.recipe, t):
            b.add(layout.tmf(t, 0, "vision"), "tmf", ["train", "tmf", "--task", t, "--fold", "0", "--features",
                                                     layout.VISION_BASE, "--set", 'tag="vision"'],
                  [layout.features(layout.vision_store(t, 0))])
        single = f"{name}-fold0"
        b.add(layout.submit_job(t, "fold0"), "submit", [
            "submit", "--track", t, "--name", single, "--set", "zip=false",
            "--pred", str(layout.path(w, layout.tmf(t, 0)) / "pred_test.parquet"),
            "--out", str(layout.path(w, layout.SUBMISSIONS))],
              [layout.tmf(t, 0), layout.smooth(t)], marker=f"{layout.submission(single)}/submission_{formats.tag(t)}.json",
              force=())
    return b.jobs


def _submissions(workdir: Path, name: str, task_name: str) -> dict[str, Path]:
    file = formats.file_name(task_name)
    return {"ensemble": layout.path(workdir, layout.submission(name)) / file,
            "fold0": layout.path(workdir, layout.submission(f"{name}-fold0")) / file}


def truth_path(release: Path, track: str) -> Path:
    """The synthetic release's test ground truth of a track (a folder of per-video files for the classic
    tracks, the file its format names for the others)."""
    spec = task(track)
    if spec.format == "frames":
        return release / "test_ground_truth" / TRUTH_DIRS[spec.name]
    from abawkit.release.synth import ah, mtl

    return release / {"mtl": mtl.TRUTH, "ah_frames": ah.FRAME_TRUTH}[spec.name]


def _val(workdir: Path, name: str, key: str = "val_score") -> float | None:
    try:
        return load_stage(workdir, name)["metrics"].get(key)
    except AbawError:
        return None


def _ablation(workdir: Path, tasks: tuple[str, ...], release: Path, subs: dict[str, dict[str, Path]],
              vision: dict[str, str | None], recipe: str) -> list[dict]:
    """One row per task: validation (fold 0) per added component, then test scores of the submissions; a
    track of several heads adds one row per head (its part of the sum)."""

    rows = []
    for t in tasks:
        spec, truth = task(t), truth_path(release, t)
        test = {k: formats.score_file(t, p, truth) if truth.exists() else None for k, p in subs[t].items()}
        stages = {"frame model": layout.finetune(t, 0), "+ TMF (vision)": vision[t], "+ audio": layout.tmf(t, 0)}
        if build.TEXT in tmf_features(recipe, t):  # the words: "+ audio" is TMF without them (if it fuses audio)
            stages |= {"+ audio": _without_text(recipe, t), "+ text": layout.tmf(t, 0)}
        rows.append({"task": t, "metric": spec.metric, **{k: _val(workdir, s) if s else None for k, s in stages.items()},
                     "+ smoothing": _val(workdir, layout.smooth(t), "score"),
                     "test: fold 0": (test.get("fold0") or {}).get("score"),
                     "test: ensemble": (test.get("ensemble") or {}).get("score")})
        if len(spec.heads) > 1:
            rows += _head_rows(workdir, spec, stages, test)
    return rows


def _head_rows(workdir: Path, spec, stages: dict[str, str | None], test: dict[str, dict | None]) -> list[dict]:
    """Each head's score in every column: validation from each stage's fold-0 predictions, smoothing from
    the policy, test from the submission files."""
    from abawkit.io import read_json
    from abawkit.scoring import evaluate_predictions

    val = {k: evaluate_predictions(workdir, layout.path(workdir, s) / "pred_val.parquet", spec)["heads"]
           for k, s in stages.items() if s and (layout.path(workdir, s) / "pred_val.parquet").is_file()}
    policy = layout.path(workdir, layout.policy(spec.name))
    smooth = read_json(policy)["heads"] if policy.is_file() else {}
    return [{"task": f"{spec.name}: {h.name}", "metric": h.metric, **{k: val.get(k, {}).get(h.name) for k in stages},
             "+ smoothing": smooth.get(h.name, {}).get("score"),
             "test: fold 0": ((test.get("fold0") or {}).get("heads") or {}).get(h.name),
             "test: ensemble": ((test.get("ensemble") or {}).get("heads") or {}).get(h.name)} for h in spec.heads]


def _save(workdir: Path, rows: list[dict], subs: dict[str, dict[str, Path]], seconds: float) -> None:
    import pandas as pd

    cols = list(dict.fromkeys(c for r in rows for c in r))  # a track fusing text adds "+ text"
    console.print(table("ablation (validation = official split, fold 0; test = synthetic test set after smoothing)",
                        cols, [["-" if r.get(c) is None else r[c] for c in cols] for r in rows]))
    for t, p in subs.items():
        console.print(f"submission {t}: {p['ensemble']}")
    write_json(layout.path(workdir, layout.demo_file("ablation.json")), {"columns": cols, "rows": rows, "seconds": round(seconds, 1),
                                                   "submissions": {t: str(p["ensemble"]) for t, p in subs.items()}})
    write_text(layout.path(workdir, layout.demo_file("ablation.csv")), pd.DataFrame(rows).to_csv(index=False))
    console.print(f"demo finished in {seconds / 60:.1f} min; report: abaw report --workdir {workdir}")
