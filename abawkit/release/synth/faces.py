"""Faces drawn with OpenCV from AU intensities (every AU moves a visible part) and small camera
jitter. Writes nothing."""

from __future__ import annotations

import cv2
import numpy as np

from abawkit.labels import AU_NAMES


def _pt(x: float, y: float, s: int) -> tuple[int, int]:
    return int(round(x * s * 16)), int(round(y * s * 16))  # 4-bit sub-pixel coordinates


FACE_ZOOM = 1.3  # like an aligned crop, the face fills most of the image


def draw_face(au: np.ndarray, look: dict, size: int) -> np.ndarray:
    """Render a frontal face whose parts follow the AU vector ``au`` [12]; returns [S, S, 3] uint8."""
    big = int(round(size * FACE_ZOOM))
    off = (big - size) // 2
    return _draw_face(au, look, big)[off:off + size, off:off + size].copy()


def _draw_face(au: np.ndarray, look: dict, size: int) -> np.ndarray:
    s, a = size, {n: float(au[i]) for i, n in enumerate(AU_NAMES)}
    img = np.empty((s, s, 3), np.uint8)
    img[:] = look["bg"].astype(np.uint8)
    kw = {"shift": 4, "lineType": cv2.LINE_AA}
    skin = tuple(float(c) for c in look["skin"])
    dark = (30.0, 30.0, 40.0)
    cv2.ellipse(img, _pt(0.5, 0.3, s), _pt(0.36 * look["wide"], 0.2, s), 0, 180, 360, tuple(look["hair"]), -1, **kw)
    cv2.ellipse(img, _pt(0.5, 0.55, s), _pt(0.31 * look["wide"], 0.4 * look["tall"], s), 0, 0, 360, skin, -1, **kw)
    gap = look["eye_gap"]
    for side in (-1, 1):
        ex = 0.5 + side * gap
        # brows: AU1 raises the inner end, AU2 the outer end, AU4 lowers and tilts both
        inner_y = 0.37 - 0.07 * a["AU1"] + 0.05 * a["AU4"]
        outer_y = 0.36 - 0.07 * a["AU2"] + 0.01 * a["AU4"]
        cv2.line(img, _pt(0.5 + side * 0.04, inner_y, s), _pt(ex + side * 0.08, outer_y, s), dark,
                 max(1, s // 28 + int(a["AU4"] * s // 40)), **kw)
        # eyes: AU6 (cheek raise) and AU7 (lid tightener) narrow them; AU1+AU2 widen them
        open_ = 0.045 * (1 - 0.35 * a["AU6"] - 0.5 * a["AU7"] + 0.45 * a["AU1"] * a["AU2"])
        cv2.ellipse(img, _pt(ex, 0.46, s), _pt(0.055, max(open_, 0.008), s), 0, 0, 360, (245.0, 245.0, 245.0), -1, **kw)
        cv2.circle(img, _pt(ex, 0.46, s), int(0.022 * s * 16), dark, -1, **kw)
        if a["AU6"]:  # raised, flushed cheeks
            cv2.ellipse(img, _pt(ex + side * 0.03, 0.57, s), _pt(0.06, 0.035, s), 0, 0, 360, (90.0, 90.0, 215.0), -1, **kw)
        if a["AU10"]:  # nasolabial folds
            cv2.line(img, _pt(0.5 + side * 0.05, 0.58, s), _pt(0.5 + side * 0.11, 0.7, s), (60.0, 60.0, 90.0), max(1, s // 40), **kw)
    cv2.line(img, _pt(0.5, 0.48, s), _pt(0.5, 0.6, s), (80.0, 80.0, 110.0), max(1, s // 50), **kw)
    _draw_mouth(img, a, s, kw)
    return img


def _draw_mouth(img: np.ndarray, a: dict, s: int, kw: dict) -> None:
    """Lips: AU12 corners up, AU15 down, AU23 narrow, AU24 pressed, AU25 parted, AU26 jaw drop, AU10 upper lip up."""
    half = 0.11 * (1 - 0.35 * a["AU23"]) + 0.03 * a["AU12"]
    corner_y = 0.74 - 0.05 * a["AU12"] + 0.05 * a["AU15"]
    top_y = 0.72 - 0.025 * a["AU10"]
    gap = 0.03 * a["AU25"] + 0.06 * a["AU26"]
    bottom_y = 0.745 + gap
    lip = (40.0, 40.0, 110.0) if not a["AU24"] else (30.0, 30.0, 60.0)
    pts = np.array([_pt(0.5 - half, corner_y, s), _pt(0.5, top_y, s), _pt(0.5 + half, corner_y, s),
                    _pt(0.5, bottom_y, s)], np.int32)
    if gap > 0:
        cv2.fillPoly(img, [pts], (20.0, 10.0, 10.0), shift=4, lineType=cv2.LINE_AA)
    cv2.polylines(img, [pts], True, lip, max(1, s // 30 + int(a["AU24"] * s // 25)), **kw)


def jitter(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pose jitter (small rotation/shift/scale), a lighting gradient and sensor noise."""
    s = face.shape[0]
    m = cv2.getRotationMatrix2D((s / 2, s / 2), rng.normal(0, 4), rng.normal(1, 0.04))
    m[:, 2] += rng.normal(0, 0.03 * s, size=2)
    out = cv2.warpAffine(face, m, (s, s), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    ramp = np.linspace(-1, 1, s, dtype=np.float32)
    light = 1 + rng.normal(0, 0.12) + rng.normal(0, 0.12) * ramp[None, :, None]
    out = out * light + rng.normal(0, 9, size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)
