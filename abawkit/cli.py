"""The ``abaw`` command line. This file only registers commands; each lives in ``commands/``."""

from __future__ import annotations

import importlib

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
    app()


if __name__ == "__main__":
    main()
