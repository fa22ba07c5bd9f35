"""The frame-level A/H track of ABAW 8 (``ah_frames``): BAH's frame labels, prep, the tuned threshold, the plan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.errors import AbawError
from abawkit.formats.ah import location
from abawkit.formats.ah_frames import frame_path
from abawkit.labels import TASKS
from abawkit.postprocess import SearchData, binary_threshold_f1, decide, score_setting
from abawkit.release import bah_frames
from abawkit.release.bah import read_bah

AHF = TASKS["ah_frames"]
A = "82579_Question_1_2024-10-02 16-03-28_Video"
B = "82595_Question_2_2024-10-30_16-17-48_Video"
T = "83195_Question_5_2025-07-31_19-17-00_Video"
runner = CliRunner()


def _bah(root, annotation: str, frame_list: bool = True):
    split = root / "dataset-splits" / "video-level" / "BAH_DB" / "split-0"
    split.mkdir(parents=True)
    (split / "train.txt").write_text(f"{location(A)},0,so I go\n{location(B)},1,maybe but\n")
    (root / "trial-0.txt").write_text(f"{location(T)},0\n")
    (root / bah_frames.ANNOTATION).write_text(annotation)
    if frame_list:
        (root / "frames.txt").write_text("".join(f"{frame_path(T, f)},0\n" for f in (1, 2, 3)))
    return read_bah(root)


GOOD = (f"{location(A)}:\n  frame_annotation: [[0, 0], [1, 1], [2, 1]]\n"  # a list path, 0-based indices
        f"'{B}':\n  frame_annotation: [['frame-1.jpg', 1]]\n")  # a bare name, a frame file name


def test_frame_labels_by_path_or_name_counted_from_zero(tmp_path):
    videos = _bah(tmp_path, GOOD)
    got = bah_frames.read_frames(videos)
    assert got.labels == {A: {1: 0, 2: 1, 3: 1}, B: {2: 1}}
    assert got.template.name == "frames.txt" and got.tests == [T]
    ann = bah_frames.to_annotations(got, videos, {A: 3, B: 3, T: 3})
    assert ann.names == [A, B] and ann.roles == ["train", "train"] and ann.lengths.tolist() == [3, 3]
    assert ann.values[:, 0].tolist() == [0, 1, 1, -1, 1, -1]  # an unlabelled frame is invalid, not "no A/H"


def test_no_frame_files_means_no_frame_level_track(tmp_path):
    _bah(tmp_path, GOOD)
    (tmp_path / bah_frames.ANNOTATION).unlink()
    (tmp_path / "frames.txt").unlink()
    assert bah_frames.read_frames(read_bah(tmp_path)) is None  # the walk finds neither


@pytest.mark.parametrize("text,msg", [
    (f"{location(A)}:\n  frame_annotation: [[0, 2]]\n", "item 1: label must be 0"),
    (f"{location(A)}:\n  frame_annotation: [[x, 1]]\n", "item 1: frame 'x' is not"),
    (f"{location(A)}:\n  frame_annotation: [[0, 1], [0, 0]]\n", "labelled twice"),
    (f"{location(A)}:\n  frames: [[0, 1]]\n", "expected a frame_annotation list"),
    ("Videos/1/Visite_1/1_Question_1_Video.mp4:\n  frame_annotation: [[0, 1]]\n", "in no BAH split file"),
    (f"{location(A)}: [\n", "not valid YAML"),
    ("!!python/object/apply:os.system ['echo owned']\n", "not valid YAML"),  # safe_load: data only
])
def test_bad_frame_annotation_is_one_line_naming_the_file(tmp_path, text, msg):
    videos = _bah(tmp_path, text)
    with pytest.raises(AbawError, match=msg) as err:
        bah_frames.read_frames(videos)
    assert bah_frames.ANNOTATION in str(err.value) and "\n" not in str(err.value)


def test_a_label_past_the_last_frame_is_an_error(tmp_path):
    videos = _bah(tmp_path, GOOD)
    got = bah_frames.read_frames(videos)
    with pytest.raises(AbawError, match="frame-2 labelled, but the video has 2 frames"):
        bah_frames.to_annotations(got, videos, {A: 2, B: 3})


# ----------------------------------------------------------------------------- the tuned threshold
def test_two_class_threshold_f1_equals_sklearn_at_every_threshold():
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.2).astype(np.int64)
    p1 = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)
    thr = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    got = binary_threshold_f1(p1, y, thr)
    want = np.array([f1_score(y, (p1 >= t).astype(int), average=None, labels=[0, 1], zero_division=0) for t in thr])
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_search_tunes_the_a_h_threshold_and_decide_applies_it():
    rng = np.random.default_rng(1)
    y = (rng.random(400) < 0.15).astype(np.int64)
    p1 = np.clip(0.25 * y + 0.3 * rng.random(400), 0, 1)  # A/H always under 0.5: argmax never says A/H
    x = np.stack([1 - p1, p1])
    data = SearchData(AHF, x, np.array([0, 400]), np.arange(400), y[:, None].astype(np.float64))
    thr = np.round(np.arange(0.05, 1.0, 0.05), 2)
    res = score_setting(data, "none", None, thr)
    best = res["thresholds"]["ah"]
    assert best < 0.5
    assert res["score"] == pytest.approx(f1_score(y, (p1 >= best).astype(int), average="macro"))
    assert res["score"] > f1_score(y, p1.round().astype(int), average="macro") + 0.2
    policy = {"thresholds": {"ah": best}}
    assert decide(x.T, AHF, policy)[:, 0].tolist() == (p1 >= best).astype(int).tolist()
    assert decide(x.T, AHF, None)[:, 0].tolist() == (p1 > 0.5).astype(int).tolist()  # no policy: argmax


# ----------------------------------------------------------------------------- synthetic release + prep
@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from abawkit.stages.prep import PrepConfig, run as prep
    from abawkit.stages.synth import SynthConfig, run as synth

    root = tmp_path_factory.mktemp("ahf")
    synth(SynthConfig(videos=15, size=48, fps=15, faces=0, track="ah_frames", seed=5), root / "release")
    prep(PrepConfig(release=str(root / "release"), size=48), root / "w")
    return root


def test_synthetic_frame_labels_follow_the_words_and_the_brow(prepared):
    from abawkit.release.synth import ah

    clips, labels = ah.plan(ah.ClipSpec(videos=15, size=48, fps=15, seed=5))
    frames = pd.read_parquet(prepared / "w" / "prep" / "frames.parquet")
    truth = pd.read_csv(prepared / "release" / ah.FRAME_TRUTH, header=None, names=["loc", "y"])
    for clip, y in zip(clips, labels):
        got = frames.loc[frames["video"] == clip.name, "AH_frame"].to_numpy()
        if clip.role == "test":
            assert (got == -1).all()  # test labels stay out of prep
            assert truth["loc"].str.contains(clip.name, regex=False).sum() == clip.n_frames
        else:
            assert got.max() <= y  # a clip without A/H has no A/H frame
            assert (got[(clip.au[:, 2] > 0) & (clip.au[:, 7] > 0)] == y).all()  # AU4 + AU15 in an A/H clip: A/H
    assert 0 < (frames["AH_frame"] == 1).sum() < (frames["AH_frame"] == 0).sum()


def test_prep_keeps_one_persons_answers_in_one_fold(prepared):
    splits = pd.read_parquet(prepared / "w" / "prep" / "splits.parquet")
    folds = splits[splits["task"] == "ah_frames"]
    assert len(folds) == 12  # every train/val clip of the 15
    person = folds["video"].str.split("_").str[0]
    assert (folds.groupby(person.to_numpy())["fold"].nunique() == 1).all()
    assert folds["fold"].nunique() > 1


# ----------------------------------------------------------------------------- the plan
def test_run_plans_text_features_and_the_demo_a_run_without_them(tmp_path):
    release = tmp_path / "release"
    (release / "transcripts").mkdir(parents=True)
    out = runner.invoke(app, ["run", "--release", str(release), "-w", str(tmp_path / "w"), "--dry-run", "--track", "ah_frames"])
    assert out.exit_code == 0, out.output
    for job in ("prep", "pretrain", "finetune/ah_frames/fold0", "features/mae-ah_frames", "features/text",
                "tmf/ah_frames/fold1", "smooth/ah_frames", "submit/ah_frames", "validate/ah_frames"):
        assert job in out.output, job
    assert "features/fbank" not in out.output  # the demo recipe fuses faces and words
    from abawkit.config import load_config
    from abawkit.run import build, demo

    def ablation(recipe: str) -> dict:
        cfg = load_config(build.RunConfig, "run", recipe)
        b = build.Builder(build.RunInputs(tmp_path / "w", recipe, release))
        return {j.id: j for j in demo._ablation_jobs(b, demo.DemoConfig(), cfg, "demo")}

    assert "tmf/ah_frames/fold0-notext" not in ablation("demo-ah_frames")  # without words = faces alone: one run
    notext = ablation("ah_frames")["tmf/ah_frames/fold0-notext"]  # the paper recipe: faces, voice, words
    assert notext.cmd[notext.cmd.index("--features") + 1] == "mae,hubert"


def test_report_draws_the_a_h_probability_and_its_threshold():
    from abawkit.stages.report import _one_line

    rows = pd.DataFrame({"frame": [1, 2, 3], "AH_frame": [0, 1, -1]})
    x = np.array([[0.9, 0.2, 0.6], [0.1, 0.8, 0.4]])
    line = _one_line(AHF, "v", rows, x, x * 0.5, {"thresholds": {"ah": 0.3}})
    assert line.raw.tolist() == [0.1, 0.8, 0.4] and line.smoothed.tolist() == [0.05, 0.4, 0.2]  # p(A/H), not argmax
    assert "decided at 0.3" in line.title and np.isnan(line.label[2])
