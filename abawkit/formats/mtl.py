"""The MTL track's submission file (ABAW 7/11, s-Aff-Wild2): writer, strict validator, readers.

One text file: the header ``image,valence,arousal,expression,aus``, then one row per image of the
organisers' test list (``MTL.txt``), in exactly that order:
``video45_1/00001.jpg,<valence>,<arousal>,<expression 0..7>,<AU1>,...,<AU26>`` (15 values: VA floats in
[-1, 1], one class id, 12 AUs 0/1 in ``labels.AU_NAMES`` order). The validator reports every problem as
``file:line: message``. ``read_truth`` reads the synthetic release's test ground truth (the annotation
format of ``release/mtl.py``). Reads and writes only the files it is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.errors import AbawError
from abawkit.files import visible
from abawkit.io import write_text
from abawkit.labels import TaskSpec
from abawkit.release import mtl as rel
from abawkit.submission import Problems, _lines, row_problem

FILE = "MTL_predictions.txt"
HEADER = rel.HEADER


def value_columns(spec: TaskSpec) -> list[str]:
    """valence, arousal, expression, AU1..AU26: aligned with ``spec.label_columns`` (one class-id column per
    multiclass head)."""
    return [c for h in spec.heads for c in (["expression"] if h.kind == "multiclass" else list(h.names))]


def n_values(spec: TaskSpec) -> int:
    return len(value_columns(spec))


def write(out_dir: Path, spec: TaskSpec, rows: pd.DataFrame, outputs: np.ndarray) -> Path:
    """Write ``outputs`` [N, 15] (VA, class id, AU 0/1) for ``rows`` (video, frame; in the test list's
    order) to ``out_dir/MTL_predictions.txt`` atomically; returns the file."""
    outputs = np.asarray(outputs)
    if outputs.shape != (len(rows), n_values(spec)):
        raise ValueError(f"outputs {outputs.shape} for {len(rows)} rows of {n_values(spec)} values")
    frame = pd.Series(rows["frame"]).astype(np.int64).astype(str).str.zfill(5).to_numpy(object)
    table = pd.DataFrame({"image": rows["video"].astype(str).to_numpy(object) + "/" + frame + ".jpg",
                          "valence": outputs[:, 0].astype(np.float64), "arousal": outputs[:, 1].astype(np.float64)})
    ints = pd.DataFrame(outputs[:, 2:].astype(np.int64), columns=value_columns(spec)[2:])
    table = pd.concat([table, ints], axis=1)
    out = Path(out_dir) / FILE
    return write_text(out, HEADER + "\n" + table.to_csv(index=False, header=False, lineterminator="\n", float_format="%.6f"))


def read_list(path: Path) -> dict[str, np.ndarray]:
    """The organisers' test list as {video: frames} in its order (see ``release.mtl.read_test_list``)."""
    return rel.read_test_list(Path(path))


# ----------------------------------------------------------------------------- validator
class _Order:
    """Follows the rows against the expected sequence: extra, repeated, out-of-order and missing rows."""

    def __init__(self, path: Path, expected: dict[str, np.ndarray], problems: Problems) -> None:
        self.path, self.problems = path, problems
        self.names = [rel.image_name(v, int(f)) for v, fr in expected.items() for f in fr]
        self.pos = {n: k for k, n in enumerate(self.names)}
        self.seen: dict[str, int] = {}
        self.skipped: dict[int, int] = {}  # expected index passed over -> line where it was passed
        self.ptr = 0

    def see(self, name: str, line: int) -> None:
        k = self.pos.get(name)
        if k is None:
            self.problems.add(self.path, line, f"extra row: {name} is not in the test list")
        elif name in self.seen:
            self.problems.add(self.path, line, f"repeated row: {name} (first at line {self.seen[name]})")
        elif k < self.ptr:
            self.seen[name] = line
            self.skipped.pop(k, None)
            self.problems.add(self.path, line, f"row out of order: the test list has {name} before the row "
                                               f"at line {self._after(k)}")
        else:
            self.seen[name] = line
            self.skipped.update((m, line) for m in range(self.ptr, k))
            self.ptr = k + 1

    def _after(self, k: int) -> int:
        """The line of the first row already seen that the list puts after index ``k``."""
        return min(self.seen[n] for n in self.names[k + 1:self.ptr] if n in self.seen)

    def close(self, end: int) -> None:
        """Report missing rows, grouped by the line where they should have been."""
        gaps: dict[int, list[int]] = {}
        for k, line in sorted(self.skipped.items()):
            gaps.setdefault(line, []).append(k)
        if self.ptr < len(self.names):
            gaps.setdefault(end, []).extend(range(self.ptr, len(self.names)))
        for line, ks in sorted(gaps.items()):
            span = self.names[ks[0]] if len(ks) == 1 else f"{self.names[ks[0]]} .. {self.names[ks[-1]]}"
            self.problems.add(self.path, line, f"missing {len(ks)} row(s) of the test list: {span}")


def validate(path: Path, spec: TaskSpec, expected: dict[str, np.ndarray]) -> Problems:
    """Every problem of an MTL submission file against the test list ``expected`` ({video: frames}, in order)."""
    path, problems = Path(path), Problems()
    if not path.is_file():
        raise AbawError(f"{path}: not found")
    lines = _lines(path, problems)
    if lines is None:
        return problems
    names = value_columns(spec)
    first = lines[0].strip()
    has_header = not rel.IMAGE_RE.match(first.split(",", 1)[0].strip())
    if not has_header:
        problems.add(path, 1, f"missing header (expected {HEADER})")
    elif first != HEADER:
        problems.add(path, 1, f"wrong header: expected {HEADER!r}, got {first!r}")
    order = _Order(path, expected, problems)
    start = 2 if has_header else 1
    for i, line in enumerate(lines[start - 1:], start=start):
        fields = line.split(",")
        if not line.strip():
            problems.add(path, i, "empty line")
            continue
        image = fields[0].strip()
        if not rel.IMAGE_RE.match(image):
            problems.add(path, i, f"image {fields[0]!r} is not video/00001.jpg")
            continue
        order.see(image, i)
        if len(fields) != 1 + len(names):
            problems.add(path, i, f"expected {1 + len(names)} columns, got {len(fields)}")
        elif msg := row_problem(spec, fields[1:]):
            problems.add(path, i, msg)
    order.close(len(lines) + 1)
    return problems


# ----------------------------------------------------------------------------- readers
def _split_image(df: pd.DataFrame) -> pd.DataFrame:
    parts = df["image"].astype(str).str.strip().str.extract(rel.IMAGE_RE.pattern)
    return pd.concat([parts["video"], parts["frame"].astype(np.int64), df.drop(columns="image")], axis=1)


def read(path: Path, spec: TaskSpec) -> pd.DataFrame:
    """A valid submission file as DataFrame(video, frame, valence, arousal, expression, AU1..AU26)."""
    cols = value_columns(spec)
    df = pd.read_csv(path, skiprows=1, header=None, names=["image", *cols])
    return _split_image(df)


def read_truth(path: Path, spec: TaskSpec) -> pd.DataFrame:
    """Test ground truth in the annotation format (a file, or a folder of ``*.txt`` annotation files) as
    DataFrame(video, frame, *spec.label_columns); masked labels keep their invalid values (-5 / -1)."""
    path = Path(path)
    files = visible(path, ".txt") if path.is_dir() else [path]
    if not files:
        raise AbawError(f"{path}: no annotation files")
    tables = []
    for f in files:
        rows, values = rel.read_file(f)
        tables.append(pd.concat([rows, pd.DataFrame(values, columns=list(spec.label_columns))], axis=1))
    return pd.concat(tables, ignore_index=True)

