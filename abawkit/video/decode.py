"""Decoding a video as a player shows it: upright, on one clock, up to where the file breaks.

Reads media files with PyAV (its bundled FFmpeg); writes nothing.

- **Display matrix.** Phones store portrait video as landscape frames plus a display matrix (a
  rotation, for front cameras a mirror too). Each decoded frame carries that matrix as side data;
  ``upright`` turns the frame with FFmpeg's own ``transpose`` / ``hflip`` / ``vflip`` filters (what
  the ``ffmpeg`` command and players do), so detection and cropping see what a person sees.
- **One clock.** Time 0 is the first video frame: ``iter_video`` gives each frame's timestamp minus
  the first one's, and ``media.extract_audio`` starts the WAV at that same instant, so frame ``i``
  of a constant-rate video is at ``i / fps`` in the WAV whether the streams start at 0, at 1.4 s
  (MPEG-TS) or at 2 s (a stream or call recording).
- **Broken files.** A decoding error after the first frame ends the video there (the frames before
  it are kept); ``decode_break`` says in one line where a video stopped short of its header's length.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from abawkit.errors import AbawError, first_line

if TYPE_CHECKING:
    import av


def display_filters(frame: "av.VideoFrame") -> tuple[tuple[str, str | None], ...]:
    """The FFmpeg filters [(name, args)] that show ``frame`` upright: () when it has no display matrix.

    The matrix maps a coded pixel (x, y) to (a x + c y, b x + d y) (FFmpeg's ``AV_FRAME_DATA_DISPLAYMATRIX``,
    entries a, b, c, d = m[0], m[1], m[3], m[4]). Angles off a right angle are taken to the nearest one."""
    from av.sidedata.sidedata import Type

    m = next((np.frombuffer(memoryview(sd).tobytes(), np.int32) for sd in frame.side_data
              if sd.type == Type.DISPLAYMATRIX), None)
    if m is None or len(m) < 9:
        return ()
    a, b, c, d = (float(v) for v in m[[0, 1, 3, 4]])
    if abs(a) >= abs(b):  # no transpose: each axis kept or mirrored
        return tuple((f, None) for f, flip in (("hflip", a < 0), ("vflip", d < 0)) if flip)
    # transpose: x' = c y, y' = b x; FFmpeg's four transpose directions are the four sign pairs
    return (("transpose", {(True, True): "cclock_flip", (True, False): "cclock", (False, True): "clock",
                           (False, False): "clock_flip"}[(c > 0, b > 0)]),)


class Upright:
    """Frames through the filters of their display matrix; one filter graph, rebuilt when the frame
    size, pixel format or matrix changes."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._graph = None

    def __call__(self, frame: "av.VideoFrame") -> "av.VideoFrame":
        filters = display_filters(frame)
        if not filters:
            return frame
        key = (frame.width, frame.height, frame.format.name, filters)
        if key != self._key:
            self._graph, self._key = self._build(frame, filters), key
        self._graph.push(frame)
        return self._graph.pull()

    @staticmethod
    def _build(frame: "av.VideoFrame", filters: tuple):
        from av.filter import Graph

        g = Graph()
        src = g.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                           time_base=frame.time_base)
        g.link_nodes(src, *(g.add(name, args) for name, args in filters), g.add("buffersink")).configure()
        return g


def iter_video(path: str | Path) -> Iterator[tuple[float, "av.VideoFrame"]]:
    """(time in s from the first frame, upright ``av.VideoFrame``) in order, streaming.

    The time is the frame's own timestamp (pts) minus the first frame's, so variable-frame-rate videos
    get true times; a frame without one is placed one average frame interval after the previous frame.
    A video that breaks after its first frame ends there (``decode_break`` tells); one that breaks
    before is a one-line error."""
    import av

    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise AbawError(f"{path}: unreadable video (no video stream)")
            vs = box.streams.video[0]
            vs.thread_type = "AUTO"  # frame + slice threads: the decoder keeps both cores busy
            step = 1.0 / float(vs.average_rate or vs.guessed_rate or 30)
            origin, prev, turn = None, None, Upright()
            for frame in _frames(box, vs):
                t = frame.time if frame.time is not None else (0.0 if prev is None else prev + step)
                origin = t if origin is None else origin
                prev = t
                yield float(t - origin), turn(frame)
    except AbawError:
        raise
    except Exception as exc:  # PyAV raises many types for broken files
        raise AbawError(f"{path}: unreadable video ({type(exc).__name__}: {first_line(exc)})") from None


def _frames(box, vs) -> Iterator["av.VideoFrame"]:
    """Decoded frames of ``vs``; a decoding error after the first frame ends them (a cut file)."""
    n = 0
    try:
        for frame in box.decode(vs):
            n += 1
            yield frame
    except Exception:  # noqa: BLE001 - av.error.* / EOFError: where the data stops
        if not n:
            raise


def first_frame(path: str | Path) -> "av.VideoFrame | None":
    """The first decoded video frame of ``path`` (its own pass: the caller's container keeps its
    position); None without a video stream or when it does not decode (the frame loop says why)."""
    import av

    try:
        with av.open(str(path)) as box:
            if box.streams.video:
                for frame in box.decode(box.streams.video[0]):
                    return frame
    except Exception:  # noqa: BLE001
        return None
    return None


def expected_frames(path: str | Path) -> tuple[int, float]:
    """(frames, seconds) the header promises for the first video stream: its frame index (MP4, AVI), else
    its duration, else the container's end minus its start (Matroska); (0, 0.0) when it does not say.

    Where a container's duration already excludes its start this errs low: a missed warning, never a false one."""
    import av

    with av.open(str(path)) as box:
        vs = box.streams.video[0]
        fps = float(vs.average_rate or vs.guessed_rate or 30)
        if vs.duration and vs.time_base:
            seconds = float(vs.duration * vs.time_base)
        elif box.duration:
            seconds = (box.duration - max(0, box.start_time or 0)) / 1e6  # microseconds
        else:
            seconds = 0.0
        return int(vs.frames or round(seconds * fps)), seconds


def decode_break(path: str | Path, times: np.ndarray) -> str | None:
    """One line saying where the decoding of ``path`` stopped, if it gave fewer frames than the header
    promises (a truncated or damaged file); None when it is complete or the header does not say."""
    try:
        n_exp, seconds = expected_frames(path)
    except Exception:  # noqa: BLE001 - nothing to compare with
        return None
    n = len(times)
    step = (times[-1] - times[0]) / (n - 1) if n > 1 else 0.0
    if n_exp <= 0 or n >= n_exp - 1:  # one frame of slack: containers round their durations
        return None
    at = f"{times[-1] + step:.2f} s" if n else "0 s"
    return (f"{Path(path).name}: decoding stopped at frame {n + 1} ({at}) of {n_exp} ({seconds:.2f} s in the header): "
            f"the file is cut short or damaged; kept the {n} frames before the break")
