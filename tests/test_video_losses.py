"""The video-level losses and (stand-in) metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from abawkit.labels import task
from abawkit.losses_video import ah_loss, emi_loss, pearson, video_loss
from abawkit.stages.video import ah_scores, emi_scores, scores, tune_threshold


def test_pearson_by_hand():
    # x = 1, 2, 3; y = 2, 4, 7: centred -1, 0, 1 and -7/3, -1/3, 8/3; cov 5, sums of squares 2 and 114/9
    x = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.tensor([[2.0], [4.0], [7.0]])
    assert pearson(x, y).item() == pytest.approx(5 / math.sqrt(2 * 114 / 9), abs=1e-6)
    assert pearson(torch.ones(3, 1), y).item() == 0.0  # a constant column: 0, not NaN


def test_ah_loss_weighted_cross_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    labels = torch.tensor([[0.0], [1.0], [-1.0]])  # the third video is unlabelled
    w = torch.tensor([1.0, 3.0])
    ce0, ce1 = math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1))
    assert ah_loss(logits, labels, w).item() == pytest.approx((1 * ce0 + 3 * ce1) / 4, abs=1e-6)
    assert video_loss("multiclass", logits, labels, w).item() == pytest.approx((ce0 + 3 * ce1) / 4, abs=1e-6)


def test_emi_loss_one_minus_pearson_plus_mse_by_hand():
    labels = torch.tensor([[0.1, 0.2], [0.5, 0.6], [0.9, 0.4], [-1, -1]])
    pred = torch.tensor([[0.1, 0.6], [0.5, 0.2], [0.9, 0.4], [0.7, 0.7]])  # col 0 exact (r 1); col 1 = 0.8 - y (r -1)
    mse = (0.4**2 + 0.4**2 + 0.0**2) / 6  # over the 3 labelled rows x 2 emotions
    assert emi_loss(pred, labels, mse_weight=0.5).item() == pytest.approx((0 + 2) / 2 + 0.5 * mse, abs=1e-5)
    assert emi_loss(pred[:1], labels[:1], mse_weight=0.5).item() == pytest.approx(0.5 * 0.4**2 / 2)  # one row: MSE only
    assert emi_loss(pred[3:], labels[3:]).item() == 0.0  # no labelled row
    raw = torch.zeros(3, 2, requires_grad=True)  # constant predictions: a finite loss and gradient
    loss = video_loss("intensity", raw, labels[:3])
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(raw.grad).all()


def test_ah_metrics_and_threshold_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    at_half = ah_scores(y, p, 0.5)  # predictions 0 1 0 1: each class F1 1/2
    assert at_half["score"] == pytest.approx(0.5) and at_half["per_class"] == [0.5, 0.5]
    assert at_half["ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)  # ranks 0.9 (hit), 0.6, 0.4 (hit): P 1 then 2/3
    # thresholds 0.25 and 0.75 both give F1 4/5 and 2/3 (mean 11/15); equally near 0.5: the lower one
    assert tune_threshold(y, p) == pytest.approx(0.25)
    assert ah_scores(y, p, 0.25)["score"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert tune_threshold(np.array([0, 1]), np.array([0.2, 0.3])) == pytest.approx(0.25)
    labels = np.array([[0], [1], [-1], [1]], np.float32)  # an unlabelled video is left out
    preds = np.array([[0.9, 0.1], [0.2, 0.8], [1.0, 0.0], [0.4, 0.6]])  # counted, the third would be a miss
    res = scores(task("ah"), labels, preds)
    assert res["score"] == 1.0 and res["ap"] == 1.0 and 0.1 <= res["threshold"] < 0.6


def test_emi_metric_mean_pearson():
    rng = np.random.default_rng(0)
    y = rng.random((10, 6))
    pred = y + rng.normal(0, 0.3, (10, 6))
    pred[:, 5] = 0.4  # a constant column: r = 0
    res = emi_scores(y, pred)
    ref = [np.corrcoef(y[:, k], pred[:, k])[0, 1] for k in range(5)] + [0.0]
    assert np.allclose(res["per_class"], ref) and res["score"] == pytest.approx(np.mean(ref))


def test_best_epoch_ties_go_to_the_lower_cross_entropy():
    """Macro-F1 at a tuned threshold saturates on a small validation set while probabilities still sit near 0.5:
    the record's score then prefers the confident epoch; the official metric stays in ``metric``."""
    from abawkit.stages.video import epoch_record

    labels = np.array([[0], [1], [1], [-1]], np.float32)
    early = np.array([[0.51, 0.49], [0.49, 0.51], [0.48, 0.52], [0.5, 0.5]])
    late = np.array([[0.9, 0.1], [0.1, 0.9], [0.2, 0.8], [0.5, 0.5]])
    a, b = epoch_record(task("ah"), labels, early), epoch_record(task("ah"), labels, late)
    assert a["metric"] == b["metric"] == 1.0 and b["score"] > a["score"]
    assert b["nll"] == pytest.approx(-(np.log(0.9) + np.log(0.9) + np.log(0.8)) / 3)
    worse = np.array([[0.05, 0.95], [0.1, 0.9], [0.2, 0.8], [0.5, 0.5]])  # no threshold separates: a miss costs more
    assert epoch_record(task("ah"), labels, worse)["score"] < a["score"]
    y = np.random.default_rng(0).random((4, 6))
    assert epoch_record(task("emi"), y, y)["score"] == pytest.approx(1.0)  # EMI: the mean Pearson as it is
