"""s-Aff-Wild2, the release of the multi-task (MTL) track of ABAW 3, 4, 7 and 11, read into prep's inputs.

The organisers ship one annotation file per split, ``training_set_annotations.txt`` and
``validation_set_annotations.txt`` (ABAW4 added a suffix: ``..._22.txt``): a header
``image,valence,arousal,expression,aus``, then one row per *listed* image,
``video45_1/00001.jpg,v,a,e,au1,...,au12`` (AUs in ``labels.AU_NAMES`` order). Images are sparse (00001,
00008, 00017, ...) and each task is masked on its own: valence/arousal -5, expression -1, each AU -1. The
test list (``MTL.txt``; ABAW4 ``MTL_Challenge_test_set_release.txt``, ABAW3
``Multi_Task_Learning_Challenge_test_set_release.txt``) is a header line, then one ``video/00001.jpg`` per
row in the order a submission must follow. Crops are Aff-Wild2's (``cropped_aligned/<video>/``).

Reads those files (bulk pandas parse; a per-line pass only to name the first bad line) and returns an
``Annotations`` for track ``mtl`` (dense per frame, the head's invalid value where a frame is not listed),
the listed frames per video, and the test list as {video: frames}. Writes nothing.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit.errors import AbawError, where
from abawkit.labels import AU_NAMES, TASKS
from abawkit.release.annotations import Annotations

SPEC = TASKS["mtl"]
HEADER = "image,valence,arousal,expression,aus"
HEADERS = (HEADER, "image,valence,arousal,expression," + ",".join(AU_NAMES))  # the AU-named form is accepted too
FIELDS = ("image", "valence", "arousal", "expression", *AU_NAMES)  # the fields of a row, for messages
INVALID = np.array([h.invalid for h in SPEC.heads for _ in h.columns], np.float64)  # [15]: -5 -5 -1 -1 x 12
IMAGE_RE = re.compile(r"^(?P<video>[^/\s,]+)/(?P<frame>\d+)\.jpg$")
def image_name(video: str, frame: int) -> str:
    return f"{video}/{frame:05d}.jpg"


# ----------------------------------------------------------------------------- annotation files
def read_file(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """One annotation file: (video, frame) rows [N] and label values [N, 15] in file order.

    Errors name ``file:line [field]``: wrong header, column count, non-numeric, out-of-range label, bad
    image name, a repeated image."""
    head, _, body = path.read_bytes().partition(b"\n")
    header = head.decode(errors="replace").strip().lstrip("\ufeff").rstrip(",")
    if header not in HEADERS:
        raise AbawError(f"{where(path, 1, 'header')}: expected {HEADER!r}, got {header!r}")
    body = body.rstrip()
    n_cols = len(FIELDS)
    try:
        df = pd.read_csv(io.BytesIO(body + b"\n"), header=None, names=range(n_cols), engine="c", skip_blank_lines=False,
                         dtype={0: str, **{k: np.float64 for k in range(1, n_cols)}}) if body else pd.DataFrame()
        values = df.iloc[:, 1:].to_numpy(np.float64) if len(df) else np.zeros((0, n_cols - 1))
    except (ValueError, pd.errors.ParserError):
        values = None
    if values is None or np.isnan(values).any() or df[0].isna().any():
        _locate_bad_line(path)
    rows = _images(path, df[0])
    _check_values(path, values)
    dup = rows.duplicated(keep=False).to_numpy()
    if dup.any():
        first, again = np.flatnonzero(dup)[:1][0], np.flatnonzero(rows.duplicated().to_numpy())[0]
        raise AbawError(f"{where(path, int(again) + 2, 'image')}: {df[0].iloc[again]} is listed twice "
                        f"(first at line {int(first) + 2})")
    return rows, values


def _images(path: Path, images: pd.Series) -> pd.DataFrame:
    """``video/00001.jpg`` -> (video, frame); a name of another shape or frame 0 names its line."""
    parts = images.str.strip().str.extract(IMAGE_RE.pattern)
    frame = pd.to_numeric(parts["frame"], errors="coerce")
    bad = (parts["video"].isna() | ~(frame >= 1)).to_numpy()
    if bad.any():
        k = int(np.argmax(bad))
        raise AbawError(f"{where(path, k + 2, 'image')}: expected video/00001.jpg (1-based frame), got {images.iloc[k]!r}")
    return pd.DataFrame({"video": parts["video"].to_numpy(object), "frame": frame.to_numpy(np.int64)})


def _check_values(path: Path, v: np.ndarray) -> None:
    """VA in [-1, 1] or -5; expression an integer -1..7; each AU -1, 0 or 1. v: [N, 15]."""
    ok = np.empty(v.shape, bool)
    ok[:, :2] = ((v[:, :2] >= -1) & (v[:, :2] <= 1)) | (v[:, :2] == -5)
    ok[:, 2] = (v[:, 2] == np.round(v[:, 2])) & (v[:, 2] >= -1) & (v[:, 2] <= 7)
    ok[:, 3:] = np.isin(v[:, 3:], (-1, 0, 1))
    if ok.all():
        return
    row, col = np.argwhere(~ok)[0]
    rule = ("must be in [-1, 1] or -5", "must be in [-1, 1] or -5", "must be an integer in -1..7")
    raise AbawError(f"{where(path, int(row) + 2, FIELDS[col + 1])}: label {v[row, col]:g} out of range "
                    f"({rule[col] if col < 3 else 'must be -1, 0 or 1'})")


def _locate_bad_line(path: Path) -> None:
    """Slow path, only after the bulk parse failed: the first line with a wrong column count or a non-number."""
    lines = path.read_text(errors="replace").rstrip().split("\n")
    for k, line in enumerate(lines[1:], start=2):
        cells = line.strip().split(",")
        if not line.strip():
            raise AbawError(f"{where(path, k)}: empty line")
        if len(cells) != len(FIELDS):
            raise AbawError(f"{where(path, k)}: wrong column count: expected {len(FIELDS)}, got {len(cells)}")
        for name, cell in zip(FIELDS[1:], cells[1:]):
            try:
                if not np.isfinite(float(cell)):
                    raise ValueError
            except ValueError:
                raise AbawError(f"{where(path, k, name)}: non-numeric value {cell.strip()!r}") from None
    raise AbawError(f"{path}: could not parse the annotation file")


def read_annotations(files: dict[str, Path]) -> tuple[Annotations, dict[str, np.ndarray]]:
    """The MTL track's ``Annotations`` from {role: annotation file} (roles ``train``, ``val``), and the listed
    frames of every video (sorted). ``values`` are dense per frame up to the last listed one: line k+1 of the
    dense array is frame k; a frame that is not listed holds the invalid value of each head."""
    ann = Annotations(SPEC, values=np.zeros((0, len(INVALID)), np.float32))
    listed: dict[str, np.ndarray] = {}
    owner: dict[str, Path] = {}
    blocks = []
    for role in ("train", "val"):
        if role not in files:
            continue
        path = files[role]
        rows, values = read_file(path)
        codes, videos = pd.factorize(rows["video"], sort=True)
        for v in videos:
            if v in owner:
                raise AbawError(f"{path}: video {v} is also in {owner[v]} (a video belongs to one split)")
            owner[v] = path
        lengths = rows.groupby(codes)["frame"].max().to_numpy(np.int64)  # [V] last listed frame
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        dense = np.tile(INVALID, (int(lengths.sum()), 1))
        dense[starts[codes] + rows["frame"].to_numpy() - 1] = values
        blocks.append(dense)
        ann.files += [path] * len(videos)
        ann.names += list(videos)
        ann.roles += [role] * len(videos)
        ann.lengths = np.concatenate([ann.lengths, lengths])
        order = np.lexsort((rows["frame"].to_numpy(), codes))  # by video, then frame
        listed.update(zip(videos, np.split(rows["frame"].to_numpy()[order], np.cumsum(np.bincount(codes))[:-1])))
    if blocks:
        ann.values = np.concatenate(blocks).astype(np.float32)
    return ann, listed


# ----------------------------------------------------------------------------- the test list
def read_test_list(path: Path) -> dict[str, np.ndarray]:
    """The organisers' test list: {video: frames} in the list's order (videos in order of appearance, frames in
    file order). The first line is a header unless it is already an image name; fields after the first are
    ignored. A bad image name, a repeated image, or a video whose rows are not together is a one-line error."""
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    lines = pd.Series(text.replace("\r\n", "\n").split("\n"))
    while len(lines) and not lines.iloc[-1].strip():
        lines = lines.iloc[:-1]  # trailing blank lines
    first = lines.str.split(",", n=1).str[0].str.strip()
    skip = 0 if len(first) and IMAGE_RE.match(first.iloc[0]) else 1
    images = first.iloc[skip:]
    if images.empty:
        raise AbawError(f"{path}: the test list names no image")
    parts = images.str.extract(IMAGE_RE.pattern)
    frame = pd.to_numeric(parts["frame"], errors="coerce")
    bad = (parts["video"].isna() | ~(frame >= 1)).to_numpy()
    if bad.any():
        k = int(np.argmax(bad))
        raise AbawError(f"{where(path, k + skip + 1, 'image')}: expected video/00001.jpg, got {images.iloc[k]!r}")
    rows = pd.DataFrame({"video": parts["video"].to_numpy(object), "frame": frame.to_numpy(np.int64)})
    again = rows.duplicated().to_numpy()
    if again.any():
        k = int(np.argmax(again))
        raise AbawError(f"{where(path, k + skip + 1, 'image')}: {images.iloc[k]} is listed twice")
    video = rows["video"].to_numpy(object)
    starts = np.flatnonzero(np.r_[True, video[1:] != video[:-1]])  # first row of each block of one video
    seen = pd.Series(video[starts]).duplicated().to_numpy()
    if seen.any():
        k = int(starts[np.argmax(seen)])
        raise AbawError(f"{where(path, k + skip + 1, 'image')}: video {video[k]} appears again after other videos; "
                        f"a test list keeps each video's rows together")
    return {v: g.to_numpy(np.int64) for v, g in rows.groupby("video", sort=False)["frame"]}


# ----------------------------------------------------------------------------- crops
def missing_crops(listed: dict[str, np.ndarray], crops: dict[str, tuple[str, np.ndarray, list[str]]]) -> tuple[int, str]:
    """How many images of ``listed`` ({video: frames}) have no crop in ``crops`` (prep's crop index:
    {video: (folder, frames, files)}), and the first of them as ``video/00001.jpg`` ("" if none)."""
    count, first = 0, ""
    for v, frames in listed.items():
        have = crops[v][1] if v in crops else np.zeros(0, np.int64)
        lack = frames[~np.isin(frames, have)]
        if len(lack) and not first:
            first = image_name(v, int(lack[0]))
        count += len(lack)
    return count, first
