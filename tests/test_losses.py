"""The paper's losses: class weights, masking of unannotated labels, CCC loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from abawkit.losses import activate, ccc, class_weights, task_loss
from abawkit.metrics import ccc as ccc_np


def test_au_weights_inverse_to_positives_and_invalid_ignored():
    y = np.array([[1, 0], [0, 0], [0, 1], [0, -1], [1, -1]] + [[0, 1]] * 3)
    w = class_weights("au", np.pad(y, ((0, 0), (0, 10)), constant_values=0))
    assert w[0].item() == pytest.approx(6 / 2)  # 2 positives, 6 negatives
    assert w[1].item() == pytest.approx(2 / 4)  # 4 positives, 2 negatives, 2 invalid


def test_au_loss_masks_invalid_labels():
    logits = torch.randn(4, 12)
    labels = torch.randint(0, 2, (4, 12)).float()
    masked = labels.clone()
    masked[0] = -1
    full = F.binary_cross_entropy_with_logits(logits[1:], labels[1:])
    assert task_loss("au", logits, masked).item() == pytest.approx(full.item(), rel=1e-5)


def test_expr_weights_and_loss():
    y = np.array([0, 0, 0, 1, -1, -1])
    w = class_weights("expr", y)
    assert w[0] * 3 == pytest.approx(w[1].item() * 1) and w[2] == 0
    logits = torch.randn(6, 8)
    loss = task_loss("expr", logits, torch.tensor(y), w)
    ref = F.cross_entropy(logits[:4], torch.tensor(y[:4]), weight=w)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert task_loss("expr", logits, torch.full((6,), -1)).item() == 0.0


def test_va_loss_is_two_minus_ccc_and_masks_invalid():
    labels = torch.tensor([[0.1, 0.2], [0.5, -0.3], [-0.4, 0.9], [-5.0, -5.0]])
    out = torch.atanh(torch.tensor([[0.2, 0.1], [0.4, -0.2], [-0.3, 0.7], [0.9, 0.9]]))
    loss = task_loss("va", out, labels)
    pred = torch.tanh(out[:3])
    want = 2 - ccc_np(pred[:, 0], labels[:3, 0]) - ccc_np(pred[:, 1], labels[:3, 1])
    assert loss.item() == pytest.approx(want, rel=1e-4)
    assert ccc(labels[:3, 0], labels[:3, 0]).item() == pytest.approx(1.0)


def test_loss_accepts_clip_shapes_and_activate():
    out = torch.randn(2, 5, 12, requires_grad=True)
    task_loss("au", out, torch.randint(0, 2, (2, 5, 12))).backward()
    assert out.grad is not None
    assert torch.allclose(activate("expr", torch.randn(3, 8)).sum(-1), torch.ones(3))
