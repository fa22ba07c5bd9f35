"""Metrics against scikit-learn and hand-computed values, including the edge cases."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from abawkit.labels import AU_NAMES, EXPR_NAMES
from abawkit.metrics import au_scores, ccc, expr_scores, f1_counts, score, va_scores


def _ccc64(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    cov = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_au_f1_matches_sklearn_with_invalid_frames():
    rng = np.random.default_rng(0)
    labels = rng.integers(-1, 2, size=(500, 12))
    probs = rng.random((500, 12))
    got = au_scores(labels, probs)
    for c in range(12):
        keep = labels[:, c] >= 0
        want = f1_score(labels[keep, c], probs[keep, c] >= 0.5, zero_division=0)
        assert got[c] == pytest.approx(want, abs=1e-12)


def test_au_thresholds_per_au():
    labels = np.array([[1, 0], [1, 1], [0, 1]])
    probs = np.array([[0.3, 0.1], [0.6, 0.8], [0.2, 0.4]])
    # AU1 at 0.25: preds 1,1,0 -> F1 1; AU2 at 0.5: preds 0,1,0 vs 0,1,1 -> 2/3
    got = score("au", np.pad(labels, ((0, 0), (0, 10)), constant_values=-1),
                np.pad(probs, ((0, 0), (0, 10))), thresholds=np.r_[0.25, 0.5, [0.5] * 10])
    assert got["per_class"]["AU1"] == 1.0
    assert got["per_class"]["AU2"] == pytest.approx(2 / 3)
    assert set(got["per_class"]) == set(AU_NAMES)


def test_expr_macro_f1_matches_sklearn_including_absent_classes():
    rng = np.random.default_rng(1)
    labels = rng.integers(-1, 6, size=800)  # classes 6 and 7 never present
    probs = rng.random((800, 8))
    probs[:, 7] = 0  # class 7 never predicted
    got = score("expr", labels, probs)
    keep = labels >= 0
    want = f1_score(labels[keep], probs[keep].argmax(1), labels=range(8), average="macro", zero_division=0)
    assert got["score"] == pytest.approx(want, abs=1e-12)
    assert got["per_class"]["Other"] == 0.0
    assert list(got["per_class"]) == list(EXPR_NAMES)


def test_expr_accepts_class_ids():
    labels = np.array([0, 1, 1, 2])
    assert np.allclose(expr_scores(labels, np.array([0, 1, 2, 2]), 3), [1.0, 2 / 3, 2 / 3])


def test_ccc_matches_float64_reference_and_handles_constants():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=1000), rng.normal(size=1000) * 0.5 + 0.2
    assert ccc(x, y) == pytest.approx(_ccc64(x, y), abs=1e-12)
    assert ccc(x, x) == pytest.approx(1.0)
    assert ccc(np.zeros(10), np.zeros(10)) == 0.0  # undefined -> 0, not NaN
    assert ccc(x, np.full_like(x, 0.3)) == pytest.approx(0.0, abs=1e-12)
    assert ccc(np.array([]), np.array([])) == 0.0


def test_va_excludes_invalid_per_dimension():
    labels = np.array([[0.1, -5], [0.5, 0.2], [-5, 0.4], [0.3, 0.6]])
    preds = np.array([[0.1, 9.0], [0.5, 0.2], [9.0, 0.4], [0.3, 0.6]])
    got = va_scores(labels, preds)
    assert np.allclose(got, [1.0, 1.0])
    assert score("va", labels, preds)["score"] == pytest.approx(1.0)


def test_f1_counts_zero_division():
    assert np.array_equal(f1_counts(np.array([0, 1]), np.array([0, 1]), np.array([0, 3])), [0.0, 0.5])
