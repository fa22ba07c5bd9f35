"""The paper's per-task training losses, with unannotated frames masked out.

- AU: binary cross-entropy per AU, positive terms weighted ∝ 1 / (positive count of that AU).
- EXPR: cross-entropy weighted ∝ 1 / (class count).
- VA: (1 − CCC_valence) + (1 − CCC_arousal), computed over the batch.

Model outputs are raw (logits for AU/EXPR, pre-tanh values for VA); labels are in the frame
table's encoding (``labels.TaskSpec.invalid`` marks an unannotated value). Used by fine-tuning
and TMF training: ``class_weights`` once on the training labels, ``task_loss`` per batch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from abawkit.labels import TaskSpec, task


def class_weights(task_name: TaskSpec | str, labels: np.ndarray | torch.Tensor) -> torch.Tensor | None:
    """Weights from the training labels (invalid values ignored); None for VA.

    AU (labels [N, 12] in {0,1,-1}): per-AU positive weight = negatives / positives (so positives
    and negatives weigh equally), i.e. ∝ 1/positives. EXPR (labels [N] in 0..7 or -1): weight of
    class c = N_valid / (C · count_c), normalised to mean 1 over present classes.
    """
    spec = task(task_name)
    y = torch.tensor(np.asarray(labels, dtype=np.float32))
    if spec.kind == "multilabel":
        valid = y != spec.invalid  # [N, C]
        pos = ((y == 1) & valid).sum(0).float()
        neg = ((y == 0) & valid).sum(0).float()
        return (neg.clamp(min=1) / pos.clamp(min=1)).clamp(max=100.0)  # [C]
    if spec.kind == "multiclass":
        y = y.reshape(-1)
        y = y[y != spec.invalid].long()
        counts = torch.bincount(y, minlength=spec.n_outputs).float()  # [C]
        w = torch.where(counts > 0, counts.sum() / (spec.n_outputs * counts.clamp(min=1)), torch.zeros_like(counts))
        return w / w[counts > 0].mean() if (counts > 0).any() else torch.ones(spec.n_outputs)
    return None


def ccc(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Concordance correlation coefficient of two 1-D tensors (population statistics)."""
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(unbiased=False), y.var(unbiased=False)
    cov = ((x - mx) * (y - my)).mean()
    return 2 * cov / (vx + vy + (mx - my) ** 2 + eps)


def au_loss(logits: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor | None) -> torch.Tensor:
    """logits, labels: [N, 12]; labels -1 are ignored."""
    valid = labels != task("au").invalid
    target = labels.clamp(min=0).to(logits.dtype)
    pw = pos_weight.to(logits.device, logits.dtype) if pos_weight is not None else None
    per = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw, reduction="none")  # [N, 12]
    return (per * valid).sum() / valid.sum().clamp(min=1)


def expr_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """logits: [N, 8]; labels: [N] ints, -1 ignored."""
    labels = labels.reshape(-1).long()
    if not (labels >= 0).any():
        return logits.sum() * 0.0
    w = weight.to(logits.device, logits.dtype) if weight is not None else None
    return F.cross_entropy(logits, labels, weight=w, ignore_index=-1)


def va_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """outputs: [N, 2] raw (tanh applied here); labels: [N, 2], -5 marks invalid rows."""
    pred = torch.tanh(outputs.float())
    total = outputs.sum() * 0.0
    for k in range(2):
        valid = labels[:, k] > task("va").invalid + 1
        if valid.sum() >= 2:
            total = total + (1 - ccc(pred[valid, k], labels[valid, k].float()))
    return total


def task_loss(
    task_name: TaskSpec | str, outputs: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """The paper's loss for ``task_name``; ``outputs`` [N, C] raw, ``labels`` in the table's encoding.

    Extra leading dimensions (e.g. TMF clips [B, K, C]) are flattened to frames.
    """
    spec = task(task_name)
    outputs = outputs.reshape(-1, spec.n_outputs)
    if spec.kind == "multilabel":
        return au_loss(outputs, labels.reshape(-1, spec.n_outputs), class_weights)
    if spec.kind == "multiclass":
        return expr_loss(outputs, labels.reshape(-1), class_weights)
    return va_loss(outputs, labels.reshape(-1, spec.n_outputs))


def activate(task_name: TaskSpec | str, outputs: torch.Tensor) -> torch.Tensor:
    """Raw outputs -> prediction values: AU sigmoid, EXPR softmax, VA tanh."""
    kind = task(task_name).kind
    if kind == "multilabel":
        return torch.sigmoid(outputs)
    if kind == "multiclass":
        return torch.softmax(outputs, dim=-1)
    return torch.tanh(outputs)
