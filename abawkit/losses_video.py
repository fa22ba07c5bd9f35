"""Training losses of the video-level tracks, one row per video, unlabelled videos masked out.

- A/H (BAH, multiclass): cross-entropy weighted ∝ 1 / class count (``losses.class_weights`` on the training
  videos' labels): BAH has fewer ambivalent videos, and its metric, macro-F1, weighs both classes equally.
- EMI (Hume-Vidmimic2, intensities in [0, 1]): the metric is the mean over the 6 emotions of Pearson's r over
  the videos, so the loss is 1 − r per emotion over the batch, averaged, plus ``mse_weight`` × the mean squared
  error: r ignores scale and offset, the small MSE term keeps the intensities in the labels' range.

Outputs are raw (logits; the EMI loss applies the sigmoid); labels as in the frame table (-1 = unlabelled).
Reads and writes nothing.
"""

from __future__ import annotations

import torch

from abawkit.losses import expr_loss

INVALID = -1.0  # the unlabelled value of both tracks' columns (labels.TASKS["ah" | "emi"])


def ah_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """logits [N, 2], labels [N] or [N, 1] in {0, 1, -1}: class-weighted cross-entropy (-1 ignored).

    The multiclass loss of the frame tracks (``losses.expr_loss``), here over videos."""
    return expr_loss(logits, labels.reshape(-1), weight)


def pearson(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson's r per column of x, y [N, C] -> [C]; a constant column gives 0, and a finite gradient (``eps``
    inside the root: a root at 0 has an infinite slope, which would turn the first steps' gradients into NaN)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    cov = (xc * yc).sum(0)
    return cov / (xc.pow(2).sum(0) * yc.pow(2).sum(0) + eps).sqrt()


def emi_loss(pred: torch.Tensor, labels: torch.Tensor, mse_weight: float = 0.1) -> torch.Tensor:
    """pred [N, 6] intensities in [0, 1], labels [N, 6] (a row with -1 is unlabelled):
    mean over emotions of (1 − r over the batch) + ``mse_weight`` × MSE. Under 2 labelled rows r is undefined:
    only the MSE term counts (0 with none)."""
    valid = (labels > INVALID).all(1)  # [N]
    if not valid.any():
        return pred.sum() * 0.0
    p, y = pred[valid].float(), labels[valid].float()
    mse = (p - y).pow(2).mean()
    if len(p) < 2:
        return mse_weight * mse
    return (1 - pearson(p, y)).mean() + mse_weight * mse


def video_loss(kind: str, outputs: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None,
               mse_weight: float = 0.1) -> torch.Tensor:
    """The loss of a head of ``kind`` (``multiclass``: A/H; ``intensity``: EMI) on raw ``outputs`` [N, C]."""
    if kind == "multiclass":
        return ah_loss(outputs, labels, weight)
    return emi_loss(torch.sigmoid(outputs.float()), labels, mse_weight)
