"""VGGish: the standard 128-d audio embedding network (Hershey et al., 2017), written here.

Front end (as in the original release): 16 kHz mono -> magnitude STFT with a 25 ms periodic Hann
window, 10 ms hop, 512-point FFT -> 64 HTK mel bands between 125 and 7500 Hz -> log(mel + 0.01).
Log-mel frames are cut into 0.96 s examples (96 frames x 64 bands). The network is the VGG-style
conv stack 64, 128, 256x2, 512x2 (3x3 convs, 2x2 max-pools after each group) followed by FC layers
4096, 4096, 128 with ReLU. Layer names follow the widely used PyTorch port (``features.N``,
``embeddings.N``), so its converted ``.pth`` state dicts load directly; the PCA/quantisation
post-processor is not applied (raw embeddings).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from abawkit.errors import AbawError

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
N_MELS = 64
FMIN, FMAX = 125.0, 7500.0
EXAMPLE_FRAMES = 96  # 0.96 s
LOG_OFFSET = 0.01
EMBED_DIM = 128


def _conv_stack() -> nn.Sequential:
    """VGG conv groups; indices match the reference port (features.0, .3, .6, .8, .11, .13)."""
    layers: list[nn.Module] = []
    in_ch = 1
    for group in ((64,), (128,), (256, 256), (512, 512)):
        for out_ch in group:
            layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=True)]
            in_ch = out_ch
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """[B, 1, 96, 64] log-mel examples -> [B, 128] embeddings."""

    def __init__(self) -> None:
        super().__init__()
        import torchaudio

        self.features = _conv_stack()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, EMBED_DIM), nn.ReLU(inplace=True),
        )
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=N_FFT, win_length=WINDOW, hop_length=HOP, f_min=FMIN, f_max=FMAX,
            n_mels=N_MELS, power=1.0, center=False, mel_scale="htk", norm=None,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # [B, 512, 6, 4]
        x = x.permute(0, 2, 3, 1).flatten(1)  # channels-last flatten, as the original TF graph
        return self.embeddings(x)  # [B, 128]

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """wave: [S] at 16 kHz -> [T, 64] log-mel frames (frame j starts at j * 10 ms)."""
        mel = self.melspec(wave.float())  # [64, T]
        return torch.log(mel + LOG_OFFSET).T

    def examples(self, wave: torch.Tensor, hop_frames: int = EXAMPLE_FRAMES) -> torch.Tensor:
        """wave: [S] -> [N, 1, 96, 64] examples every ``hop_frames`` log-mel frames (short audio is padded)."""
        min_len = WINDOW + HOP * (EXAMPLE_FRAMES - 1)
        if wave.numel() < min_len:
            wave = torch.nn.functional.pad(wave, (0, min_len - wave.numel()))
        frames = self.log_mel(wave)  # [T, 64]
        return frames.unfold(0, EXAMPLE_FRAMES, hop_frames).transpose(1, 2).unsqueeze(1)


def load_vggish(path: str | Path | None) -> VGGish:
    """Build VGGish and load a local state dict (``.pt``/``.pth``; ``{"model": sd}`` also accepted).

    There is no default: random VGGish weights give features that look real and mean nothing.
    """
    if path is None:
        raise AbawError("VGGish needs its weights: pass --checkpoint FILE (a VGGish .pth state dict, "
                        "e.g. the PyTorch port's vggish-10086976.pth)")
    from abawkit.models.checkpoints import load_file

    path = Path(path)
    if not path.is_file():
        raise AbawError(f"{path}: VGGish weights file not found")
    model = VGGish()
    state = load_file(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise AbawError(f"{path}: not a VGGish state dict (a {type(state).__name__})")
    state = {k: v for k, v in state.items() if not k.startswith(("pproc.", "_pca", "melspec."))}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise AbawError(f"{path}: not a VGGish state dict ({str(exc).splitlines()[-1].strip()})") from None
    missing = [k for k in missing if not k.startswith("melspec.")]
    if missing or unexpected:
        raise AbawError(f"{path}: not a VGGish state dict (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval()
