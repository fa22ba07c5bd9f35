"""Read a release's annotations, templates and crops (SPEC section 2) into the prep frame table.

Pure library code: it reads the files that ``release/discover.py`` found and returns DataFrames;
``stages/prep.py`` writes them. Annotation files are parsed in bulk (all files of a task concatenated and parsed by one
pandas C-parser call); a slow per-line scan runs only to locate an error for the message.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.errors import AbawError, where
from abawkit.frames import nearest_filled
from abawkit.labels import CLASSIC, TASKS, TaskSpec
from abawkit.release.discover import CROP_RE, annotation_items, discover
from abawkit.submission import LOCATION

PAIR_RE = re.compile(r"_(left|right)$")


@dataclass
class Annotations:
    """All annotation files of one task: names [F], roles [F], lengths [F], values [sum(lengths), C]."""

    spec: TaskSpec
    files: list[Path] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float32))


def source_key(name: str) -> str:
    """``video7_left`` / ``video7_right`` -> ``video7`` (the media file they share)."""
    return PAIR_RE.sub("", name)


def half_of(name: str) -> str | None:
    """``video7_left`` -> "left", ``video7_right`` -> "right" (two people side by side in one video, as in
    Aff-Wild2: each is detected in that half of the frame), any other name -> None."""
    m = PAIR_RE.search(name)
    return m.group(1) if m else None


def pair_names(source: str) -> tuple[str, str]:
    """The two names of a video with two people: ``<source>_left``, ``<source>_right``."""
    return f"{source}_left", f"{source}_right"


def find_annotation_files(root: Path) -> dict[str, list[tuple[str, str, Path]]]:
    """{task: [(name, role, path)]} from the challenge folders found under ``root`` (``release/discover.py``)."""

    return annotation_items(discover(root))


def read_annotations(spec: TaskSpec, items: list[tuple[str, str, Path]]) -> Annotations:
    """Check headers, parse every file of a task in one pandas call, check values; errors name file:line."""
    want = list(spec.names)
    bodies, lengths = [], []
    for name, _, path in items:
        head, _, body = path.read_bytes().partition(b"\n")
        got = [h.strip() for h in head.decode(errors="replace").strip().rstrip(",").split(",")]
        if got != want:
            raise AbawError(f"{where(path, 1, 'header')}: expected {','.join(want)!r}, got {','.join(got)!r}")
        body = body.rstrip()
        lengths.append(body.count(b"\n") + 1 if body else 0)
        bodies.append(body + b"\n" if body else b"")
    ann = Annotations(spec, [p for *_, p in items], [n for n, *_ in items], [r for _, r, _ in items],
                      np.asarray(lengths, np.int64))
    dup = pd.Series(ann.names)[pd.Series(ann.names).duplicated()]
    if len(dup):
        raise AbawError(f"{spec.challenge}: video {dup.iloc[0]} is annotated twice (Train_Set and Validation_Set)")
    try:
        df = pd.read_csv(io.BytesIO(b"".join(bodies)), header=None, names=range(len(spec.label_columns)), dtype=np.float64,
                         skip_blank_lines=False, engine="c")
        values = df.to_numpy()
    except (ValueError, pd.errors.ParserError):
        values = None
    if values is None or np.isnan(values).any():
        _locate_parse_error(ann)
    ann.values = values.astype(np.float32)  # [N, C]
    _check_range(ann)
    return ann


def _locate_parse_error(ann: Annotations) -> None:
    """Slow path, only after the bulk parse failed: find the first bad line and raise."""
    ncol = len(ann.spec.label_columns)
    for path in ann.files:
        for k, line in enumerate(path.read_text(errors="replace").rstrip().splitlines()[1:], start=2):
            cells = line.strip().split(",")
            if len(cells) != ncol:
                raise AbawError(f"{where(path, k)}: wrong column count: expected {ncol}, got {len(cells)}")
            for col, cell in zip(ann.spec.label_columns, cells):
                try:
                    if np.isnan(float(cell)):
                        raise ValueError
                except ValueError:
                    raise AbawError(f"{where(path, k, col)}: non-numeric value {cell.strip()!r}") from None
    raise AbawError(f"{ann.spec.challenge}: could not parse the annotation files")


def _check_range(ann: Annotations) -> None:
    """AU in {-1,0,1}; EXPR integer in -1..7; VA in [-1,1] or the invalid value -5."""
    v, spec = ann.values, ann.spec
    if spec.kind == "multilabel":
        ok = np.isin(v, (-1, 0, 1))
        rule = "must be -1, 0 or 1"
    elif spec.kind == "multiclass":
        ok = (v == np.round(v)) & (v >= -1) & (v < len(spec.names))
        rule = f"must be an integer in -1..{len(spec.names) - 1}"
    else:
        ok = ((v >= -1) & (v <= 1)) | (v == spec.invalid)
        rule = f"must be in [-1, 1] or {spec.invalid:g}"
    if ok.all():
        return
    row, col = np.argwhere(~ok)[0]
    starts = np.concatenate([[0], np.cumsum(ann.lengths)])
    f = int(np.searchsorted(starts, row, side="right") - 1)
    line = int(row - starts[f]) + 2  # line 1 is the header
    name = spec.label_columns[col]
    raise AbawError(f"{where(ann.files[f], line, name)}: label {v[row, col]:g} out of range ({rule})")


def template_counts(templates: dict[str, Path]) -> dict[str, int]:
    """Frames to predict per test video, from the submission templates (rows ``video/00001.jpg``)."""

    counts: dict[str, int] = {}
    for p in templates.values():
        loc = pd.read_csv(p, usecols=[0], dtype=str).iloc[:, 0].dropna().str.strip()  # a header-only file: no rows
        parts = loc.str.extract(LOCATION.pattern)
        bad = parts["video"].isna().to_numpy()
        if bad.any():
            k = int(np.argmax(bad))
            raise AbawError(f"{where(p, int(loc.index[k]) + 2)}: expected video/00001.jpg, got {loc.iloc[k]!r}")
        for name, n in parts.groupby("video").size().items():
            counts[name] = max(counts.get(name, 0), int(n))
    return counts


def list_crops(folder: Path) -> tuple[np.ndarray, list[str]]:
    """1-based frame indices [K] (sorted) and file names of the ``NNNNN.jpg`` crops in ``folder``."""
    names = [n for n in os.listdir(folder) if CROP_RE.match(n)]
    idx = np.array([int(n.split(".", 1)[0]) for n in names], np.int64)
    order = np.argsort(idx, kind="stable")
    return idx[order], [names[i] for i in order]


def build_frames(n_frames: dict[str, int], crops: dict[str, tuple[str, np.ndarray, list[str]]],
                 anns: dict[str, Annotations], tests: dict[str, list[str]]) -> pd.DataFrame:
    """The frame table (see ``data/tables.py``): one row per frame of every video in ``n_frames``.

    ``crops[name] = (folder, frame indices [K], file names)``; annotation line k+1 <-> frame k.
    """
    names = sorted(n_frames)
    n = np.array([n_frames[v] for v in names], np.int64)  # [V]
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    pos = {v: i for i, v in enumerate(names)}
    vid = np.repeat(np.arange(len(names)), n)  # [N] video code per row
    frame = np.arange(n.sum()) - starts[vid] + 1
    crop = np.full(n.sum(), None, dtype=object)
    for v, (folder, idx, files) in crops.items():
        keep = idx <= n_frames[v]
        crop[starts[pos[v]] + idx[keep] - 1] = [f"{folder}/{f}" for f, k in zip(files, keep) if k]
    df = pd.DataFrame({"video": np.asarray(names, dtype=object)[vid], "frame": frame.astype(np.int32), "crop": crop})
    df["fill_frame"] = nearest_filled(vid, frame, crop != None)  # noqa: E711 (element-wise)
    for t, spec in TASKS.items():
        if t not in CLASSIC and t not in anns and t not in tests:
            continue  # a later edition's track gets its columns only in a release that has it
        cols = spec.label_columns
        heads = [h for h in spec.heads for _ in h.columns]  # the head of each label column
        vals = np.tile(np.array([h.invalid for h in heads], np.float32), (len(df), 1))
        split = np.full(len(names), "none", dtype=object)
        a = anns.get(t)
        if a is not None and len(a.names):
            fstart = np.concatenate([[0], np.cumsum(a.lengths)[:-1]])
            fvid = np.array([pos[x] for x in a.names])
            rows = np.repeat(starts[fvid] - fstart, a.lengths) + np.arange(a.lengths.sum())
            vals[rows] = a.values
            split[fvid] = a.roles
        split[[pos[x] for x in tests.get(t, []) if x in pos]] = "test"
        for j, (c, h) in enumerate(zip(cols, heads)):
            df[c] = vals[:, j].astype(np.float32 if h.kind in ("regression", "intensity") else np.int8)
        df[f"split_{t}"] = split[vid]
    return df
