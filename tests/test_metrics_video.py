"""Video-level metrics against hand values, scikit-learn and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import auc, average_precision_score, f1_score

from abawkit import metrics_video as mv


def test_ah_macro_f1_by_hand():
    y = np.array([1, 1, 0, 0, 0, -1])
    p = np.array([1, 0, 0, 0, 1, 1])  # the -1 video is left out
    # class 1: tp 1, fp 1, fn 1 -> 0.5; class 0: tp 2, fp 1, fn 1 -> 2/3
    got = mv.ah_f1(y, p)
    assert got["per_class"] == pytest.approx({"no_ah": 2 / 3, "ah": 0.5})
    assert got["score"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert got["score"] == pytest.approx(f1_score(y[:5], p[:5], average="macro"))


def test_ah_f1_all_one_class_predicted():
    assert mv.ah_f1(np.array([0, 0, 1]), np.array([1, 1, 1]))["per_class"]["no_ah"] == 0.0


def test_average_precision_against_sklearn_and_hand():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.4, 0.1])
    # ranks: 1 (P=1), 0, 1 (P=2/3): AP = (1 + 2/3) / 2
    assert mv.ah_average_precision(y, s) == pytest.approx((1 + 2 / 3) / 2)
    rng = np.random.default_rng(1)
    y, s = rng.integers(0, 2, 200), rng.random(200)
    assert mv.ah_average_precision(y, s) == pytest.approx(average_precision_score(y, s))
    assert mv.ah_average_precision(np.zeros(4), s[:4]) == 0.0


def test_bah_average_precision_equals_a_plain_loop():
    rng = np.random.default_rng(2)
    y, s = rng.integers(0, 2, 300), rng.random(300)
    prec, rec = [], []
    for t in np.arange(0, 1, 0.001):
        pos = s >= t
        tp = np.sum(pos & (y == 1))
        prec.append(tp / pos.sum() if pos.sum() else 0.0)
        rec.append(tp / (y == 1).sum())
    assert mv.bah_average_precision(y, s) == pytest.approx(auc(np.array(rec), np.array(prec)), abs=1e-12)


def test_tune_threshold_finds_the_separating_cut_and_calibrate_moves_it_to_half():
    y = np.array([0, 0, 0, 1, 1])
    p1 = np.array([0.05, 0.1, 0.2, 0.3, 0.35])  # 0.5 calls every video negative
    t, f1 = mv.tune_threshold(y, p1)
    assert 0.2 < t < 0.3 and f1 == 1.0
    assert mv.ah_f1(y, (p1 > 0.5).astype(int))["score"] < 1.0
    q = mv.calibrate(p1, t)
    assert ((q > 0.5) == (p1 > t)).all()
    assert (np.diff(q[np.argsort(p1)]) > 0).all()  # order kept: AP unchanged
    assert mv.ah_average_precision(y, q) == mv.ah_average_precision(y, p1)


def test_tune_threshold_keeps_half_when_flat():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.2, 0.6, 0.95])  # 0.4 (a midpoint) and 0.5 both separate the classes
    assert mv.tune_threshold(y, p1) == (0.5, 1.0)


def test_emi_mean_pearson_against_scipy_and_constant_columns():
    rng = np.random.default_rng(3)
    y = rng.random((40, 6))
    p = y + rng.normal(0, 0.3, (40, 6))
    p[:, 5] = 0.5  # a constant prediction: r is 0, not NaN
    got = mv.emi_scores(y, p)
    want = [pearsonr(y[:, d], p[:, d])[0] for d in range(5)] + [0.0]
    assert list(got["per_class"].values()) == pytest.approx(want)
    assert got["score"] == pytest.approx(np.mean(want))
    assert list(got["per_class"]) == ["Admiration", "Amusement", "Determination", "Empathic Pain", "Excitement", "Joy"]
    assert mv.pearson(np.ones(5), np.arange(5)) == 0.0 and mv.pearson([1.0], [2.0]) == 0.0


def test_emi_leaves_out_unlabelled_videos():
    y = np.array([[0.1], [0.5], [-1.0], [0.9]])
    p = np.array([[0.2], [0.4], [5.0], [0.8]])
    assert mv.emi_scores(y, p)["score"] == pytest.approx(pearsonr([0.1, 0.5, 0.9], [0.2, 0.4, 0.8])[0])
