"""The official submission format, per ABAW edition: writer, reader and validator in one place.

Editions (SPEC section 3):
- ``abaw5`` (ABAW5 and later): one text file per track. Header ``image_location,<label names>``,
  then one row per frame of every test video, ``video/00001.jpg,<values>``; AU rows hold 12 ints 0/1,
  EXPR rows one class id 0..7, VA rows two floats in [-1, 1].
- ``abaw3`` (ABAW 1-3): one file ``<video>.txt`` per test video in the annotation format: header =
  the label names, line k+1 = frame k.

*Expected frames* map each test video to its sorted frame numbers: from ``prep`` (every frame of
the test videos) or from the organisers' template file, which is the authority when given.
A problem is reported as ``file:line: message``; the validator lists every problem it finds.
"""

from __future__ import annotations

import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from abawkit.errors import AbawError, where
from abawkit.files import visible, walk
from abawkit.io import atomic_path, write_text
from abawkit.labels import TaskSpec, task
from abawkit.metrics import score

Expected = dict[str, np.ndarray]  # video -> sorted 1-based frame numbers, in submission order
TRACK_TAGS = {"au": "AU", "expr": "EXPR", "va": "VA"}
LOCATION = re.compile(r"^(?P<video>[^/]+)/(?P<frame>\d+)\.jpg$")
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Edition:
    """How one edition lays out a track's submission."""

    name: str
    per_video: bool  # one annotation-format file per video (abaw3) or one file per track (abaw5)
    file_name: Callable[[TaskSpec], str]  # abaw5: the file; abaw3: the folder holding <video>.txt


EDITIONS = {
    "abaw5": Edition("abaw5", False, lambda spec: f"{TRACK_TAGS[spec.name]}_predictions.txt"),
    "abaw3": Edition("abaw3", True, lambda spec: spec.challenge),
}


def edition(name: str) -> Edition:
    if name not in EDITIONS:
        raise AbawError(f"unknown edition {name!r}; expected one of {', '.join(EDITIONS)}")
    return EDITIONS[name]


def n_values(spec: TaskSpec) -> int:
    """Value columns per row: 12 AUs, 1 class id, 2 VA values."""
    return 1 if spec.kind == "multiclass" else spec.n_outputs


# ----------------------------------------------------------------------------- expected frames
def expected_from_frames(frames: pd.DataFrame, spec: TaskSpec) -> Expected:
    """Test videos and their frames from the prep frame table (``split_<task> == 'test'``)."""
    test = frames.loc[frames[f"split_{spec.name}"] == "test", ["video", "frame"]]
    if test.empty:
        raise AbawError(f"prep has no {spec.name} test videos; pass --template or check the release")
    test = test.sort_values(["video", "frame"], kind="stable")
    return {v: g.to_numpy(np.int64) for v, g in test.groupby("video", sort=True)["frame"]}


def read_template(path: str | Path) -> Expected:
    """Frames listed by an organisers' template (header + ``video/00001.jpg[,...]`` rows)."""
    path = Path(path)
    if not path.is_file():
        raise AbawError(f"{path}: template not found")
    rows: dict[str, list[int]] = {}
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    for i, line in enumerate(lines[1:], start=2):
        loc = line.split(",", 1)[0].strip()
        if not loc:
            continue
        m = LOCATION.match(loc)
        if not m:
            raise AbawError(f"{where(path, i)}: expected video/00001.jpg, got {loc!r}")
        rows.setdefault(m["video"], []).append(int(m["frame"]))
    if not rows:
        raise AbawError(f"{path}: template lists no frames")
    return {v: np.asarray(sorted(set(f)), dtype=np.int64) for v, f in rows.items()}


# ----------------------------------------------------------------------------- writer
def _format(spec: TaskSpec, outputs: np.ndarray) -> pd.DataFrame:
    """Value columns as the edition writes them: ints for AU/EXPR, 6-decimal floats for VA."""
    if spec.kind in ("regression", "intensity"):
        return pd.DataFrame(np.char.mod("%.6f", np.asarray(outputs, np.float64)), columns=list(spec.names))
    cols = list(spec.names) if spec.kind == "multilabel" else ["class"]
    return pd.DataFrame(np.asarray(outputs, np.int64).reshape(len(outputs), -1), columns=cols)


def write_submission(out_dir: str | Path, spec: TaskSpec, rows: pd.DataFrame, outputs: np.ndarray,
                     edition_name: str = "abaw5") -> Path:
    """Write final outputs for ``rows`` (video, frame; grouped per video, frames ascending).

    outputs: [N, n_values(spec)] (0/1, class ids, or VA values). Returns the file (abaw5) or folder
    (abaw3) written under ``out_dir``.
    """
    ed = edition(edition_name)
    out = Path(out_dir) / ed.file_name(spec)
    values = _format(spec, outputs)
    if not ed.per_video:
        loc = rows["video"].astype(str) + "/" + rows["frame"].astype(str).str.zfill(5) + ".jpg"
        table = pd.concat([loc.rename("image_location").reset_index(drop=True), values], axis=1)
        header = ",".join(["image_location", *spec.names]) + "\n"
        return write_text(out, header + table.to_csv(index=False, header=False, lineterminator="\n"))
    for video, idx in rows.groupby("video", sort=False).indices.items():
        body = values.iloc[idx].to_csv(index=False, header=False, lineterminator="\n")
        write_text(out / f"{video}.txt", ",".join(spec.names) + "\n" + body)
    return out


def zip_submission(path: Path, zip_path: Path) -> Path:
    """Zip a submission file or folder (folder contents keep their folder name; ``._*``/``.DS_Store`` left out)."""
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            files = [path] if path.is_file() else sorted(Path(d) / f for d, _, names in walk(path) for f in names)
            for f in files:
                zf.write(f, f.relative_to(path.parent))
    return zip_path


# ----------------------------------------------------------------------------- validator
class Problems(list):
    """Collected problems as ``file:line: message`` strings."""

    def add(self, path: Path, line: int | None, msg: str) -> None:
        self.append(f"{where(path, line)}: {msg}")


def _lines(path: Path, problems: Problems) -> list[str] | None:
    """Text lines of a file after the byte-level checks (empty, BOM, CRLF); None if unusable."""
    data = path.read_bytes()
    if data.startswith(BOM):
        problems.add(path, 1, "file starts with a UTF-8 BOM; save as plain UTF-8")
        data = data[len(BOM):]
    if b"\r" in data:
        line, count = data[: data.index(b"\r")].count(b"\n") + 1, data.count(b"\r")
        problems.add(path, line, f"Windows (CRLF) line endings on {count} line(s); use LF")
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    text = data.decode("utf-8", errors="replace")
    if not text.strip():
        problems.add(path, 1, "empty file")
        return None
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def value_problem(kind: str, name: str, raw: str, n_classes: int = 0) -> str | None:
    """The problem with one value field of a submission row, by its head's kind, or None: numeric and
    finite, then 0/1 (multilabel), a class id 0..n-1 (multiclass), [-1, 1] (regression), [0, 1] (intensity)."""
    try:
        v = float(raw)
    except ValueError:
        return f"{name}: non-numeric value {raw!r}"
    if not math.isfinite(v):
        return f"{name}: {raw} is not a finite number"
    if kind == "multilabel" and v not in (0.0, 1.0):
        return f"{name}: AU must be 0 or 1, got {raw}"
    if kind == "multiclass" and (v != int(v) or not 0 <= v < n_classes):
        return f"{name}: must be an integer 0..{n_classes - 1}, got {raw}"
    if kind == "regression" and not -1.0 <= v <= 1.0:
        return f"{name}: must be in [-1, 1], got {raw}"
    if kind == "intensity" and not 0.0 <= v <= 1.0:
        return f"{name}: must be in [0, 1], got {raw}"
    return None


def row_problem(spec: TaskSpec, fields: list[str]) -> str | None:
    """First problem among a row's decided values, head by head (a multiclass head writes one class id,
    named ``expression`` for EXPR and ``class`` otherwise)."""
    k = 0
    for head in spec.heads:
        names = head.names if head.kind != "multiclass" else ("expression" if head.name == "expr" else "class",)
        for name in names:
            if k < len(fields) and (msg := value_problem(head.kind, name, fields[k].strip(), head.n_outputs)):
                return msg
            k += 1
    return None


def _split_row(line: str, n: int) -> list[str]:
    """Comma fields, tolerating one trailing comma (the organisers' templates have them)."""
    fields = line.split(",")
    return fields[:-1] if len(fields) == n + 1 and fields[-1] == "" else fields


def _check_header(path: Path, line: str, want: list[str], problems: Problems) -> bool:
    """True if line 1 is a header (right or wrong); False if it looks like a data row."""
    got = _split_row(line.strip(), len(want))
    if got == want:
        return True
    if LOCATION.match(got[0]) or _is_number(got[0]):
        problems.add(path, 1, f"missing header (expected {','.join(want)})")
        return False
    problems.add(path, 1, f"wrong header: expected {','.join(want)!r}, got {line.strip()!r}")
    return True


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


class _Frames:
    """Follows the frames of the video being read (abaw5) and reports gaps, repeats and order."""

    def __init__(self, path: Path, expected: Expected, problems: Problems) -> None:
        self.path, self.expected, self.problems = path, expected, problems
        self.video: str | None = None
        self.ptr, self.last = 0, -1
        self.done: set[str] = set()
        self.extra: set[str] = set()

    def _missing(self, frames: np.ndarray, line: int) -> None:
        if len(frames):
            span = f"{frames[0]}" if len(frames) == 1 else f"{frames[0]}..{frames[-1]}"
            self.problems.add(self.path, line, f"video {self.video}: missing frame(s) {span} ({len(frames)} frames)")

    def close(self, line: int) -> None:
        if self.video is not None:
            self._missing(self.expected[self.video][self.ptr:], line)
            self.done.add(self.video)
        self.video = None

    def see(self, video: str, frame: int, line: int) -> None:
        if video not in self.expected:
            if video not in self.extra:
                self.problems.add(self.path, line, f"extra video {video!r} (not a test video of this track)")
                self.extra.add(video)
            return
        if video != self.video:
            self.close(line)
            if video in self.done:
                self.problems.add(self.path, line, f"video {video} appears again; keep each video's rows together")
            self.video, self.ptr, self.last = video, 0, -1
        exp = self.expected[video]
        if frame == self.last:
            self.problems.add(self.path, line, f"video {video}: duplicate frame {frame}")
            return
        if frame < self.last:
            self.problems.add(self.path, line, f"video {video}: frame {frame} out of order (after {self.last})")
            return
        j = int(np.searchsorted(exp, frame))
        if j == len(exp) or exp[j] != frame:
            self.problems.add(self.path, line, f"video {video}: frame {frame} is not one of its {len(exp)} frames")
            return
        self._missing(exp[self.ptr:j], line)
        self.ptr, self.last = j + 1, frame


def validate_track_file(path: Path, spec: TaskSpec, expected: Expected) -> Problems:
    """Every problem of an abaw5 submission file."""
    problems = Problems()
    lines = _lines(path, problems)
    if lines is None:
        return problems
    n = n_values(spec)
    has_header = _check_header(path, lines[0], ["image_location", *spec.names], problems)
    frames = _Frames(path, expected, problems)
    for i, line in enumerate(lines[1:] if has_header else lines, start=2 if has_header else 1):
        if not line.strip():
            problems.add(path, i, "empty line")
            continue
        fields = _split_row(line, n + 1)
        m = LOCATION.match(fields[0].strip())
        if not m:
            problems.add(path, i, f"image_location {fields[0]!r} is not video/00001.jpg")
            continue
        frames.see(m["video"], int(m["frame"]), i)
        if len(fields) != n + 1:
            problems.add(path, i, f"expected {n + 1} columns, got {len(fields)}")
        elif msg := row_problem(spec, fields[1:]):
            problems.add(path, i, msg)
    end = len(lines) + 1
    frames.close(end)
    for video, exp in expected.items():
        if video not in frames.done:
            problems.add(path, end, f"missing video {video} ({len(exp)} frames)")
    return problems


def validate_video_file(path: Path, spec: TaskSpec, frames: np.ndarray) -> Problems:
    """Every problem of one abaw3 per-video file (line k+1 = frame k)."""
    problems = Problems()
    lines = _lines(path, problems)
    if lines is None:
        return problems
    n = n_values(spec)
    has_header = _check_header(path, lines[0], list(spec.names), problems)
    rows = lines[1:] if has_header else lines
    first = 2 if has_header else 1
    for i, line in enumerate(rows, start=first):
        fields = _split_row(line, n)
        if len(fields) != n:
            problems.add(path, i, f"expected {n} columns, got {len(fields)}")
        elif msg := row_problem(spec, fields):
            problems.add(path, i, msg)
    n_frames = int(frames.max())
    if len(rows) < n_frames:
        problems.add(path, first + len(rows), f"missing frames {len(rows) + 1}..{n_frames} (video has {n_frames})")
    elif len(rows) > n_frames:
        problems.add(path, first + n_frames, f"{len(rows) - n_frames} extra line(s): video has {n_frames} frames")
    return problems


def validate(path: str | Path, spec: TaskSpec, expected: Expected, edition_name: str = "abaw5") -> Problems:
    """Every problem of a submission (file for abaw5, folder of ``<video>.txt`` for abaw3)."""
    path, ed = Path(path), edition(edition_name)
    if not path.exists():
        raise AbawError(f"{path}: not found")
    if not ed.per_video:
        if path.is_dir():
            raise AbawError(f"{path}: is a folder; edition {ed.name} expects one file per track")
        return validate_track_file(path, spec, expected)
    if not path.is_dir():
        raise AbawError(f"{path}: edition {ed.name} expects a folder of <video>.txt files")
    problems = Problems()
    present = {p.stem: p for p in visible(path, ".txt")}
    for video, frames in expected.items():
        if video in present:
            problems += validate_video_file(present[video], spec, frames)
        else:
            problems.add(path / f"{video}.txt", None, f"missing video {video} ({len(frames)} frames)")
    for video in sorted(set(present) - set(expected)):
        problems.add(present[video], None, f"extra video {video!r} (not a test video of this track)")
    return problems


def summary(spec: TaskSpec, expected: Expected) -> str:
    n = sum(len(f) for f in expected.values())
    return f"{len(expected)} videos, {n} frames, {spec.name.upper()} {spec.metric} track"


# ----------------------------------------------------------------------------- scoring a file
def read_submission(path: str | Path, spec: TaskSpec, edition_name: str = "abaw5") -> pd.DataFrame:
    """A (valid) submission as a table: video, frame, value columns (AU names / ``class`` / VA)."""
    path, ed = Path(path), edition(edition_name)
    cols = list(spec.names) if spec.kind != "multiclass" else ["class"]
    if not ed.per_video:
        df = pd.read_csv(path, skiprows=1, header=None, usecols=range(len(cols) + 1), names=["loc", *cols])
        parts = df["loc"].str.extract(r"^(?P<video>[^/]+)/(?P<frame>\d+)\.jpg$")
        return pd.concat([parts["video"], parts["frame"].astype(np.int64), df[cols]], axis=1)
    tables = []
    for f in visible(path, ".txt"):
        df = pd.read_csv(f, skiprows=1, header=None, names=cols)
        tables.append(pd.concat([pd.DataFrame({"video": f.stem, "frame": np.arange(1, len(df) + 1)}), df], axis=1))
    return pd.concat(tables, ignore_index=True)


def read_truth(truth_dir: str | Path, spec: TaskSpec) -> pd.DataFrame:
    """Annotation-format ground truth (``<video>.txt``, line k+1 = frame k) as video, frame, labels."""
    files = visible(truth_dir, ".txt")  # macOS ._*.txt left out
    if not files:
        raise AbawError(f"{truth_dir}: no <video>.txt annotation files")
    cols = list(spec.label_columns)
    tables = []
    for f in files:
        df = pd.read_csv(f, skiprows=1, header=None, usecols=range(len(cols)))
        labels = df.to_numpy(np.float64)
        frame = pd.DataFrame({"video": f.stem, "frame": np.arange(1, len(df) + 1)})
        tables.append(pd.concat([frame, pd.DataFrame(labels, columns=cols)], axis=1))
    return pd.concat(tables, ignore_index=True)


def score_submission(path: str | Path, truth_dir: str | Path, track: str, edition_name: str = "abaw5") -> dict:
    """Score a submission against annotation-format ground truth with ``abawkit.metrics.score``."""

    spec = task(track)
    sub = read_submission(path, spec, edition_name)
    pred_cols = [f"pred:{c}" for c in sub.columns[2:]]
    sub.columns = ["video", "frame", *pred_cols]
    joined = read_truth(truth_dir, spec).merge(sub, on=["video", "frame"], how="inner", validate="one_to_one")
    if joined.empty:
        raise AbawError(f"{path}: no frame in common with the ground truth in {truth_dir}")
    preds = joined[pred_cols].to_numpy(np.float64)
    result = score(spec.name, joined[list(spec.label_columns)].to_numpy(), preds[:, 0] if spec.kind == "multiclass" else preds)
    result["frames"] = int(len(joined))
    return result
