"""The synthetic audio (a voiced harmonic tone per person, pitch and loudness following arousal,
timbre following expression) and the mp4 writer (H.264 + AAC). Writes one file per call."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from abawkit.release.synth.spec import EXPR_F0, EXPR_HARM, Person, SynthSpec


def voice(people: list[Person], spec: SynthSpec, rng: np.random.Generator) -> np.ndarray:
    """Mono float32 [T] audio: each person's harmonic voice, summed (a _left/_right pair shares it)."""
    n = spec.frames
    t_frame = np.arange(n) / spec.fps
    t = np.arange(int(n / spec.fps * spec.audio_rate)) / spec.audio_rate
    out = np.zeros_like(t, dtype=np.float32)
    for p in people:
        ar = np.interp(t, t_frame, p.va[:, 1])
        e = p.expr[np.minimum((t * spec.fps).astype(int), n - 1)]
        f0 = EXPR_F0[e] * p.look["voice"] * (1 + 0.3 * ar)
        phase = 2 * np.pi * np.cumsum(f0) / spec.audio_rate
        wave = sum(EXPR_HARM[e, k] * np.sin((k + 1) * phase) for k in range(5))
        talk = np.repeat(rng.random(int(t[-1] * 2) + 2) < 0.75, spec.audio_rate // 2)[: len(t)]  # 0.5 s on/off
        syll = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
        loud = 0.05 + 0.25 * (ar + 1) / 2
        out += (wave * loud * syll * talk).astype(np.float32) / len(people)
    out += rng.normal(0, 0.005, size=out.shape).astype(np.float32)
    return np.clip(out, -1, 1)


def write_mp4(path: Path, frames: list[np.ndarray], audio: np.ndarray, fps: int, rate: int) -> None:
    """Encode BGR frames [H, W, 3] as H.264 and ``audio`` [T] as mono AAC into ``path``."""
    with av.open(str(path), "w") as box:
        vs = box.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "23"})
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = "yuv420p"
        aus = box.add_stream("aac", rate=rate, layout="mono")
        for img in frames:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                box.mux(pkt)
        for pkt in vs.encode():
            box.mux(pkt)
        chunk = 1024
        for i in range(0, len(audio), chunk):
            fr = av.AudioFrame.from_ndarray(audio[None, i:i + chunk].astype(np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = rate, i
            for pkt in aus.encode(fr):
                box.mux(pkt)
        for pkt in aus.encode():
            box.mux(pkt)
