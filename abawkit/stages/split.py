"""``abaw split``: (re)compute the cross-validation folds in ``<workdir>/prep/splits.parquet``.

Prep calls ``write_splits`` at its end; ``abaw split`` redoes the folds of a finished prep with
another seed or method, rewrites ``splits.parquet`` atomically and updates prep's manifest (the
output hash and a ``split`` entry with its config), so downstream stages see what they read.
"""

from __future__ import annotations

from pathlib import Path

from abawkit.config import to_dict
from abawkit.data.tables import load_prep
from abawkit.io import write_json
from abawkit.release.splits import SplitConfig, show, write_splits
from abawkit.workspace.fingerprints import sha256_file
from abawkit.workspace.stage import MANIFEST, StageDone

__all__ = ["SplitConfig", "run", "show", "write_splits"]


def run(cfg: SplitConfig, workdir: Path, force: bool = False) -> dict:
    """Recompute the folds of an existing prep; a no-op if prep already has folds from this config."""
    prep = load_prep(workdir)
    manifest = {k: v for k, v in prep.manifest.items() if k != "dir"}
    if manifest.get("split", {}).get("config") == to_dict(cfg) and not force:
        raise StageDone(prep.dir / "splits.parquet")
    _, report = write_splits(prep.frames, cfg, prep.dir / "splits.parquet")
    manifest["outputs"]["splits.parquet"] = sha256_file(prep.dir / "splits.parquet")
    manifest["split"] = {"config": to_dict(cfg), "report": report}
    write_json(prep.dir / "split_report.json", report)
    write_json(prep.dir / MANIFEST, manifest)
    show(report)
    return report
