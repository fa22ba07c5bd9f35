"""Options shared by the stage commands, and the wrapper that turns errors into one line."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

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

DEFAULT_WORKDIR = Path("abaw-work")
DEFAULT_RECIPE = "demo"


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; ``AbawError`` -> one red line + its exit code, finished stage -> note + 0."""
    from abawkit.runs import StageDone

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StageDone as done:
            console.print(f"[yellow]skip:[/] {done}")
            return None
        except AbawError as err:
            console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
            raise typer.Exit(err.code) from None

    return wrapper
