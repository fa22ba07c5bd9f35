"""``abaw report``: one HTML (+ Markdown and PNG) report of a workspace.

Reads the finished stages' manifests (metrics per stage and fold), the prep labels, the smoothing
policies and the validation predictions they were searched on. Writes ``<workdir>/report/``:
``report.html`` (self-contained), ``report.md``, ``per_class_*.png`` and ``timeline_<task>.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from abawkit import postprocess as pp
from abawkit.console import console
from abawkit.data.tables import load_prep
from abawkit.errors import AbawError
from abawkit.files import walk
from abawkit.io import read_json
from abawkit.labels import TASKS, TaskSpec
from abawkit.predictions import read_predictions
from abawkit.report import Report, Timeline, bar_chart, render, timeline_chart
from abawkit.workspace import layout
from abawkit.workspace.identity import input_path
from abawkit.workspace.stage import MANIFEST


def finished_stages(workdir: Path) -> list[dict]:
    """Manifests of every finished stage under ``workdir`` (``.partial`` folders are skipped)."""
    out = []
    for folder, dirs, files in walk(workdir):
        dirs[:] = [d for d in dirs if not d.endswith(".partial")]
        if MANIFEST in files:
            man = read_json(Path(folder) / MANIFEST)
            man["dir"] = folder
            out.append(man)
    return sorted(out, key=lambda m: Path(m["dir"]) / MANIFEST)


def official_order(per_class: dict[str, float]) -> dict[str, float]:
    """Per-class values in the task's official label order (JSON files store keys sorted)."""
    for spec in TASKS.values():
        if set(per_class) == set(spec.names):
            return {n: per_class[n] for n in spec.names}
    return per_class


def metrics_rows(manifests: list[dict]) -> list[list[object]]:
    """(stage, validation score, best epoch, steps) for stages that report a score."""
    rows = []
    for man in manifests:
        m = man.get("metrics") or {}
        score = m.get("val_score", m.get("score"))
        if isinstance(score, (int, float)):
            rows.append([man["stage"], float(score), m.get("best_epoch", "-"), m.get("steps", "-")])
    return rows


def timeline(workdir: Path, spec: TaskSpec, n_videos: int = 2) -> list[Timeline]:
    """Validation predictions vs labels, before and after the task's smoothing policy."""
    man = read_json(layout.path(workdir, layout.smooth(spec.name)) / MANIFEST)
    pred = read_predictions(input_path(workdir, man["inputs"]["pred0"]), spec)  # workspace-relative when inside
    policy = read_json(layout.path(workdir, layout.policy(spec.name)))
    frames = load_prep(workdir).frames
    lines = []
    for video in sorted(pred.df["video"].unique())[:n_videos]:
        rows = frames.loc[frames["video"] == video, ["video", "frame", *spec.label_columns]].reset_index(drop=True)
        x = pp.fill_missing(pred.df, rows, spec.pred_columns).T  # [C, T]
        sm = pp.apply_policy(x, pp.video_bounds(rows["video"].to_numpy()), policy, spec)
        lines.append(_one_line(spec, video, rows, x, sm, pp.head_policy(policy, spec.heads[0])))
    return lines


def _one_line(spec: TaskSpec, video: str, rows, x: np.ndarray, sm: np.ndarray, policy: dict | None = None) -> Timeline:
    """Pick what to draw from the track's first head: a two-class head's probability of class 1 (decided at
    the policy's threshold), a class id (argmax), AU12's probability (or the head's first name), or its first
    value (valence)."""
    frames = rows["frame"].to_numpy()
    head, out, _ = spec.slices()[0]
    if head.kind == "multiclass" and len(head.names) == 2:  # A/H per frame: p(A/H) against the 0/1 label
        label = rows[head.columns[0]].to_numpy(np.float64)
        thr = ((policy or {}).get("thresholds") or {}).get(head.names[1], 0.5)
        return Timeline(f"{video}: p({head.names[1]}), decided at {thr:g}", frames, np.where(label < 0, np.nan, label),
                        x[out.start + 1], sm[out.start + 1])
    if head.kind == "multiclass":
        label = rows[head.columns[0]].to_numpy(np.float64)
        return Timeline(f"{video}: {head.name} class (argmax)", frames, np.where(label < 0, np.nan, label),
                        x[out].argmax(0).astype(float), sm[out].argmax(0).astype(float))
    name = "AU12" if "AU12" in head.names else head.names[0]
    i = out.start + head.names.index(name)
    label = rows[head.columns[head.names.index(name)]].to_numpy(np.float64)
    return Timeline(f"{video}: {name}", frames, np.where(label == head.invalid, np.nan, label), x[i], sm[i])


def run(workdir: Path, out: Path | None = None) -> Path:
    """Gather, plot and render; returns the HTML path."""
    workdir = Path(workdir)
    manifests = finished_stages(workdir)
    if not manifests:
        raise AbawError(f"{workdir}: no finished stage to report on")
    out = Path(out) if out else layout.path(workdir, layout.REPORT)
    rep = Report(f"abawkit report: {workdir}")
    rep.tables.append(("validation score per stage and fold", ["stage", "score", "best epoch", "steps"],
                       metrics_rows(manifests)))
    ablation = layout.path(workdir, layout.demo_file("ablation.json"))
    if ablation.exists():
        data = read_json(ablation)
        rows = data["rows"]
        cols = data.get("columns") or list(rows[0])  # JSON keys are sorted on disk; the demo keeps its order here
        rep.tables.insert(0, ("demo ablation", cols, [["-" if r[c] is None else r[c] for c in cols] for r in rows]))
    for man in manifests:
        per_class = (man.get("metrics") or {}).get("per_class")
        if per_class:
            name = man["stage"].replace("/", "_")
            rep.images.append((f"per-class scores: {man['stage']}", bar_chart(out / f"per_class_{name}.png",
                               man["stage"], official_order(per_class), "score")))
    for spec in TASKS.values():
        if (layout.path(workdir, layout.smooth(spec.name)) / MANIFEST).exists():
            png = timeline_chart(out / f"timeline_{spec.name}.png", timeline(workdir, spec))
            rep.images.append((f"{spec.name}: validation timelines (label, raw, smoothed)", png))
    html, md = render(rep, out)
    console.print(f"report: {html} ({len(rep.images)} figures), {md}")
    return html
