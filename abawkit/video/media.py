"""Video and audio I/O for prep and predict: probe videos, extract 16 kHz mono WAV, detect and crop faces.

Reads media files with PyAV (bundled FFmpeg, frame-threaded decoding); writes WAVs with soundfile
and JPEG crops with OpenCV. Face detection uses facenet-pytorch's MTCNN (weights ship in the wheel:
boxes, probabilities and five landmarks) with OpenCV's Haar cascade as fallback (boxes only).
``crop_video`` follows the faces through the video (``video.facetrack``) and writes a crop only for
frames with a face, aligned on the landmarks when there are some (``data.align``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from abawkit.console import console
from abawkit.devices import resolve_device
from abawkit.errors import AbawError
from abawkit.io import atomic_path, write_error
from abawkit.video.align import square_crop
from abawkit.video.decode import display_filters, first_frame, iter_video
from abawkit.video.facetrack import Detections, TrackSettings, cut_faces, find_faces

__all__ = ["VIDEO_EXTS", "FaceDetector", "VideoInfo", "crop_video", "extract_audio", "iter_frames", "iter_video",
           "probe_video", "square_crop", "write_crop"]

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm")


@dataclass(frozen=True)
class VideoInfo:
    n_frames: int
    fps: float
    has_audio: bool
    width: int
    height: int


def probe_video(path: str | Path, count: bool = False) -> VideoInfo:
    """Frame count, fps, audio presence and the size as shown (display matrix applied); demuxes to
    count frames only if the header lacks it."""
    import av

    try:
        with av.open(str(path)) as box:
            if not box.streams.video:
                raise AbawError(f"{path}: unreadable video (no video stream)")
            vs = box.streams.video[0]
            fps = float(vs.average_rate or vs.guessed_rate or 30)
            n = vs.frames
            if count or n <= 0:
                n = sum(1 for _ in box.demux(vs) if _.size)
            w, h, has_audio = vs.width, vs.height, bool(box.streams.audio)
        first = first_frame(path)
        if first is not None and any(f == "transpose" for f, _ in display_filters(first)):
            w, h = h, w  # shown turned by 90 or 270 degrees: the size a person sees
        return VideoInfo(int(n), fps, has_audio, w, h)
    except AbawError:
        raise
    except Exception as exc:  # PyAV raises many types for broken files
        raise AbawError(f"{path}: unreadable video ({type(exc).__name__}: {exc})") from None


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decoded RGB frames [H, W, 3] uint8, in order."""
    for _, frame in iter_video(path):
        yield frame.to_ndarray(format="rgb24")


def extract_audio(path: str | Path, wav: str | Path, rate: int = 16000) -> bool:
    """Decode the first audio stream to ``rate`` Hz mono float WAV; False if there is no audio.

    The WAV starts at the first video frame (``data.decode``'s clock): audio before it is dropped,
    a later audio start is preceded by silence. Audio that breaks off (a cut file) ends there."""
    import av
    import soundfile as sf

    try:
        with av.open(str(path)) as box:
            if not box.streams.audio:
                return False
            samples, start = _decode_audio(box, rate)
    except Exception as exc:
        raise AbawError(f"{path}: unreadable audio ({type(exc).__name__}: {exc})") from None
    first = first_frame(path)
    if start is not None and first is not None and first.time is not None:
        shift = int(round((start - first.time) * rate))  # > 0: the audio starts after the first frame
        samples = np.concatenate([np.zeros(shift, np.float32), samples]) if shift > 0 else samples[-shift:]
    with atomic_path(wav) as tmp:
        try:
            sf.write(str(tmp), samples, rate, format="WAV", subtype="FLOAT")
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise write_error(wav, exc) from None
    return True


def _decode_audio(box, rate: int) -> tuple[np.ndarray, float | None]:
    """The first audio stream as mono float32 samples [T] at ``rate`` and its first timestamp (s)."""
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks, start = [], None
    try:
        for frame in box.decode(audio=0):
            start = frame.time if start is None else start
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    except Exception:  # noqa: BLE001 - a break after the first frame: keep what came before
        if not chunks:
            raise
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), start


class FaceDetector:
    """Largest-face boxes per frame: MTCNN (on CUDA when there is one), OpenCV's Haar cascade
    when asked for (``kind="haar"``) or as MTCNN's fallback for frames it finds nothing in.

    The cascade is built only when first needed: some OpenCV builds (5.x) have no
    ``CascadeClassifier``. Asked for explicitly, that is a one-line error; as a fallback, a
    one-line warning (once) and MTCNN alone.
    """

    def __init__(self, kind: str = "mtcnn", device: str | None = None, min_face: int = 20) -> None:
        if kind not in ("mtcnn", "haar"):
            raise AbawError(f"detector {kind!r}: expected mtcnn or haar")
        self.kind, self.mtcnn, self._haar, self._no_haar = kind, None, None, False
        self.min_face = min_face  # px in the frame the detector sees; MTCNN's image pyramid starts there
        if kind == "mtcnn":
            from facenet_pytorch import MTCNN

            _fast_mtcnn_resample()
            device = str(resolve_device(device or "auto"))  # cuda without a GPU: an error, as in every stage
            self.mtcnn = MTCNN(keep_all=True, device=device, post_process=False, min_face_size=min_face)
        else:
            self._cascade()  # fail before any frame is read

    def _cascade(self):  # -> cv2.CascadeClassifier | None
        """The Haar cascade, built on first use; None (after one warning) when MTCNN goes on alone."""
        if self._haar is None and not self._no_haar:
            import cv2

            xml = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / "haarcascade_frontalface_default.xml"
            haar = cv2.CascadeClassifier(str(xml)) if hasattr(cv2, "CascadeClassifier") and xml.is_file() else None
            if haar is None or haar.empty():
                why = f"this OpenCV ({cv2.__version__}) has no Haar face cascade (cv2.CascadeClassifier)"
                if self.kind == "haar":
                    raise AbawError(f"detector haar: {why}; use detector mtcnn")

                console.print(f"[yellow]warning:[/] {why}: MTCNN detects faces alone (no Haar fallback)", soft_wrap=True)
                self._no_haar = True
            else:
                self._haar = haar
        return self._haar

    def detect_faces(self, frames: list[np.ndarray], min_face: int | None = None) -> list["Detections"]:
        """Every face (of at least ``min_face`` px, default the detector's) in each RGB frame [H, W, 3]:
        boxes, scores and (MTCNN only) five landmarks.

        The frames of one call go through MTCNN as one batch (they share a size: one video). Haar
        hits (on frames MTCNN found nothing in) score 1.0 and have no landmarks, so they are not aligned."""
        min_face = min_face or self.min_face
        out = [_none() for _ in frames]
        if self.mtcnn is not None and frames:
            self.mtcnn.min_face_size = min_face
            found, probs, points = self.mtcnn.detect(np.stack(frames), landmarks=True)
            out = [_none() if b is None else Detections(np.asarray(b, np.float32), np.asarray(p, np.float32),
                                                          np.asarray(lm, np.float32))
                   for b, p, lm in zip(found, probs, points)]
        missed = [i for i, d in enumerate(out) if not len(d.boxes)]
        if missed and (haar := self._cascade()) is not None:
            import cv2

            for i in missed:
                hits = haar.detectMultiScale(cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY), 1.1, 3,
                                             minSize=(min_face, min_face))
                if len(hits):
                    xywh = np.asarray(hits, np.float32).reshape(-1, 4)
                    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
                    out[i] = Detections(boxes, np.ones(len(boxes), np.float32), None)
        return out


def _fast_mtcnn_resample() -> None:
    """Make facenet-pytorch (2.5.3, pinned) resize with antialiased bilinear instead of ``mode="area"``.

    Its ``imresample`` (the image pyramid and every candidate box) uses area interpolation, which
    torch runs as ``adaptive_avg_pool2d``: about half of MTCNN's CPU time. Antialiased bilinear
    gives boxes within a pixel at about half the cost (measured: 0.38 -> 0.20 s per 640x360 frame)."""
    import torch
    from facenet_pytorch.models.utils import detect_face

    def resample(img: "torch.Tensor", sz: tuple[int, int]) -> "torch.Tensor":  # [N, C, H, W] -> [N, C, *sz]
        return torch.nn.functional.interpolate(img, size=sz, mode="bilinear", antialias=True, align_corners=False)

    detect_face.imresample = resample


def _none():  # -> Detections with no face
    return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


def crop_video(path: str | Path, out_dir: Path, size: int, detector: FaceDetector, half: str | None = None,
               settings: "TrackSettings | None" = None) -> dict:
    """Detect, track, and write ``out_dir/NNNNN.jpg`` (1-based frame number) for every frame with a face.

    Frames without a face get no file. ``half`` = "left"/"right" restricts detection to that half
    of the frame (``_left``/``_right`` names). Returns {"frames": n, "detected": frames with a face}.
    """
    s = settings or TrackSettings()
    out_dir.mkdir(parents=True, exist_ok=True)
    scan, rows = find_faces(path, detector, s, half)
    cut_faces(path, rows, size, s.align, lambda k, _, crop: write_crop(out_dir / f"{k + 1:05d}.jpg", crop))
    return {"frames": scan.n_frames, "detected": len(np.unique(rows.frame))}


def write_crop(path: Path, crop: np.ndarray) -> None:
    """Write an RGB crop [S, S, 3] as JPEG (a one-line error if it cannot be written)."""
    import cv2

    if not cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)):
        raise write_error(path, "cv2.imwrite failed")
