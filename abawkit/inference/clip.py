"""``Clip``: one video as the models see it (frame times, face rows with their crops, the audio track).

Reads and writes nothing (``stages.predict.prepare`` makes one from a video).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np


@dataclass
class Clip:
    """A video as the models see it: frame times [n], the face rows (crop per row), audio."""

    path: Path
    times: np.ndarray  # [n] seconds, from each frame's timestamp
    fps: float
    frame: np.ndarray  # [M] 0-based frame of each face row
    face_id: np.ndarray  # [M]
    crops: list[str]  # [M] jpg per face row
    wav: Path | None
    timings: dict[str, float] = field(default_factory=dict)
    stopped: str | None = None  # where a cut or damaged file stopped decoding (one line), None when whole

    @property
    def n_frames(self) -> int:
        return len(self.times)

    def people(self, faces: str) -> Iterator[tuple[int, np.ndarray, list[str]]]:
        """(face id or -1, frames [P] of that face, their crops): one sequence per face, or the largest per frame."""
        if faces == "largest":
            yield -1, self.frame, self.crops
            return
        for fid in np.unique(self.face_id):
            idx = np.flatnonzero(self.face_id == fid)
            yield int(fid), self.frame[idx], [self.crops[i] for i in idx]
