"""Read a Hume-Vidmimic2 release (emotional mimicry intensity, ABAW 6/8/10) into ``VideoLabels``.

Confirmed from public team code: ``train_split.csv`` and ``valid_split.csv`` with the header
``Filename,Admiration,Amusement,Determination,Empathic Pain,Excitement,Joy``, one row per video, the
``Filename`` a 5-digit id (``00001``) kept as text, intensities in [0, 1]. Assumed, not confirmed: the test
list is ``test_split.csv`` with a ``Filename`` column (other columns, if any, ignored), and each video is a
media file named by its id (``raw/00001.mp4`` or anywhere under the release root). Reads the files it
finds; writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.errors import AbawError, where
from abawkit.files import walk
from abawkit.formats.emi import HEADER, read_ids
from abawkit.labels import EMI_NAMES, TASKS
from abawkit.release.videolabels import VideoLabels, find_media
from abawkit.video.media import VIDEO_EXTS

SPLIT_FILES = {"train_split.csv": "train", "valid_split.csv": "val"}
TEST_FILE = "test_split.csv"
GROUND_TRUTH = "test_ground_truth"


def read_split_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """(ids [V], intensities [V, 6]) of one split CSV; a bad header, value or id names file:line."""
    try:
        df = pd.read_csv(path, dtype={"Filename": str}, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise AbawError(f"{path}: not a CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in HEADER if c not in df.columns]
    if missing:
        raise AbawError(f"{where(path, 1, 'header')}: missing column(s) {', '.join(missing)} (expected {','.join(HEADER)})")
    values = np.full((len(df), len(EMI_NAMES)), np.nan)
    for j, c in enumerate(EMI_NAMES):
        values[:, j] = pd.to_numeric(df[c], errors="coerce")
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise AbawError(f"{where(path, int(r) + 2, EMI_NAMES[c])}: intensity must be in [0, 1], got {df.iloc[r][EMI_NAMES[c]]!r}")
    ids = df["Filename"].str.strip().tolist()
    dup = df["Filename"][df["Filename"].duplicated()]
    if len(dup):
        raise AbawError(f"{where(path, int(dup.index[0]) + 2, 'Filename')}: video {dup.iloc[0]} listed twice")
    return ids, values.astype(np.float32)


def find_files(root: Path) -> dict[str, Path]:
    """{file name: path} of the split CSVs and the test list under ``root`` (first in sorted walk order)."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, files in walk(root):
        dirnames[:] = [d for d in dirnames if d != GROUND_TRUTH]
        for f in files:
            if f in SPLIT_FILES or f == TEST_FILE:
                found.setdefault(f, Path(dirpath) / f)
    if "train_split.csv" not in found:
        raise AbawError(f"no Hume-Vidmimic2 train_split.csv ({','.join(HEADER)}) under {root}")
    return found


def present(root: str | Path) -> bool:
    """Does ``root`` hold a Hume-Vidmimic2 ``train_split.csv``?"""
    return any("train_split.csv" in files for _, _, files in walk(Path(root)))


def read_emi(root: str | Path) -> VideoLabels:
    """The EMI track of a Hume-Vidmimic2 release: labelled videos, test list, media."""
    root = Path(root).resolve()
    files = find_files(root)
    out = VideoLabels(TASKS["emi"])
    values = []
    for name, role in SPLIT_FILES.items():
        if name not in files:
            continue
        ids, v = read_split_csv(files[name])
        clash = sorted(set(ids) & set(out.names))
        if clash:
            raise AbawError(f"{files[name]}: video {clash[0]} is in two splits")
        out.names += ids
        out.roles += [role] * len(ids)
        out.files += [files[name]] * len(ids)
        values.append(v)
    out.values = np.concatenate(values)  # [V, 6]
    out.template = files.get(TEST_FILE)
    out.tests = read_ids(out.template) if out.template else []
    out.media = find_media(root, out.names + out.tests, VIDEO_EXTS)
    return out
