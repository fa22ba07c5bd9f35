"""Does the text modality earn its place? The video-level model (or, for ``ah_frames``, the TMF) with and
without the words, 3 seeds.

On a workspace where ``abaw demo --track ah|emi|ah_frames`` (or ``abaw run``) ran — prep and the feature stores
``mae-<track>``, ``fbank`` and ``text`` exist — trains the video model on fold 0 (the official split) once per
seed and feature set (``video/<track>/fold0-abl-<set>-s<seed>``, the recipe's ``video.toml`` otherwise; for
``ah_frames`` the TMF, ``tmf/ah_frames/fold0-abl-<set>-s<seed>``, the recipe's ``tmf.toml``, scored per frame
at argmax, before smoothing and the tuned threshold), and
prints a Markdown table: validation score (fold 0) and test score (the synthetic release's truth, each run's
own file-level decision: A/H ``pred`` at its tuned threshold, macro-F1 by scikit-learn; EMI mean Pearson by
SciPy), mean ± sd over the seeds.
Run: ``.venv/bin/python benchmarks/bench_text_ablation.py --workdir abaw-demo-ah --track ah [--seeds 0,1,2]``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from abawkit import formats
from abawkit.config import load_config
from abawkit.labels import task
from abawkit.release.synth.ah import FRAME_TRUTH
from abawkit.run.demo_video import TRUTH
from abawkit.stages.tmf import TMFConfig
from abawkit.stages.tmf import run as tmf_run
from abawkit.stages.video import VideoConfig, run
from abawkit.workspace import layout

SETS = {"without text": ("mae", "fbank"), "with text": ("mae", "fbank", "text")}
FRAME_SETS = {"faces": ("mae",), "faces + words": ("mae", "text"), **SETS}  # ah_frames: the TMF's cheap runs


def test_score(track: str, pred: Path, truth: Path) -> float:
    """A run's test predictions against the release's truth, with scikit-learn / SciPy."""
    from scipy.stats import pearsonr
    from sklearn.metrics import f1_score

    spec = task(track)
    if spec.level == "frame":  # per frame: argmax of the TMF's probabilities against the frame truth
        gt = formats.get(spec).read_truth(truth, spec)
        df = gt.merge(pd.read_parquet(pred), on=["video", "frame"], how="left", validate="one_to_one")
        return float(f1_score(gt[spec.label_columns[0]], df[list(spec.names)].to_numpy().argmax(axis=1), average="macro"))
    gt = formats.get(spec).read_truth(truth, spec).set_index("video")
    df = pd.read_parquet(pred).set_index("video").loc[gt.index]
    if track == "ah":
        return float(f1_score(gt[spec.label_columns[0]], df["pred"], average="macro"))
    return float(np.mean([pearsonr(gt[c], df[n])[0] for c, n in zip(spec.label_columns, spec.names)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--track", choices=["ah", "emi", "ah_frames"], required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--recipe", default="")
    ap.add_argument("--tag", default="", help="added to the runs' stage names (another recipe: other runs)")
    ap.add_argument("--release", type=Path, default=None, help="default: <workdir>/release")
    args = ap.parse_args()
    w, t = args.workdir.resolve(), args.track
    release = args.release or layout.path(w, layout.RELEASE)
    truth = release / (FRAME_TRUTH if t == "ah_frames" else TRUTH[t])
    stage, cfg_cls, cfg_name, out_dir = ((tmf_run, TMFConfig, "tmf", layout.tmf) if t == "ah_frames"
                                         else (run, VideoConfig, "video", layout.video_model))
    base = load_config(cfg_cls, cfg_name, args.recipe or f"demo-{t}")
    rows = []
    for label, feats in (FRAME_SETS if t == "ah_frames" else SETS).items():
        val, test = [], []
        for seed in (int(s) for s in args.seeds.split(",")):
            tag = f"abl{args.tag}-{'-'.join(feats)}-s{seed}"
            cfg = replace(base, seed=seed, task=t, fold=0, tag=tag,
                          features=replace(base.features, **{t: tuple(feats)}))
            metrics = stage(w, cfg)
            val.append(metrics["val_score"])
            test.append(test_score(t, layout.path(w, out_dir(t, 0, tag)) / "pred_test.parquet", truth))
        rows.append((label, val, test))
    metric = task(t).metric
    print(f"\n| {t} ({metric}), fold 0, {len(rows[0][1])} seeds | validation | test |\n|---|---|---|")
    for label, val, test in rows:
        print(f"| {label} | {np.mean(val):.3f} ± {np.std(val, ddof=1):.3f} | {np.mean(test):.3f} ± {np.std(test, ddof=1):.3f} |")


if __name__ == "__main__":
    main()
