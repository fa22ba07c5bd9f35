"""How long does speech to text take per minute of audio on this machine? PocketSphinx against Whisper.

    python benchmarks/bench_text.py                          # the shipped LibriVox clip, tiled to 60 s
    python benchmarks/bench_text.py --audio a.wav b.wav --threads 2 --seconds 120

The audio is real recorded speech (default: ``tests/data/speech/librivox-austen-0870.flac``, 7.1 s, tiled
with 0.5 s of silence between copies up to ``--seconds``). Each recogniser is ``features.asr``'s, the one
``abaw extract text`` runs: ``pocketsphinx`` (its wheel's en-us model; skipped when the package is absent)
and Whisper folders with random weights saved by ``tests/text_models.py`` at two sizes: the tests' tiny
model and openai/whisper-tiny's shape (384 wide, 4 + 4 layers: its compute, not its words). Random weights
say nothing useful and stop at random, so each Whisper window decodes ``--whisper-tokens`` tokens (real
speech gives about 2.5 tokens a second, ~75 a 30 s window); the decoder steps run are printed. Model loading is
timed apart. Reported: wall and CPU seconds per minute of audio and the real-time factor (wall / audio
length; < 1 is faster than real time). On a machine shared with others, CPU seconds are the steadier number.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tiny model builders the tests use

from text_models import WHISPER_TINY, tiny_whisper  # noqa: E402

from abawkit.features.asr import build_asr  # noqa: E402
from abawkit.features.audio import SAMPLE_RATE, load_audio  # noqa: E402

CLIP = ROOT / "tests" / "data" / "speech" / "librivox-austen-0870.flac"


def speech(files: list[Path], seconds: float) -> np.ndarray:
    """The files' audio (16 kHz mono), each followed by 0.5 s of silence, repeated up to ``seconds``."""
    parts = []
    for f in files:
        wave, sr = sf.read(str(f), dtype="float32", always_2d=True)
        wave = wave.mean(1) if sr == SAMPLE_RATE else load_audio(f)
        parts += [wave, np.zeros(SAMPLE_RATE // 2, np.float32)]
    one = np.concatenate(parts)
    reps = max(1, int(np.ceil(seconds * SAMPLE_RATE / len(one))))
    return np.tile(one, reps)[:max(len(one), int(seconds * SAMPLE_RATE))]


def timed(name: str, make, wave: np.ndarray) -> dict:
    t0 = time.perf_counter()
    asr = make()
    load = time.perf_counter() - t0
    c0, t0 = time.process_time(), time.perf_counter()
    segs = asr(wave)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    minutes = len(wave) / SAMPLE_RATE / 60
    return {"name": name, "load": load, "wall": wall / minutes, "cpu": cpu / minutes, "rtf": wall / (60 * minutes),
            "segments": segs, "asr": asr}


def fixed_tokens(asr, n: int):
    """Random weights stop at random: make each window decode ``n`` tokens, as speech would (the compute of real text)."""
    asr.model.generation_config.min_new_tokens = n
    asr.steps = 0  # decoder forward passes: one per token decoded (and one per window's prompt)

    def count(*_):
        asr.steps += 1

    asr.model.model.decoder.register_forward_hook(count)
    return asr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--audio", nargs="+", type=Path, default=[CLIP], help="speech files (any rate; mono or not)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of audio to transcribe")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for Whisper (PocketSphinx uses one)")
    ap.add_argument("--whisper-tokens", type=int, default=80, help="tokens decoded per 30 s Whisper window")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    wave = speech(args.audio, args.seconds)
    print(f"audio: {len(wave) / SAMPLE_RATE:.1f} s of {', '.join(f.name for f in args.audio)}; "
          f"torch threads {args.threads}")
    rows = []
    try:
        import pocketsphinx  # noqa: F401

        rows.append(timed("pocketsphinx (en-us, in its wheel)", lambda: build_asr("pocketsphinx"), wave))
    except ImportError:
        print("pocketsphinx: not installed, skipped")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, size) in enumerate((("whisper, tests' tiny (random)", {}), ("whisper-tiny shape (random)", WHISPER_TINY))):
            folder = tiny_whisper(Path(tmp) / f"whisper{i}", **size)
            rows.append(timed(label, lambda f=folder: fixed_tokens(build_asr(str(f), max_new_tokens=args.whisper_tokens),
                                                                   args.whisper_tokens), wave))
    print(f"{'recogniser':38s} {'load s':>7s} {'wall s/min':>11s} {'CPU s/min':>10s} {'x real time':>12s}")
    for r in rows:
        tokens = f"   ({r['asr'].steps} decoder steps)" if hasattr(r["asr"], "steps") else ""
        print(f"{r['name']:38s} {r['load']:7.2f} {r['wall']:11.2f} {r['cpu']:10.2f} {r['rtf']:12.3f}{tokens}")
    base = rows[0]
    for r in rows[1:]:
        print(f"{r['name']} / {base['name']}: wall x{r['wall'] / base['wall']:.2f}, CPU x{r['cpu'] / base['cpu']:.2f}")
    if rows and rows[0]["name"].startswith("pocketsphinx"):
        first = rows[0]["segments"][:2]
        print("pocketsphinx says: " + " | ".join(f"[{s.start:.2f}-{s.end:.2f}] {s.text}" for s in first))


if __name__ == "__main__":
    main()
