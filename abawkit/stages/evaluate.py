"""``abaw evaluate``: score a prediction file (labels from ``prep``) or a submission file (labels from
an annotation-format folder), print the per-class table and save the result as JSON.

Prediction files are filled onto every frame of their videos (as the submission would be) and scored
on the annotated frames, with the task's official metric (``abawkit.metrics``).
"""

from __future__ import annotations

from pathlib import Path

from abawkit.console import console, table
from abawkit.errors import AbawError
from abawkit.io import write_json
from abawkit.labels import task
from abawkit.scoring import evaluate_predictions
from abawkit.formats import score_file

__all__ = ["evaluate_predictions", "run"]



def run(pred_path: Path, task_name: str, workdir: Path, truth: Path | None = None, out: Path | None = None,
        edition: str = "abaw5") -> dict:
    """Score, print, write JSON (default: beside the input, ``<name>.eval.json``)."""
    spec = task(task_name)
    if not pred_path.exists():
        raise AbawError(f"{pred_path}: not found")
    if truth is not None:
        result = score_file(spec, pred_path, truth, edition)
        result.update(task=spec.name, file=str(pred_path), truth=str(truth))
    else:
        result = evaluate_predictions(workdir, pred_path, spec)
    rows = [(name, float(v)) for name, v in result["per_class"].items()]
    rows.append((f"[bold]{spec.metric}[/]", float(result["score"])))
    console.print(table(f"{spec.name.upper()} on {result['frames']} labelled frames: {pred_path.name}",
                        ["class", {"regression": "CCC", "intensity": "Pearson"}.get(spec.kind, "F1")], rows))
    dest = out or pred_path.with_name(pred_path.stem + ".eval.json")
    write_json(dest, result)
    console.print(f"wrote {dest}")
    return result
