"""Faces in a video: detect on downscaled frames, link detections into tracks, cut crops at full size.

Two streaming passes over the video, so memory does not grow with its length:

1. ``scan_video`` decodes every frame (keeping only its timestamp), and on every ``every``-th
   frame (and the last) runs the detector on a copy downscaled to ``detect_size`` px, in batches.
   It keeps the detections (boxes, scores, five landmarks), in full-frame pixels. Where two successive
   looks disagree (a face starts or ends between them) it also looks at the frames skipped in between,
   held decoded since (at most ``hold_mb``), so a track's first and last frames are exact, not rounded
   to the cadence: the extra detector work is per track edge (at most ``every - 1`` frames each), and no
   frame is converted or decoded twice for it.
2. ``link`` associates the detections of successive detection frames into tracks (Hungarian
   assignment on 1 - IoU, scipy's ``linear_sum_assignment``). Between two detections of one track
   at most ``max_gap`` frames apart, boxes and landmarks are interpolated: those frames count as
   tracked with confidence. Anything else (no detection, a track that ends) is a frame without a face.
3. ``cut_faces`` decodes again and cuts each face from the full-resolution frame: aligned with its
   five landmarks (``data.align``), or a square around its box when there are none (Haar) or
   ``align="none"``.

A frame without a face gets no crop (the organisers' convention for ``cropped_aligned``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from abawkit.errors import AbawError
from abawkit.video.align import align_face, square_crop
from abawkit.video.decode import iter_video

FACE_MODES = ("largest", "all")


@dataclass(frozen=True)
class TrackSettings:
    every: int = 1  # run the detector on every Nth frame; track in between
    detect_size: int = 640  # longest side of the frame the detector sees
    max_gap: int = 10  # most frames between two detections of one face still bridged
    min_score: float = 0.9  # detector confidence a face needs (MTCNN's probability)
    min_iou: float = 0.2  # overlap a detection needs with a track's last box to continue it
    align: str = "5pt"  # 5pt | none
    faces: str = "largest"  # largest (one face per frame) | all (every tracked face)
    batch: int = 16  # detection frames per detector call
    exact_edges: bool = True  # look at the skipped frames where a track starts or ends (exact first/last frame)
    hold_mb: int = 64  # most MB of decoded frames held for that (a batch is answered early beyond it)


@dataclass
class Detections:
    """The faces found in one frame: boxes [K, 4] (x1, y1, x2, y2), scores [K], landmarks [K, 5, 2] or None."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None

    def keep(self, mask: np.ndarray) -> "Detections":
        return Detections(self.boxes[mask], self.scores[mask], None if self.landmarks is None else self.landmarks[mask])

    def scaled(self, sx: float, sy: float, dx: float = 0.0) -> "Detections":
        """Coordinates multiplied by (sx, sy) after shifting x by ``dx`` (detector frame -> full frame)."""
        s = np.array([sx, sy], np.float32)
        boxes = ((self.boxes.reshape(-1, 2, 2) + [dx, 0]) * s).reshape(-1, 4)
        lm = None if self.landmarks is None else (self.landmarks + [dx, 0]) * s
        return Detections(boxes.astype(np.float32), self.scores, None if lm is None else lm.astype(np.float32))


@dataclass
class FaceTrack:
    """One face over consecutive frames [T]: boxes [T, 4], landmarks [T, 5, 2] (NaN where missing) or None,
    detected [T] bool."""

    id: int
    frames: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray | None
    detected: np.ndarray


@dataclass
class FaceRows:
    """The faces to crop, one row per (frame, face), sorted by frame then face id."""

    frame: np.ndarray  # [M] 0-based frame index
    face_id: np.ndarray  # [M]
    boxes: np.ndarray  # [M, 4]
    landmarks: np.ndarray | None  # [M, 5, 2]; NaN in rows without (Haar fallback hits)

    def __len__(self) -> int:
        return len(self.frame)

    def has_landmarks(self, r: int) -> bool:
        return self.landmarks is not None and bool(np.isfinite(self.landmarks[r]).all())

    def unaligned(self) -> int:
        """Rows that have no landmarks, so that ``align = 5pt`` cuts them as squares around the box."""
        return sum(not self.has_landmarks(r) for r in range(len(self)))


@dataclass
class Scan:
    """What the first pass learnt: each frame's time (s) [n] and the detections by frame index; how many
    frames the detector saw at the cadence (``looked``) and around track edges (``refined``), and the most
    decoded frames held at once (``peak_held``)."""

    times: np.ndarray
    dets: dict[int, Detections] = field(default_factory=dict)
    looked: int = 0
    refined: int = 0
    peak_held: int = 0

    @property
    def n_frames(self) -> int:
        return len(self.times)


def check_faces_mode(mode: str) -> str:
    if mode not in FACE_MODES:
        raise AbawError(f"faces {mode!r}: expected {' or '.join(FACE_MODES)}")
    return mode


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes a [A, 4] and b [B, 4]: [A, B]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(axis=1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def link(dets: dict[int, Detections], max_gap: int, min_iou: float = 0.2) -> list[FaceTrack]:
    """Detections by frame -> tracks, each bridged (interpolated) over gaps of at most ``max_gap`` frames."""
    from scipy.optimize import linear_sum_assignment

    done: list[list] = []
    live: list[list] = []  # each: [(frame, box [4], landmarks [5, 2] | None), ...]
    for f in sorted(dets):
        d = dets[f]
        done += [t for t in live if f - t[-1][0] > max_gap]
        live = [t for t in live if f - t[-1][0] <= max_gap]
        taken: set[int] = set()
        if live and len(d.boxes):
            cost = 1 - iou(np.stack([t[-1][1] for t in live]), d.boxes)
            for i, j in zip(*linear_sum_assignment(cost)):
                if cost[i, j] <= 1 - min_iou:
                    live[i].append((f, d.boxes[j], None if d.landmarks is None else d.landmarks[j]))
                    taken.add(int(j))
        live += [[(f, d.boxes[j], None if d.landmarks is None else d.landmarks[j])]
                 for j in range(len(d.boxes)) if j not in taken]
    raw = sorted(done + live, key=lambda t: (t[0][0], float(t[0][1][0])))
    return [_bridge(k, t) for k, t in enumerate(raw)]


def _bridge(track_id: int, points: list) -> FaceTrack:
    """Interpolate boxes (and landmarks) linearly between a track's detections."""
    det_frames = np.array([p[0] for p in points])
    frames = np.arange(det_frames[0], det_frames[-1] + 1)
    boxes = np.stack([np.interp(frames, det_frames, np.array([p[1][c] for p in points])) for c in range(4)], axis=1)
    lm = None
    has = np.array([p[2] is not None for p in points])  # [D]: a Haar fallback hit has no landmarks
    if has.any():
        flat = np.stack([p[2].reshape(-1) for p in points if p[2] is not None])  # [D', 10]
        lm = np.stack([np.interp(frames, det_frames[has], flat[:, c]) for c in range(10)], axis=1).reshape(-1, 5, 2)
        before = np.searchsorted(det_frames, frames, side="right") - 1  # the detections around each frame
        after = np.minimum(np.searchsorted(det_frames, frames), len(det_frames) - 1)
        lm[~(has[before] & has[after])] = np.nan  # only between two detections with landmarks
    return FaceTrack(track_id, frames, boxes.astype(np.float32), None if lm is None else lm.astype(np.float32),
                     np.isin(frames, det_frames))


def select(tracks: list[FaceTrack], mode: str) -> FaceRows:
    """Rows to crop: every tracked face per frame (``all``), or the one with the largest box (``largest``)."""
    if not tracks:
        return FaceRows(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4), np.float32), None)
    frame = np.concatenate([t.frames for t in tracks])
    face_id = np.concatenate([np.full(len(t.frames), t.id) for t in tracks])
    boxes = np.concatenate([t.boxes for t in tracks])
    lm = None  # rows without landmarks (Haar hits, or none at all) are NaN: cut as squares, not aligned
    if any(t.landmarks is not None for t in tracks):
        lm = np.concatenate([np.full((len(t.frames), 5, 2), np.nan, np.float32) if t.landmarks is None
                             else t.landmarks for t in tracks])
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.lexsort((face_id, frame)) if mode == "all" else np.lexsort((-area, frame))
    if mode == "largest":  # first row of each frame in (frame, -area) order
        first = np.ones(len(order), bool)
        first[1:] = frame[order][1:] != frame[order][:-1]
        order = order[first]
    return FaceRows(frame[order], face_id[order], boxes[order], None if lm is None else lm[order])


def scan_video(path: str | Path, detector, s: TrackSettings, half: str | None = None,
               clock: dict[str, float] | None = None) -> Scan:
    """First pass: frame times and detections on every ``s.every``-th frame (and the last), plus, with
    ``s.exact_edges``, on the skipped frames between two looks that disagree (a face starts or ends there).

    ``clock["detect"]`` accumulates the seconds spent downscaling and in the detector."""
    times: list[float] = []
    scanner = _Scanner(detector, s, half, {} if clock is None else clock)
    last = None
    for k, (t, frame) in enumerate(iter_video(path)):
        times.append(t)
        last = (k, frame)
        if k % s.every == 0:
            scanner.look(k, frame)
            last = None
        elif s.exact_edges:
            scanner.hold(k, frame)
    if last is not None:  # the last frame is always looked at, so tracks do not stop short of the end
        scanner.look(*last)
    scanner.flush()
    return Scan(np.array(times, np.float64), scanner.dets, scanner.looked, scanner.refined, scanner.peak_held)


class _Scanner:
    """Pass 1's detector work: looks wait in a batch (one detector call); the frames skipped since the last
    answered look are held as decoded frames (no conversion, so no cost per frame) until the looks around
    them are answered. Where two successive looks disagree (a face at one overlaps none at the other), a
    track starts or ends in between: only those skipped frames are downscaled and looked at. The held
    frames are bounded by ``s.hold_mb`` (the batch is answered early when they would exceed it), so memory
    does not grow with the video's length."""

    def __init__(self, detector, s: TrackSettings, half: str | None, clock: dict[str, float]) -> None:
        self.detector, self.s, self.half, self.clock = detector, s, half, clock
        self.dets: dict[int, Detections] = {}
        self.looks: list[tuple[int, np.ndarray, tuple]] = []  # (frame, small RGB [h, w, 3], geometry)
        self.held: dict[int, object] = {}  # frame -> av.VideoFrame skipped since the last answered look
        self.held_bytes = 0
        self.answered: int | None = None  # the last look the detector answered
        self.looked = self.refined = self.peak_held = 0

    def look(self, k: int, frame) -> None:
        with _timed(self.clock, "detect"):
            small = _small(frame, self.s.detect_size, self.half)
        if self.looks and self.looks[-1][1].shape != small[0].shape:  # a resolution change: MTCNN batches one size
            self.flush()
        self.looks.append((k, *small))
        if len(self.looks) >= self.s.batch or self.held_bytes > self.s.hold_mb * 2 ** 20:
            self.flush()

    def hold(self, k: int, frame) -> None:
        self.held[k] = frame
        self.held_bytes += sum(p.buffer_size for p in frame.planes)
        self.peak_held = max(self.peak_held, len(self.held))

    def flush(self) -> None:
        """Answer the waiting looks, then look at the held frames of each window where they disagree."""
        if not self.looks:
            return
        batch, self.looks = self.looks, []
        self.dets.update(self._detect(batch))
        self.looked += len(batch)
        ks = [k for k, *_ in batch]
        seq = ([] if self.answered is None else [self.answered]) + ks  # looks in order, with the last answered one
        pairs = zip(seq[:-1], seq[1:])
        todo = [j for a, b in pairs if b - a > 1 and _disagree(self.dets[a], self.dets[b], self.s.min_iou)
                for j in range(a + 1, b) if j in self.held]
        with _timed(self.clock, "detect"):
            smalls = [(j, *_small(self.held[j], self.s.detect_size, self.half)) for j in todo]
        for group in _same_size_chunks(smalls, self.s.batch):
            self.dets.update(self._detect(group))
        self.refined += len(todo)
        self.answered = ks[-1]
        for j in [j for j in self.held if j < self.answered]:
            self.held_bytes -= sum(p.buffer_size for p in self.held.pop(j).planes)

    def _detect(self, items: list[tuple[int, np.ndarray, tuple]]) -> dict[int, Detections]:
        """Detections (scored >= ``min_score``) in full-frame px of downscaled frames of one size, one call."""
        with _timed(self.clock, "detect"):
            found = self.detector.detect_faces([it[1] for it in items], self._min_face(items[0][2]))
        return {k: d.keep(d.scores >= self.s.min_score).scaled(*geo[:3]) for (k, _, geo), d in zip(items, found)}

    def _min_face(self, geo: tuple) -> int:
        """The detector's smallest face, given in px at ``detect_size``, for a frame that was not
        downscaled that far (a small video): the same share of the frame, at least MTCNN's 12 px."""
        return max(12, int(round(self.detector.min_face * geo[3] / self.s.detect_size)))


def _disagree(a: Detections, b: Detections, min_iou: float) -> bool:
    """True when a face at one look overlaps no face at the other: a track starts or ends between them."""
    if not len(a.boxes) or not len(b.boxes):
        return len(a.boxes) != len(b.boxes)
    match = iou(a.boxes, b.boxes) >= min_iou  # [A, B]
    return not (match.any(axis=1).all() and match.any(axis=0).all())


def _same_size_chunks(items: list, size: int) -> Iterator[list]:
    """Runs of at most ``size`` items whose images [h, w, 3] share a shape (one detector batch each)."""
    chunk: list = []
    for it in items:
        if chunk and (len(chunk) >= size or chunk[-1][1].shape != it[1].shape):
            yield chunk
            chunk = []
        chunk.append(it)
    if chunk:
        yield chunk


def _small(frame, detect_size: int, half: str | None) -> tuple[np.ndarray, tuple[float, float, float, int]]:
    """The detector's RGB view [h, w, 3] of an ``av.VideoFrame`` and (sx, sy, dx) back to full-frame px,
    plus the longest side of the whole downscaled frame."""
    w, h = frame.width, frame.height
    scale = min(1.0, detect_size / max(w, h))
    dw, dh = max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)
    img = frame.to_ndarray(format="rgb24") if (dw, dh) == (w, h) else \
        frame.reformat(width=dw, height=dh, format="rgb24").to_ndarray()
    dx = 0
    if half == "left":
        img = img[:, : dw // 2]
    elif half == "right":
        img, dx = img[:, dw // 2:], dw // 2
    return np.ascontiguousarray(img), (w / dw, h / dh, float(dx), max(dw, dh))


def cut_faces(path: str | Path, rows: FaceRows, size: int, align: str,
              write: Callable[[int, int, np.ndarray], None], clock: dict[str, float] | None = None) -> None:
    """Second pass: for every row, the face cut from its full-resolution frame -> ``write(frame, face_id, crop)``.

    ``clock["crop"]`` accumulates the seconds spent cutting and writing."""
    if not len(rows):
        return
    starts = np.searchsorted(rows.frame, np.arange(rows.frame.max() + 2))
    for k, (_, frame) in enumerate(iter_video(path)):
        if k > rows.frame[-1]:
            break
        lo, hi = starts[k], starts[k + 1]
        if lo == hi:
            continue
        img = frame.to_ndarray(format="rgb24")  # [H, W, 3]
        with _timed({} if clock is None else clock, "crop"):
            for r in range(lo, hi):
                if align == "5pt" and rows.has_landmarks(r):
                    crop = align_face(img, rows.landmarks[r], size)
                else:
                    crop = square_crop(img, rows.boxes[r], size)
                write(k, int(rows.face_id[r]), crop)


def find_faces(path: str | Path, detector, s: TrackSettings, half: str | None = None,
               clock: dict[str, float] | None = None) -> tuple[Scan, FaceRows]:
    """Pass 1 + linking: frame times and the face rows to crop."""
    scan = scan_video(path, detector, s, half, clock)
    tracks = link(scan.dets, max(s.max_gap, s.every), s.min_iou)
    return scan, select(tracks, s.faces)


@contextlib.contextmanager
def _timed(clock: dict[str, float], key: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        clock[key] = clock.get(key, 0.0) + time.perf_counter() - t0
