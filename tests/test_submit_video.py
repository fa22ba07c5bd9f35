"""``abaw submit --track ah|emi``: the trained folds' per-video predictions -> the organisers' file in the list's
order, validated. A/H: each fold calibrated so its tuned threshold maps to 0.5, averaged, pred = argmax of the
written p0, p1; EMI: the folds averaged. And the demo's test score equals one recomputed from the file with
scikit-learn / SciPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import f1_score
from typer.testing import CliRunner

from abawkit import formats
from abawkit.cli import app
from abawkit.errors import AbawError
from abawkit.formats.ah import location
from abawkit.io import write_json
from abawkit.labels import EMI_NAMES, task
from abawkit.metrics_video import calibrate
from abawkit.run.demo_video import recompute
from abawkit.stages.submit import SubmitConfig, run

runner = CliRunner()
AH = [f"9000{p}_Question_{q}_2026-01-0{p}_10-0{q}-00_Video" for p in (1, 2) for q in (1, 2, 3)]
EMI = ["00012", "00007", "00031", "00004"]


def fold(workdir: Path, track: str, k: int, table: pd.DataFrame, threshold: float | None = None) -> Path:
    d = workdir / "video" / track / f"fold{k}"
    d.mkdir(parents=True)
    table.to_parquet(d / "pred_test.parquet")
    write_json(d / "manifest.json", {"metrics": {} if threshold is None else {"val_threshold": threshold}})
    return d / "pred_test.parquet"


def ah_table(p1: np.ndarray, videos=AH) -> pd.DataFrame:
    return pd.DataFrame({"video": videos, "no_ah": 1 - p1, "ah": p1, "pred": (p1 > 0.5).astype(np.int8)})


def test_ah_folds_calibrated_averaged_in_the_lists_order(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, (2, len(AH)))
    p[0, 0], p[1, 0] = 0.3, 0.35  # both below 0.5, both above their fold's tuned threshold: A/H
    fold(tmp_path, "ah", 0, ah_table(p[0]), 0.2)
    fold(tmp_path, "ah", 1, ah_table(p[1])[::-1], 0.25)  # another row order
    listed = AH[::-1]
    template = tmp_path / "trial-0.txt"
    template.write_text("".join(f"{location(v)},0\n" for v in listed))
    path = run(tmp_path, SubmitConfig(name="t", zip=False), "ah", template=template, out=tmp_path / "subs")
    spec = task("ah")
    assert not formats.get(spec).validate(path, spec, formats.get(spec).read_list(template))
    got = formats.get(spec).read(path, spec)
    assert list(got["video"]) == listed
    want = (calibrate(p[0], 0.2) + calibrate(p[1], 0.25)) / 2  # in AH order
    want = pd.Series(want, index=AH).loc[listed].to_numpy()
    np.testing.assert_allclose(got["p1"], want, atol=1.5e-4)
    np.testing.assert_array_equal(got["pred"], (want > 0.5).astype(int))
    assert got.set_index("video").loc[AH[0], "pred"] == 1  # raw 0.3 / 0.35, yet over the tuned thresholds
    np.testing.assert_allclose(got["p0"] + got["p1"], 1.0, atol=1e-12)
    result = runner.invoke(app, ["validate", str(path), "--track", "ah", "--template", str(template)])
    assert result.exit_code == 0, result.output


def test_emi_folds_averaged_and_a_missing_video_is_one_line(tmp_path):
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 1, (2, len(EMI), 6))
    fold(tmp_path, "emi", 0, pd.DataFrame({"video": EMI, **dict(zip(EMI_NAMES, a.T))}))
    fold(tmp_path, "emi", 1, pd.DataFrame({"video": EMI, **dict(zip(EMI_NAMES, b.T))}))
    (tmp_path / "video" / "emi" / "fold0-notext").mkdir()  # an ablation's stage is no fold of the submission
    template = tmp_path / "test_split.csv"
    template.write_text("Filename\n" + "".join(f"{v}\n" for v in sorted(EMI)))
    path = run(tmp_path, SubmitConfig(name="t", zip=False), "emi", template=template, out=tmp_path / "subs")
    spec = task("emi")
    assert not formats.get(spec).validate(path, spec, formats.get(spec).read_list(template))
    got = formats.get(spec).read(path, spec).set_index("video")
    assert list(got.index) == sorted(EMI)
    np.testing.assert_allclose(got.loc[EMI, list(EMI_NAMES)].to_numpy(), (a + b) / 2, atol=1e-6)
    template.write_text("Filename\n" + "".join(f"{v}\n" for v in [*EMI, "00099"]))
    result = runner.invoke(app, ["submit", "--track", "emi", "-w", str(tmp_path), "--template", str(template),
                                 "--out", str(tmp_path / "subs2")])
    assert result.exit_code == 2 and "00099" in result.output and "Traceback" not in result.output


def test_no_trained_fold_is_one_line(tmp_path):
    template = tmp_path / "test_split.csv"
    template.write_text("Filename\n00001\n")
    with pytest.raises(AbawError, match="abaw train video --task emi"):
        run(tmp_path, SubmitConfig(name="t", zip=False), "emi", template=template, out=tmp_path / "subs")


def test_demo_test_score_equals_sklearn_and_scipy_from_the_files(tmp_path):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, len(AH))
    truth = tmp_path / "ah.txt"
    truth.write_text("".join(f"{location(v)},{c},some words\n" for v, c in zip(AH, y)))
    fmt = formats.get("ah")
    p1 = rng.uniform(0, 1, len(AH))
    path = fmt.write(tmp_path, task("ah"), pd.DataFrame({"video": AH, "frame": 0}), np.c_[1 - p1, p1, p1 > 0.5])
    ours = formats.score_file("ah", path, truth)["score"]
    assert ours == pytest.approx(f1_score(y, (p1 > 0.5).astype(int), average="macro"), abs=1e-12)
    assert recompute("ah", path, truth) == pytest.approx(ours, abs=1e-12)
    lab, pred = rng.uniform(0, 1, (2, len(EMI), 6))
    truth = tmp_path / "labels.csv"
    pd.DataFrame({"Filename": EMI, **dict(zip(EMI_NAMES, lab.T))}).to_csv(truth, index=False)
    path = formats.get("emi").write(tmp_path, task("emi"), pd.DataFrame({"video": EMI, "frame": 0}), pred)
    ours = formats.score_file("emi", path, truth)["score"]
    want = np.mean([pearsonr(lab[:, k], np.round(pred[:, k], 6))[0] for k in range(6)])
    assert ours == pytest.approx(want, abs=1e-9)
    assert recompute("emi", path, truth) == pytest.approx(ours, abs=1e-9)
