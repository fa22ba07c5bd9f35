"""The paper's per-head training losses, with unannotated frames masked out; a track's loss is the
sum of its heads' losses (MTL: VA + EXPR + AU, each masked on its own).

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

from abawkit.labels import Head, TaskSpec, task

Weights = torch.Tensor | tuple | None  # one head's weights, or one entry per head


def head_weights(head: Head, labels: np.ndarray | torch.Tensor) -> torch.Tensor | None:
    """One head's weights from its training label columns [N, L] (invalid values ignored); None for
    regression and intensity heads.

    Multilabel (labels [N, C] in {0,1,-1}): per-name positive weight = negatives / positives (so
    positives and negatives weigh equally), i.e. ∝ 1/positives. Multiclass (labels [N, 1] or [N] of
    class ids, -1 = none): weight of class c = N_valid / (C · count_c), normalised to mean 1 over the
    classes present.
    """
    y = torch.tensor(np.asarray(labels, dtype=np.float32))
    if head.kind == "multilabel":
        valid = y != head.invalid  # [N, C]
        pos = ((y == 1) & valid).sum(0).float()
        neg = ((y == 0) & valid).sum(0).float()
        return (neg.clamp(min=1) / pos.clamp(min=1)).clamp(max=100.0)  # [C]
    if head.kind == "multiclass":
        y = y.reshape(-1)
        y = y[y != head.invalid].long()
        counts = torch.bincount(y, minlength=head.n_outputs).float()  # [C]
        w = torch.where(counts > 0, counts.sum() / (head.n_outputs * counts.clamp(min=1)), torch.zeros_like(counts))
        return w / w[counts > 0].mean() if (counts > 0).any() else torch.ones(head.n_outputs)
    return None


def class_weights(task_name: TaskSpec | str, labels: np.ndarray | torch.Tensor) -> Weights:
    """Each head's weights from the track's training labels [N, L] (``spec.label_columns``); a
    one-head track gets its head's weights alone (a multiclass one also takes labels [N])."""
    spec = task(task_name)
    if len(spec.heads) == 1:
        return head_weights(spec.head, labels)
    y = np.asarray(labels)
    return tuple(head_weights(h, y[:, cols]) for h, _, cols in spec.slices())


def ccc(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Concordance correlation coefficient of two 1-D tensors (population statistics)."""
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(unbiased=False), y.var(unbiased=False)
    cov = ((x - mx) * (y - my)).mean()
    return 2 * cov / (vx + vy + (mx - my) ** 2 + eps)


def au_loss(logits: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor | None, invalid: float = -1) -> torch.Tensor:
    """logits, labels: [N, C]; labels equal to ``invalid`` are ignored."""
    valid = labels != invalid
    target = labels.clamp(min=0).to(logits.dtype)
    pw = pos_weight.to(logits.device, logits.dtype) if pos_weight is not None else None
    per = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw, reduction="none")  # [N, C]
    return (per * valid).sum() / valid.sum().clamp(min=1)


def expr_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """logits: [N, C]; labels: [N] ints, -1 ignored."""
    labels = labels.reshape(-1).long()
    if not (labels >= 0).any():
        return logits.sum() * 0.0
    w = weight.to(logits.device, logits.dtype) if weight is not None else None
    return F.cross_entropy(logits, labels, weight=w, ignore_index=-1)


def va_loss(outputs: torch.Tensor, labels: torch.Tensor, invalid: float = -5, squash=torch.tanh) -> torch.Tensor:
    """Σ_d (1 − CCC_d). outputs: [N, D] raw (``squash`` applied here); labels: [N, D], ``invalid``
    marks a missing value (a dimension with fewer than 2 values adds nothing)."""
    pred = squash(outputs.float())
    total = outputs.sum() * 0.0
    for k in range(outputs.shape[1]):
        valid = labels[:, k] > invalid + 1 if invalid < -1 else labels[:, k] != invalid
        if valid.sum() >= 2:
            total = total + (1 - ccc(pred[valid, k], labels[valid, k].float()))
    return total


def head_loss(head: Head, outputs: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The paper's loss for one head's outputs [N, C] and label columns [N, L]."""
    if head.kind == "multilabel":
        return au_loss(outputs, labels, weights, head.invalid)
    if head.kind == "multiclass":
        return expr_loss(outputs, labels.reshape(-1), weights)
    return va_loss(outputs, labels, head.invalid, torch.tanh if head.kind == "regression" else torch.sigmoid)


def task_loss(task_name: TaskSpec | str, outputs: torch.Tensor, labels: torch.Tensor, class_weights: Weights = None
              ) -> torch.Tensor:
    """The track's loss: the sum of its heads' losses, each masked where its labels are invalid.

    ``outputs`` [N, C] raw, ``labels`` [N, L] in the frame table's encoding (a one-head multiclass
    track also takes [N]); extra leading dimensions (e.g. TMF clips [B, K, C]) are flattened to frames.
    """
    spec = task(task_name)
    outputs = outputs.reshape(-1, spec.n_outputs)
    if len(spec.heads) == 1:
        head = spec.head
        return head_loss(head, outputs, labels.reshape(-1, len(head.columns)), class_weights)
    labels = labels.reshape(-1, len(spec.label_columns))
    weights = class_weights if isinstance(class_weights, tuple) else (None,) * len(spec.heads)
    return sum(head_loss(h, outputs[:, out], labels[:, cols], w)
               for (h, out, cols), w in zip(spec.slices(), weights))


def activate(task_name: TaskSpec | str, outputs: torch.Tensor) -> torch.Tensor:
    """Raw outputs [..., C] -> prediction values, per head: multilabel sigmoid, multiclass softmax,
    regression tanh, intensity sigmoid."""
    spec = task(task_name)
    parts = []
    for head, out, _ in spec.slices():
        x = outputs[..., out]
        if head.kind == "multiclass":
            parts.append(torch.softmax(x, dim=-1))
        elif head.kind == "regression":
            parts.append(torch.tanh(x))
        else:
            parts.append(torch.sigmoid(x))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
