"""The video-level ambivalence/hesitancy submission (ABAW 10/11, BAH): ``trial-<i>.txt``.

Confirmed against the organisers' repository (sbelharbi/ah3rd-challenge-abaw11: ``validate_submission.py``,
``predictions-submissions/{no,with}_probabilities/trial-0.txt``): no header, one line per test video in
the order and count of the organisers' ``trial-0.txt``, either ``Videos/<pid>/Visite_1/<name>.mp4,<pred>``
or ``Videos/<pid>/Visite_1/<name>.mp4,<p0>,<p1>,<pred>`` with p0, p1 in [0, 1], p0 + p1 == 1 exactly (as
floats, the organisers' check) and pred 0 (no A/H) or 1 (A/H). Stricter than the organisers' script
(which compares only the first character of the path in the probability variant): the whole path must
match, pred must be the argmax of (p0, p1) (a tie is class 0, as in their example), one variant per file.

A video's name in abawkit is the file stem ``<name>`` (``82964_Question_1_..._Video``); its path is
rebuilt as ``Videos/<pid>/Visite_1/<name>.mp4`` with ``<pid>`` the name's part before the first ``_``
(every line of BAH's published lists has that shape; ``location``). Video-level formats map each video
to ``np.array([0])`` in ``expected`` / ``read_list`` (one row per video, frame 0), and ``rows`` carry
frame 0. Reads and writes the one file it is given.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.errors import AbawError, where
from abawkit.formats.videolist import check_order
from abawkit.io import write_text
from abawkit.labels import TaskSpec
from abawkit.submission import Problems, _lines

FILE = "trial-1.txt"  # the i-th trial of a team; the organisers' own example is trial-0.txt
PATH_RE = re.compile(r"^Videos/(?P<pid>[^/,]+)/(?P<visit>Visite_\d+)/(?P<name>[^/,]+)\.mp4$")
VIDEO_LEVEL = np.array([0], np.int64)  # the one "frame" of a video-level row


def location(video: str) -> str:
    """``82964_Question_1_x_Video`` -> ``Videos/82964/Visite_1/82964_Question_1_x_Video.mp4``."""
    return f"Videos/{video.split('_', 1)[0]}/Visite_1/{video}.mp4"


def video_of(path_text: str) -> str | None:
    """The video name of a list path, or None if it is not ``Videos/<pid>/Visite_<k>/<name>.mp4``."""
    m = PATH_RE.match(path_text)
    return m["name"] if m else None


def n_values(spec: TaskSpec) -> int:
    """p0, p1, pred (the variant with probabilities; ``write`` also takes pred alone)."""
    return 3


def value_columns(spec: TaskSpec) -> list[str]:
    """The column scored by macro F1 against ``AH`` (``read`` also returns p0, p1 when written)."""
    return ["pred"]


def _probabilities(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p0, p1 as 4-decimal texts summing to exactly 1.0, and pred; p1 is nudged by at most 1e-4 at 0.5 so
    that pred is the argmax of what is written (a tuned threshold is applied before, ``metrics_video``)."""
    p1 = np.round(np.asarray(outputs[:, 1], np.float64), 4)
    pred = np.asarray(outputs[:, 2])
    if not np.isin(pred, (0, 1)).all() or not np.isfinite(p1).all() or (p1 < 0).any() or (p1 > 1).any():
        raise AbawError("A/H outputs: pred must be 0/1 and p1 a probability in [0, 1]")
    p1 = np.where((pred == 1) & (p1 <= 0.5), 0.5001, np.where((pred == 0) & (p1 > 0.5), 0.5, p1))
    k = np.rint(p1 * 10000).astype(np.int64)  # p0 = (10000 - k) / 10000: the sum is exact as floats
    return (np.char.mod("%.4f", (10000 - k) / 10000), np.char.mod("%.4f", k / 10000), pred.astype(np.int64))


def write(out_dir: Path, spec: TaskSpec, rows: pd.DataFrame, outputs: np.ndarray) -> Path:
    """One line per row (the list's order): outputs [N, 3] (p0, p1, pred), [N, 2] (p0, p1: pred is their
    argmax) or [N, 1] (pred)."""
    outputs = np.asarray(outputs, np.float64).reshape(len(rows), -1)
    if outputs.shape[1] == 2:
        outputs = np.c_[outputs, (outputs[:, 1] > outputs[:, 0]).astype(np.float64)]
    loc = [location(v) for v in rows["video"].astype(str)]
    if outputs.shape[1] == 1:
        pred = np.asarray(outputs[:, 0])
        if not np.isin(pred, (0, 1)).all():
            raise AbawError("A/H outputs: pred must be 0 or 1")
        body = "".join(f"{p},{int(c)}\n" for p, c in zip(loc, pred))
    else:
        p0, p1, pred = _probabilities(outputs)
        body = "".join(f"{p},{a},{b},{c}\n" for p, a, b, c in zip(loc, p0, p1, pred))
    out = Path(out_dir) / FILE
    return write_text(out, body)


def read_list(path: Path) -> dict[str, np.ndarray]:
    """The organisers' ``trial-0.txt`` (or a BAH split file ``path,label[,transcript]``): {video: [0]} in order."""
    path = Path(path)
    if not path.is_file():
        raise AbawError(f"{path}: A/H test list not found")
    out: dict[str, np.ndarray] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        video = video_of(line.split(",", 1)[0].strip())
        if video is None:
            raise AbawError(f"{where(path, i)}: expected Videos/<pid>/Visite_1/<name>.mp4, got {line.split(',', 1)[0]!r}")
        if video in out:
            raise AbawError(f"{where(path, i)}: video {video} listed twice")
        out[video] = VIDEO_LEVEL
    if not out:
        raise AbawError(f"{path}: the A/H test list names no video")
    return out


def _check_fields(fields: list[str]) -> str | None:
    """First problem of a row's value fields (``[pred]`` or ``[p0, p1, pred]``), or None."""
    if any(f != f.strip() for f in fields):
        return "spaces around a value; write path,p0,p1,pred with bare commas"
    if fields[-1] not in ("0", "1"):
        return f"pred must be 0 or 1, got {fields[-1]!r}"
    if len(fields) == 1:
        return None
    try:
        p = [float(x) for x in fields[:2]]
    except ValueError:
        return f"p0, p1 must be numbers, got {fields[0]!r}, {fields[1]!r}"
    if not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in p):
        return f"p0, p1 must be probabilities in [0, 1], got {fields[0]}, {fields[1]}"
    if p[0] + p[1] != 1.0:
        return f"p0 + p1 must be exactly 1, got {p[0] + p[1]!r}"
    if int(fields[2]) != int(p[1] > p[0]):
        return f"pred {fields[2]} is not the argmax of p0={fields[0]}, p1={fields[1]}"
    return None


def validate(path: Path, spec: TaskSpec, expected: dict[str, np.ndarray]) -> Problems:
    """Every problem of a trial file against the list (``expected``: {video: [0]} in the list's order)."""
    path, problems = Path(path), Problems()
    lines = _lines(path, problems)
    if lines is None:
        return problems
    rows, width = [], None
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            problems.add(path, i, "empty line")
            continue
        fields = line.split(",")
        video = video_of(fields[0])
        if video is None:
            what = "a header" if i == 1 and not fields[0].startswith("Videos/") else "the path"
            problems.add(path, i, f"{what} {fields[0]!r} is not Videos/<pid>/Visite_1/<name>.mp4 (no header)")
            continue
        if fields[0] != location(video):
            problems.add(path, i, f"path {fields[0]!r} should be {location(video)!r}")
        rows.append((i, video))
        if len(fields) not in (2, 4):
            problems.add(path, i, f"expected 2 columns (path,pred) or 4 (path,p0,p1,pred), got {len(fields)}")
            continue
        width = width or len(fields)
        if len(fields) != width:
            problems.add(path, i, f"{len(fields)} columns where line 1 has {width}: one variant per file")
        elif msg := _check_fields(fields[1:]):
            problems.add(path, i, msg)
    check_order(path, list(expected), rows, problems)
    return problems


def read(path: Path, spec: TaskSpec) -> pd.DataFrame:
    """A valid trial file as video, frame (0), p0, p1 (NaN in the pred-only variant), pred."""
    df = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    pred_only = df.shape[1] == 2
    out = pd.DataFrame({"video": [video_of(p) for p in df[0]], "frame": 0})
    out["p0"] = np.nan if pred_only else df[1].astype(np.float64)
    out["p1"] = np.nan if pred_only else df[2].astype(np.float64)
    out["pred"] = df[df.columns[-1]].astype(np.int64)
    return out


def read_truth(path: Path, spec: TaskSpec) -> pd.DataFrame:
    """Ground truth in BAH's split-file shape (``path,label[,transcript]``) as video, frame (0), AH."""
    path = Path(path)
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(",", 2)
        video = video_of(parts[0])
        if video is None or len(parts) < 2 or parts[1].strip() not in ("0", "1"):
            raise AbawError(f"{where(path, i)}: expected Videos/<pid>/Visite_1/<name>.mp4,<0|1>[,transcript]")
        rows.append((video, int(parts[1])))
    return pd.DataFrame({"video": [v for v, _ in rows], "frame": 0,
                         spec.label_columns[0]: np.array([y for _, y in rows], np.int64)})
