"""`abaw demo --track ah_frames` end to end at a tiny size, then `abaw predict` with the words (the text store)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tiny_recipe import tiny_recipe

SMALL = {"synth.toml": [("videos = 120", "videos = 20")], "pretrain.toml": [("epochs = 8 ", "epochs = 1 ")],
         "finetune.toml": [("epochs = 8", "epochs = 1")], "tmf.toml": [("epochs = 24", "epochs = 2")],
         "run.toml": [("folds = [0, 1]", "folds = [0]")]}


def abaw(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "abawkit.cli", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("ahf-demo")
    recipe = tiny_recipe("demo-ah_frames", root / "tiny", SMALL)
    out = abaw("demo", "--recipe", str(recipe), "-w", str(root / "w"), cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr
    return root


def test_demo_submission_validates_and_scores_as_the_files_say(demo):
    from sklearn.metrics import f1_score

    w = demo / "w"
    table = json.loads((w / "demo" / "ablation.json").read_text())
    row = table["rows"][0]
    assert row["+ text"] is not None and row["+ TMF (vision)"] is not None  # faces, then faces + words
    assert row["+ audio"] is None  # the demo recipe fuses no audio
    sub = Path(table["submissions"]["ah_frames"])
    assert sub.name == "AH_frame_predictions.txt"
    out = abaw("validate", str(sub), "--track", "ah_frames", "-w", str(w), cwd=demo)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr
    got = pd.read_csv(sub, header=None, names=["loc", "pred"])
    truth = pd.read_csv(w / "release" / "test_ground_truth" / "AH_frames" / "test.txt", header=None, names=["loc", "y"])
    assert got["loc"].tolist() == pd.read_csv(w / "release" / "AH_frame_test_list.txt", header=None)[0].tolist()
    both = truth.merge(got, on="loc", validate="one_to_one")
    assert len(both) == len(truth) and row["test: ensemble"] == pytest.approx(f1_score(both.y, both.pred, average="macro"))
    policy = json.loads((w / "smooth" / "ah_frames" / "policy.json").read_text())
    assert set(policy["thresholds"]) == {"ah"}  # the A/H threshold tuned on validation


def test_predict_needs_the_words_and_redoes_when_they_change(demo, tmp_path):
    w = demo / "w"
    video = sorted((w / "release" / "Videos").rglob("*.mp4"))[0]
    out = abaw("predict", str(video), "-w", str(w), "--recipe", str(demo / "tiny"), cwd=demo)
    assert out.returncode == 2 and "--transcripts DIR" in out.stdout + out.stderr  # a user error, one line
    assert "faces" not in out.stdout  # said before any video is read
    said = tmp_path / "said"
    shutil.copytree(w / "release" / "transcripts", said)
    args = ("predict", str(video), "-w", str(w), "--recipe", str(demo / "tiny"), "--transcripts", str(said))
    out = abaw(*args, cwd=demo)
    assert out.returncode == 0, out.stdout + out.stderr
    csv = next((w / "predict").glob(f"{video.stem}-*/predictions.csv"))
    df = pd.read_csv(csv)
    assert {"ah", "p_no_ah", "p_ah"} <= set(df.columns) and df["p_ah"].between(0, 1).all()
    thr = json.loads((w / "smooth" / "ah_frames" / "policy.json").read_text())["thresholds"]["ah"]
    clear = (df["p_ah"] - thr).abs() > 1e-4  # the CSV rounds to 4 decimals: a row at the threshold could go either way
    assert clear.sum() > len(df) / 2
    assert ((df["ah"] == "ah") == (df["p_ah"] >= thr))[clear].all()  # the tuned threshold decides, not argmax
    assert "skip" in abaw(*args, cwd=demo).stdout  # same video, models and words: done already
    doc = json.loads((said / f"{video.stem}.json").read_text())
    doc["segments"] = [{"start": 0.0, "end": 9.0, "text": "maybe but unsure perhaps um"}]
    (said / f"{video.stem}.json").write_text(json.dumps(doc))
    again = abaw(*args, cwd=demo)
    assert again.returncode == 0 and "skip" not in again.stdout, again.stdout
    assert not pd.read_csv(csv)["p_ah"].equals(df["p_ah"])  # other words, other probabilities
