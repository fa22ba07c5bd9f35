"""Writing torch state files: plain values only, atomically.

``engine`` (resume files) and ``models.checkpoints`` (model checkpoints) both write through here;
it sits below both so neither imports the other to save a file. Reading is ``models.checkpoints.load_file``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from abawkit.io import atomic_path, write_error


def plain(obj: Any) -> Any:
    """numpy scalars -> python numbers, recursively (epoch records may hold them; pickled they need numpy)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    return obj


def save_state(path: Path, obj: dict) -> None:
    """``torch.save`` through a temporary file renamed into place; a full disk is one clear error."""
    import torch

    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:  # torch reports a full disk as "file write failed"
            raise write_error(path, exc) from None
