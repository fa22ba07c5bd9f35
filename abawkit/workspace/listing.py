"""A data folder's identity by its listing (a release, a face collection), with a warm cache.

``listing(root)`` -> ``Listing(id, files)``: ``id`` is a sha256 over each folder's relative name, the names of
its images, its raw videos and audio by name and size (``MEDIA_SUFFIXES``: hashing 100 GB would take hours),
and every other file (annotations, test lists, templates) by name and content sha256; ``files`` maps each
of those files' relative path to its sha256, so a change can be named ("labels changed:
VA_Estimation_Challenge/Train_Set/x.txt"). Neither depends on mtimes: a copied release keeps its id.

Cost: a release of 3 M crops in 3 000 folders. The cache (``listing_cache_dir()``, one JSON per root) keeps,
per folder, its mtime_ns and (dev, inode), its subfolders, a digest of its image names and its non-image
files with (size, mtime_ns, inode, sha256). A folder whose mtime_ns and inode are unchanged has the same
entries (adding, removing or renaming one changes it), so a warm listing stats the folders and the
non-image files only and lists none. A crop rewritten in place under the same name is not seen (as
before); a label file rewritten in place is (its size, mtime_ns or inode changes). Entries younger than
``RACY_NS`` are not cached (a change within the filesystem's clock tick would look unchanged).

Reads the folder; writes only the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abawkit.errors import AbawError
from abawkit.files import visible_entries
from abawkit.io import atomic_path
from abawkit.workspace.fingerprints import (
    IMAGE_SUFFIXES,
    RACY_NS,
    hash_cache_dir,
    sha256_file,
)

CACHE_VERSION = 1
MEDIA_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".wav", ".mp3",
                  ".flac", ".m4a")  # raw videos and audio: by name and size (hashing a release's 100 GB would take hours)


@dataclass(frozen=True)
class Listing:
    id: str
    files: dict[str, str]  # relative path of each non-image file -> its content sha256


def listing_cache_dir() -> Path:
    """``$ABAW_LISTING_CACHE``, else ``<hash_cache_dir()>/listings``."""
    if env := os.environ.get("ABAW_LISTING_CACHE"):
        return Path(env)
    return hash_cache_dir() / "listings"


def listing(root: str | Path) -> Listing:
    """The listing identity of folder ``root`` (see the module docstring)."""
    root = str(root)
    if not os.path.isdir(root):
        raise AbawError(f"{root}: not a folder")
    cache_file = listing_cache_dir() / (hashlib.sha256(os.path.realpath(root).encode()).hexdigest() + ".json")
    cache = _read_cache(cache_file)
    fresh: dict[str, Any] = {}
    h, files = hashlib.sha256(), {}
    stack, seen, now = [(root, "")], set(), time.time_ns()
    while stack:
        dirpath, rel = stack.pop()
        st = os.stat(dirpath)  # follows a link: each folder once (a link cycle ends), one stat per folder
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        old = cache.get(rel)
        if old and old["mtime_ns"] == st.st_mtime_ns and old["ino"] == [st.st_dev, st.st_ino]:
            entry = _refresh(dirpath, old, now)
        else:
            entry = _scan(dirpath, st, old, now)
        if now - st.st_mtime_ns > RACY_NS:
            fresh[rel] = entry
        h.update(f"{rel}/\0{entry['images']}\0".encode())
        h.update("".join(f"{name}\0{rec[0]}\n" for name, rec in entry["media"].items()).encode())
        for name, rec in entry["files"].items():
            files[f"{rel}/{name}" if rel else name] = rec[3]
            h.update(f"{name}\0{rec[3]}\n".encode())
        stack.extend((os.path.join(dirpath, d), f"{rel}/{d}" if rel else d) for d in reversed(entry["dirs"]))
    if fresh != cache:
        _write_cache(cache_file, fresh)
    return Listing(h.hexdigest(), files)


def _scan(dirpath: str, st: os.stat_result, old: dict[str, Any] | None, now: int) -> dict[str, Any]:
    """List one folder: subfolders, a digest of its image names, its non-image files hashed (reusing
    ``old``'s digest of a file whose size, mtime_ns and inode are unchanged)."""
    dirs, images, files, media = [], hashlib.sha256(), {}, {}
    for e in visible_entries(dirpath):  # the walker's rules: hidden names skipped, a dangling link an error
        if e.is_dir():
            dirs.append(e.name)
        elif e.name.lower().endswith(IMAGE_SUFFIXES):
            images.update(f"{e.name}\n".encode())
        elif e.name.lower().endswith(MEDIA_SUFFIXES):
            st_ = os.stat(e.path)
            media[e.name] = [st_.st_size, st_.st_mtime_ns, st_.st_ino]
        else:
            files[e.name] = _file(e.path, (old or {}).get("files", {}).get(e.name), now)
    return {"mtime_ns": st.st_mtime_ns, "ino": [st.st_dev, st.st_ino], "dirs": dirs,
            "images": images.hexdigest(), "files": files, "media": media}


def _refresh(dirpath: str, old: dict[str, Any], now: int) -> dict[str, Any]:
    """A folder whose entries are unchanged: only its non-image files are stat'ed (rehashed if rewritten)."""
    files = {name: _file(os.path.join(dirpath, name), rec, now) for name, rec in old["files"].items()}
    media = {}
    for name in old["media"]:
        st = os.stat(os.path.join(dirpath, name))
        media[name] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return {**old, "files": files, "media": media}


def _file(path: str, old: list[Any] | None, now: int) -> list[Any]:
    """[size, mtime_ns, inode, sha256] of a non-image file; ``old``'s digest when the first three match
    and are old enough to trust (see ``RACY_NS``)."""
    st = os.stat(path)
    key = [st.st_size, st.st_mtime_ns, st.st_ino]
    if old and old[:3] == key and now - st.st_mtime_ns > RACY_NS:
        return old
    sha = sha256_file(path)
    return [*key, sha] if now - st.st_mtime_ns > RACY_NS else [-1, -1, -1, sha]


def _read_cache(path: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text())
        if data.get("version") == CACHE_VERSION:
            return data["folders"]
    return {}


def _write_cache(path: Path, folders: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # a read-only cache only costs time
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"version": CACHE_VERSION, "folders": folders}, separators=(",", ":")))
