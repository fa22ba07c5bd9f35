"""``abaw pretrain``: MAE pre-training on face crops.

Reads a folder of images (``data.images`` / ``--images``) or, by default, every crop of the prep
workspace (``prep/frames.parquet``). Trains ``models.mae.MAE`` through ``abawkit.engine`` (AdamW,
warm-up + cosine, accumulation, bf16 on CUDA, DDP under torchrun, exact resume from ``last.pt``).
Writes ``<workdir>/pretrain/``: ``checkpoint.pt`` (abawkit format, kind ``mae``), ``preview.png``
(original / masked / reconstruction), ``log.jsonl`` (loss curve) and ``metrics.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abawkit import distributed
from abawkit.data.augment import BatchAugment, denormalize, to_model_input
from abawkit.data.faces import FaceCrops, collate_faces, image_folder, prep_rows
from abawkit.data.tables import load_prep
from abawkit.engine import TrainConfig, fit, seed_everything
from abawkit.errors import AbawError
from abawkit.io import atomic_path
from abawkit.models.checkpoints import save_checkpoint
from abawkit.models.mae import MAE, encoder_arch
from abawkit.workspace import identity as ident
from abawkit.workspace import layout
from abawkit.workspace.layout import PREP
from abawkit.workspace.stage import stage

STAGE = layout.PRETRAIN


@dataclass(frozen=True)
class MAEModelConfig:
    encoder: str = "micro"  # models.mae.ENCODERS: micro | tiny | small | base | large
    img_size: int = 0  # 0 = the encoder's default
    patch: int = 0  # 0 = the encoder's default
    decoder_dim: int = 512
    decoder_depth: int = 8
    decoder_heads: int = 16
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False


@dataclass(frozen=True)
class FaceDataConfig:
    images: str = ""  # folder of images; "" = the crops of <workdir>/prep
    max_images: int = 0  # 0 = all; else a seeded random subset
    min_scale: float = 0.8  # random resized crop keeps at least this fraction of the face
    jitter: float = 0.2  # colour jitter strength (0 = off)


@dataclass(frozen=True)
class PretrainConfig:
    seed: int = 0
    model: MAEModelConfig = field(default_factory=MAEModelConfig)
    data: FaceDataConfig = field(default_factory=FaceDataConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=800, lr=2.4e-3, warmup_epochs=40))
    preview: int = 8  # images in preview.png


def image_paths(workdir: Path, data: FaceDataConfig, seed: int) -> tuple[list[str], Path]:
    """(image paths, the input to fingerprint): a folder, or the prep crops."""
    import numpy as np

    if data.images:
        paths, source = [str(p) for p in image_folder(data.images)], Path(data.images)
    else:
        prep = load_prep(workdir)
        paths, source = prep_rows(prep.frames)["crop"].tolist(), prep.dir / "frames.parquet"
        if not paths:
            raise AbawError(f"{source}: no frame has a face crop")
    if data.max_images and len(paths) > data.max_images:
        pick = np.random.default_rng(seed).choice(len(paths), data.max_images, replace=False)
        paths = [paths[i] for i in sorted(pick)]
    return paths, source


def build_mae(cfg: MAEModelConfig):
    arch = encoder_arch(cfg.encoder, cfg.img_size or None, cfg.patch or None)
    return MAE(arch, cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads, cfg.mask_ratio, cfg.norm_pix_loss)


def mae_loss(model: Any, batch: Any) -> Any:
    """Engine loss: batch = (images [N, 3, S, S], unused labels)."""
    return model(batch[0])[0]


def save_preview(path: Path, model: Any, dataset: Any, n: int, seed: int) -> None:
    """PNG grid: originals, masked inputs, reconstructions (one column per image)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    n = min(n, len(dataset))
    device = next(model.parameters()).device
    imgs, params, _ = collate_faces([dataset[i] for i in range(n)])  # uint8 [n, 3, D, D], [n, 9]
    imgs, params = imgs.to(device), params.to(device)
    imgs = to_model_input(imgs, params, model.arch.img_size, train=False)
    model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        masked, recon = model.reconstruct(imgs)
    rows = [denormalize(x.float()).cpu().permute(0, 2, 3, 1).numpy() for x in (imgs, masked, recon)]
    fig, axes = plt.subplots(3, n, figsize=(1.2 * n, 3.8), squeeze=False)
    for r, (title, row) in enumerate(zip(("original", "masked", "reconstruction"), rows)):
        for c in range(n):
            axes[r, c].imshow(row[c])
            axes[r, c].axis("off")
        axes[r, 0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def run(workdir: str | Path, cfg: PretrainConfig, *, force: bool = False, resume: bool = True) -> dict:
    """Pre-train and write the stage folder; returns the metrics."""

    workdir = Path(workdir)
    info, _ = distributed.setup(cfg.train.device, cfg.train.dist_timeout_min)
    paths, source = image_paths(workdir, cfg.data, cfg.seed)
    images = {"images": ident.data(source)} if cfg.data.images else {"prep": ident.upstream(PREP)}
    with stage(workdir, STAGE, cfg, seed=cfg.seed, force=force, main_process=info.is_main, inputs=images) as st:
        last = st.dir / "last.pt"
        if not resume and info.is_main:
            last.unlink(missing_ok=True)
        seed_everything(cfg.seed)
        model = build_mae(cfg.model)
        data = FaceCrops(paths, model.arch.img_size, True, min_scale=cfg.data.min_scale, jitter=cfg.data.jitter)
        result = fit(model, mae_loss, data, cfg.train, seed=cfg.seed, checkpoint_path=last, run=st, collate_fn=collate_faces,
                     batch_transform=BatchAugment(model.arch.img_size, train=True))
        losses = [h["loss"] for h in result.history]
        st.metrics.update(images=len(paths), steps=result.steps, epochs=len(losses), final_loss=losses[-1],
                          first_loss=losses[0], loss_curve=losses, arch=model.arch.to_dict(),
                          effective_batch=result.effective_batch, lr=result.lr)
        if info.is_main:
            save_checkpoint(st.add_output("checkpoint.pt"), model.state_dict(), model.arch, "mae",
                            mask_ratio=cfg.model.mask_ratio, norm_pix_loss=cfg.model.norm_pix_loss)
            preview = FaceCrops(paths[: cfg.preview], model.arch.img_size, False)
            save_preview(st.add_output("preview.png"), model, preview, cfg.preview, cfg.seed)
            for p in st.dir.glob("last.pt*"):
                p.unlink()
    return st.metrics
