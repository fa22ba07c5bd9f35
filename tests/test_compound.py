"""Compound expressions from basic ones (abawkit/compound.py): the zero-shot rule on hand values, and
synthetic compound faces (CutMix / Mixup) that are deterministic per seed."""

from __future__ import annotations

import numpy as np
import pytest

from abawkit import compound as cp
from abawkit.errors import AbawError
from abawkit.labels import CE_NAMES, EXPR_NAMES


def _probs(**named):
    row = np.zeros(len(EXPR_NAMES))
    for k, v in named.items():
        row[EXPR_NAMES.index(k)] = v
    return row


def test_pairs_follow_the_compound_names():
    stem = {"Fearfully": "Fear", "Happily": "Happiness", "Sadly": "Sadness", "Disgustedly": "Disgust",
            "Angrily": "Anger", "Surprised": "Surprise", "Fearful": "Fear", "Angry": "Anger"}
    for name, pair in cp.PAIRS.items():
        assert pair == tuple(stem[w] for w in name.split("_"))
    assert list(cp.PAIRS) == list(CE_NAMES)
    assert cp.PAIR_IDS[CE_NAMES.index("Sadly_Angry")].tolist() == [EXPR_NAMES.index("Sadness"), EXPR_NAMES.index("Anger")]


def test_geometric_rule_on_hand_values():
    p = np.stack([_probs(Fear=0.3, Surprise=0.5, Sadness=0.2), _probs(Surprise=0.9, Happiness=0.1)])
    got = cp.zero_shot(p)
    fs, ss, sf = np.sqrt(0.15), np.sqrt(0.10), np.sqrt(0.06)  # Fear*Surprise, Sadness*Surprise, Sadness*Fear
    want0 = np.zeros(7)
    want0[[0, 2, 5]] = np.array([fs, ss, sf]) / (fs + ss + sf)  # 0.4084, 0.3334, 0.2582
    np.testing.assert_allclose(got[0], want0, atol=1e-12)
    np.testing.assert_allclose(got[0][[0, 2, 5]], [0.4084, 0.3334, 0.2582], atol=1e-4)
    # surprise alone does not make a compound: only Happily_Surprised has both of its parts
    np.testing.assert_allclose(got[1], np.eye(7)[CE_NAMES.index("Happily_Surprised")], atol=1e-12)


def test_sum_rule_on_hand_values_and_an_all_zero_row():
    p = np.stack([_probs(Surprise=0.9, Happiness=0.1), _probs(Neutral=1.0)])
    got = cp.zero_shot(p, "sum")
    want = np.array([0.9, 1.0, 0.9, 0.9, 0.9, 0.0, 0.0]) / 4.6
    np.testing.assert_allclose(got[0], want, atol=1e-12)
    np.testing.assert_allclose(got[1], np.full(7, 1 / 7))  # Neutral takes no part: uniform, never NaN
    np.testing.assert_allclose(cp.zero_shot(p[1:])[0], np.full(7, 1 / 7))


def test_zero_shot_refuses_bad_input():
    with pytest.raises(AbawError, match=r"\[N, 8\]"):
        cp.zero_shot(np.zeros((2, 7)))
    with pytest.raises(AbawError, match="geometric, sum"):
        cp.zero_shot(np.zeros((2, 8)), "max")


def _faces(n=40, size=8):
    rng = np.random.default_rng(0)
    expr = np.arange(n) % 8  # every basic class present
    faces = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    return faces, expr


def test_cutmix_takes_the_upper_face_from_one_and_the_lower_from_the_other():
    a, b = np.full((10, 6, 3), 10, np.uint8), np.full((10, 6, 3), 200, np.uint8)
    out = cp.mix_pair(a, b, "cutmix", upper=0, cut=0.5)
    assert (out[:5] == 10).all() and (out[5:] == 200).all()
    out = cp.mix_pair(a, b, "cutmix", upper=1, cut=0.6)
    assert (out[:6] == 200).all() and (out[6:] == 10).all()
    np.testing.assert_array_equal(cp.mix_pair(a, b, "mixup", lam=0.2), np.full((10, 6, 3), 162, np.uint8))


def test_mix_compounds_pairs_the_right_classes_and_is_deterministic_per_seed():
    faces, expr = _faces()
    imgs, labels, plan = cp.mix_compounds(faces, expr, per_class=5, seed=3, mode="both")
    assert imgs.shape == (35, 8, 8, 3) and imgs.dtype == np.uint8
    assert np.bincount(labels, minlength=7).tolist() == [5] * 7
    np.testing.assert_array_equal(expr[plan.pairs], cp.PAIR_IDS[labels])  # each face of the right class
    assert set(plan.modes) == {"cutmix", "mixup"}
    again, labels2, _ = cp.mix_compounds(faces, expr, per_class=5, seed=3, mode="both")
    np.testing.assert_array_equal(imgs, again)
    np.testing.assert_array_equal(labels, labels2)
    other, _, _ = cp.mix_compounds(faces, expr, per_class=5, seed=4, mode="both")
    assert not np.array_equal(imgs, other)


def test_mix_skips_and_counts_compounds_without_faces_of_a_class():
    faces, expr = _faces()
    expr = np.where(expr == EXPR_NAMES.index("Anger"), -1, expr)  # no angry face
    _, labels, plan = cp.mix_compounds(faces, expr, per_class=2, seed=0)
    assert plan.skipped == {"Angrily_Surprised": 2, "Sadly_Angry": 2}
    assert len(labels) == 10
    with pytest.raises(AbawError, match="cutmix, mixup, both"):
        cp.plan_mix(expr, 2, 0, "blend")
