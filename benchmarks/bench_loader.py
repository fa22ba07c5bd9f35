"""Is the model waiting for data? Images/s of the face loader alone, the model alone, and both.

    .venv/bin/python benchmarks/bench_loader.py            # synthetic 112 px faces, micro ViT @ 32 px
    .venv/bin/python benchmarks/bench_loader.py --images /tmp/rel/cropped_aligned --encoder micro --img-size 32
    .venv/bin/python benchmarks/bench_loader.py --images FACES --encoder base --img-size 224 --workers 8 --batch 128

"loader" iterates the training DataLoader (decode + augment in workers, pinned memory on CUDA);
"model" runs forward (+ backward with --train) on one pre-loaded batch; "both" is the real thing.
When "both" is close to min(loader, model) the pipeline overlaps well; if the loader is the
minimum, add workers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from abawkit.data.faces import FaceCrops, image_folder
from abawkit.engine import autocast
from abawkit.models.mae import MAE, encoder_arch


def rate(n_images: int, seconds: float) -> str:
    return f"{n_images / seconds:9.1f} img/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", help="folder of face images (default: render enough synthetic faces to a temp folder)")
    ap.add_argument("--encoder", default="micro")
    ap.add_argument("--img-size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train", action="store_true", help="time forward + backward instead of forward only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.images:
        return measure(args, args.images)
    with tempfile.TemporaryDirectory() as tmp:
        from abawkit.data.synthetic import SynthSpec, write_face_pool

        write_face_pool(Path(tmp), SynthSpec(size=112), 0, args.batch * (args.batches + 2))  # warm-up + timed batches
        measure(args, str(Path(tmp) / "pretrain_faces"))


def measure(args: argparse.Namespace, images: str) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    arch = encoder_arch(args.encoder, args.img_size)
    data = FaceCrops(image_folder(images), arch.img_size, train=True)
    loader = torch.utils.data.DataLoader(data, args.batch, shuffle=True, num_workers=args.workers, drop_last=True,
                                         pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)
    model = MAE(arch, decoder_dim=min(512, arch.dim), decoder_depth=2, decoder_heads=max(1, arch.heads // 2)).to(device)

    def step(x: torch.Tensor) -> None:
        with autocast(device, True), torch.set_grad_enabled(args.train):
            loss = model(x.to(device, non_blocking=True))[0]
        if args.train:
            loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn) -> float:
        it = iter(loader)
        fn(next(it))  # warm-up: workers started, kernels compiled
        t0 = time.perf_counter()
        for _ in range(args.batches):
            fn(next(it))
        return time.perf_counter() - t0

    n = args.batches * args.batch
    loader_s = timed(lambda b: None)
    fixed = next(iter(loader))[0]
    step(fixed)
    t0 = time.perf_counter()
    for _ in range(args.batches):
        step(fixed)
    model_s = time.perf_counter() - t0
    both_s = timed(lambda b: step(b[0]))
    print(f"device {device}, {args.encoder} @ {arch.img_size}px, batch {args.batch}, workers {args.workers}")
    print(f"loader alone {rate(n, loader_s)}\nmodel alone  {rate(n, model_s)}\nboth         {rate(n, both_s)}")
    bound = "loader" if loader_s > model_s else "model"
    print(f"both / slower of the two: {max(loader_s, model_s) / both_s:.2f} (1.00 = perfect overlap; {bound} bounds it)")


if __name__ == "__main__":
    main()
