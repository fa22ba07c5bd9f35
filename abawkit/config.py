"""Typed configs from TOML recipes.

A recipe is a folder ``recipes/<name>/`` holding one ``<stage>.toml`` per stage. Each file maps
onto a frozen dataclass (nested tables -> nested dataclasses). Unknown keys are errors naming the
key and the file; ``--set section.key=value`` overrides are parsed as TOML values (so ``lr=1e-4``
is a float and ``features=["mae","fbank"]`` a list), falling back to a plain string.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from abawkit.errors import AbawError

T = TypeVar("T")

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


def recipe_file(recipe: str | Path, stage: str) -> Path:
    """Find ``<stage>.toml`` of a recipe given by name (``demo``) or folder path."""
    base = Path(recipe)
    candidates = [base] if base.is_dir() else [Path.cwd() / "recipes" / str(recipe), RECIPES_DIR / str(recipe)]
    for folder in candidates:
        path = folder / f"{stage}.toml"
        if path.is_file():
            return path
    raise AbawError(f"recipe {recipe!r} has no {stage}.toml (looked in {', '.join(map(str, candidates))})")


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["optim.lr=1e-3", "name=x"]`` -> nested dict. Values are TOML literals or strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise AbawError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``over`` into a copy of ``base``."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise AbawError(f"{source}: {key} must be a table")
        return from_dict(hint, value, source, prefix=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key, source)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise AbawError(f"{source}: {key} must be a list, got {value!r}")
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, key, source) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        raise AbawError(f"{source}: {key} must be {hint.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], source: str = "config", prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise AbawError(f"{source}: unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(v, hints[k], prefix + k, source) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise AbawError(f"{source}: {exc}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> plain dict (tuples become lists), for JSON/TOML dumps and hashing."""

    def conv(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return conv(dataclasses.asdict(cfg))


def load_config(
    cls: type[T], stage: str, recipe: str | Path = "demo", overrides: list[str] | None = None, **cli: Any
) -> T:
    """Load ``recipes/<recipe>/<stage>.toml`` into ``cls``, then apply ``--set`` and CLI options.

    ``cli`` holds explicit command-line options (e.g. ``seed=3``); ``None`` values are ignored.
    """
    path = recipe_file(recipe, stage)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise AbawError(f"{path}: invalid TOML: {exc}") from None
    data = merge(data, parse_overrides(overrides))
    data = merge(data, {k: v for k, v in cli.items() if v is not None})
    return from_dict(cls, data, str(path))
