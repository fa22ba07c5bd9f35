"""Fold ensembling: weighted means, and refusal of mismatched files."""

import numpy as np
import pytest

from abawkit.ensemble import average
from abawkit.errors import AbawError
from abawkit.predictions import make_predictions


def _pred(values, task_name="va", frames=(1, 2, 3), fold=1):
    return make_predictions(["v"] * len(frames), list(frames), np.asarray(values, np.float32), task_name, "test", fold, "m")


def test_equal_and_weighted_average():
    a = _pred([[0.0, 1.0], [0.2, 0.2], [1.0, -1.0]])
    b = _pred([[1.0, 0.0], [0.4, 0.4], [0.0, 0.0]], fold=2)
    assert np.allclose(average([a, b], ["a", "b"]).values(), [[0.5, 0.5], [0.3, 0.3], [0.5, -0.5]])
    got = average([a, b], ["a", "b"], weights=[0.6, 0.2])  # normalised to 0.75 / 0.25
    assert np.allclose(got.values()[0], [0.25, 0.75])
    assert got.fold == "ensemble" and got.split == "test" and got.task.name == "va"


def test_expr_probabilities_stay_normalised():
    rng = np.random.default_rng(0)
    ps = [_pred(rng.dirichlet(np.ones(8), 3), "expr", fold=i) for i in range(3)]
    assert np.allclose(average(ps, ["a", "b", "c"], [0.5, 0.4, 0.45]).values().sum(1), 1, atol=1e-6)


def test_refuses_different_frames_naming_the_difference():
    a = _pred(np.zeros((3, 2)))
    b = _pred(np.zeros((3, 2)), frames=(1, 2, 4))
    with pytest.raises(AbawError, match=r"b and a cover different frames.*v frame 3"):
        average([a, b], ["a", "b"])


def test_refuses_mixed_tasks_and_bad_weights():
    with pytest.raises(AbawError, match="holds expr predictions"):
        average([_pred(np.zeros((3, 2))), _pred(np.zeros((3, 8)), "expr")], ["a", "b"])
    a = _pred(np.zeros((3, 2)))
    with pytest.raises(AbawError, match="2 weights for 1"):
        average([a], ["a"], [1, 2])
    with pytest.raises(AbawError, match="positive sum"):
        average([a, a], ["a", "b"], [0, 0])
    with pytest.raises(AbawError, match="no prediction files"):
        average([], [])


def test_val_weights_clip_negative_scores(monkeypatch, tmp_path):
    import abawkit.stages.ensemble as ev
    from abawkit.stages.ensemble import val_weights

    scores = iter([-0.2, 0.4])
    monkeypatch.setattr(ev, "evaluate_predictions", lambda *a, **k: {"score": next(scores)})
    assert val_weights(tmp_path, [tmp_path / "a", tmp_path / "b"], "va") == [0.0, 0.4]
    scores = iter([-0.2, -0.1])
    assert val_weights(tmp_path, [tmp_path / "a", tmp_path / "b"], "va") == [1.0, 1.0]
