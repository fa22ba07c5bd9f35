"""Compound-labelled face folders (``abaw prep --compound PATH``): training rows for the CE track.

C-EXPR-DB ships no training labels; a team trains its CE model on faces labelled with compounds. Two
list formats are read (``PATH`` is the list file, or a folder holding exactly one):
- abawkit's own list (``abaw mix`` writes it): a header ``image,class[,split]``, then one row per image:
  the image path relative to the list's folder, the class (a name of ``labels.CE_NAMES``, any case,
  spaces or underscores, or its id 0..6), optionally ``train``/``val``;
- RAF-DB's compound list (``EmoLabel/list_patition_label.txt``): ``train_0001.jpg 8`` rows, ids 1..11
  (``RAF_COMPOUND``); the 7 compounds C-EXPR-DB has are kept, the other 4 dropped and counted; the image is
  found under the list's dataset folder (``Image/aligned/train_0001_aligned.jpg`` first, else the
  name itself); the ``train_``/``test_`` prefix gives the split (test -> val).
Without a split in the list, an image is in val when a hash of (seed, its name) says so (1 in 5): the
same seed gives the same split, and adding images never moves the others.

Each image becomes a one-frame "video" named ``<tag>_<image stem>`` whose crop is the image itself, with
its class in column ``CE`` and its split in ``split_ce`` (``data/tables.py``). Reads the list and lists
the image folders; writes nothing.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from abawkit.errors import AbawError, where
from abawkit.files import visible, walk
from abawkit.labels import CE_NAMES, TASKS
from abawkit.release.annotations import Annotations

RAF_COMPOUND = ("Happily_Surprised", "Happily_Disgusted", "Sadly_Fearful", "Sadly_Angry", "Sadly_Surprised",
                "Sadly_Disgusted", "Fearfully_Angry", "Fearfully_Surprised", "Angrily_Surprised", "Angrily_Disgusted",
                "Disgustedly_Surprised")  # RAF-DB compound ids 1..11
RAF_LIST = "list_patition_label.txt"  # RAF-DB's own spelling
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
VAL_EVERY = 5  # without a split in the list: 1 image in 5 is val
_RAF_ROW = re.compile(r"^(?P<name>\S+)\s+(?P<label>\d+)$")


@dataclass
class CompoundSet:
    """The images of one list: one-frame video names, image files, CE ids and splits, all [M]."""

    list_file: Path
    names: list[str] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # class name -> images left out (not one of the 7)


def find_list(path: str | Path) -> Path:
    """The list file ``path``, or the one list file in the folder ``path`` (RAF-DB's first)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise AbawError(f"--compound {path}: no such file or folder")
    raf = [Path(d) / RAF_LIST for d, _, files in walk(path) if RAF_LIST in files]
    if raf:
        return raf[0]
    lists = visible(path, ".txt") + visible(path, ".csv")
    if len(lists) != 1:
        raise AbawError(f"--compound {path}: expected one list file (image,class rows) in the folder, found "
                        f"{len(lists)}{': ' + ', '.join(p.name for p in lists[:4]) if lists else ''}; pass the file")
    return lists[0]


def class_id(raw: str) -> int | None:
    """A CE class id from a name (``Fearfully Surprised``, ``fearfully_surprised``) or an id ``0``..``6``."""
    key = re.sub(r"[\s-]+", "_", raw.strip()).lower()
    names = [n.lower() for n in CE_NAMES]
    if key in names:
        return names.index(key)
    if key.isdigit() and int(key) < len(CE_NAMES):
        return int(key)
    return None


def _val_by_hash(seed: int, name: str) -> bool:
    return zlib.crc32(f"{seed}:{name}".encode()) % VAL_EVERY == 0


def _video_name(tag: str, rel: str) -> str:
    """``<tag>_<relative path without extension>``, path separators and odd characters as ``_``."""
    return f"{tag}_" + re.sub(r"[^\w.-]+", "_", str(Path(rel).with_suffix("")))


def _image_index(root: Path) -> dict[str, Path]:
    """{file name: path} of every image under ``root`` (first in walk order wins)."""
    index: dict[str, Path] = {}
    for d, _, files in walk(root):
        for f in files:
            if f.lower().endswith(IMAGE_EXTS):
                index.setdefault(f, Path(d) / f)
    return index


def read_raf(path: Path, tag: str) -> CompoundSet:
    """RAF-DB's ``name label`` compound list; images found under the folder above ``EmoLabel/``."""
    root = path.parent.parent if path.parent.name == "EmoLabel" else path.parent
    index = _image_index(root)
    out = CompoundSet(path)
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        m = _RAF_ROW.match(line.strip())
        if not m or not 1 <= int(m["label"]) <= len(RAF_COMPOUND):
            raise AbawError(f"{where(path, i)}: expected 'train_0001.jpg <1..11>' (RAF-DB compound list), got {line.strip()!r}")
        name, label = m["name"], RAF_COMPOUND[int(m["label"]) - 1]
        if label not in CE_NAMES:
            out.dropped[label] = out.dropped.get(label, 0) + 1
            continue
        stem, ext = name.rsplit(".", 1) if "." in name else (name, "jpg")
        img = index.get(f"{stem}_aligned.{ext}") or index.get(name)
        if img is None:
            raise AbawError(f"{where(path, i)}: image {name} not found under {root} (as {stem}_aligned.{ext} or {name})")
        out.names.append(_video_name(tag, name))
        out.images.append(img)
        out.classes.append(CE_NAMES.index(label))
        out.roles.append("val" if name.startswith("test") else "train")
    return out


def read_csv_list(path: Path, tag: str, seed: int) -> CompoundSet:
    """abawkit's ``image,class[,split]`` list; image paths relative to the list's folder."""
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    head = [h.strip().lower() for h in (lines[0].split(",") if lines else [])]
    if head[:2] != ["image", "class"] or head[2:] not in ([], ["split"]):
        raise AbawError(f"{where(path, 1, 'header')}: expected 'image,class' or 'image,class,split', got {lines[0] if lines else ''!r}")
    out = CompoundSet(path)
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(head):
            raise AbawError(f"{where(path, i)}: expected {len(head)} columns, got {len(cells)}")
        cls = class_id(cells[1])
        if cls is None:
            raise AbawError(f"{where(path, i, 'class')}: {cells[1]!r} is not one of {', '.join(CE_NAMES)} or 0..6")
        img = path.parent / cells[0]
        if not img.is_file():
            raise AbawError(f"{where(path, i, 'image')}: {img} not found")
        role = cells[2].lower() if len(cells) > 2 else ("val" if _val_by_hash(seed, cells[0]) else "train")
        if role not in ("train", "val"):
            raise AbawError(f"{where(path, i, 'split')}: expected train or val, got {cells[2]!r}")
        out.names.append(_video_name(tag, cells[0]))
        out.images.append(img)
        out.classes.append(cls)
        out.roles.append(role)
    return out


def read_compound(path: str | Path, tag: str, seed: int = 0) -> CompoundSet:
    """Read one ``--compound`` list (file or folder); an empty result is an error, never an empty set."""
    lst = find_list(path)
    first = next((ln.strip() for ln in lst.read_text(errors="replace").splitlines() if ln.strip()), "")
    got = read_raf(lst, tag) if _RAF_ROW.match(first) else read_csv_list(lst, tag, seed)
    if not got.names:
        raise AbawError(f"{lst}: no image of the 7 CE classes ({', '.join(CE_NAMES)}); dropped: {got.dropped or 'none'}")
    seen: set[str] = set()
    for name in got.names:
        if name in seen:
            raise AbawError(f"{lst}: image {name} is listed twice")
        seen.add(name)
    return got


def frame_inputs(sets: list[CompoundSet]) -> tuple[dict[str, int], dict[str, tuple[str, np.ndarray, list[str]]], Annotations]:
    """What ``release.annotations.build_frames`` takes for these images: {name: 1 frame}, {name: (folder,
    [1], [file])}, and the CE labels as one ``Annotations`` (one line per one-frame video)."""
    n_frames, crops, ann = {}, {}, Annotations(TASKS["ce"])
    for s in sets:
        for name, img in zip(s.names, s.images):
            if name in n_frames:
                raise AbawError(f"{s.list_file}: {name} is also in another --compound list; give each list once")
            n_frames[name] = 1
            crops[name] = (str(img.parent.resolve()), np.ones(1, np.int64), [img.name])
    ann.names = [n for s in sets for n in s.names]
    ann.roles = [r for s in sets for r in s.roles]
    ann.files = [s.list_file for s in sets for _ in s.names]
    ann.lengths = np.ones(len(ann.names), np.int64)
    ann.values = np.asarray([c for s in sets for c in s.classes], np.float32).reshape(-1, 1)
    return n_frames, crops, ann
