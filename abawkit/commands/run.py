"""``abaw run``: the whole recipe on a release, as a plan of jobs run in parallel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from abawkit.commands._options import (
    DEFAULT_RECIPE,
    DEFAULT_WORKDIR,
    Force,
    Recipe,
    Seed,
    Sets,
    Workdir,
    friendly,
)

Gpus = Annotated[Optional[str], typer.Option(help="GPUs to use, e.g. 0,1,2,3: one job per GPU at a time; counted within an inherited CUDA_VISIBLE_DEVICES.")]
Jobs = Annotated[Optional[int], typer.Option("--jobs", "-j", help="Parallel jobs without --gpus, spread over the visible GPUs (default: run.toml's jobs).")]


@friendly
def run(
    release: Annotated[Optional[Path], typer.Option("--release", help="Release root (annotation folders, cropped_aligned/, videos/).")] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    recipe: Recipe = DEFAULT_RECIPE,
    mae: Annotated[Optional[Path], typer.Option("--mae", "--backbone", help="An MAE checkpoint or a backbone (DINOv2, CLIP... file or folder): skip pre-training, fine-tune from it (or extract from it: vision = \"frozen\").")] = None,
    audio: Annotated[Optional[list[str]], typer.Option("--audio", help="Audio checkpoint as MODEL=PATH, e.g. hubert=DIR (repeatable).")] = None,
    images: Annotated[Optional[Path], typer.Option(help="Face images for MAE pre-training (default: the prep crops).")] = None,
    tasks: Annotated[Optional[str], typer.Option(help="Comma-separated tasks (default: run.toml's), e.g. expr,va.")] = None,
    compound: Annotated[Optional[list[Path]], typer.Option(help="CE: a compound-labelled face list or folder prep adds as training rows (repeatable).")] = None,
    track: Annotated[Optional[str], typer.Option(help="One track of a later edition: mtl, ce, ah, ah_frames or emi (its tasks; with the default recipe, the recipe demo-<track>).")] = None,
    asr: Annotated[Optional[Path], typer.Option("--asr", help="A/H, EMI: a local Whisper folder transcribing the videos (default: the release's transcripts/).")] = None,
    text_encoder: Annotated[Optional[Path], typer.Option("--text-encoder", help="A/H, EMI: a local transformers text encoder folder (default: extract.toml's [text] encoder).")] = None,
    folds: Annotated[Optional[str], typer.Option(help="Comma-separated TMF folds (default: run.toml's), e.g. 0,1,2.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Submission folder name (default: submit.toml's).")] = None,
    gpus: Gpus = None,
    jobs: Jobs = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and each job's state; run nothing.")] = False,
    sets: Sets = None,
    seed: Seed = None,
    force: Force = False,
    launcher: Annotated[str, typer.Option(help="local (subprocesses on this machine) or slurm (one sbatch job per job, afterok dependencies).")] = "local",
    wait: Annotated[bool, typer.Option("--wait", help="With --launcher slurm: follow the jobs to the end (exit 1 if one failed).")] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="Cancel the workspace's queued and running SLURM jobs, then stop.")] = False,
) -> None:
    """Run every stage the recipe needs as a graph of jobs; finished jobs are skipped, interrupted ones resume.

    prep -> pretrain (or --mae) -> finetune (per task and fold) -> extract vision (per task and fold) and
    audio (per model) -> tmf (per task and fold) -> ensemble, smooth-search, submit, validate (per task).
    Each job is a subprocess logging to <workdir>/run/logs/<job>.log, one per GPU with --gpus, --jobs N on
    CPU; or, with --launcher slurm, a SLURM job (resources from run.toml [slurm]); --dry-run prints the
    plan; `abaw status -w W` shows where a run stands; a repeated run redoes only what is not done.
    """
    from abawkit.config import load_config
    from abawkit.errors import AbawError
    from abawkit.run import build, launch

    if cancel:
        launch.cancel(workdir.resolve())
        return
    if release is None:
        raise AbawError("abaw run: --release is required (the release root), e.g. --release /data/Aff-Wild2")
    recipe, task_list = track_recipe(track, recipe, _csv(tasks, "--tasks"))
    over = {"tasks": task_list, "folds": _csv(folds, "--folds", int), "name": name, "jobs": jobs}
    cfg = load_config(build.RunConfig, "run", recipe, sets, **over)
    inp = build.RunInputs(workdir.resolve(), build.resolve_recipe(recipe), release.resolve(),
                          mae=mae.resolve() if mae else None, audio=_audio(audio), seed=seed,
                          images=images.resolve() if images else None, text=_text(asr, text_encoder),
                          compound=tuple(p.resolve() for p in compound or ()))
    if not inp.release.is_dir():
        raise AbawError(f"--release {release}: folder not found")
    launch.run(cfg, inp, gpus=gpus, dry_run=dry_run, force=force, launcher=launcher, wait=wait)


def track_recipe(track: str | None, recipe: str, tasks: list | None) -> tuple[str, list | None]:
    """``--track T``: tasks = [T], and the default recipe becomes ``demo-T`` (a track's recipe folder)."""
    from abawkit.commands._options import DEFAULT_RECIPE
    from abawkit.console import console
    from abawkit.errors import AbawError
    from abawkit.labels import task

    if track is None:
        return recipe, tasks
    spec = task(track)
    if tasks and tasks != [spec.name]:
        raise AbawError(f"--track {spec.name} and --tasks {','.join(tasks)}: give one of them")
    if recipe == DEFAULT_RECIPE and spec.name not in ("au", "expr", "va"):
        recipe = f"demo-{spec.name}"
        console.print(f"track {spec.name}: recipe {recipe}")
    return recipe, [spec.name]


def _csv(value: str | None, flag: str, cast: type = str) -> list | None:
    from abawkit.errors import AbawError

    if value is None:
        return None
    try:
        return [cast(v.strip()) for v in value.split(",") if v.strip()]
    except ValueError:
        raise AbawError(f"{flag} {value!r}: expected comma-separated {cast.__name__} values") from None


def _text(asr: Path | None, encoder: Path | None) -> dict[str, str]:
    """``--asr`` / ``--text-encoder`` -> {"asr": folder, "encoder": folder} (absolute; each must exist)."""
    from abawkit.errors import AbawError

    out = {}
    for key, flag, path in (("asr", "--asr", asr), ("encoder", "--text-encoder", encoder)):
        if path is None:
            continue
        if not path.is_dir():
            raise AbawError(f"{flag} {path}: folder not found")
        out[key] = str(path.resolve())
    return out


def _audio(items: list[str] | None) -> dict[str, str]:
    """``["hubert=DIR", "vggish=FILE"]`` -> {model: absolute path}."""
    from abawkit.errors import AbawError

    out = {}
    for item in items or []:
        model, sep, path = item.partition("=")
        if not sep or not model or not path:
            raise AbawError(f"--audio {item!r}: expected MODEL=PATH, e.g. hubert=/ckpt/hubert-large-ll60k")
        if not Path(path).exists():
            raise AbawError(f"--audio {item}: {path} not found")
        out[model.strip()] = str(Path(path).resolve())
    return out


def register(app: typer.Typer) -> None:
    app.command("run")(run)
