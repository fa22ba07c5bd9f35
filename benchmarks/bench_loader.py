"""Is the model waiting for data? Images/s of the face loader alone, the model alone, and both.

    python benchmarks/bench_loader.py                       # synthetic 112 px faces, micro ViT @ 32 px
    python benchmarks/bench_loader.py --encoder base --img-size 224 --train --reference
    python benchmarks/bench_loader.py --images FACES --encoder base --img-size 224 --workers 14 --batch 256 --train

"workers" iterates the training DataLoader (workers decode uint8 crops and draw augmentation
parameters; pinned memory on CUDA); "loader" adds the batched augmentation on the device
(``data.augment``), i.e. everything up to the model's input; "model" runs forward (+ backward and
an AdamW step with --train) on one fixed batch; "both" is the real thing. ``--reference`` also times
the float32 pipeline of 606ffbf (decode, augment and normalise in the workers with
torchvision.transforms.v2) in the same run, and prints the ratio. Every figure is steady state:
``--warmup`` batches first, then at least ``--seconds`` of work. Bytes per image crossing the
worker boundary are printed for both pipelines.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from abawkit.data.augment import MEAN, STD, BatchAugment
from abawkit.data.faces import FaceCrops, collate_faces, image_folder
from abawkit.engine import autocast
from abawkit.models.mae import MAE, encoder_arch


class ReferenceCrops(Dataset):
    """The 606ffbf worker pipeline: PIL decode, RandomResizedCrop / flip / jitter, float32 [3, S, S] out."""

    def __init__(self, paths: list, img_size: int) -> None:
        self.paths, self.img_size = [str(p) for p in paths], img_size
        self.transform = v2.Compose([
            v2.ToImage(), v2.RandomResizedCrop(img_size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),
            v2.RandomHorizontalFlip(), v2.ColorJitter(0.2, 0.2, 0.2), v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        with Image.open(self.paths[i]) as im:
            im.draft("RGB", (self.img_size, self.img_size))
            return self.transform(im.convert("RGB")), torch.zeros(0)


def decoder_shape(dim: int) -> tuple[int, int]:
    """(decoder dim, heads): 512 wide with 16 heads for base/large (the paper's), heads of >= 32 dims below."""
    dec = min(512, dim)
    return dec, next(h for h in (16, 8, 4, 2, 1) if dec % h == 0 and dec // h >= 32)


def forever(loader: DataLoader) -> Iterator:
    for _ in itertools.count():
        yield from loader


def steady_rate(batches: Iterator, fn: Callable, batch: int, warmup: int, seconds: float, sync: Callable) -> float:
    """img/s of ``fn(next(batches))`` after ``warmup`` calls, over at least ``seconds`` (and 4 batches)."""
    for _ in range(warmup):
        fn(next(batches))
    sync()
    n, t0 = 0, time.perf_counter()
    while n < 4 or time.perf_counter() - t0 < seconds:
        fn(next(batches))
        n += 1
    sync()
    return n * batch / (time.perf_counter() - t0)


def batch_bytes(batch) -> float:
    return sum(t.nbytes for t in batch if isinstance(t, torch.Tensor)) / len(batch[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", help="folder of face images (default: synthetic 112 px faces in a temp folder)")
    ap.add_argument("--encoder", default="micro")
    ap.add_argument("--img-size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--decoder-depth", type=int, default=2, help="MAE decoder blocks (the paper: 8)")
    ap.add_argument("--warmup", type=int, default=3, help="batches before each timing")
    ap.add_argument("--seconds", type=float, default=5.0, help="minimum timed work per figure (30+ on a GPU)")
    ap.add_argument("--faces", type=int, default=512, help="synthetic faces to render (they are cycled)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train", action="store_true", help="time forward + backward + AdamW instead of forward only")
    ap.add_argument("--reference", action="store_true", help="also time the 606ffbf float32 worker pipeline")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (as train.compile = true)")
    ap.add_argument("--skip-loader", action="store_true", help="model figures only (no loader / both)")
    ap.add_argument("--skip-model", action="store_true", help="loader figures only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.images:
        return measure(args, args.images)
    with tempfile.TemporaryDirectory() as tmp:
        from abawkit.release.synth import SynthSpec, write_face_pool

        write_face_pool(Path(tmp), SynthSpec(size=112), 0, args.faces)
        measure(args, str(Path(tmp) / "pretrain_faces"))


def measure(args: argparse.Namespace, images: str) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    arch = encoder_arch(args.encoder, args.img_size)
    paths = image_folder(images)

    def loader_of(data: Dataset) -> DataLoader:
        return DataLoader(data, args.batch, shuffle=True, num_workers=args.workers, drop_last=True,
                          pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
                          collate_fn=collate_faces if isinstance(data, FaceCrops) else None)

    def to_dev(b):
        return [t.to(device, non_blocking=True) for t in b]

    augment = BatchAugment(arch.img_size, train=True)
    loader = loader_of(FaceCrops(paths, arch.img_size, train=True))
    per = batch_bytes(next(iter(loader)))
    print(f"device {device}, {args.encoder} @ {arch.img_size}px, batch {args.batch}, workers {args.workers}, "
          f"{len(paths)} faces, >= {args.seconds:g} s per figure")
    print(f"bytes/image across the worker boundary: {per:,.0f}")
    rows = {} if args.skip_loader else {
        "workers": steady_rate(forever(loader), to_dev, args.batch, args.warmup, args.seconds, sync),
        "loader": steady_rate(forever(loader), lambda b: augment(to_dev(b)), args.batch, args.warmup, args.seconds, sync)}
    if args.reference:
        ref = loader_of(ReferenceCrops(paths, arch.img_size))
        ref_per = batch_bytes(next(iter(ref)))
        rows["reference"] = steady_rate(forever(ref), to_dev, args.batch, args.warmup, args.seconds, sync)
        print(f"bytes/image, reference float32 pipeline: {ref_per:,.0f} (new / reference: {per / ref_per:.3f})")
    if not args.skip_model:
        time_model(args, arch, device, sync, forever(loader), to_dev, augment, rows)
    report(rows, args.workers)


def time_model(args, arch, device, sync, batches, to_dev, augment, rows: dict) -> None:
    dec, heads = decoder_shape(arch.dim)
    model = MAE(arch, decoder_dim=dec, decoder_depth=args.decoder_depth, decoder_heads=heads).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=(device.type == "cuda") or None)
    run = torch.compile(model) if args.compile else model

    def step(x: torch.Tensor) -> None:
        with autocast(device, True), torch.set_grad_enabled(args.train):
            loss = run(x)[0]
        if args.train:
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    fixed = augment(to_dev(next(batches)))[0]
    print(f"MAE decoder {args.decoder_depth} x {dec} ({heads} heads), {'train step' if args.train else 'forward'}")
    rows["model"] = steady_rate(itertools.repeat(fixed), step, args.batch, args.warmup, args.seconds, sync)
    if args.skip_loader:
        return
    rows["both"] = steady_rate(batches, lambda b: step(augment(to_dev(b))[0]), args.batch, args.warmup,
                               args.seconds, sync)


def report(rows: dict, workers: int) -> None:
    for k, v in rows.items():
        print(f"{k:<10}{v:10.1f} img/s{'' if k in ('model', 'both') else f'  ({v / max(1, workers):.1f} per worker)'}")
    if "reference" in rows:
        print(f"workers / reference: {rows['workers'] / rows['reference']:.2f}   "
              f"loader (with the augmentation on the device) / reference: {rows['loader'] / rows['reference']:.2f}")
    if "both" in rows and "loader" in rows:
        slower = min(rows["loader"], rows["model"])
        bound = "loader" if rows["loader"] < rows["model"] else "model"
        print(f"both / slower of the two: {rows['both'] / slower:.2f} (1.00 = perfect overlap; {bound} bounds it)")


if __name__ == "__main__":
    main()
