"""The emotional mimicry intensity submission (ABAW 6/8/10, Hume-Vidmimic2): one CSV per team.

Header ``Filename,Admiration,Amusement,Determination,Empathic Pain,Excitement,Joy`` (as issue 27 states;
the same header heads the dataset's ``train_split.csv`` / ``valid_split.csv`` in public team code), then
one row per test video id (``00001``: the id is text and is compared as written) with 6 intensities in
[0, 1]. Rows in the order of the organisers' list (``read_list``: the first column of a CSV with a
``Filename`` header). Not confirmed: the file name the organisers asked for (``FILE`` is ours) and
whether they required the list's order (we do: it is what a strict check can promise). Video-level:
``expected`` maps each video to ``np.array([0])``. Reads and writes the one file it is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.errors import AbawError, where
from abawkit.formats.videolist import check_order
from abawkit.io import write_text
from abawkit.labels import EMI_NAMES, TaskSpec
from abawkit.submission import Problems, _lines, row_problem

FILE = "EMI_predictions.csv"
HEADER = ("Filename", *EMI_NAMES)
VIDEO_LEVEL = np.array([0], np.int64)


def n_values(spec: TaskSpec) -> int:
    return len(EMI_NAMES)


def value_columns(spec: TaskSpec) -> list[str]:
    return list(EMI_NAMES)


def write(out_dir: Path, spec: TaskSpec, rows: pd.DataFrame, outputs: np.ndarray) -> Path:
    """Header + one row per video (the list's order); outputs [N, 6] intensities in [0, 1]."""
    values = np.asarray(outputs, np.float64).reshape(len(rows), len(EMI_NAMES))
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise AbawError("EMI outputs must be finite intensities in [0, 1]")
    cells = np.char.mod("%.6f", values)
    body = "".join(f"{v}," + ",".join(c) + "\n" for v, c in zip(rows["video"].astype(str), cells))
    out = Path(out_dir) / FILE
    return write_text(out, ",".join(HEADER) + "\n" + body)


def read_ids(path: Path) -> list[str]:
    """The ``Filename`` column of a Hume-Vidmimic2 CSV, as text, in file order; a bad header is an error."""
    path = Path(path)
    if not path.is_file():
        raise AbawError(f"{path}: EMI list not found")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not lines or lines[0].split(",")[0].strip() != "Filename":
        raise AbawError(f"{where(path, 1, 'header')}: expected a CSV whose first column is Filename")
    ids = [ln.split(",", 1)[0].strip() for ln in lines[1:] if ln.strip()]
    dup = pd.Series(ids)[pd.Series(ids).duplicated()]
    if len(dup):
        raise AbawError(f"{where(path, 2 + ids.index(dup.iloc[0]))}: video {dup.iloc[0]} listed twice")
    return ids


def read_list(path: Path) -> dict[str, np.ndarray]:
    """The organisers' test list (a CSV with a ``Filename`` column): {video id: [0]} in order."""
    ids = read_ids(path)
    if not ids:
        raise AbawError(f"{path}: the EMI test list names no video")
    return {v: VIDEO_LEVEL for v in ids}


def validate(path: Path, spec: TaskSpec, expected: dict[str, np.ndarray]) -> Problems:
    """Every problem of an EMI file against ``expected`` ({video id: [0]} in the list's order)."""
    path, problems = Path(path), Problems()
    lines = _lines(path, problems)
    if lines is None:
        return problems
    body = lines[1:]
    if lines[0] != ",".join(HEADER):
        if lines[0].split(",")[0] in expected:
            problems.add(path, 1, f"missing header (expected {','.join(HEADER)})")
            body = lines
        else:
            problems.add(path, 1, f"wrong header: expected {','.join(HEADER)!r}, got {lines[0]!r}")
    first = len(lines) - len(body) + 1
    rows = []
    for i, line in enumerate(body, start=first):
        fields = line.split(",")
        if not fields[0]:
            problems.add(path, i, "empty line" if not line else "empty Filename")
            continue
        rows.append((i, fields[0]))
        if len(fields) != len(HEADER):
            problems.add(path, i, f"expected {len(HEADER)} columns, got {len(fields)}")
        elif msg := row_problem(spec, fields[1:]):
            problems.add(path, i, msg)
    check_order(path, list(expected), rows, problems)
    return problems


def read(path: Path, spec: TaskSpec) -> pd.DataFrame:
    """A valid file as video, frame (0), the 6 intensities."""
    df = pd.read_csv(path, dtype={"Filename": str})
    out = pd.DataFrame({"video": df["Filename"], "frame": 0})
    return pd.concat([out, df[list(EMI_NAMES)].astype(np.float64)], axis=1)


def read_truth(path: Path, spec: TaskSpec) -> pd.DataFrame:
    """Ground truth in the dataset's CSV shape (``Filename`` + the 6 names) as video, frame (0), label columns."""
    path = Path(path)
    df = pd.read_csv(path, dtype={"Filename": str})
    missing = [c for c in HEADER if c not in df.columns]
    if missing:
        raise AbawError(f"{where(path, 1, 'header')}: missing column(s) {', '.join(missing)}")
    out = pd.DataFrame({"video": df["Filename"], "frame": 0})
    labels = df[list(EMI_NAMES)].astype(np.float64)
    labels.columns = list(spec.label_columns)
    return pd.concat([out, labels], axis=1)
