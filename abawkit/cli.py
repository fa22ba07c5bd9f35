"""The ``abaw`` command line. This file only registers commands; each lives in ``commands/``."""

from __future__ import annotations

import contextlib
import importlib
import os
from pathlib import Path

import typer

app = typer.Typer(
    name="abaw",
    help="ABAW toolkit: Aff-Wild2 release -> MAE + TMF models -> smoothed, validated submissions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module exposes register(app). Import order is the order in `abaw --help`.
COMMAND_MODULES = (
    "synth",
    "prep",
    "mix",
    "split",
    "pretrain",
    "finetune",
    "extract",
    "train",
    "evaluate",
    "ensemble",
    "zeroshot",
    "smooth",
    "submit",
    "validate",
    "report",
    "predict",
    "run",
    "status",
    "demo",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"abawkit.commands.{_name}").register(app)


def main() -> None:
    from abawkit import preempt

    preempt.install()  # SLURM's USR1 before a time limit may come while torch still imports
    code: int | str | None = 1  # an exception escaping app(): Python exits 1
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code
        raise
    finally:
        _write_status(code)


def _write_status(code: int | str | None) -> None:
    """Under a batch script (``run/slurm.py`` sets the variable): the exit status, as the command itself saw it.
    The script's ``wait`` can be cut short by a USR1 that races the command's end and then report 138."""
    path = os.environ.get("ABAW_EXIT_STATUS_FILE")
    if path:
        status = code if isinstance(code, int) else (0 if code is None else 1)
        with contextlib.suppress(OSError):
            Path(path).write_text(f"{status}\n")


if __name__ == "__main__":
    main()
