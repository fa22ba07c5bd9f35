"""Parallel jobs: the whole demo-sized run with ``--jobs 2`` against ``--jobs 1``, same numbers required.

Runs ``abaw demo --jobs 1`` then ``abaw demo --jobs 2`` (each from scratch, in its own temp workspace) with
the demo recipe, prints both wall times and their ratio (goal on 2 cores: <= 0.75) and checks that the
ablation tables are identical. ``--videos/--frames/--faces/--epochs`` shrink the synthetic release and the
training for a quick look (the acceptance number is the default, demo-sized run: ~20 min on 2 cores).
Run: ``.venv/bin/python benchmarks/bench_run.py [--videos 14 --frames 60 --faces 128 --epochs 1]``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from abawkit.config import RECIPES_DIR


def recipe(dst: Path, args: argparse.Namespace) -> Path:
    """The demo recipe, with the release and epochs shrunk where asked."""
    shutil.copytree(RECIPES_DIR / "demo", dst)
    changes = {"synth.toml": {"videos": args.videos, "frames": args.frames, "faces": args.faces},
               "pretrain.toml": {"epochs": args.epochs}, "finetune.toml": {"epochs": args.epochs}}
    for name, keys in changes.items():
        text = (dst / name).read_text()
        for key, value in keys.items():
            if value is not None:
                text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        (dst / name).write_text(text)
    return dst


def demo(root: Path, rec: Path, jobs: int) -> tuple[float, list]:
    work = root / f"jobs{jobs}"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "abawkit.cli", "demo", "-w", str(work), "--recipe", str(rec),
                    "--jobs", str(jobs)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, json.loads((work / "demo" / "ablation.json").read_text())["rows"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key in ("videos", "frames", "faces", "epochs"):
        ap.add_argument(f"--{key}", type=int, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rec = recipe(Path(tmp) / "recipe", args)
        one, rows1 = demo(Path(tmp), rec, 1)
        two, rows2 = demo(Path(tmp), rec, 2)
    from abawkit.console import console, table

    cols = list(rows2[0]) if rows2 else []
    console.print(table("ablation (--jobs 2)", cols, [["-" if r[c] is None else r[c] for c in cols] for r in rows2]))
    print(f"abaw demo --jobs 1: {one:.1f} s, --jobs 2: {two:.1f} s -> ratio {two / one:.2f} (goal <= 0.75); "
          f"ablation tables {'identical' if rows1 == rows2 else 'DIFFER'}")
    if rows1 != rows2:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
