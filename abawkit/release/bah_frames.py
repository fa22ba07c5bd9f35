"""Read the frame-level A/H labels of a BAH release (ABAW 8, track ``ah_frames``) beside its video-level ones.

Confirmed from the dataset's public code (sbelharbi/bah-dataset, ``set_frame_labels.py``): the frame labels
ship as one YAML file, ``video_annotation.yaml``, a mapping of videos, each with a ``frame_annotation`` list
whose items hold the label second (``0`` no A/H, ``1`` A/H; ``class_id.yaml`` of the frame-level split
says so); the dataset's face crops are ``frame-<n>.jpg`` counting from 0, as the 8th's submission rows.
Assumed, not confirmed: an item is ``[<frame>, <label>]`` with the frame a 0-based index or a
``frame-<n>.jpg`` name (either is read), and a video key is its list path (``Videos/<pid>/Visite_1/<name>.mp4``,
with or without ``.mp4``) or its bare name. The frames' train/val roles are the video-level split files'
(``release/bah.py``); a video without an entry has no frame labels. The test list is the organisers' frame
list: any ``.txt`` under the release whose first line is a frame path (``formats/ah_frames.py``); both files are
found by ``bah.find_files``'s one walk of the release. The YAML
is read with ``yaml.safe_load`` (data only, never objects). Reads; writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from abawkit.errors import AbawError
from abawkit.formats import ah_frames
from abawkit.formats.ah import video_of
from abawkit.labels import TASKS
from abawkit.release.annotations import Annotations
from abawkit.release.bah import ANNOTATION, FRAME_LIST
from abawkit.release.videolabels import VideoLabels

FRAME_RE = re.compile(r"^(?:frame-)?(\d+)(?:\.jpg)?$")


@dataclass
class FrameLabels:
    """The frame-level track of a BAH release: {video: {1-based frame: 0|1}}, the frame list and its videos."""

    file: Path | None = None
    labels: dict[str, dict[int, int]] = field(default_factory=dict)
    template: Path | None = None
    listed: dict[str, np.ndarray] = field(default_factory=dict)  # the frame list: {video: 1-based frames}, its order

    @property
    def tests(self) -> list[str]:
        return list(self.listed)


def _video_key(key: object, names: set[str]) -> str | None:
    text = str(key).strip()
    for cand in (text, f"{text}.mp4"):
        v = video_of(cand)
        if v is not None:
            return v if v in names else None
    return text if text in names else None


def _frame(item: object, where_: str) -> tuple[int, int]:
    if not isinstance(item, (list, tuple)) or len(item) < 2:
        raise AbawError(f"{where_}: expected [frame, label], got {item!r}")
    m = FRAME_RE.match(str(item[0]).strip())
    label = str(item[1]).strip()
    if m is None:
        raise AbawError(f"{where_}: frame {item[0]!r} is not a 0-based index or frame-<n>.jpg")
    if label not in ("0", "1", "0.0", "1.0"):
        raise AbawError(f"{where_}: label must be 0 (no A/H) or 1 (A/H), got {item[1]!r}")
    return int(m[1]) + 1, int(float(label))


def read_annotation(path: Path, names: set[str]) -> dict[str, dict[int, int]]:
    """``video_annotation.yaml`` -> {video: {1-based frame: label}}; keys outside the split files are errors."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise AbawError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(data, dict) or not data:
        raise AbawError(f"{path}: expected a mapping of videos, each with a frame_annotation list")
    out: dict[str, dict[int, int]] = {}
    for key, entry in data.items():
        video = _video_key(key, names)
        if video is None:
            raise AbawError(f"{path}: video {key!r} is in no BAH split file (train.txt / val.txt / test.txt)")
        items = entry.get("frame_annotation") if isinstance(entry, dict) else None
        if not isinstance(items, list):
            raise AbawError(f"{path}: video {key!r}: expected a frame_annotation list")
        frames = dict(_frame(it, f"{path}: video {key!r}: frame_annotation item {i}") for i, it in enumerate(items, 1))
        if len(frames) != len(items):
            raise AbawError(f"{path}: video {key!r}: a frame is labelled twice")
        out[video] = frames
    return out


def read_frames(videos: VideoLabels) -> FrameLabels | None:
    """The frame-level track of a BAH release, from the files ``bah.read_bah``'s walk found (``videos.found``):
    None without frame labels or frame list."""
    ann, lst = videos.found.get(ANNOTATION), videos.found.get(FRAME_LIST)
    if ann is None and lst is None:
        return None
    known = set(videos.names) | set(videos.tests)
    return FrameLabels(ann, read_annotation(ann, known) if ann else {}, lst, ah_frames.read_list(lst) if lst else {})


def to_annotations(found: FrameLabels, videos: VideoLabels, n_frames: dict[str, int]) -> Annotations:
    """The labelled train/val videos as ``Annotations`` of ``ah_frames``: every frame of each, unlabelled
    frames invalid (-1). A label past a video's last decoded frame is an error naming the file."""
    spec = TASKS["ah_frames"]
    role = dict(zip(videos.names, videos.roles))
    names = [v for v in videos.names if v in found.labels]  # split-file order
    out = Annotations(spec, [found.file] * len(names), names, [role[v] for v in names])
    out.lengths = np.array([n_frames.get(v, 0) for v in names], np.int64)
    values = np.full((int(out.lengths.sum()), 1), spec.head.invalid, np.float32)
    start = 0
    for v, n in zip(names, out.lengths):
        frames = np.fromiter(found.labels[v], np.int64)
        if frames.size and frames.max() > n:
            raise AbawError(f"{found.file}: video {v}: frame-{frames.max() - 1} labelled, but the video has {n} frames")
        values[start + frames - 1, 0] = np.fromiter(found.labels[v].values(), np.float32)
        start += n
    out.values = values
    return out
