"""Config loading: TOML -> frozen dataclasses, unknown keys, type errors, --set overrides."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from abawkit.config import from_dict, load_config, parse_overrides, to_dict
from abawkit.errors import AbawError


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    betas: tuple[float, ...] = (0.9, 0.95)


@dataclass(frozen=True)
class Cfg:
    seed: int = 0
    name: str = "x"
    tag: str | None = None
    optim: Optim = field(default_factory=Optim)


def write_recipe(tmp_path, text):
    d = tmp_path / "rec"
    d.mkdir()
    (d / "train.toml").write_text(text)
    return d


def test_load_nested_and_override(tmp_path):
    d = write_recipe(tmp_path, "# abaw train\nseed = 3\n[optim]\nlr = 0.5\n")
    cfg = load_config(Cfg, "train", d, ["optim.lr=1e-4", "name=run7", "optim.betas=[0.8, 0.9]"], seed=None)
    assert cfg == Cfg(seed=3, name="run7", optim=Optim(lr=1e-4, betas=(0.8, 0.9)))
    assert load_config(Cfg, "train", d, None, seed=11).seed == 11  # CLI option wins


def test_unknown_key_names_key_and_file(tmp_path):
    d = write_recipe(tmp_path, "[optim]\nlrr = 1\n")
    with pytest.raises(AbawError, match=r"train.toml: unknown key optim.lrr"):
        load_config(Cfg, "train", d)


def test_wrong_type_is_an_error(tmp_path):
    d = write_recipe(tmp_path, 'seed = "three"\n')
    with pytest.raises(AbawError, match="seed must be int"):
        load_config(Cfg, "train", d)
    with pytest.raises(AbawError, match="seed must be int"):
        from_dict(Cfg, {"seed": True})


def test_int_promotes_to_float_and_strings_fall_back():
    assert parse_overrides(["a.b=3", "c=hello world", "d=true"]) == {"a": {"b": 3}, "c": "hello world", "d": True}
    assert from_dict(Cfg, {"optim": {"lr": 1}}).optim.lr == 1.0


def test_missing_recipe_is_one_line_error(tmp_path):
    with pytest.raises(AbawError, match="has no nothing.toml"):
        load_config(Cfg, "nothing", tmp_path)


def test_to_dict_roundtrip():
    cfg = Cfg(optim=Optim(betas=(0.1, 0.2)))
    assert from_dict(Cfg, to_dict(cfg)) == cfg
