"""Read a BAH release (ambivalence/hesitancy, ABAW 8/10/11) into ``VideoLabels``.

Confirmed from the dataset's public repository (sbelharbi/bah-dataset): the video-level split files
``dataset-splits/video-level/BAH_DB/split-<k>/{train,test}.txt`` (and ``folds/BAH_DB/split-<k>/val.txt``)
hold one line per video, ``Videos/<pid>/Visite_1/<name>.mp4,<0|1>,<transcript>`` (class 1 = A/H present;
the transcript may hold commas; names may hold spaces); the challenge's test list is the organisers'
``trial-0.txt`` (``formats/ah.py``). Assumed, not confirmed: the videos unpack at the paths the lists
name, relative to the release root (otherwise they are found by file name anywhere under it). The same walk
notes ABAW 8's frame labels and frame list (``VideoLabels.found``), which ``release/bah_frames.py`` reads.

Roles: ``train.txt`` -> train, ``val.txt`` -> val. When a ``trial-0.txt`` is present it is the test list
and a labelled ``test.txt`` (BAH's public test set) is read as more validation videos; without it,
``test.txt``'s videos are the test videos (their labels are not used) and ``test.txt`` is the list.
Reads the files it finds; writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from abawkit.errors import AbawError, where
from abawkit.files import walk
from abawkit.formats.ah import read_list, video_of
from abawkit.formats.ah_frames import parse as frame_of
from abawkit.labels import TASKS
from abawkit.release.videolabels import VideoLabels, find_media
from abawkit.video.media import VIDEO_EXTS

SPLIT_FILES = {"train.txt": "train", "val.txt": "val", "test.txt": "test"}
TRIAL = "trial-0.txt"
ANNOTATION = "video_annotation.yaml"  # ABAW 8's frame labels (release/bah_frames.py)
FRAME_LIST = "frame list"  # ABAW 8's test frame list: any .txt whose first line is a frame path
GROUND_TRUTH = "test_ground_truth"  # the synthetic release's answers: never read as a split


def read_split_file(path: Path) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """(names [V], labels [V] int, {name: transcript}) of one split file; bad lines name file:line."""
    names, labels, texts = [], [], {}
    for i, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(",", 2)
        video = video_of(parts[0].strip())
        if video is None:
            raise AbawError(f"{where(path, i)}: expected Videos/<pid>/Visite_1/<name>.mp4, got {parts[0]!r}")
        if len(parts) < 2 or parts[1].strip() not in ("0", "1"):
            raise AbawError(f"{where(path, i, 'label')}: expected 0 (no A/H) or 1 (A/H), got {line[len(parts[0]):][:20]!r}")
        if video in texts:
            raise AbawError(f"{where(path, i)}: video {video} listed twice")
        names.append(video)
        labels.append(int(parts[1]))
        texts[video] = parts[2].strip() if len(parts) > 2 else ""
    return names, np.asarray(labels, np.int64), texts


def find_files(root: Path) -> dict[str, Path]:
    """{"train.txt"|"val.txt"|"test.txt"|"trial-0.txt"|ANNOTATION|FRAME_LIST: path} under ``root``, in one walk:
    the video-level split files and trial list, and ABAW 8's frame labels (``video_annotation.yaml``) and frame
    list (the first other ``.txt`` whose first line is a frame path). Two different copies are an error."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, files in walk(root):
        dirnames[:] = [d for d in dirnames if d != GROUND_TRUTH]
        for f in files:
            p = Path(dirpath) / f
            key = f if f in SPLIT_FILES or f in (TRIAL, ANNOTATION) else None
            if key is None and f.endswith(".txt") and FRAME_LIST not in found and _is_frame_list(p):
                found[FRAME_LIST] = p
            if key is None:
                continue
            if key in found and found[key].read_bytes() != p.read_bytes():
                raise AbawError(f"two different BAH {f}: {found[key]} and {p}; keep the one you use")
            found.setdefault(key, p)
    if "train.txt" not in found:
        raise AbawError(f"no BAH split file train.txt (Videos/<pid>/Visite_1/<name>.mp4,<0|1>,<transcript>) under {root}")
    return found


def _is_frame_list(path: Path) -> bool:
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        return frame_of(fh.readline().split(",", 1)[0].strip()) is not None


def present(root: str | Path) -> bool:
    """Does ``root`` hold a BAH split file (a ``train.txt`` whose first line is a BAH video path)?"""
    for dirpath, dirnames, files in walk(Path(root)):
        dirnames[:] = [d for d in dirnames if d != GROUND_TRUTH]
        if "train.txt" in files:
            with open(Path(dirpath) / "train.txt", encoding="utf-8-sig", errors="replace") as fh:
                if video_of(fh.readline().split(",", 1)[0].strip()) is not None:
                    return True
    return False


def read_bah(root: str | Path) -> VideoLabels:
    """The A/H track of a BAH release: labelled videos, test list, media, transcripts."""
    root = Path(root).resolve()
    files = find_files(root)
    out = VideoLabels(TASKS["ah"])
    labels = []
    for name, role in SPLIT_FILES.items():
        if name not in files or (role == "test" and TRIAL not in files):
            continue
        videos, y, texts = read_split_file(files[name])
        role = "val" if role == "test" else role
        clash = [v for v in videos if v in out.transcripts]
        if clash:
            raise AbawError(f"{files[name]}: video {clash[0]} is in two splits")
        out.names += videos
        out.roles += [role] * len(videos)
        out.files += [files[name]] * len(videos)
        labels.append(y)
        out.transcripts.update(texts)
    out.values = np.concatenate(labels).astype(np.float32)[:, None]  # [V, 1]
    out.template = files.get(TRIAL) or files.get("test.txt")
    out.tests = list(read_list(out.template)) if out.template else []
    if TRIAL not in files and "test.txt" in files:
        out.transcripts.update(read_split_file(files["test.txt"])[2])
    out.media = find_media(root, out.names + out.tests, VIDEO_EXTS)
    out.found = {k: files[k] for k in (ANNOTATION, FRAME_LIST) if k in files}
    return out
