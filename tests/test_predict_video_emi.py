"""``abaw predict`` with the EMI video models: one row of 6 intensities per video from a tiny ``abaw demo
--recipe demo-emi`` workspace (two folds). The A/H side, the checks and the errors are in test_predict_video.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from identity_ws import abaw, invoke
from tiny_recipe import tiny_recipe
from videos import predicted

from abawkit.labels import EMI_NAMES

SMALL = {"synth.toml": [("videos = 48", "videos = 16")], "finetune.toml": [("epochs = 2", "epochs = 1")],
         "video.toml": [("epochs = 20", "epochs = 3")], "demo.toml": [("vision_ablation = true", "vision_ablation = false")]}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("emi-predict")
    recipe = tiny_recipe("demo-emi", root / "tiny", SMALL)
    out = abaw("demo", "--recipe", recipe, "-w", root / "w", cwd=root)
    assert out.returncode == 0, out.stdout
    return root / "w", recipe


def test_emi_row_is_the_folds_mean_and_near_the_models_own_test_values(demo):
    ws, recipe = demo
    own = [pd.read_parquet(ws / "video" / "emi" / f"fold{k}" / "pred_test.parquet").set_index("video") for k in (0, 1)]
    video = sorted(p for p in (ws / "release").rglob("*.mp4") if p.stem in own[0].index)[0]
    got = {}
    for fold in ("0", "1", "all"):
        invoke("predict", video, "-w", ws, "--recipe", recipe, "--transcripts", ws / "release" / "transcripts",
               "--fold", fold, "--force")
        df = pd.read_csv(predicted(ws, video) / "predictions.csv")
        assert list(df.columns) == ["video", *EMI_NAMES] and len(df) == 1
        got[fold] = df.iloc[0][list(EMI_NAMES)].to_numpy(np.float64)
    assert ((got["all"] >= 0) & (got["all"] <= 1)).all()
    assert np.abs(got["0"] - got["1"]).max() > 1e-3  # two folds, two models
    np.testing.assert_allclose(got["all"], (got["0"] + got["1"]) / 2, atol=2e-6)  # the submission's rule: the mean
    want = np.mean([o.loc[video.stem, list(EMI_NAMES)].to_numpy(np.float64) for o in own], axis=0)
    assert np.abs(got["all"] - want).mean() < 0.1, (got["all"], want)  # the detector's crops, not the release's
