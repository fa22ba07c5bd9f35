"""Test videos written with PyAV: a real face (scikit-image's astronaut photo), a cartoon title, a sky.

``write_video`` sets every frame's timestamp itself, so variable frame rates are exact, and can add
a tone in any audio codec PyAV has (aac, mp3) at any rate.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np


def astronaut(side: int) -> np.ndarray:
    """scikit-image's astronaut photo (a real face, public domain) resized to [side, side, 3] RGB."""
    from skimage import data

    return cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA)


def face_scene(w: int, h: int, i: int = 0, faces: int = 1, angle: float = 0.0) -> np.ndarray:
    """[h, w, 3]: ``faces`` copies of the astronaut side by side on grey, drifting with ``i``; rotated by ``angle``."""
    img = np.full((h, w, 3), 90, np.uint8)
    side = min(h, w // faces) * 9 // 10
    for k in range(faces):
        x = k * (w // faces) + (w // faces - side) // 2 + int(4 * np.sin(i / 5))
        y = (h - side) // 2
        img[y:y + side, x:x + side] = astronaut(side)
    if angle:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return img


def cartoon(w: int, h: int, i: int = 0) -> np.ndarray:
    """A cartoon title card: flat colours, circles and text, moving with ``i`` (no face)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (250, 200, 40)
    cv2.circle(img, (w // 3 + 2 * i, h // 2), h // 4, (220, 40, 90), -1)
    cv2.rectangle(img, (w // 2, h // 4), (w // 2 + w // 4, h // 4 + h // 3), (40, 90, 220), -1)
    cv2.putText(img, "THE END", (w // 10, h - h // 8), cv2.FONT_HERSHEY_SIMPLEX, h / 160, (20, 20, 20), 2)
    return img


def sky(w: int, h: int, i: int = 0) -> np.ndarray:
    """Blue gradient with drifting white clouds (no face)."""
    t = np.linspace(0, 1, h)[:, None, None]
    img = ((1 - t) * np.array([70, 130, 230]) + t * np.array([180, 210, 250])) * np.ones((1, w, 1))
    img = img.astype(np.uint8)
    for k in range(3):
        cv2.ellipse(img, ((37 * k + 3 * i) % w, h // 4 + 20 * k), (w // 6, h // 12), 0, 0, 360, (250, 250, 250), -1)
    return cv2.GaussianBlur(img, (9, 9), 3)


def write_video(path: Path, frames: Sequence[np.ndarray], times: Sequence[float], vcodec: str = "libx264",
                audio: tuple[str, int] | None = None) -> Path:
    """Encode RGB ``frames`` with timestamps ``times`` (s); ``audio`` = (codec, rate) adds a 220 Hz tone."""
    import av

    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as box:
        vs = box.add_stream(vcodec, rate=30)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        vs.time_base = vs.codec_context.time_base = tb
        if vcodec == "libx265":
            vs.options = {"x265-params": "log-level=error"}
        aus = None
        if audio:
            aus = box.add_stream(audio[0], rate=audio[1])
            aus.layout = "mono"
        for img, t in zip(frames, times):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts, f.time_base = int(round(t * 1000)), tb
            for p in vs.encode(f):
                box.mux(p)
        for p in vs.encode(None):
            box.mux(p)
        if aus is not None:
            rate = audio[1]
            n = int((times[-1] + 0.1) * rate)
            tone = (0.2 * np.sin(2 * np.pi * 220 * np.arange(n) / rate)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
            af.sample_rate = rate
            for p in [*aus.encode(af), *aus.encode(None)]:
                box.mux(p)
    return path


def clip(path: Path, scenes: Sequence[tuple[str, int]], w: int = 320, h: int = 240, fps: float = 15, **kw) -> Path:
    """A constant-rate clip of ``scenes`` [(kind, frames)], kind in face / faces2 / cartoon / sky."""
    make = {"face": lambda i: face_scene(w, h, i), "faces2": lambda i: face_scene(w, h, i, faces=2),
            "cartoon": lambda i: cartoon(w, h, i), "sky": lambda i: sky(w, h, i)}
    frames = [make[kind](i) for kind, n in scenes for i in range(n)]
    return write_video(path, frames, np.arange(len(frames)) / fps, **kw)


def predicted(work: Path, video: Path) -> Path:
    """The folder ``abaw predict`` writes for ``video``: ``layout.predict`` (its name and its content)."""
    from abawkit.workspace import layout
    from abawkit.workspace.fingerprints import sha256_file

    return Path(work) / layout.predict(Path(video).stem, sha256_file(video))
