"""Find the parts of a release wherever the organisers' archives unpacked them (SPEC section 2).

Teams' disks hold the release in many shapes: annotations under an edition folder (``6th ABAW
Annotations/EXPR_Recognition_Challenge/Train_Set``), crops in several nested roots
(``cropped_aligned/cropped_aligned/<video>/``, ``batch2/cropped_aligned_new_50_vids/<video>/``), raw
videos in ``batch1/``, ``batch2/``, ``new_vids/``, test lists and templates in any folder. ``discover``
walks the release once, at most ``MAX_DEPTH`` folder levels below the root, following symlinked folders
(each folder once) and skipping hidden files and folders (``abawkit.files``: macOS ``._*`` included), and
returns a ``Layout``: first find everything, then say what was found (``Layout.roots``), then read.

Rules where the same thing is found twice:
- a video folder in two crop roots: the folder with more numbered images wins (ties: the root that
  sorts first); every such video is listed in ``Layout.duplicates``;
- two media files with one stem: ``.mp4`` before other extensions, then the path that sorts first;
- two challenge folders of one task, or two different test lists of one task: an error naming both
  (point ``--annotations`` at the right folder, or remove one);
- s-Aff-Wild2 (the MTL track, ``release/mtl.py``): its annotation files and test list are found by name
  anywhere in the walk (``Layout.mtl``); two different files for one role are an error naming both. Its
  test list is also recorded as the track's template (``Layout.templates["mtl"]``). A release may hold
  s-Aff-Wild2 alone (no challenge folders) or next to the classic challenge folders.
Explicit folders (``annotations``, ``crops``, ``videos``) replace discovery of that kind.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from abawkit.errors import AbawError
from abawkit.files import hidden, visible, walk
from abawkit.labels import TASKS, task_for_folder
from abawkit.video.media import VIDEO_EXTS

MAX_DEPTH = 4  # folder levels below the root that are listed
SPLIT_FOLDERS = {"Train_Set": "train", "Validation_Set": "val"}
CROP_RE = re.compile(r"^\d+\.(jpg|jpeg|png)$", re.IGNORECASE)
TEST_LIST_RE = re.compile(r"^(Action_Unit|Expression|Valence_Arousal)\w*_test_set_release\.txt$", re.IGNORECASE)
TEST_LIST_TASK = {"action_unit": "au", "expression": "expr", "valence_arousal": "va"}
TEMPLATE_RE = re.compile(r"_(AU|EXPR|VA|CE)_test_set_(example|sample)\w*\.txt$", re.IGNORECASE)  # CE: the frame list
CHALLENGE_LIKE = re.compile(r"(Challenge|_Set)$")
MTL_FILES = {  # s-Aff-Wild2 (release/mtl.py): annotation files per split (ABAW4 adds a suffix) and the test list
    "train": re.compile(r"^training_set_annotations(_\w+)?\.txt$", re.IGNORECASE),
    "val": re.compile(r"^validation_set_annotations(_\w+)?\.txt$", re.IGNORECASE),
    "test": re.compile(r"^(MTL|MTL_Challenge_test_set_release|Multi_Task_Learning_Challenge_test_set_release)\.txt$",
                       re.IGNORECASE),
}


@dataclass
class Layout:
    """Where each part of a release lives. Paths are absolute."""

    root: Path
    challenges: dict[str, Path] = field(default_factory=dict)  # task -> folder holding Train_Set/Validation_Set
    crop_roots: list[Path] = field(default_factory=list)  # folders whose children are per-video crop folders
    crops: dict[str, Path] = field(default_factory=dict)  # video name -> its crop folder
    videos: dict[str, Path] = field(default_factory=dict)  # media stem -> media file
    test_lists: dict[str, Path] = field(default_factory=dict)  # task -> *_test_set_release.txt
    templates: dict[str, Path] = field(default_factory=dict)  # task -> submission template
    mtl: dict[str, Path] = field(default_factory=dict)  # s-Aff-Wild2: "train" / "val" annotation file, "test" list
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # "crops:<video>" / "video:<stem>" -> [used, others...]
    searched: dict[str, list[str]] = field(default_factory=dict)  # kind -> folders searched

    def roots(self) -> list[dict]:
        """One row per folder used: kind, path, count (for the prep summary)."""
        rows = [{"kind": f"annotations {t}", "path": str(p), "count": _count_txt(p)} for t, p in sorted(self.challenges.items())]
        per_root: dict[Path, int] = {}
        for d in self.crops.values():
            per_root[d.parent] = per_root.get(d.parent, 0) + 1
        rows += [{"kind": "crops", "path": str(r), "count": per_root.get(r, 0)} for r in self.crop_roots]
        folders: dict[Path, int] = {}
        for p in self.videos.values():
            folders[p.parent] = folders.get(p.parent, 0) + 1
        rows += [{"kind": "videos", "path": str(d), "count": n} for d, n in sorted(folders.items())]
        rows += [{"kind": f"test list {t}", "path": str(p), "count": len(read_names(p))} for t, p in sorted(self.test_lists.items())]
        rows += [{"kind": f"template {t}", "path": str(p), "count": None} for t, p in sorted(self.templates.items())]
        rows += [{"kind": f"mtl {r}", "path": str(p), "count": None} for r, p in sorted(self.mtl.items())]
        return rows

    def to_dict(self) -> dict:
        return {"root": str(self.root), "challenges": {t: str(p) for t, p in self.challenges.items()},
                "crop_roots": [str(p) for p in self.crop_roots], "test_lists": {t: str(p) for t, p in self.test_lists.items()},
                "templates": {t: str(p) for t, p in self.templates.items()}, "duplicates": self.duplicates,
                "mtl": {r: str(p) for r, p in self.mtl.items()},
                "searched": self.searched, "videos": len(self.videos), "crop_folders": len(self.crops)}


def mtl_role(name: str) -> str | None:
    """``train`` / ``val`` / ``test`` for an s-Aff-Wild2 file name, else None."""
    return next((role for role, rx in MTL_FILES.items() if rx.match(name)), None)


def _count_txt(challenge: Path) -> int:
    return sum(len(visible(challenge / s, ".txt")) for s in SPLIT_FOLDERS if (challenge / s).is_dir())


def read_names(path: Path) -> list[str]:
    """Video names of a test list, one per line (blank lines and surrounding spaces ignored)."""
    return [n.strip() for n in path.read_text(errors="replace").splitlines() if n.strip()]


# ----------------------------------------------------------------------------- the walk
@dataclass
class _Found:
    challenges: list[Path] = field(default_factory=list)
    crop_roots: list[Path] = field(default_factory=list)
    media: list[Path] = field(default_factory=list)
    test_lists: list[Path] = field(default_factory=list)
    templates: list[Path] = field(default_factory=list)
    mtl: list[Path] = field(default_factory=list)  # s-Aff-Wild2 annotation files and test lists


def _is_crop_folder(path: str, peek: int = 16) -> bool:
    """Does this folder hold numbered images? Reads at most ``peek`` entries (folders hold thousands)."""
    try:
        with os.scandir(path) as it:
            for k, entry in enumerate(it):
                if CROP_RE.match(entry.name):
                    return True
                if k >= peek:
                    return False
    except OSError:
        return False
    return False


def _walk(top: Path, max_depth: int = MAX_DEPTH) -> _Found:
    """One bounded walk collecting every kind of release part; crop roots and challenge folders are not entered."""
    found = _Found()
    base = len(top.parts)
    for dirpath, dirnames, filenames in walk(top):
        here = Path(dirpath)
        for name in filenames:
            low = name.lower()
            if low.endswith(VIDEO_EXTS):
                found.media.append(here / name)
            elif TEST_LIST_RE.match(name):
                found.test_lists.append(here / name)
            elif TEMPLATE_RE.search(name):
                found.templates.append(here / name)
            elif mtl_role(name):
                found.mtl.append(here / name)
        if any(d in SPLIT_FOLDERS for d in dirnames):
            found.challenges.append(here)
            dirnames[:] = []
            continue
        video_dirs = [d for d in dirnames if _is_crop_folder(os.path.join(dirpath, d))]
        if video_dirs and len(video_dirs) * 2 >= len(dirnames):
            found.crop_roots.append(here)
            dirnames[:] = []
            continue
        if len(here.parts) - base >= max_depth:
            dirnames[:] = []
    return found


# ----------------------------------------------------------------------------- interpretation
def _challenges(found: list[Path], searched: list[str], required: bool = True) -> dict[str, Path]:
    """{task: challenge folder}; unknown challenge-like names and two folders for one task are errors, and so is
    finding none when ``required`` (a release with neither s-Aff-Wild2 annotation files nor a CE frame list)."""
    out: dict[str, Path] = {}
    for d in found:
        spec = task_for_folder(d.name)
        if spec is None:
            if CHALLENGE_LIKE.search(d.name):
                raise AbawError(f"{d}: unknown challenge folder (expected one of "
                                f"{', '.join(s.challenge for s in TASKS.values())} or an older alias)")
            continue  # e.g. a stray Train_Set elsewhere: not an annotation folder
        if spec.name in out:
            raise AbawError(f"two annotation folders for {spec.name}: {out[spec.name]} and {d}; "
                            f"pass --annotations with the one to use")
        out[spec.name] = d
    if not out and required:
        raise AbawError(f"no challenge folders (e.g. AU_Detection_Challenge/Train_Set/) , s-Aff-Wild2 annotation "
                        f"files (training_set_annotations.txt) or a CE frame list found under {', '.join(searched)} "
                        f"(searched {MAX_DEPTH} levels deep; pass --annotations DIR)")
    return out


def _crop_folders(roots: list[Path], dups: dict[str, list[str]]) -> dict[str, Path]:
    """{video: crop folder} over every root; a video in several roots keeps the fullest folder."""
    seen: dict[str, list[Path]] = {}
    for root in roots:
        with os.scandir(root) as it:
            names = sorted(e.name for e in it if e.is_dir() and not hidden(e.name))
        for name in names:
            if _is_crop_folder(str(root / name)):
                seen.setdefault(name, []).append(root / name)
    out = {}
    for name, folders in seen.items():
        if len(folders) > 1:
            counts = [sum(1 for f in os.listdir(d) if CROP_RE.match(f)) for d in folders]
            best = folders[counts.index(max(counts))]  # first of the fullest
            dups[f"crops:{name}"] = [str(best)] + [str(f) for f in folders if f != best]
            folders = [best]
        out[name] = folders[0]
    return out


def _media(files: list[Path], dups: dict[str, list[str]]) -> dict[str, Path]:
    """{stem: media file}; ``.mp4`` first, then path order."""
    by_stem: dict[str, list[Path]] = {}
    for p in files:
        by_stem.setdefault(p.stem, []).append(p)
    out = {}
    for stem, ps in by_stem.items():
        ps = sorted(ps, key=lambda p: (p.suffix.lower() != ".mp4", str(p)))
        out[stem] = ps[0]
        if len(ps) > 1:
            dups[f"video:{stem}"] = [str(p) for p in ps]
    return out


def _test_lists(files: list[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in files:
        t = TEST_LIST_TASK[TEST_LIST_RE.match(p.name).group(1).lower()]  # type: ignore[union-attr]
        if t in out and read_names(out[t]) != read_names(p):
            raise AbawError(f"two different {t} test lists: {out[t]} and {p}; keep the one of the edition you target")
        out.setdefault(t, p)
    return out


def _mtl_files(files: list[Path]) -> dict[str, Path]:
    """{role: s-Aff-Wild2 file} (``train``, ``val``, ``test``); two different files for one role are an error."""
    out: dict[str, Path] = {}
    for p in sorted(set(files)):
        role = mtl_role(p.name)
        if role in out and out[role].read_bytes() != p.read_bytes():
            raise AbawError(f"two different s-Aff-Wild2 {role} files: {out[role]} and {p}; keep the one of the "
                            f"edition you target")
        out.setdefault(role, p)  # type: ignore[arg-type]
    return out


def _templates(files: list[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in files:
        t = TEMPLATE_RE.search(p.name).group(1).lower()  # type: ignore[union-attr]
        out.setdefault(t, p)
    return out


def discover(root: str | Path, annotations: str | Path | None = None, crops: tuple[str | Path, ...] = (),
             videos: tuple[str | Path, ...] = ()) -> Layout:
    """Find every part of the release under ``root`` (explicit folders replace discovery of their kind)."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise AbawError(f"{root}: release folder not found")
    for kind, paths in (("--annotations", [annotations] if annotations else []), ("--crops", crops), ("--videos", videos)):
        for p in paths:
            if not Path(p).is_dir():
                raise AbawError(f"{kind} {p}: folder not found")
    found = _walk(root)
    lay = Layout(root)
    ann_top = [Path(annotations).resolve()] if annotations else [root]
    ann_walk = _walk(ann_top[0]) if annotations else found
    ann_found = ann_walk.challenges
    if annotations and task_for_folder(ann_top[0].name) is not None:
        ann_found = [ann_top[0]]  # the challenge folder itself
    lay.searched = {"annotations": [str(p) for p in ann_top],
                    "crops": [str(Path(p).resolve()) for p in crops] or [str(root)],
                    "videos": [str(Path(p).resolve()) for p in videos] or [str(root)]}
    lay.mtl = _mtl_files(found.mtl + ann_walk.mtl)
    lay.templates = _templates(found.templates)
    lay.challenges = _challenges(ann_found, lay.searched["annotations"],
                                 required=not ({"train", "val"} & set(lay.mtl)) and "ce" not in lay.templates)
    lay.crop_roots = _override(crops, "crop_roots", "--crops", "per-video folders of numbered images") or found.crop_roots
    lay.crops = _crop_folders(lay.crop_roots, lay.duplicates)
    media = _override(videos, "media", "--videos", "video files") or found.media
    lay.videos = _media(media, lay.duplicates)
    lay.test_lists = _test_lists(found.test_lists)
    if "test" in lay.mtl:
        lay.templates["mtl"] = lay.mtl["test"]  # the organisers' frame list is the MTL track's template
    return lay


def discover_media(root: str | Path) -> Layout:
    """Crops and media of a release that has no challenge folders (BAH, Hume-Vidmimic2: their labels are
    read by ``release/bah.py`` / ``release/emi.py``); the same walk and rules as ``discover``."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise AbawError(f"{root}: release folder not found")
    found = _walk(root)
    lay = Layout(root, searched={"annotations": [], "crops": [str(root)], "videos": [str(root)]})
    lay.crop_roots = found.crop_roots
    lay.crops = _crop_folders(lay.crop_roots, lay.duplicates)
    lay.videos = _media(found.media, lay.duplicates)
    return lay


def _override(folders: tuple[str | Path, ...], attr: str, flag: str, what: str) -> list[Path]:
    """Walk each explicit folder for one kind of part; a folder holding none is an error."""
    out: list[Path] = []
    for folder in folders:
        got = getattr(_walk(Path(folder).resolve(), MAX_DEPTH + 1), attr)
        if not got:
            raise AbawError(f"{flag} {folder}: no {what} found")
        out += got
    return out


def annotation_items(lay: Layout) -> dict[str, list[tuple[str, str, Path]]]:
    """{task: [(name, role, path)]} from each challenge folder's ``Train_Set``/``Validation_Set``."""
    out: dict[str, list[tuple[str, str, Path]]] = {}
    for t, d in lay.challenges.items():
        items = out.setdefault(t, [])
        for sub, role in SPLIT_FOLDERS.items():
            if (d / sub).is_dir():
                items += [(p.stem, role, p) for p in visible(d / sub, ".txt")]
    return out
