"""Does extraction run at the speed of the encoder? ``abaw extract vision``'s path against the bare forward.

    python benchmarks/bench_extract.py                                   # tiny ViT @ 224, CPU-sized
    python benchmarks/bench_extract.py --encoder base --batch 512 --workers 14 --seconds 30   # a GPU

"bare" runs the encoder (bf16 autocast on CUDA, inference mode) on one pre-loaded, normalised
batch already on the device, pooling included: the ceiling. "extract" is
``features.vision.extract_videos`` on synthetic videos of 112 px face crops: one DataLoader
decoding uint8 crops in its workers, resize + normalise on the device, float16 features copied to
pinned host buffers without stalling, one ``.npy`` per video written as it completes. Steady state
only: the bare forward runs ``--warmup`` batches first; extraction is timed from the end of its
first ``--warmup-videos`` videos (loader start, first batches) to the end of the last. The work is
sized from the bare rate so extraction lasts about ``--seconds``. Each of ``--rounds`` rounds times
the bare forward before and after an extraction (their mean is that round's reference); the median
of the rounds' ratios is reported, which evens out a machine shared with others.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from abawkit.data.augment import normalize
from abawkit.features.store import FeatureStore
from abawkit.features.vision import VisionSettings, extract_videos, pool_tokens
from abawkit.models.mae import ViTEncoder, encoder_arch


def bare_rate(encoder: torch.nn.Module, s: VisionSettings, device: torch.device, warmup: int, seconds: float) -> float:
    """img/s of encoder + pooling on a fixed device batch."""
    x = normalize(torch.rand(s.batch_size, 3, s.img_size, s.img_size, device=device))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for _ in range(warmup):
            pool_tokens(encoder(x), s.pool).to(torch.float16)
        sync()
        n, t0 = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - t0 < seconds:
            pool_tokens(encoder(x), s.pool).to(torch.float16)
            n += 1
        sync()
    return n * s.batch_size / (time.perf_counter() - t0)


def frames_table(faces: list[str], videos: int, frames: int) -> pd.DataFrame:
    """``videos`` x ``frames`` rows (every frame has a crop; the rendered faces are cycled)."""
    n = videos * frames
    crops = [faces[i % len(faces)] for i in range(n)]
    frame = np.tile(np.arange(1, frames + 1), videos)
    return pd.DataFrame({"video": np.repeat([f"v{i:03d}" for i in range(videos)], frames), "frame": frame,
                         "crop": crops, "fill_frame": frame})


def extract_rate(encoder, table: pd.DataFrame, s: VisionSettings, device, dim: int, warm_videos: int,
                 out: Path) -> float:
    """Steady-state img/s of ``extract_videos`` (from the end of the warm-up videos to the end)."""
    videos = list(dict.fromkeys(table["video"]))
    done: list[float] = []
    extract_videos(encoder, table, videos, FeatureStore(out), s, device, dim,
                   on_video=lambda v: done.append(time.perf_counter()))
    per_video = len(table) // len(videos)
    return (len(videos) - warm_videos) * per_video / (done[-1] - done[warm_videos - 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", default="tiny")
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0, help="work per figure (>= 30 on a GPU)")
    ap.add_argument("--videos", type=int, default=12, help="videos the crops are split into")
    ap.add_argument("--warmup", type=int, default=3, help="bare forward batches before timing")
    ap.add_argument("--warmup-videos", type=int, default=2, help="extraction videos before timing")
    ap.add_argument("--faces", type=int, default=512, help="synthetic 112 px faces to render (cycled)")
    ap.add_argument("--rounds", type=int, default=3, help="bare / extract / bare rounds; the median ratio is reported")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    arch = encoder_arch(args.encoder, args.img_size)
    torch.manual_seed(0)
    encoder = ViTEncoder(arch).eval().to(device)
    s = VisionSettings(img_size=arch.img_size, pool="cls", batch_size=args.batch, workers=args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        from abawkit.release.synth import SynthSpec, write_face_pool

        write_face_pool(Path(tmp), SynthSpec(size=112), 0, args.faces)
        faces = sorted(str(p) for p in (Path(tmp) / "pretrain_faces").rglob("*.jpg"))
        rounds = [one_round(args, encoder, s, device, arch.dim, faces, Path(tmp) / f"store{r}") for r in range(args.rounds)]
    print(f"device {device}, {args.encoder} @ {arch.img_size}px, batch {args.batch}, workers {args.workers}, "
          f"112 px JPEG crops, {args.rounds} rounds of bare / extract / bare")
    for r, (bare, extract, crops) in enumerate(rounds):
        print(f"round {r}: bare forward {bare:9.1f} img/s   extract {extract:9.1f} img/s ({crops} crops)   "
              f"ratio {extract / bare:.2f}")
    ratio = float(np.median([e / b for b, e, _ in rounds]))
    print(f"extract / bare forward (median of rounds): {ratio:.2f}")


def one_round(args, encoder, s: VisionSettings, device, dim: int, faces: list[str], out: Path) -> tuple:
    """(bare img/s = mean of before and after, extract img/s, crops) with about ``--seconds`` of extraction."""
    before = bare_rate(encoder, s, device, args.warmup, args.seconds / 2)
    per_video = max(args.batch, int(before * args.seconds / (args.videos - args.warmup_videos)))
    table = frames_table(faces, args.videos, per_video)
    extract = extract_rate(encoder, table, s, device, dim, args.warmup_videos, out)
    after = bare_rate(encoder, s, device, args.warmup, args.seconds / 2)
    return (before + after) / 2, extract, len(table)

if __name__ == "__main__":
    main()
