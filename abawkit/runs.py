"""Run directories: resolved config, manifest, logs, atomic writes, resume and ``--force``.

Every stage writes into ``<workdir>/<name>/`` (``name`` may be nested, e.g. ``finetune/au/fold3``).
While running it writes into ``<name>.partial/``; only a finished stage is renamed into place, so a
crash or a bad input never leaves a half-written stage behind. A stage interrupted by a crash keeps
its ``.partial`` folder (checkpoints) and resumes from it when started again with the same config;
a user error (``AbawError``) removes it. A finished stage is a no-op on re-run unless ``force``.

``manifest.json`` records inputs (with sha256), outputs (with sha256), metrics, seed, versions and
times; later stages find their inputs through it (``load_stage``), not by globbing the disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from abawkit.config import to_dict
from abawkit.errors import AbawError

MANIFEST = "manifest.json"


# ----------------------------------------------------------------------------- atomic files
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise AbawError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise AbawError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


def write_parquet(path: str | Path, df: Any, metadata_: dict[str, str] | None = None) -> Path:
    """Write a DataFrame to Parquet atomically; ``metadata_`` goes into the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata_:
        meta = dict(table.schema.metadata or {})
        meta.update({k.encode(): v.encode() for k, v in metadata_.items()})
        table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def sha256_tree(path: str | Path) -> str:
    """Cheap fingerprint of a folder: relative names of every file, and sizes of those that are not images.

    A release or face collection holds millions of crops: listing names needs no per-file ``stat``
    (20x faster than stat-ing each), while annotation files, lists and videos still change the hash
    when their size does."""
    root = str(path)
    h = hashlib.sha256()
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for f in sorted(files):
            size = "" if f.lower().endswith(IMAGE_SUFFIXES) else os.path.getsize(os.path.join(dirpath, f))
            h.update(f"{rel}/{f}\0{size}\n".encode())
    return h.hexdigest()


def fingerprint(path: str | Path) -> str:
    p = Path(path)
    return sha256_file(p) if p.is_file() else sha256_tree(p)


def config_hash(cfg: Any) -> str:
    blob = json.dumps(to_dict(cfg) if not isinstance(cfg, dict) else cfg, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("abawkit", "torch", "timm", "numpy", "pandas", "scipy", "transformers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


# ----------------------------------------------------------------------------- stages
class StageDone(Exception):
    """Raised by ``open_stage`` when the stage already finished with the same config."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} is already done (pass --force to run it again)")
        self.path = path


@dataclass
class StageRun:
    """A stage being run. Write files under ``path(...)``; call ``finish`` when done."""

    name: str
    workdir: Path
    config: Any
    seed: int | None = None
    force: bool = False
    main_process: bool = True
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    @property
    def final_dir(self) -> Path:
        return self.workdir / self.name

    @property
    def dir(self) -> Path:
        return self.workdir / f"{self.name}.partial"

    def path(self, rel: str | Path) -> Path:
        """Path of an output inside the (staging) stage folder, parents created."""
        p = self.dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def add_input(self, name: str, path: str | Path) -> None:
        """Record an input file or folder with its fingerprint (sha256)."""
        self.inputs[name] = {"path": str(path), "sha256": fingerprint(path)}

    def add_output(self, rel: str | Path) -> Path:
        self.outputs.append(str(rel))
        return self.dir / rel

    def log(self, event: str, **fields: Any) -> None:
        """Append one JSON line to ``log.jsonl``."""
        if not self.main_process:
            return
        rec = {"time": round(time.time(), 3), "event": event, **fields}
        with open(self.path("log.jsonl"), "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")

    def finish(self) -> dict[str, Any]:
        """Hash outputs, write the manifest, and move the stage into place."""
        manifest = {
            "stage": self.name,
            "status": "done",
            "config": to_dict(self.config),
            "config_hash": config_hash(self.config),
            "seed": self.seed,
            "inputs": self.inputs,
            "outputs": {rel: fingerprint(self.dir / rel) for rel in self.outputs},
            "metrics": self.metrics,
            "versions": versions(),
            "started": self.started,
            "finished": time.time(),
        }
        if not self.main_process:
            return manifest
        if self.metrics:
            write_json(self.path("metrics.json"), self.metrics)
        write_json(self.path(MANIFEST), manifest)
        if self.final_dir.exists():
            shutil.rmtree(self.final_dir)
        os.replace(self.dir, self.final_dir)
        return manifest


def open_stage(
    workdir: str | Path, name: str, config: Any, *, seed: int | None = None, force: bool = False,
    main_process: bool = True,
) -> StageRun:
    """Start (or resume) stage ``name`` under ``workdir``.

    Raises ``StageDone`` if it already finished with this config, ``AbawError`` if it finished
    with another config and ``force`` is off. A leftover ``.partial`` folder with the same config
    is kept (resume); with another config it is cleared.
    """
    run = StageRun(name, Path(workdir), config, seed=seed, force=force, main_process=main_process)
    manifest = run.final_dir / MANIFEST
    if manifest.exists() and not force:
        old = read_json(manifest)
        if old.get("config_hash") == config_hash(config):
            raise StageDone(run.final_dir)
        raise AbawError(f"{run.final_dir} exists from a run with another config; pass --force to overwrite it")
    if not main_process:
        return run
    cfg_file = run.dir / "config.json"
    if run.dir.exists():
        same = cfg_file.exists() and read_json(cfg_file).get("config_hash") == config_hash(config)
        if force or not same:
            shutil.rmtree(run.dir)
    run.dir.mkdir(parents=True, exist_ok=True)
    write_json(cfg_file, {"config": to_dict(config), "config_hash": config_hash(config), "seed": seed})
    run.log("start", resumed=any(p.name not in ("config.json",) for p in run.dir.iterdir()))
    return run


@contextlib.contextmanager
def stage(workdir: str | Path, name: str, config: Any, **kw: Any) -> Iterator[StageRun]:
    """``with stage(...) as run:`` — finish on success, clean up on a user error.

    A crash (any other exception, Ctrl-C) keeps ``.partial`` so the stage can resume.
    Under ``torchrun`` every rank enters the body only once rank 0 has prepared ``.partial``; rank 0
    moves it into place only once every rank has left the body (others may still be writing or
    reading there), and every rank leaves with rank 0's metrics.
    """
    run = open_stage(workdir, name, config, **kw)
    if dist := _distributed():
        dist.barrier()
    try:
        yield run
    except AbawError:
        if run.main_process:
            shutil.rmtree(run.dir, ignore_errors=True)
        raise
    if dist := _distributed():  # asked again: a stage may join the process group inside its body (TMF's fit)
        run.metrics = dist.broadcast_object(run.metrics)  # also the barrier before rank 0 moves the folder
    run.finish()


def _distributed() -> Any:
    """``abawkit.distributed`` once torch is loaded (no process group can exist before), else None.

    Keeps this module free of a torch import for the stages that never need one (prep, smooth, submit)."""
    import sys

    if "torch.distributed" not in sys.modules:
        return None
    from abawkit import distributed

    return distributed


def load_stage(workdir: str | Path, name: str, hint: str | None = None) -> dict[str, Any]:
    """Read a finished stage's manifest, or fail with a one-line hint on how to produce it."""
    path = Path(workdir) / name / MANIFEST
    if not path.exists():
        how = f": run `{hint}` first" if hint else ""
        raise AbawError(f"{path.parent} not found or unfinished{how}")
    manifest = read_json(path)
    manifest["dir"] = str(path.parent)
    return manifest
