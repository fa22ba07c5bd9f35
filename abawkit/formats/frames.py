"""The classic per-frame submission of the AU, EXPR and VA tracks (``submission.py`` holds the writer,
reader and validator of both editions); this adapter gives it the interface of ``formats``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from abawkit import submission as sub
from abawkit.labels import TaskSpec


class Frames:
    """The classic format in one edition (``abaw5``: one file per track; ``abaw3``: a file per video)."""

    def __init__(self, edition: str = "abaw5") -> None:
        self.edition = sub.edition(edition).name

    def file_name(self, spec: TaskSpec) -> str:
        return sub.edition(self.edition).file_name(spec)

    def n_values(self, spec: TaskSpec) -> int:
        return sub.n_values(spec)

    def write(self, out_dir: Path, spec: TaskSpec, rows: pd.DataFrame, outputs: np.ndarray) -> Path:
        return sub.write_submission(out_dir, spec, rows, outputs, self.edition)

    def read_list(self, path: Path) -> sub.Expected:
        return sub.read_template(path)

    def validate(self, path: Path, spec: TaskSpec, expected: sub.Expected) -> sub.Problems:
        return sub.validate(path, spec, expected, self.edition)

    def read(self, path: Path, spec: TaskSpec) -> pd.DataFrame:
        return sub.read_submission(path, spec, self.edition)

    def value_columns(self, spec: TaskSpec) -> list[str]:
        return list(spec.names) if spec.kind != "multiclass" else ["class"]

    def read_truth(self, path: Path, spec: TaskSpec) -> pd.DataFrame:
        return sub.read_truth(path, spec)
