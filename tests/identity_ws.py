"""One tiny trained workspace for the issue-23 identity tests, made through the CLI only, once per session.

``abaw synth`` (14 videos of 60 frames, 64 px crops) then ``abaw run --tasks va --folds 0`` with the demo recipe
at tiny size (pretrain 1 epoch, finetune 1, TMF 2); VA's TMF fuses ``mae`` and ``hubert``, a 2-layer HuBERT
written with transformers into ``<ws>/checkpoints/hubert``: inside the workspace, so a copy of the workspace
(``copy_ws``) carries its own checkpoint folder (the contract records checkpoint paths relative to the
workspace when they are inside it). About 75 s on 2 cores. Tests never change it: they copy it first.

Only the CLI and files on disk are used (modules are being moved): no ``abawkit`` import but ``abawkit.cli``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from abawkit.cli import app

runner = CliRunner()
RECIPES = Path(__file__).resolve().parent.parent / "recipes"
TINY = {  # recipe file -> (key, value) replacements on top of recipes/demo
    "synth.toml": [("videos", "14"), ("frames", "60"), ("size", "64"), ("faces", "128")],
    "pretrain.toml": [("epochs", "1"), ("preview", "2")],
    "finetune.toml": [("epochs", "1")],
    "tmf.toml": [("epochs", "2"), ("va", '["mae", "hubert"]')],
    "predict.toml": [("tasks", '["va"]'), ("detector", '"haar"'), ("align", '"none"')],
}


@dataclass(frozen=True)
class Trained:
    root: Path
    release: Path  # the synthetic release (read-only)
    recipe: Path  # the tiny recipe folder
    ws: Path  # the trained workspace (read-only: copy it with ``copy_ws``)


def tiny_recipe(dst: Path, **extra: list[tuple[str, str]]) -> Path:
    """recipes/demo at tiny size into ``dst``; ``extra``: more replacements, by file stem (tmf=[...])."""
    shutil.copytree(RECIPES / "demo", dst)
    changes = {k: list(v) for k, v in TINY.items()}
    for stem, more in extra.items():
        changes.setdefault(f"{stem}.toml", []).extend(more)
    for name, subs in changes.items():
        text = (dst / name).read_text()
        for key, value in subs:
            text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
            assert n >= 1, f"{name} has no {key}"
        (dst / name).write_text(text)
    return dst


def write_hubert(folder: Path, seed: int) -> Path:
    """A 2-layer HuBERT (hidden 16) saved with transformers; another ``seed``: same shapes, other weights
    (a checkpoint "retrained in place")."""
    import torch
    import transformers

    torch.manual_seed(seed)
    cfg = transformers.HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                    conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    transformers.HubertModel(cfg).save_pretrained(folder)
    return folder


def invoke(*args: object, ok: bool = True):
    """``abaw ARGS`` in this process (CliRunner); ``ok``: assert exit 0. Returns the result."""
    res = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert res.exit_code == 0, res.output
    return res


def abaw(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m abawkit.cli ARGS`` in a subprocess, 400 columns wide (rich wraps nothing), stdout + stderr."""
    full = {**os.environ, "COLUMNS": "400", **(env or {})}
    return subprocess.run([sys.executable, "-m", "abawkit.cli", *map(str, args)], cwd=cwd, env=full,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)


def flat(text: str) -> str:
    """Output with every run of whitespace made one space (rich wraps long lines at 80 columns)."""
    return " ".join(text.split())


_BUILT: dict[str, Trained] = {}


def trained(tmp_path_factory) -> Trained:
    """The session's trained workspace (built on first use; both identity test modules share it)."""
    if "ws" not in _BUILT:
        root = tmp_path_factory.mktemp("identity")
        recipe = tiny_recipe(root / "recipe")
        release = root / "release"
        invoke("synth", release, "--recipe", recipe)
        ws = root / "ws"
        write_hubert(ws / "checkpoints" / "hubert", seed=0)
        res = invoke("run", "--release", release, "-w", ws, "--recipe", recipe, "--tasks", "va", "--folds", "0",
                     "--audio", f"hubert={ws / 'checkpoints' / 'hubert'}", "--jobs", "2")
        assert "tmf/va/fold0" in res.output
        _BUILT["ws"] = Trained(root, release, recipe, ws)
    return _BUILT["ws"]


def copy_ws(t: Trained, dst: Path) -> Path:
    """A private copy of the trained workspace (mtimes kept, so its plan reads as it did)."""
    shutil.copytree(t.ws, dst, symlinks=True)
    return dst


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifests(ws: Path) -> list[Path]:
    """Every stage's manifest.json under ``ws`` (not those inside a ``.partial``)."""
    return [p for p in Path(ws).rglob("manifest.json") if not any(s.endswith(".partial") for s in p.parts)]


def perturb_checkpoint(path: Path, seed: int = 1, scale: float = 0.5) -> None:
    """Rewrite a torch checkpoint in place with every float tensor of its state dict moved by noise: the same
    format and shapes, other weights (an encoder "retrained in place")."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    g = torch.Generator().manual_seed(seed)
    sd = obj["model"] if isinstance(obj, dict) and isinstance(obj.get("model"), dict) else obj
    for k, v in sd.items():
        if torch.is_tensor(v) and v.is_floating_point():
            sd[k] = v + scale * torch.randn(v.shape, generator=g, dtype=v.dtype)
    torch.save(obj, path)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
