"""The compound-expression (CE) track's files: the organisers' frame list, the submission, the truth.

CE (ABAW 6, 7 and 9, on C-EXPR-DB) ships unlabelled videos named ``01``, ``02``, ... and a frame list;
teams submit one file, header ``image_location,Fearfully_Surprised,...,Sadly_Angry`` (the 7 names of
``labels.CE_NAMES``), then ``01/00001.jpg,<class 0..6>`` for every row of the list, in the list's order.
The list is the truth: where it names one frame more than a video decodes to, the file still holds
that row. Reads the list, a submission or the synthetic release's truth
(``test_ground_truth/CE_Challenge/<video>.txt``, annotation format: header = the 7 names, line k+1 =
frame k's class); writes a submission (atomically). Nothing else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.errors import AbawError, where
from abawkit.files import visible
from abawkit.io import write_text
from abawkit.labels import CE_NAMES, TaskSpec
from abawkit.submission import LOCATION, Problems, _lines, value_problem

FILE = "CE_predictions.txt"
HEADER = ("image_location", *CE_NAMES)
TRUTH_FOLDER = "CE_Challenge"  # under test_ground_truth/ of a synthetic release
TRUTH = f"test_ground_truth/{TRUTH_FOLDER}"  # the synthetic release's truth, relative to its root


def n_values(spec: TaskSpec) -> int:
    """One class id per row."""
    return 1


def value_columns(spec: TaskSpec) -> list[str]:
    """The value column ``read`` returns: the class id, scored against the truth's ``CE`` column."""
    return ["class"]


def _location(rows: pd.DataFrame) -> pd.Series:
    return rows["video"].astype(str) + "/" + rows["frame"].astype(int).astype(str).str.zfill(5) + ".jpg"


def write(out_dir: Path, spec: TaskSpec, rows: pd.DataFrame, outputs: np.ndarray) -> Path:
    """Write ``rows`` (video, frame; the official list's order) with their class ids ``outputs`` [N] or [N, 1]."""
    values = np.asarray(outputs).reshape(len(rows), -1)
    if values.shape[1] != 1:
        raise AbawError(f"CE submission: expected one class id per row, got {values.shape[1]} values")
    if len(values) and not (np.isfinite(values).all() and (values == np.round(values)).all()
                            and values.min() >= 0 and values.max() < len(CE_NAMES)):
        raise AbawError(f"CE submission: class ids must be integers 0..{len(CE_NAMES) - 1}")
    body = pd.DataFrame({"loc": _location(rows).to_numpy(), "class": values[:, 0].astype(np.int64)})
    out = Path(out_dir) / FILE
    return write_text(out, ",".join(HEADER) + "\n" + body.to_csv(index=False, header=False, lineterminator="\n"))


def read_list(path: Path) -> dict[str, np.ndarray]:
    """The organisers' frame list as {video: frames}, videos and frames in the list's order.

    Rows are ``01/00001.jpg`` (anything after a comma is ignored); a first line that is not a location
    is the header. A row that is no location, or a frame listed twice, is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise AbawError(f"{path}: CE frame list not found")
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    out: dict[str, list[int]] = {}
    seen: set[tuple[str, int]] = set()
    for i, line in enumerate(lines, start=1):
        loc = line.split(",", 1)[0].strip()
        m = LOCATION.match(loc)
        if not m:
            if i == 1 or not loc:
                continue  # header, blank line
            raise AbawError(f"{where(path, i)}: expected a frame like 01/00001.jpg, got {loc!r}")
        key = (m["video"], int(m["frame"]))
        if key in seen:
            raise AbawError(f"{where(path, i)}: frame {loc} is listed twice")
        seen.add(key)
        out.setdefault(key[0], []).append(key[1])
    if not out:
        raise AbawError(f"{path}: the CE frame list names no frames")
    return {v: np.asarray(f, np.int64) for v, f in out.items()}


def validate(path: Path, spec: TaskSpec, expected: dict[str, np.ndarray]) -> Problems:
    """Every problem of a CE submission against the list ``expected`` (``read_list``): header, each row of
    the list in exactly that order (none missing, repeated, extra or swapped), two columns, class 0..6."""
    path, problems = Path(path), Problems()
    if not path.is_file():
        raise AbawError(f"{path}: not found")
    lines = _lines(path, problems)
    if lines is None:
        return problems
    if lines[0].strip().split(",") != list(HEADER):
        problems.add(path, 1, f"wrong header: expected {','.join(HEADER)!r}, got {lines[0].strip()!r}")
    want = [f"{v}/{f:05d}.jpg" for v, frames in expected.items() for f in frames]
    got = [line.split(",", 1)[0].strip() for line in lines[1:]]
    _check_order(path, want, got, problems)
    for i, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        if len(fields) != 2:
            problems.add(path, i, f"expected 2 columns (image_location,class), got {len(fields)}")
        elif msg := value_problem("multiclass", "class", fields[1].strip(), len(CE_NAMES)):
            problems.add(path, i, msg)
    return problems


def _check_order(path: Path, want: list[str], got: list[str], problems: Problems) -> None:
    """Rows against the list: the first row out of place, then what is repeated, extra or missing."""
    if got == want:
        return
    first = next((k for k, (w, g) in enumerate(zip(want, got)) if w != g), min(len(want), len(got)))
    if first < len(got):
        exp = repr(want[first]) if first < len(want) else "no more rows"
        problems.add(path, first + 2, f"row {got[first]!r} where the list has {exp}")
    pos = {loc: k for k, loc in enumerate(want)}
    seen: set[str] = set()
    repeated, extra = [], []
    for k, loc in enumerate(got):
        if loc not in pos:
            extra.append(k)
        elif loc in seen:
            repeated.append(k)
        seen.add(loc)
    for k in repeated[:5]:
        problems.add(path, k + 2, f"repeated row {got[k]!r}")
    for k in extra[:5]:
        problems.add(path, k + 2, f"extra row {got[k]!r} (not in the frame list)")
    missing = [loc for loc in want if loc not in seen]
    if missing:
        more = f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
        problems.add(path, len(got) + 2, f"missing {len(missing)} row(s) of the list: {', '.join(missing[:3])}{more}")


def read(path: Path, spec: TaskSpec) -> pd.DataFrame:
    """A valid submission as DataFrame(video, frame, class)."""
    df = pd.read_csv(path, skiprows=1, header=None, names=["loc", "class"], dtype={"loc": str})
    parts = df["loc"].str.extract(LOCATION.pattern)
    return pd.DataFrame({"video": parts["video"], "frame": parts["frame"].astype(np.int64),
                         "class": df["class"].astype(np.int64)})


def read_truth(path: Path, spec: TaskSpec) -> pd.DataFrame:
    """The synthetic release's truth: ``<video>.txt`` files in ``path``, ``path/CE_Challenge/`` or
    ``path/test_ground_truth/CE_Challenge/`` (``path`` the release); header = the 7 names, line k+1 =
    frame k's class; -1 = no label. Returns DataFrame(video, frame, CE)."""
    here = [Path(path) / "test_ground_truth" / TRUTH_FOLDER, Path(path) / TRUTH_FOLDER]  # release root, its truth folder
    folder = next((d for d in here if d.is_dir()), Path(path))
    files = visible(folder, ".txt")
    if not files:
        raise AbawError(f"{folder}: no <video>.txt CE truth files")
    tables = []
    for f in files:
        head = f.read_text().split("\n", 1)[0].strip()
        if head.split(",") != list(CE_NAMES):
            raise AbawError(f"{where(f, 1, 'header')}: expected {','.join(CE_NAMES)!r}, got {head!r}")
        cls = pd.read_csv(f, skiprows=1, header=None, usecols=[0]).iloc[:, 0].to_numpy(np.int64)
        tables.append(pd.DataFrame({"video": f.stem, "frame": np.arange(1, len(cls) + 1), "CE": cls}))
    return pd.concat(tables, ignore_index=True)
