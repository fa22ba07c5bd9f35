"""``abaw mix --from WORKDIR OUT``: synthetic compound faces from a classic workspace's EXPR-labelled crops.

C-EXPR-DB has no training labels; one way to a CE model is to mix compound faces from basic-labelled
ones (``compound.mix_compounds``: CutMix of upper and lower face halves, or Mixup). Reads
``<WORKDIR>/prep`` (``frames.parquet``: crop, EXPR, split_expr; train and val crops mix apart, so val
faces never share a source face with train ones). Writes the folder OUT, ready for
``abaw prep --compound OUT``: ``images/<split>_<k>.jpg`` and ``compound_list.txt`` (``image,class,split``
rows, class names of ``labels.CE_NAMES``), plus ``mix.json`` (settings, counts, compounds skipped for
want of faces). It writes into ``OUT.partial`` and renames it to OUT when complete.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from abawkit.compound import MODES, mix_pair, plan_mix
from abawkit.config import to_dict
from abawkit.console import console, progress
from abawkit.errors import AbawError
from abawkit.io import write_json, write_text
from abawkit.data.tables import load_prep
from abawkit.labels import CE_NAMES, TASKS
from abawkit.workspace.stage import swap_in

LIST_FILE = "compound_list.txt"
RECORD = "mix.json"
SPLITS = ("train", "val")


@dataclass(frozen=True)
class MixConfig:
    seed: int = 0
    per_class: int = 200  # synthetic faces per compound in train; val gets a quarter (at least 1)
    mode: str = "cutmix"  # cutmix | mixup | both (each face drawn one way or the other)
    size: int = 0  # side of the written faces; 0 = the size of the first crop


def _pool(frames: pd.DataFrame, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Crop paths and EXPR ids [K] of the labelled EXPR frames of ``split`` that have a crop."""
    col = TASKS["expr"].label_columns[0]
    keep = (frames["split_expr"] == split) & frames["crop"].notna() & (frames[col] != TASKS["expr"].invalid)
    return frames.loc[keep, "crop"].to_numpy(object), frames.loc[keep, col].to_numpy(np.int64)


def _read(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise AbawError(f"{path}: cannot read this crop (missing or not an image); re-run abaw prep")
    return img


def _side(path: str) -> int:
    """The side of the written faces when not given: the first crop's height."""
    return int(_read(path).shape[0])


def _load(path: str, size: int) -> np.ndarray:
    """A crop as BGR [size, size, 3] (resized only when it differs)."""
    img = _read(path)
    return img if img.shape[0] == size and img.shape[1] == size else cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def mix_split(crops: np.ndarray, expr: np.ndarray, n: int, cfg: MixConfig, stream: int, size: int,
              out: Path, split: str) -> tuple[list[str], dict[str, int]]:
    """Write ``n`` faces per compound of one split under ``out/images``; returns list rows and skipped."""
    plan = plan_mix(expr, n, cfg.seed, cfg.mode, stream)
    cache: dict[int, np.ndarray] = {}
    rows = []
    (out / "images").mkdir(parents=True, exist_ok=True)
    with progress(transient=True) as bar:
        job = bar.add_task(f"mix {split}", total=len(plan.labels))
        for k, ((i, j), label) in enumerate(zip(plan.pairs, plan.labels), start=1):
            for idx in (i, j):
                if idx not in cache:
                    cache[idx] = _load(crops[idx], size)
            img = mix_pair(cache[i], cache[j], str(plan.modes[k - 1]), int(plan.upper[k - 1]),
                           float(plan.cut[k - 1]), float(plan.lam[k - 1]))
            name = f"images/{split}_{k:05d}.jpg"
            cv2.imwrite(str(out / name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            rows.append(f"{name},{CE_NAMES[int(label)]},{split}")
            bar.advance(job)
    return rows, plan.skipped


def run(cfg: MixConfig, workdir: Path, out: Path, force: bool = False) -> dict:
    """Mix the faces, write OUT; returns the summary (faces per split, compounds skipped per split)."""
    if cfg.mode not in MODES or cfg.per_class < 1 or cfg.size < 0:
        raise AbawError(f"mix: need mode in {', '.join(MODES)}, per_class >= 1, size >= 0 "
                        f"(got {cfg.mode!r}, {cfg.per_class}, {cfg.size})")
    out = Path(out)
    if out.exists() and not force:
        raise AbawError(f"{out} already exists; pass --force to replace it")
    frames = load_prep(workdir).frames
    pools = {s: _pool(frames, s) for s in SPLITS}
    if not len(pools["train"][0]):
        raise AbawError(f"{workdir}/prep has no EXPR-labelled train frames with a crop: mix needs a classic (Aff-Wild2) prep")
    size = cfg.size or _side(pools["train"][0][0])
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    rows, summary = [], {"faces": {}, "skipped": {}}
    for stream, split in enumerate(SPLITS):
        crops, expr = pools[split]
        n = cfg.per_class if split == "train" else max(1, cfg.per_class // 4)
        got, skipped = mix_split(crops, expr, n, cfg, stream, size, partial, split) if len(crops) else ([], {"all": n})
        rows += got
        summary["faces"][split], summary["skipped"][split] = len(got), skipped
    if not rows:
        shutil.rmtree(partial, ignore_errors=True)
        raise AbawError(f"{workdir}/prep: no compound could be mixed (each needs train faces of both its basic "
                        f"expressions); missing: {', '.join(summary['skipped']['train'])}")
    write_text(partial / LIST_FILE, "image,class,split\n" + "".join(f"{r}\n" for r in rows))
    write_json(partial / RECORD, {"config": to_dict(cfg), "workdir": str(Path(workdir).resolve()), "summary": summary})
    swap_in(partial, out)
    console.print(f"compound faces: {out} ({summary['faces']['train']} train, {summary['faces']['val']} val; "
                  f"{cfg.mode}, {size} px)")
    for split, sk in summary["skipped"].items():
        if sk:
            console.print(f"[yellow]note:[/] {split}: no faces for {', '.join(sk)}", soft_wrap=True)
    return summary
