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
    where = {"run": "abawkit.run.build", "demo": "abawkit.run.demo"}.get(stage, f"abawkit.stages.{stage}")
    module = importlib.import_module(where)
    for name, obj in vars(module).items():
        if name.lower() == f"{stage}config" and dataclasses.is_dataclass(obj):
            return obj
    raise AssertionError(f"{where} has no {stage.capitalize()}Config dataclass")


def test_both_recipes_exist():
    names = {p.parent.name for p in RECIPE_FILES}
    assert {"demo", "abaw5"} <= names


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_loads_and_names_its_command(path: Path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and ("abaw " in first or "abawkit.cli" in first), f"{path} must start with the command that runs it"
    cfg = load_config(config_class(path.stem), path.stem, path.parent)
    assert isinstance(cfg.seed, int)


@pytest.mark.parametrize("path", sorted(RECIPES_DIR.glob("*/pretrain.toml")) + sorted(RECIPES_DIR.glob("*/finetune.toml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_training_recipe_keeps_its_batch_and_rate_on_any_number_of_ranks(path: Path):
    """Issue 25 (7): a fixed global batch (accum_steps follows the ranks) and MAE's blr x batch / 256."""
    from abawkit.engine import scaled

    train = load_config(config_class(path.stem), path.stem, path.parent).train
    for world in (1, 2, 8, 16):
        cfg = scaled(train, world)
        assert cfg.batch_size <= train.batch_size and cfg.batch_size * cfg.accum_steps * world == train.global_batch
        assert cfg.lr == train.blr * train.global_batch / 256


def test_the_demo_trains_at_the_rates_it_had_before_blr():
    """`abaw demo` numbers stay: blr x 64 / 256 is exactly the old absolute lr, at accum_steps 1."""
    from abawkit.engine import scaled

    for stage, old in (("pretrain", 1.5e-3), ("finetune", 5e-4)):
        cfg = scaled(load_config(config_class(stage), stage, "demo").train, 1)
        assert (cfg.lr, cfg.accum_steps, cfg.batch_size) == (old, 1, 64)
