"""Masked autoencoder (MAE) on timm ViT blocks: the encoder, random masking, decoder and loss.

Parameter names follow the official MAE code (``cls_token``, ``pos_embed``, ``patch_embed.proj``,
``blocks.N``, ``norm``, ``decoder_*``, ``mask_token``) so its checkpoints load without renaming;
``ViTEncoder`` alone matches a timm ``VisionTransformer`` minus its head. Encoder sizes are looked
up by name (``ENCODERS``); ``tiny``/``small``/``base`` are the 224/16 ViTs, ``micro`` is a CPU demo.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from timm.models.vision_transformer import Block, PatchEmbed
from torch import nn

from abawkit.errors import AbawError


@dataclass(frozen=True)
class EncoderArch:
    """A ViT encoder's shape; saved in checkpoints as ``arch``."""

    name: str
    img_size: int
    patch: int
    dim: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0

    @property
    def grid(self) -> int:
        return self.img_size // self.patch

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


ENCODERS: dict[str, EncoderArch] = {
    "micro": EncoderArch("micro", 32, 8, 96, 4, 3),
    "tiny": EncoderArch("tiny", 224, 16, 192, 12, 3),
    "small": EncoderArch("small", 224, 16, 384, 12, 6),
    "base": EncoderArch("base", 224, 16, 768, 12, 12),
    "large": EncoderArch("large", 224, 16, 1024, 24, 16),
}


def encoder_arch(name: str, img_size: int | None = None, patch: int | None = None) -> EncoderArch:
    """Look a size up by name; ``img_size``/``patch`` override the default resolution."""
    if name not in ENCODERS:
        raise AbawError(f"unknown encoder {name!r}; expected one of {', '.join(ENCODERS)}")
    arch = ENCODERS[name]
    arch = dataclasses.replace(arch, img_size=img_size or arch.img_size, patch=patch or arch.patch)
    if arch.img_size % arch.patch:
        raise AbawError(f"img_size {arch.img_size} is not a multiple of patch {arch.patch}")
    return arch


def arch_from_dict(d: dict) -> EncoderArch:
    fields = {f.name for f in dataclasses.fields(EncoderArch)}
    return EncoderArch(**{k: v for k, v in d.items() if k in fields})


def sincos_pos_embed(dim: int, grid: int, cls_token: bool = True) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding: [1, (1+)grid*grid, dim] (MAE's initialisation)."""
    def one_axis(d: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)  # [M, d/2]
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    gh, gw = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="xy")
    emb = np.concatenate([one_axis(dim // 2, gw), one_axis(dim // 2, gh)], axis=1)  # [G*G, dim]
    if cls_token:
        emb = np.concatenate([np.zeros([1, dim]), emb], axis=0)
    return torch.from_numpy(emb).float().unsqueeze(0)


class ViTEncoder(nn.Module):
    """ViT encoder (timm ``PatchEmbed`` + ``Block``); ``forward`` -> normalised tokens [N, 1+L, D]."""

    def __init__(self, arch: EncoderArch, drop_path: float = 0.0, learn_pos: bool = True) -> None:
        super().__init__()
        self.arch = arch
        self.patch_embed = PatchEmbed(arch.img_size, arch.patch, 3, arch.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, arch.dim))
        self.pos_embed = nn.Parameter(sincos_pos_embed(arch.dim, arch.grid), requires_grad=learn_pos)
        dpr = torch.linspace(0, drop_path, arch.depth).tolist()
        self.blocks = nn.ModuleList(
            Block(arch.dim, arch.heads, arch.mlp_ratio, qkv_bias=True, drop_path=dpr[i]) for i in range(arch.depth)
        )
        self.norm = nn.LayerNorm(arch.dim, eps=1e-6)
        nn.init.normal_(self.cls_token, std=0.02)
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        self.blocks.apply(_init_weights)

    def embed(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs: [N, 3, H, W] -> patch tokens with position: [N, L, D] (no cls)."""
        return self.patch_embed(imgs) + self.pos_embed[:, 1:, :]

    def run_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """Prepend cls, run the blocks, normalise. x: [N, L', D] -> [N, 1+L', D]."""
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        return self.run_blocks(self.embed(imgs))


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def random_masking(x: torch.Tensor, mask_ratio: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep a random subset of tokens per sample.

    x: [N, L, D] -> (kept [N, L_keep, D], mask [N, L] with 1 = masked, ids_restore [N, L]).
    L_keep = int(L * (1 - mask_ratio)); exactly L - L_keep tokens per sample are masked.
    """
    n, length, d = x.shape
    keep = int(length * (1 - mask_ratio))
    noise = torch.rand(n, length, device=x.device)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small noise is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :keep]
    kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
    mask = torch.ones(n, length, device=x.device)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore)  # back to the original patch order
    return kept, mask, ids_restore


class MAE(ViTEncoder):
    """ViT encoder + light ViT decoder that reconstructs the pixels of masked patches."""

    def __init__(
        self, arch: EncoderArch, decoder_dim: int = 512, decoder_depth: int = 8, decoder_heads: int = 16,
        mask_ratio: float = 0.75, norm_pix_loss: bool = False,
    ) -> None:
        super().__init__(arch, learn_pos=False)
        self.mask_ratio, self.norm_pix_loss = mask_ratio, norm_pix_loss
        self.decoder_embed = nn.Linear(arch.dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos_embed = nn.Parameter(sincos_pos_embed(decoder_dim, arch.grid), requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            Block(decoder_dim, decoder_heads, arch.mlp_ratio, qkv_bias=True) for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, arch.patch**2 * 3)
        nn.init.normal_(self.mask_token, std=0.02)
        for mod in (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred):
            mod.apply(_init_weights)

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs: [N, 3, H, W] -> [N, L, p*p*3]."""
        p, g = self.arch.patch, self.arch.grid
        x = imgs.reshape(imgs.shape[0], 3, g, p, g, p)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(imgs.shape[0], g * g, p * p * 3)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, L, p*p*3] -> [N, 3, H, W]."""
        p, g = self.arch.patch, self.arch.grid
        x = x.reshape(x.shape[0], g, g, p, p, 3)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], 3, g * p, g * p)

    def forward_encoder(self, imgs: torch.Tensor, mask_ratio: float) -> tuple[torch.Tensor, ...]:
        """imgs -> (latent [N, 1+L_keep, D], mask [N, L], ids_restore [N, L])."""
        kept, mask, ids_restore = random_masking(self.embed(imgs), mask_ratio)
        return self.run_blocks(kept), mask, ids_restore

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent [N, 1+L_keep, D] -> pixel predictions [N, L, p*p*3] for every patch."""
        x = self.decoder_embed(latent)
        n, length = ids_restore.shape
        masks = self.mask_token.expand(n, length + 1 - x.shape[1], -1)
        patches = torch.cat([x[:, 1:, :], masks], dim=1)  # [N, L, Dd] in shuffled order
        patches = torch.gather(patches, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))
        x = torch.cat([x[:, :1, :], patches], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]

    def loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error per patch, averaged over masked patches only."""
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        per_patch = ((pred.float() - target) ** 2).mean(-1)  # [N, L]
        return (per_patch * mask).sum() / mask.sum()

    def forward(self, imgs: torch.Tensor, mask_ratio: float | None = None) -> tuple[torch.Tensor, ...]:
        """imgs [N, 3, H, W] -> (loss, pred [N, L, p*p*3], mask [N, L])."""
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        latent, mask, ids_restore = self.forward_encoder(imgs, ratio)
        pred = self.forward_decoder(latent, ids_restore)
        return self.loss(imgs, pred, mask), pred, mask

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The encoder's weights only (what fine-tuning keeps)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(("decoder_", "mask_token"))}

    @torch.no_grad()
    def reconstruct(self, imgs: torch.Tensor, mask_ratio: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """For previews: (masked input, reconstruction with visible patches pasted), both [N, 3, H, W]."""
        _, pred, mask = self.forward(imgs, mask_ratio)
        target = self.patchify(imgs)
        if self.norm_pix_loss:  # predictions are per-patch normalised: undo with the true statistics
            pred = pred * (target.var(-1, keepdim=True) + 1e-6) ** 0.5 + target.mean(-1, keepdim=True)
        m = mask.unsqueeze(-1)  # [N, L, 1], 1 = masked
        masked = self.unpatchify(target * (1 - m))
        recon = self.unpatchify(target * (1 - m) + pred.to(target.dtype) * m)
        return masked, recon
