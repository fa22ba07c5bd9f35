"""Options shared by the stage commands, and the wrapper that turns errors into one line."""

from __future__ import annotations

import contextlib
import errno
import functools
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

import typer
from rich.markup import escape

from abawkit.console import console
from abawkit.errors import AbawError

Workdir = Annotated[Path, typer.Option("--workdir", "-w", help="Workspace folder (one subfolder per stage).")]
Recipe = Annotated[str, typer.Option("--recipe", "-r", help="Recipe name under recipes/ or a recipe folder.")]
Sets = Annotated[
    Optional[list[str]], typer.Option("--set", "-s", help="Override a recipe value: section.key=value (repeatable).")
]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides the recipe).")]
Force = Annotated[bool, typer.Option("--force", help="Re-run and overwrite a finished stage.")]
Resume = Annotated[bool, typer.Option("--resume/--no-resume", help="Continue an interrupted run from its last checkpoint.")]
Trust = Annotated[bool, typer.Option(
    "--trust-checkpoint",
    help="Fully unpickle checkpoint files (they can then run code): only for files from a source you trust.")]

DEFAULT_WORKDIR = Path("abaw-work")
DEFAULT_RECIPE = "demo"


@contextlib.contextmanager
def checkpoint_trust(enabled: bool) -> Iterator[None]:
    """Scope of ``--trust-checkpoint``: a warning, then every checkpoint read inside is fully unpickled."""
    from abawkit.models.checkpoints import trusting

    if enabled:
        console.print("[yellow]warning:[/] --trust-checkpoint: checkpoint files are fully unpickled and can run "
                      "any code they hold; use it only for files from a source you trust", soft_wrap=True)
    with trusting(enabled):
        yield


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command and end every way it can fail in one line and a non-zero exit code.

    ``AbawError`` -> its line + its code (2); Ctrl-C -> how to resume + 130 (128 + SIGINT, the shell
    convention); a workdir that cannot be written (read-only, full disk, no permission) -> 2;
    a finished stage -> a note + 0.
    """
    from abawkit.workspace.stage import Interrupted, StageDone

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StageDone as done:
            console.print(f"[yellow]skip:[/] {done}")
            return None
        except Interrupted as stop:
            console.print(f"[yellow]interrupted:[/] {escape(str(stop))}", soft_wrap=True)
            raise typer.Exit(stop.code) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted:[/] nothing was half-written; finished stages are kept: "
                          "run the same command again to continue", soft_wrap=True)
            raise typer.Exit(130) from None
        except AbawError as err:
            console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
            raise typer.Exit(err.code) from None
        except OSError as exc:
            if exc.errno not in _ENV_ERRNOS:
                raise
            console.print(f"[red]error:[/] {escape(_os_error_line(exc))}", soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


_ENV_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EIO}


def _os_error_line(exc: OSError) -> str:
    """``<file>: <reason>`` plus what to do: these are the user's disk, not a bug."""
    hint = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space", errno.EROFS: "the file system is read-only",
            errno.EIO: "check the disk"}.get(exc.errno or 0, "check the folder's permissions")
    return (f"{exc.filename or 'workdir'}: cannot write ({exc.strerror}); {hint}, then run the command again "
            "(finished files are intact)")


def train_folds(cfg_cls: type, stage: str, run: Callable, spec: Any, fold: str, features: str | None,
                workdir: Path, recipe: str, sets: list[str] | None, seed: int | None, resume: bool, force: bool,
                trust: bool, title: str) -> None:
    """``--fold N|all`` of a temporal trainer (``train tmf``, ``train video``): load each fold's config
    (``--features`` as a ``features.<task>`` override), run it, print one table of validation scores."""
    from abawkit.config import load_config
    from abawkit.console import table
    from abawkit.data.tables import N_FOLDS
    from abawkit.workspace.stage import StageDone

    if fold == "all":
        folds = list(range(N_FOLDS + 1))
    elif fold.isdigit():
        folds = [int(fold)]
    else:
        raise AbawError(f"--fold must be 0..{N_FOLDS} or all, got {fold!r}")
    sets = list(sets or [])
    if features is not None:
        names = [f.strip() for f in features.split(",") if f.strip()]
        sets.append(f"features.{spec.name}={names!r}".replace("'", '"'))
    rows = []
    with checkpoint_trust(trust):  # only resume checkpoints are read (one from an older abawkit)
        for f in folds:
            cfg = load_config(cfg_cls, stage, recipe, sets, seed=seed, task=spec.name, fold=f)
            try:
                metrics = run(workdir, cfg, force=force, resume=resume)
            except StageDone as done:
                console.print(f"[yellow]skip:[/] {done}")
                continue
            rows.append([str(f), f"{metrics['val_score']:.4f}", str(metrics["best_epoch"])])
    if rows:
        console.print(table(f"{title} {spec.name} ({spec.metric})", ["fold", "val", "best epoch"], rows))
