"""``abaw evaluate``: score a prediction file (labels from ``prep``) or a submission file (labels from
an annotation-format folder), print the per-class table and save the result as JSON.

Prediction files are filled onto every frame of their videos (as the submission would be) and scored
on the annotated frames, with the task's official metric (``abawkit.metrics``).
"""

from __future__ import annotations

from pathlib import Path

from abawkit.errors import AbawError


def evaluate_predictions(workdir: Path, pred_path: Path, task_name: str | None = None,
                         thresholds: dict | None = None) -> dict:
    """Score a Parquet prediction file against the prep workspace's labels."""
    import numpy as np

    from abawkit.data.tables import load_prep
    from abawkit.metrics import score
    from abawkit.postprocess import search_data
    from abawkit.predictions import read_predictions

    pred = read_predictions(pred_path, task_name)
    data = search_data(pred.df, load_prep(workdir).frames, pred.task)
    thr = None if not thresholds else np.asarray([thresholds.get(n, 0.5) for n in pred.task.names])
    result = score(pred.task.name, data.labels, data.x[:, data.labelled].T, thr)
    result.update(task=pred.task.name, file=str(pred_path), frames=int(len(data.labelled)),
                  split=pred.split, fold=pred.fold, model=pred.model)
    return result


def run(pred_path: Path, task_name: str, workdir: Path, truth: Path | None = None, out: Path | None = None,
        edition: str = "abaw5") -> dict:
    """Score, print, write JSON (default: beside the input, ``<name>.eval.json``)."""
    from abawkit.console import console, table
    from abawkit.io import write_json
    from abawkit.labels import task

    spec = task(task_name)
    if not pred_path.exists():
        raise AbawError(f"{pred_path}: not found")
    if truth is not None:
        from abawkit.submission import score_submission

        result = score_submission(pred_path, truth, spec.name, edition)
        result.update(task=spec.name, file=str(pred_path), truth=str(truth))
    else:
        result = evaluate_predictions(workdir, pred_path, spec.name)
    rows = [(name, float(v)) for name, v in result["per_class"].items()]
    rows.append((f"[bold]{spec.metric}[/]", float(result["score"])))
    console.print(table(f"{spec.name.upper()} on {result['frames']} labelled frames: {pred_path.name}",
                        ["class", "F1" if spec.name != "va" else "CCC"], rows))
    dest = out or pred_path.with_name(pred_path.stem + ".eval.json")
    write_json(dest, result)
    console.print(f"wrote {dest}")
    return result
