"""The track registry: every track is data (heads), and a masked label never reaches a loss or a metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abawkit.labels import TASKS, task
from abawkit.losses import activate, class_weights, task_loss
from abawkit.metrics import score


def mtl_batch(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MTL labels [n, 15] (valence, arousal, EXPR, 12 AUs) with −5 / −1 gaps, and raw outputs [n, 22]."""
    rng = np.random.default_rng(seed)
    va = rng.uniform(-1, 1, (n, 2))
    expr = rng.integers(0, 8, (n, 1)).astype(float)
    au = rng.integers(0, 2, (n, 12)).astype(float)
    va[rng.random((n, 2)) < 0.3] = -5
    expr[rng.random((n, 1)) < 0.3] = -1
    au[rng.random((n, 12)) < 0.3] = -1
    return np.concatenate([va, expr, au], axis=1), rng.normal(size=(n, 22))


def test_tracks_are_heads_and_the_mtl_layout_is_the_official_order():
    mtl = task("mtl")
    assert [h.name for h in mtl.heads] == ["va", "expr", "au"] and mtl.n_outputs == 22 and mtl.score == "sum"
    assert mtl.label_columns[:3] == ("mtl_valence", "mtl_arousal", "mtl_EXPR") and len(mtl.label_columns) == 15
    assert task("ce").n_outputs == 7 and task("ce").kind == "multiclass"
    for name in ("au", "expr", "va"):
        assert len(TASKS[name].heads) == 1


def test_mtl_loss_ignores_every_masked_label():
    """Changing the value a model outputs where a label is masked (−5 VA, −1 EXPR, −1 AU) changes
    nothing; changing it where the label is valid changes the loss."""
    labels, out = mtl_batch()
    y, x = torch.tensor(labels, dtype=torch.float32), torch.tensor(out, dtype=torch.float32, requires_grad=True)
    w = class_weights("mtl", labels)
    loss = task_loss("mtl", x, y, w)
    loss.backward()
    grad = x.grad.numpy()
    masked_au = labels[:, 3:] == -1  # AU outputs 10..21 against AU labels 3..14
    assert np.all(grad[:, 10:][masked_au] == 0) and np.any(grad[:, 10:][~masked_au] != 0)
    masked_expr = labels[:, 2] == -1  # a frame without an expression label: no gradient on its 8 logits
    assert np.all(grad[masked_expr, 2:10] == 0) and np.any(grad[~masked_expr, 2:10] != 0)
    masked_v = labels[:, 0] == -5
    assert np.all(grad[masked_v, 0] == 0) and np.any(grad[~masked_v, 0] != 0)


def test_mtl_metric_ignores_masked_labels_and_sums_the_heads():
    labels, out = mtl_batch(200, 1)
    probs = activate("mtl", torch.tensor(out)).numpy()
    s = score("mtl", labels, probs)
    assert s["score"] == pytest.approx(sum(s["heads"].values()))
    garbage = probs.copy()
    garbage[labels[:, 0] == -5, 0] = 123.0  # predictions on masked frames may be anything
    garbage[labels[:, 2] == -1, 2:10] = np.eye(8)[0]
    garbage[:, 10:][labels[:, 3:] == -1] = 1.0
    assert score("mtl", labels, garbage)["score"] == pytest.approx(s["score"])
    from sklearn.metrics import f1_score

    keep = labels[:, 2] >= 0
    expr = f1_score(labels[keep, 2], probs[keep, 2:10].argmax(1), labels=range(8), average="macro", zero_division=0)
    assert s["heads"]["expr"] == pytest.approx(expr)


def test_one_head_tracks_keep_their_losses():
    """AU/EXPR/VA through the registry: the same loss as each head alone (the demo's numbers rest on it)."""
    labels, out = mtl_batch(30, 2)
    x = torch.tensor(out, dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.float32)
    mtl = task_loss("mtl", x, y)
    parts = task_loss("va", x[:, :2], y[:, :2]) + task_loss("expr", x[:, 2:10], y[:, 2]) + task_loss("au", x[:, 10:], y[:, 3:])
    assert mtl.item() == pytest.approx(parts.item(), rel=1e-6)
