"""``abaw run``: every stage a recipe needs, as a graph of jobs run in parallel (one per GPU or CPU slot).

prep -> pretrain (or an MAE file / a backbone) -> finetune[task, fold] -> extract vision[task, fold]
(``vision = "frozen"``: one extract straight from the backbone instead) + extract audio[model] ->
tmf[task, fold] -> ensemble[task] (weighted by validation) -> smooth-search[task] -> submit[track] ->
validate[track]. Each job is ``python -m abawkit.cli <command>`` in a subprocess with
its own log (``<workdir>/run/logs/<job>.log``), its own process group, ``CUDA_VISIBLE_DEVICES`` set to
its GPU (``--gpus``) and ``threads`` torch threads. Finished jobs are skipped; interrupted ones resume
from their stage's ``.partial``; a failing job stops only the jobs that depend on it.

Reads ``recipes/<recipe>/run.toml`` (tasks, folds, parallel jobs) and the recipe's ``tmf.toml`` (the
features each task fuses: the audio models to extract) and ``submit.toml`` (the submission name).
Writes ``<workdir>/run/plan.json``, ``jobs.json`` (state, device, wall time per job) and ``logs/``."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from abawkit.config import load_config
from abawkit.errors import AbawError
from abawkit.labels import task
from abawkit.run.jobs import TEXT, audio_job, frozen_job, submission_name, text_args, vision_store
from abawkit.run.plan import Job, stage_marker
from abawkit.run.slurm import SlurmConfig
from abawkit import formats
from abawkit.workspace import layout

# Lazy imports: the stage modules whose recipe sections the plan reads (tmf, extract, submit, pretrain) are
# imported inside the functions that read them; tmf and pretrain pull in torch, and ``abaw status`` and
# ``abaw run --help`` load this module without needing any stage.
COSTS = {"synth": 1.0, "prep": 1.0, "pretrain": 6.0, "finetune": 4.0, "extract": 1.0, "tmf": 2.0,
         "ensemble": 0.3, "smooth": 0.3, "submit": 0.2, "validate": 0.1, "zeroshot": 0.5, "mix": 0.5}



@dataclass(frozen=True)
class RunConfig:
    seed: int = 0  # not used by the plan; --seed is passed to every job
    tasks: tuple[str, ...] = ("au", "expr", "va")
    folds: tuple[int, ...] = (0, 1, 2, 3, 4, 5)  # TMF folds, ensembled for the test set (fold 0 = official split)
    encoder_folds: tuple[int, ...] = ()  # folds fine-tuning their own encoder; empty = every fold (others use fold 0's)
    name: str = ""  # submission folder; empty = submit.toml's name
    jobs: int = 1  # parallel CPU jobs (without --gpus)
    threads: int = 0  # torch threads per job; 0 = the machine's cores // parallel jobs
    vision: str = "finetune"  # finetune: per task/fold from --mae/--backbone; frozen: one extract straight from it
    slurm: SlurmConfig = field(default_factory=SlurmConfig)  # --launcher slurm: resources per stage



@dataclass(frozen=True)
class RunInputs:
    """What the command line adds to the recipe: where things are."""

    workdir: Path
    recipe: str
    release: Path
    mae: Path | None = None  # an MAE checkpoint: no pre-training
    audio: dict[str, str] = field(default_factory=dict)  # audio model -> checkpoint
    seed: int | None = None  # passed to every job when given
    images: Path | None = None  # face images for pre-training (default: <release>/pretrain_faces if any)
    synth_faces: bool = False  # the release is yet to be synthesised, with pretrain_faces/
    compound: tuple[Path, ...] = ()  # CE: compound-labelled face lists prep adds as training rows
    text: dict[str, str] = field(default_factory=dict)  # video-level tracks: "asr" / "encoder" folders (run/build_video.py)



class Builder:
    """Appends jobs in dependency order; ``cli`` builds a job's command line."""

    def __init__(self, inp: RunInputs) -> None:
        self.inp = inp
        self.jobs: list[Job] = []

    def cli(self, *args: str, common: bool = True) -> tuple[str, ...]:
        extra = ("-w", str(self.inp.workdir), "--recipe", self.inp.recipe) if common else ()
        seed = ("--seed", str(self.inp.seed)) if common and self.inp.seed is not None else ()
        return (sys.executable, "-m", "abawkit.cli", *args, *extra, *seed)

    def add(self, id_: str, stage: str, args: Sequence[str], deps: Sequence[str] = (), marker: str | None = None,
            common: bool = True, force: tuple[str, ...] = ("--force",), cost: float | None = None) -> str:
        """Append a job; ``cost``: its scheduling weight when the plan's own differs from ``COSTS[stage]``."""
        deps = tuple(d for d in deps if d)
        marker = stage_marker(id_) if marker is None else marker
        self.jobs.append(Job(id_, stage, self.cli(*args, common=common), deps, marker,
                             COSTS[stage] if cost is None else cost, force, self.inp.recipe))
        return id_



def resolve_recipe(recipe: str) -> str:
    """A recipe folder as an absolute path (jobs may run elsewhere), a recipe name as is."""
    return str(Path(recipe).resolve()) if Path(recipe).is_dir() else recipe



def tmf_features(recipe: str, t: str) -> tuple[str, ...]:
    """The feature stores the recipe's TMF fuses for task ``t`` (tmf.toml [features])."""
    from abawkit.stages.tmf import TMFConfig

    return tuple(getattr(load_config(TMFConfig, "tmf", recipe).features, t))



def audio_models(recipe: str, tasks: Sequence[str], vision: Sequence[str] = (layout.VISION_BASE,)) -> list[str]:
    """Audio feature stores the recipe's TMF uses for these tasks (every feature but the vision ones)."""
    return sorted({f for t in tasks for f in tmf_features(recipe, t) if f not in vision})



def build(cfg: RunConfig, inp: RunInputs, synth: str = "") -> list[Job]:
    """The recipe's jobs for this release, dependencies first. ``synth``: the job that writes the release."""

    tasks = [task(t).name for t in cfg.tasks]
    if tasks and task(tasks[0]).level == "video":  # A/H, EMI: run/build_video.py
        from abawkit.run.build_video import build_video

        return build_video(cfg, inp, synth, Builder(inp))
    if not tasks or not cfg.folds:
        raise AbawError("run: name at least one task and one fold")
    b = Builder(inp)
    if cfg.vision not in ("finetune", "frozen"):
        raise AbawError(f"run: vision must be finetune or frozen, got {cfg.vision!r}")
    compound = [a for p in inp.compound for a in ("--compound", str(p))]  # CE training faces
    prep = b.add(layout.PREP, "prep", ["prep", "--release", str(inp.release), *compound], [synth])
    frozen = frozen_job(b, inp, prep) if cfg.vision == "frozen" else {}
    pretrain = "" if frozen else _pretrain(b, inp, synth)
    audio = {m: _audio(b, inp, m, prep, synth) for m in audio_models(inp.recipe, tasks, (layout.VISION_BASE, vision_store(inp.recipe)))}
    name = submission_name(cfg, inp.recipe)
    for t in tasks:
        vision = frozen or _encoders(b, cfg, inp, t, prep, pretrain)
        feats = tmf_features(inp.recipe, t)
        for f in cfg.folds:
            b.add(layout.tmf(t, f), "tmf", ["train", "tmf", "--task", t, "--fold", str(f)],
                  [vision.get(f, vision.get(0, "")), *(audio[m] for m in feats if m in audio)])
        _finish(b, cfg, t, name)
    return b.jobs



def _pretrain(b: Builder, inp: RunInputs, synth: str) -> str:
    if inp.mae is not None:
        if not inp.mae.exists():
            raise AbawError(f"--mae {inp.mae}: checkpoint file or folder not found")
        return ""
    from abawkit.stages.pretrain import PretrainConfig

    images = inp.images
    faces = inp.release / "pretrain_faces"
    in_recipe = load_config(PretrainConfig, "pretrain", inp.recipe).data.images
    if images is None and not in_recipe and (faces.is_dir() or inp.synth_faces):
        images = faces  # the synthetic stand-in for an external face collection
    args = ["pretrain", *(["--images", str(images)] if images else [])]
    return b.add(layout.PRETRAIN, "pretrain", args, [synth] if images or in_recipe else [layout.PREP])



def _audio(b: Builder, inp: RunInputs, model: str, prep: str, synth: str = "") -> str:
    """The job of a non-vision store TMF fuses: ``extract audio --model M``, or for ``text`` ``extract text``
    (both as the video-level plan makes them, run/build_video.py)."""
    if model == TEXT:
        return b.add(layout.features(TEXT), "extract", text_args(inp, inp.recipe, bool(synth)), [prep])
    return audio_job(b, inp, model, prep)



def _encoders(b: Builder, cfg: RunConfig, inp: RunInputs, t: str, prep: str, pretrain: str) -> dict[int, str]:
    """finetune + extract vision per encoder fold -> {fold: its vision feature job}."""
    folds = cfg.encoder_folds or cfg.folds
    if any(f not in folds for f in cfg.folds) and 0 not in folds:
        raise AbawError("run: folds without their own encoder use fold 0's: add 0 to encoder_folds")
    out = {}
    for f in folds:
        init = ["--init", str(inp.mae)] if inp.mae else []
        ft = b.add(layout.finetune(t, f), "finetune", ["finetune", "--task", t, "--fold", str(f), *init], [prep, pretrain])
        base = vision_store(inp.recipe)
        store = layout.vision_store(t, f, base)
        name = ["--name", store] if base != layout.VISION_BASE else []  # a recipe's vision.name would be every task's
        out[f] = b.add(layout.features(store), "extract", ["extract", "vision", "--task", t, "--fold", str(f), *name], [ft])
    return out



def _finish(b: Builder, cfg: RunConfig, t: str, name: str) -> None:
    """ensemble (weighted by each fold's validation score) -> smooth-search (fold 0) -> submit -> validate."""

    w = b.inp.workdir
    tmf = [layout.tmf(t, f) for f in cfg.folds]
    preds = [str(w / j / "pred_test.parquet") for j in tmf]
    vals = [a for j in tmf for a in ("--val", str(w / j / "pred_val.parquet"))]
    ens = b.add(layout.ensemble(t), "ensemble", ["ensemble", *preds, *vals], tmf)
    smooth = b.add(layout.smooth(t), "smooth", ["smooth-search", "--task", t, "--pred", str(w / tmf[0] / "pred_val.parquet")],
                   [tmf[0]])
    tag = formats.tag(t)
    sub = b.add(layout.submit_job(t), "submit", ["submit", "--track", t, "--name", name,
                                                 "--out", str(layout.path(w, layout.SUBMISSIONS))],
                [ens, smooth], marker=f"{layout.submission(name)}/submission_{tag}.json", force=())
    b.add(layout.validate_job(t), "validate", ["validate", str(layout.path(w, layout.submission(name)) / formats.file_name(t)),
                                        "--track", t, "-w", str(w)], [sub], marker="", common=False, force=())
