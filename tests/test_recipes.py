"""Every shipped recipe file loads into its stage's config dataclass and starts with its command."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest

from abawkit.config import RECIPES_DIR, load_config

RECIPE_FILES = sorted(RECIPES_DIR.glob("*/*.toml"))


def config_class(stage: str) -> type:
    """The stage module's config: the dataclass named ``<stage>Config`` (case-insensitive)."""
    module = importlib.import_module(f"abawkit.stages.{stage}")
    for name, obj in vars(module).items():
        if name.lower() == f"{stage}config" and dataclasses.is_dataclass(obj):
            return obj
    raise AssertionError(f"abawkit.stages.{stage} has no {stage.capitalize()}Config dataclass")


def test_both_recipes_exist():
    names = {p.parent.name for p in RECIPE_FILES}
    assert {"demo", "abaw5"} <= names


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_loads_and_names_its_command(path: Path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and ("abaw " in first or "abawkit.cli" in first), f"{path} must start with the command that runs it"
    cfg = load_config(config_class(path.stem), path.stem, path.parent)
    assert isinstance(cfg.seed, int)
