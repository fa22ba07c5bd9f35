"""Listing folders of a release or of face images the way real disks hold them.

Reads directory entries only; imports nothing of abawkit, so every layer (``data``, ``submission``, and
``runs`` for fingerprints) can list folders by the same rules. Two facts of shared servers and of
archives made on a Mac:
- folders are symlinks to other disks (``cropped_aligned -> /mnt/disk2/...``): walks follow them, and
  a folder reached twice (a link back to an ancestor, or two links to one folder) is entered once,
  by its ``(st_dev, st_ino)``;
- macOS leaves hidden files beside the real ones (``._v1.txt`` AppleDouble resource forks, ``.DS_Store``):
  every name starting with ``.`` is skipped, files and folders alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator


def hidden(name: str) -> bool:
    """``.DS_Store``, ``._v1.txt`` (AppleDouble), ``.git``: never part of a release or a face folder."""
    return name.startswith(".")


def folder_key(path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the folder ``path`` points at, or None when it cannot be read (dangling link)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def walk(top: str | Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` top-down through symlinked folders, without hidden entries, each folder once.

    Callers may prune ``dirnames`` in place, as with ``os.walk``. Both lists are sorted.
    """
    seen = {folder_key(str(top))}
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            key = folder_key(os.path.join(dirpath, d))
            if hidden(d) or key is None or key in seen:
                continue
            seen.add(key)
            keep.append(d)
        dirnames[:] = keep
        yield dirpath, dirnames, sorted(f for f in filenames if not hidden(f))


def visible(folder: str | Path, suffix: str = "") -> list[Path]:
    """Sorted files of one folder ending in ``suffix`` (case-insensitive), hidden ones left out ([] if no folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    with os.scandir(folder) as it:
        names = [e.name for e in it if not hidden(e.name) and e.name.lower().endswith(suffix) and e.is_file()]
    return [folder / n for n in sorted(names)]
