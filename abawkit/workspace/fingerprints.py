"""Fingerprints of inputs: a file's content sha256 (cached), a checkpoint folder's content, a data
folder's listing, a config's hash, the library versions.

The cache (``hash_cache_dir()``) keys a file's digest by (path, size, mtime_ns, inode), so a 1 GB
checkpoint read by many jobs is hashed once and a rewritten one is hashed again. Reads files; writes
only the cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from abawkit.config import to_dict
from abawkit.files import not_dangling, walk
from abawkit.io import atomic_path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Streamed sha256 of a file's bytes. Files of ``CACHE_MIN`` bytes or more are cached by
    (path, size, mtime_ns, inode) under ``hash_cache_dir()``, so a 1 GB checkpoint read by many jobs
    is hashed once; a rewritten file changes its mtime_ns and is hashed again."""
    st = os.stat(path)
    cache = _cache_file(path, st) if st.st_size >= CACHE_MIN else None
    if cache is not None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            hit = cache.read_text().strip()
            if len(hit) == 64:
                return hit
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    digest = h.hexdigest()
    if cache is not None:
        with contextlib.suppress(OSError):  # a read-only cache only costs time
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache) as tmp:
                tmp.write_text(digest + "\n")
    return digest



CACHE_MIN = 1 << 20
RACY_NS = 2_000_000_000  # listings: younger folders and small files are not cached (see ``workspace.listing``)



def hash_cache_dir() -> Path:
    """``$ABAW_HASH_CACHE``, else ``$XDG_CACHE_HOME/abawkit/sha256`` (``~/.cache/...``)."""
    if env := os.environ.get("ABAW_HASH_CACHE"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "abawkit" / "sha256"



def _cache_file(path: str | Path, st: os.stat_result) -> Path:
    key = f"{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_dev}"
    return hash_cache_dir() / hashlib.sha256(key.encode()).hexdigest()



IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")



def _walk(root: str | Path) -> Iterator[tuple[str, str, list[str]]]:
    """(folder, its path relative to ``root``, its file names) by ``files.walk``'s rules."""
    for dirpath, _, files in walk(root):
        yield dirpath, os.path.relpath(dirpath, root), files



def content_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, or of a folder's relative names with each file's content sha256
    (a checkpoint folder: retrained weights of the same shape change it)."""
    p = Path(path)
    not_dangling(p)
    if p.is_file():
        return sha256_file(p)
    h = hashlib.sha256()
    for dirpath, rel, files in _walk(p):
        for f in files:
            h.update(f"{rel}/{f}\0{sha256_file(os.path.join(dirpath, f))}\n".encode())
    return h.hexdigest()



def listing_sha256(path: str | Path) -> str:
    """sha256 of a folder's listing: each folder's relative name and mtime_ns; each file's name, and
    the size and mtime_ns of every file that is not an image (annotations, test lists, templates).

    A release or face collection holds millions of crops: their names and their folders' mtime_ns
    need no per-file ``stat`` (see README: a 3 M-crop listing), and adding, removing or replacing a
    crop changes its folder's mtime_ns; a crop rewritten in place under the same name does not."""
    h = hashlib.sha256()
    for dirpath, rel, files in _walk(path):
        lines = [f"{rel}/\0{os.stat(dirpath).st_mtime_ns}"]
        for f in files:
            if f.lower().endswith(IMAGE_SUFFIXES):
                lines.append(f)
            else:
                st = os.stat(os.path.join(dirpath, f))
                lines.append(f"{f}\0{st.st_size}\0{st.st_mtime_ns}")
        h.update(("\n".join(lines) + "\n").encode())  # one update per folder: 3 M crops hash in seconds
    return h.hexdigest()



def config_hash(cfg: Any) -> str:
    blob = json.dumps(to_dict(cfg) if not isinstance(cfg, dict) else cfg, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]



def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("abawkit", "torch", "timm", "numpy", "pandas", "scipy", "transformers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out
