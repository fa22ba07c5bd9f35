"""Face alignment: five landmarks -> a similarity transform onto a fixed template -> a square crop.

The organisers' ``cropped_aligned`` faces are aligned, so faces cut from raw video (``abaw prep``
on raw-only videos, ``abaw predict``) are aligned too: MTCNN's five points (left eye, right eye,
nose tip, left and right mouth corner, in image coordinates) are mapped with a least-squares
similarity (rotation, uniform scale, translation; Umeyama, via scikit-image) onto the InsightFace
112x112 template, scaled to the crop side. A detector without landmarks (Haar) cannot be aligned:
its crops are the plain squares of ``square_crop``.
"""

from __future__ import annotations

import numpy as np

from abawkit.errors import AbawError

ALIGN_MODES = ("5pt", "none")

# InsightFace / ArcFace 112x112 five-point template (x, y): eyes, nose, mouth corners
TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)


def check_align(mode: str) -> str:
    """``mode`` if known, else a one-line error."""
    if mode not in ALIGN_MODES:
        raise AbawError(f"align {mode!r}: expected {' or '.join(ALIGN_MODES)}")
    return mode


def similarity(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 matrix mapping ``landmarks`` [5, 2] (image px) onto the template at side ``size``."""
    from skimage.transform import SimilarityTransform

    dst = TEMPLATE_112 * (size / 112.0)
    src = np.asarray(landmarks, np.float64).reshape(5, 2)
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        tform = SimilarityTransform.from_estimate(src, dst)
    else:
        tform = SimilarityTransform()
        tform.estimate(src, dst)
    return np.asarray(tform.params[:2], np.float64)


def align_face(frame: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """Aligned crop [size, size, 3] of the face whose five points are ``landmarks`` in ``frame`` [H, W, 3].

    Pixels the transform takes from outside the frame repeat its border (as ``square_crop`` pads)."""
    import cv2

    m = similarity(landmarks, size)
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def eye_angle(landmarks: np.ndarray) -> float:
    """Angle in degrees of the line from the left to the right eye (0 = level)."""
    (lx, ly), (rx, ry) = np.asarray(landmarks, np.float64)[:2]
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


def square_crop(frame: np.ndarray, box: np.ndarray | None, size: int, margin: float = 0.15) -> np.ndarray:
    """Square crop around ``box`` (+margin), or the centered square if None; resized to [size, size, 3]."""
    import cv2

    h, w = frame.shape[:2]
    if box is None:
        cx, cy, side = w / 2, h / 2, min(h, w)
    else:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = max(box[2] - box[0], box[3] - box[1]) * (1 + 2 * margin)
    x1, y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(int(round(side)), 2)
    pad = max(0, -x1, -y1, x1 + s - w, y1 + s - h)
    padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else frame
    crop = padded[y1 + pad:y1 + pad + s, x1 + pad:x1 + pad + s]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
