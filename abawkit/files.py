"""Listing folders of a release or of face images the way real disks hold them.

Reads directory entries only; imports nothing of abawkit but ``errors``, so every layer (``release``,
``data``, ``submission``, and ``workspace.fingerprints``) lists folders by the same rules. Three facts of shared
servers and of
archives made on a Mac:
- folders are symlinks to other disks (``cropped_aligned -> /mnt/disk2/...``): walks follow them, and
  a folder reached twice (a link back to an ancestor, or two links to one folder) is entered once,
  by its ``(st_dev, st_ino)``;
- macOS leaves hidden files beside the real ones (``._v1.txt`` AppleDouble resource forks, ``.DS_Store``):
  every name starting with ``.`` is skipped, files and folders alike;
- a link that points nowhere (a disk not mounted) is an error naming it, never an empty folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from abawkit.errors import AbawError


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
    """(folder, its sub-folder names, its file names) top-down, both lists sorted, as ``os.walk``: the one
    walker of abawkit (release discovery, face folders, zips, fingerprints of data and checkpoint folders).

    Callers may prune the sub-folder list in place, as with ``os.walk``. The rules:
    - links to folders are followed, each folder entered once by its ``(st_dev, st_ino)``, so a link
      cycle ends and two links to one folder list it once (the first name in sorted order wins);
    - hidden names (``hidden``) are skipped, files and folders alike;
    - a link that points nowhere is an ``AbawError`` naming the link and its target, wherever it is:
      a missing disk behind ``cropped_aligned -> /mnt/disk2/...`` is never read as an empty release.
    ``scandir`` gives each entry's type without a ``stat`` (only links are followed, each folder is
    stat'ed once), so 3 M crops list in seconds.
    """
    stack, seen = [str(top)], {folder_key(str(top))}
    while stack:
        dirpath = stack.pop()
        dirs, files = [], []
        try:
            entries = visible_entries(dirpath)
        except (FileNotFoundError, NotADirectoryError):
            if dirpath == str(top):
                return  # as os.walk: no such folder, nothing to list
            raise
        for entry in entries:
            if not entry.is_dir():
                files.append(entry.name)
            elif (key := folder_key(entry.path)) not in seen:
                seen.add(key)
                dirs.append(entry.name)
        yield dirpath, dirs, files
        stack.extend(os.path.join(dirpath, d) for d in reversed(dirs))


def visible_entries(dirpath: str) -> list[os.DirEntry]:
    """One folder's entries, sorted by name, hidden ones left out: the rules of ``walk`` for one folder (also
    the listing cache's, ``workspace.listing``, which re-reads only folders that changed). A link that points
    nowhere is an ``AbawError`` naming it; an unreadable folder too."""
    try:
        with os.scandir(dirpath) as it:
            entries = sorted((e for e in it if not hidden(e.name)), key=lambda e: e.name)
    except PermissionError as e:
        raise AbawError(f"{dirpath}: folder cannot be read ({e.strerror})") from None
    for entry in entries:
        if entry.is_symlink():
            not_dangling(entry.path)
    return entries


def not_dangling(path: str | Path) -> None:
    """A link that points nowhere is an ``AbawError`` naming the link and its target (a missing disk behind
    ``cropped_aligned -> /mnt/disk2/...`` is never read as an empty folder)."""
    if os.path.islink(path) and not os.path.exists(path):
        raise AbawError(f"{path}: dangling symbolic link (it points to {os.readlink(path)}, which does not exist)")


def visible(folder: str | Path, suffix: str = "") -> list[Path]:
    """Sorted files of one folder ending in ``suffix`` (case-insensitive), hidden ones left out ([] if no folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    with os.scandir(folder) as it:
        names = [e.name for e in it if not hidden(e.name) and e.name.lower().endswith(suffix) and e.is_file()]
    return [folder / n for n in sorted(names)]
