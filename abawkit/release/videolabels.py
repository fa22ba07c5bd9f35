"""One label per video (A/H of BAH, EMI of Hume-Vidmimic2) -> the frame table's per-frame ``Annotations``.

``VideoLabels`` is what a video-level release reader returns: the labelled videos with their role and
label vector, the test videos in the organisers' order, the organisers' list file (prep records it as
``layout.templates[<track>]``), the media files and any transcripts shipped with the labels.
``to_annotations`` repeats each video's label on every one of its frames (line k+1 <-> frame k, as
``release/annotations.build_frames`` expects), so a video-level model reads a video's label from its
first frame. Reads and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from abawkit.errors import AbawError
from abawkit.files import walk
from abawkit.labels import TaskSpec
from abawkit.release.annotations import Annotations


@dataclass
class VideoLabels:
    """A video-level track's release: names [V], roles [V], values [V, C], tests (list order), files."""

    spec: TaskSpec
    names: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float32))
    files: list[Path] = field(default_factory=list)  # the label file of each video (for messages)
    tests: list[str] = field(default_factory=list)
    template: Path | None = None  # the organisers' list of the videos to predict, in its order
    media: dict[str, Path] = field(default_factory=dict)  # video -> its media file
    transcripts: dict[str, str] = field(default_factory=dict)  # video -> text shipped with the labels
    found: dict[str, Path] = field(default_factory=dict)  # other label / list files the reader's walk found, by kind


def to_annotations(labels: VideoLabels, n_frames: dict[str, int]) -> Annotations:
    """Every frame of a labelled video holds the video's label: values [sum(n), C]."""
    missing = [v for v in labels.names if n_frames.get(v, 0) <= 0]
    if missing:
        raise AbawError(f"{labels.spec.name} video {missing[0]} has no frames (no media file found for it)")
    lengths = np.array([n_frames[v] for v in labels.names], np.int64)
    values = np.repeat(np.asarray(labels.values, np.float32).reshape(len(labels.names), -1), lengths, axis=0)
    return Annotations(labels.spec, list(labels.files), list(labels.names), list(labels.roles), lengths, values)


def find_media(root: Path, stems: list[str], exts: tuple[str, ...]) -> dict[str, Path]:
    """{stem: media file} for the stems found under ``root`` (first in sorted walk order; ``.mp4`` first)."""
    want, out = set(stems), {}
    for dirpath, _, files in walk(root):
        for f in sorted(files, key=lambda n: (not n.lower().endswith(".mp4"), n)):
            stem, ext = Path(f).stem, Path(f).suffix.lower()
            if ext in exts and stem in want and stem not in out:
                out[stem] = Path(dirpath) / f
    return out
