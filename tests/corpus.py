"""A corpus of real-world video forms, written with PyAV (its bundled FFmpeg), small enough for the default suite.

Every clip shows scikit-image's astronaut (a real face) on grey for ``SECONDS`` s and, where it has
audio, carries a marker: silence with a 1 kHz beep from ``BEEP[0]`` to ``BEEP[1]`` s after the first
frame, so a test can tell whether audio rows line up with frames. ``write_corpus(folder)`` writes them
all and returns {name: Clip}; ``truncate`` cuts a file mid-way as an interrupted recording would be.

Phone forms store the picture as the sensor saw it and a display matrix saying how to show it:
``coded`` below is the upright picture turned back by that matrix (PyAV's ``set_display_rotation``:
``degrees`` counter-clockwise, then the flips), so a decoder that ignores the matrix sees a face on its side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from videos import face_scene

SECONDS = 2.0
BEEP = (0.5, 1.0)  # s after the first frame


@dataclass(frozen=True)
class Spec:
    """One clip: container and codecs, geometry, clock, audio streams [(codec, rate, layout)]."""

    name: str
    vcodec: str = "libx264"
    pix_fmt: str = "yuv420p"
    size: tuple[int, int] = (192, 144)  # upright (display) width, height
    fps: int = 15
    seconds: float = SECONDS
    start: float = 0.0  # first video pts (s)
    audio_delay: float = 0.0  # the audio starts this much after the first frame (s; < 0: before it)
    audio: tuple[tuple[str, int, str], ...] = (("aac", 16000, "mono"),)
    rotation: tuple[int, bool, bool] = (0, False, False)  # display matrix: degrees ccw, hflip, vflip
    options: dict = field(default_factory=dict)  # container options
    codecs: str = ""  # how the corpus table names it

    @property
    def n_frames(self) -> int:
        return max(1, int(round(self.seconds * self.fps)))


def specs() -> list[Spec]:
    """The corpus: every form of issue 24, point 3 (the names say which)."""
    portrait = (144, 192)
    return [
        Spec("landscape_h264.mp4", codecs="MP4 H.264 + AAC"),
        Spec("portrait_upright.mp4", size=portrait, codecs="MP4 H.264 + AAC, coded portrait"),
        Spec("portrait_rot90.mp4", size=portrait, rotation=(90, False, False), codecs="MP4 H.264 + AAC, rotate 90"),
        Spec("portrait_rot270.mov", size=portrait, rotation=(270, False, False), codecs="MOV H.264 + AAC, rotate 270"),
        Spec("portrait_mirror.mov", size=portrait, rotation=(90, True, False), codecs="MOV H.264 + AAC, rotate 90 + mirror"),
        Spec("offset_ts.ts", vcodec="mpeg2video", start=1.4, audio=(("mp2", 48000, "stereo"),),
             codecs="MPEG-TS MPEG-2 + MP2, starts at 1.4 s"),
        Spec("offset_mkv.mkv", start=2.0, codecs="MKV H.264 + AAC, starts at 2 s"),
        Spec("vp9_opus.webm", vcodec="libvpx-vp9", audio=(("libopus", 48000, "stereo"),), codecs="WebM VP9 + Opus"),
        Spec("mjpeg_pcm.avi", vcodec="mjpeg", pix_fmt="yuvj420p", audio=(("pcm_s16le", 16000, "mono"),),
             codecs="AVI MJPEG + PCM"),
        Spec("hevc10.mp4", vcodec="libx265", pix_fmt="yuv420p10le", codecs="MP4 HEVC 10-bit + AAC"),
        Spec("fps60.mp4", fps=60, codecs="MP4 H.264 60 fps + AAC"),
        Spec("no_audio.mp4", audio=(), codecs="MP4 H.264, no audio"),
        Spec("two_audio.mkv", audio=(("aac", 16000, "mono"), ("aac", 16000, "stereo")), codecs="MKV H.264 + 2 x AAC"),
        Spec("mono8k.mp4", audio=(("aac", 8000, "mono"),), codecs="MP4 H.264 + AAC mono 8 kHz"),
        Spec("one_frame.mp4", seconds=1 / 15, audio=(), codecs="MP4 H.264, one frame"),
        Spec("truncated_mkv.mkv", codecs="MKV H.264 + AAC, cut at 60 %"),
        Spec("truncated_mp4.mp4", options={"movflags": "faststart"},
             codecs="MP4 H.264 + AAC, cut at 60 % (index at the front)"),
    ]


def upright(spec: Spec, i: int) -> np.ndarray:
    """Frame ``i`` as it should be shown: [h, w, 3] RGB."""
    w, h = spec.size
    return face_scene(w, h, i)


def coded(spec: Spec, img: np.ndarray) -> np.ndarray:
    """What the file stores so that the display matrix of ``spec`` shows ``img``: undo the flips, then
    rotate back clockwise (``np.rot90`` turns counter-clockwise)."""
    deg, hflip, vflip = spec.rotation
    if hflip:
        img = img[:, ::-1]
    if vflip:
        img = img[::-1]
    return np.ascontiguousarray(np.rot90(img, -(deg // 90) % 4))


def beep(rate: int, seconds: float, channels: int) -> np.ndarray:
    """[channels, S] float32: silence with a 1 kHz beep in ``BEEP`` (s from the first sample)."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = np.where((t >= BEEP[0]) & (t < BEEP[1]), 0.3 * np.sin(2 * np.pi * 1000 * t), 0.0).astype(np.float32)
    return np.repeat(x[None], channels, axis=0)


def write(path: Path, spec: Spec) -> Path:
    """Encode ``spec``: video frames at ``start + i / fps``, each audio stream from
    ``start + audio_delay`` with the beep."""
    import av

    with av.open(str(path), "w", options=spec.options) as box:
        vs = box.add_stream(spec.vcodec, rate=spec.fps)
        first = coded(spec, upright(spec, 0))
        vs.width, vs.height, vs.pix_fmt = first.shape[1], first.shape[0], spec.pix_fmt
        vs.codec_context.time_base = Fraction(1, spec.fps)
        vs.options = {"libx265": {"x265-params": "log-level=error"}, "libx264": {"g": "15"},
                      "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"}}.get(spec.vcodec, {})
        if any(spec.rotation):
            vs.set_display_rotation(spec.rotation[0], hflip=spec.rotation[1], vflip=spec.rotation[2])
        streams = []
        for codec, rate, layout in spec.audio:
            a = box.add_stream(codec, rate=rate)
            a.layout = layout
            streams.append(a)
        t0 = int(round(spec.start * spec.fps))
        waves = [beep(a.rate, spec.n_frames / spec.fps, a.layout.nb_channels) for a in streams]
        for i in range(spec.n_frames):  # interleaved as a recorder writes: a frame, then its audio
            f = av.VideoFrame.from_ndarray(coded(spec, upright(spec, i)), format="rgb24")
            f.pts, f.time_base = t0 + i, Fraction(1, spec.fps)
            box.mux(vs.encode(f))
            for a, wave in zip(streams, waves):
                lo, hi = (int(round(k * a.rate / spec.fps)) for k in (i, i + 1))
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, lo:hi]), format="fltp", layout=a.layout.name)
                af.sample_rate, af.pts, af.time_base = a.rate, int(round((spec.start + spec.audio_delay) * a.rate)) + lo, Fraction(1, a.rate)
                box.mux(a.encode(af))
        box.mux(vs.encode(None))
        for a in streams:
            box.mux(a.encode(None))
    if spec.name.startswith("truncated"):
        truncate(path, 0.6)
    return path


def truncate(path: Path, keep: float) -> Path:
    """Cut the file to ``keep`` of its bytes (a recording that was interrupted, a download cut short)."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def write_corpus(folder: Path) -> dict[str, tuple[Spec, Path]]:
    """Every clip of ``specs()`` into ``folder``: {name: (spec, path)}."""
    folder.mkdir(parents=True, exist_ok=True)
    assert len({Path(s.name).stem for s in specs()}) == len(specs())  # predict's output folder is the stem
    return {s.name: (s, write(folder / s.name, s)) for s in specs()}
