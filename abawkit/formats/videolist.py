"""The row-order check every list-shaped submission shares (A/H trials, EMI, the frame-level A/H file).

The organisers' list fixes which rows a file holds and in which order; ``check_order`` reports every way
a file departs from it: an extra row (not in the list), a repeated row, a row out of order, rows missing.
Keys are anything hashable (a video id, or a (video, frame) pair); ``show`` turns a key into the text a
person finds in the file. Reads and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Hashable, Sequence

from abawkit.submission import Problems


def _missing(path: Path, line: int, keys: Sequence[Hashable], show: Callable, problems: Problems) -> None:
    """One problem per run of missing rows (a video of 9 000 missing frames is one line, not 9 000)."""
    if not keys:
        return
    span = show(keys[0]) if len(keys) == 1 else f"{show(keys[0])} .. {show(keys[-1])}"
    problems.add(path, line, f"missing {len(keys)} row(s) of the list: {span}")


def check_order(path: Path, keys: Sequence[Hashable], rows: list[tuple[int, Hashable]], problems: Problems,
                show: Callable[[Hashable], str] = str) -> None:
    """Compare the file's rows ``[(line, key)]`` with the list ``keys``: extra, repeated, out of order, missing.

    A row moved elsewhere is reported once, where it stands ("out of order"), not also as missing."""
    pos = {k: i for i, k in enumerate(keys)}
    present = {k for _, k in rows if k in pos}
    first: dict[Hashable, int] = {}
    ptr, gap = 0, []  # ptr: the list position the next row should hold
    for line, key in rows:
        if key not in pos:
            problems.add(path, line, f"extra row {show(key)} (not in the organisers' list)")
            continue
        if key in first:
            problems.add(path, line, f"{show(key)} appears again (first at line {first[key]})")
            continue
        first[key] = line
        j = pos[key]
        if j >= ptr:
            gap = [k for k in keys[ptr:j] if k not in present]
            _missing(path, line, gap, show, problems)
            ptr = j + 1
        else:
            problems.add(path, line, f"{show(key)} out of order: the list has it before {show(keys[ptr - 1])}")
    end = (rows[-1][0] + 1) if rows else 1
    _missing(path, end, [k for k in keys[ptr:] if k not in present], show, problems)
