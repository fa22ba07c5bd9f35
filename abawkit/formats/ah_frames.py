"""The frame-level ambivalence/hesitancy submission of ABAW 8 (BAH, first A/H challenge).

One line per frame: ``Videos/<pid>/Visite_1/<name>.mp4/frame-<n>.jpg,<0|1>``. Confirmed: the row shape
(a public team's notes quote ``Videos/82813/Visite_1/..._Video.mp4/frame-0.jpg``). Not confirmed, and
assumed here: no header (as in the later video-level trials) and ``frame-<n>`` counting from 0, so
``frame-<k-1>.jpg`` is abawkit's frame k (the frame table is 1-based). The rows and their order are the
organisers' list's (``read_list``: videos in list order, each video's frames ascending). Reads and writes
the one file it is given.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.errors import AbawError, where
from abawkit.formats.ah import location, video_of
from abawkit.formats.videolist import check_order
from abawkit.io import write_text
from abawkit.labels import TaskSpec
from abawkit.submission import Problems, _lines

FILE = "AH_frame_predictions.txt"
ROW_RE = re.compile(r"^(?P<video>Videos/[^,]+\.mp4)/frame-(?P<n>\d+)\.jpg$")


def n_values(spec: TaskSpec) -> int:
    return 1


def value_columns(spec: TaskSpec) -> list[str]:
    return ["pred"]


def frame_path(video: str, frame: int) -> str:
    """abawkit's 1-based frame k of ``video`` -> ``Videos/.../<video>.mp4/frame-<k-1>.jpg``."""
    return f"{location(video)}/frame-{frame - 1}.jpg"


def parse(text: str) -> tuple[str, int] | None:
    """``.../<name>.mp4/frame-<n>.jpg`` -> (name, n + 1), or None when the text has another shape."""
    m = ROW_RE.match(text)
    video = video_of(m["video"]) if m else None
    return None if video is None else (video, int(m["n"]) + 1)


def write(out_dir: Path, spec: TaskSpec, rows: pd.DataFrame, outputs: np.ndarray) -> Path:
    """One line per row (video, 1-based frame), outputs [N, 1] of 0/1."""
    pred = np.asarray(outputs).reshape(-1)
    if len(pred) != len(rows) or not np.isin(pred, (0, 1)).all():
        raise AbawError(f"A/H frame outputs: expected {len(rows)} values of 0 or 1")
    body = "".join(f"{frame_path(v, int(f))},{int(p)}\n" for v, f, p in zip(rows["video"], rows["frame"], pred))
    out = Path(out_dir) / FILE
    return write_text(out, body)


def read_list(path: Path) -> dict[str, np.ndarray]:
    """The organisers' frame list (``<frame path>[,...]`` lines): {video: 1-based frames} in list order."""
    path = Path(path)
    if not path.is_file():
        raise AbawError(f"{path}: A/H frame list not found")
    out: dict[str, list[int]] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        got = parse(line.split(",", 1)[0].strip())
        if got is None:
            raise AbawError(f"{where(path, i)}: expected Videos/<pid>/Visite_1/<name>.mp4/frame-<n>.jpg")
        out.setdefault(got[0], []).append(got[1])
    if not out:
        raise AbawError(f"{path}: the A/H frame list names no frame")
    return {v: np.asarray(f, np.int64) for v, f in out.items()}


def validate(path: Path, spec: TaskSpec, expected: dict[str, np.ndarray]) -> Problems:
    """Every problem of a frame-level file against ``expected`` ({video: 1-based frames}, list order)."""
    path, problems = Path(path), Problems()
    lines = _lines(path, problems)
    if lines is None:
        return problems
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            problems.add(path, i, "empty line")
            continue
        fields = line.split(",")
        got = parse(fields[0])
        if got is None:
            problems.add(path, i, f"{fields[0]!r} is not Videos/<pid>/Visite_1/<name>.mp4/frame-<n>.jpg (no header)")
            continue
        if fields[0] != frame_path(*got):
            problems.add(path, i, f"path {fields[0]!r} should be {frame_path(*got)!r}")
        rows.append((i, got))
        if len(fields) != 2:
            problems.add(path, i, f"expected 2 columns (frame path, 0|1), got {len(fields)}")
        elif fields[1] not in ("0", "1"):
            problems.add(path, i, f"A/H must be 0 or 1, got {fields[1]!r}")
    keys = [(v, int(f)) for v, fs in expected.items() for f in fs]
    check_order(path, keys, rows, problems, show=lambda k: f"{k[0]} frame-{k[1] - 1}")
    return problems


def read(path: Path, spec: TaskSpec) -> pd.DataFrame:
    """A valid file as video, frame (1-based), pred."""
    df = pd.read_csv(path, header=None, names=["loc", "pred"], dtype={"loc": str, "pred": np.int64})
    got = [parse(x) for x in df["loc"]]
    return pd.DataFrame({"video": [g[0] for g in got], "frame": np.array([g[1] for g in got], np.int64),
                         "pred": df["pred"].to_numpy()})


def read_truth(path: Path, spec: TaskSpec) -> pd.DataFrame:
    """Frame-level ground truth in this file's own shape (``<frame path>,<0|1>``) as video, frame, AH."""
    df = read(path, spec)
    return df.rename(columns={"pred": spec.label_columns[0]})
