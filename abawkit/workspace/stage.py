"""Run directories: resolved config, manifest, logs, atomic writes, resume and ``--force``.

Every stage writes into ``<workdir>/<name>/`` (``name`` may be nested, e.g. ``finetune/au/fold3``).
While running it writes into ``<name>.partial/``; only a finished stage is renamed into place, so a
crash or a bad input never leaves a half-written stage behind. A stage interrupted by a crash keeps
its ``.partial`` folder (checkpoints) and resumes from it when started again with the same config;
a user error (``AbawError``) removes it. A finished stage is a no-op on re-run unless ``force``.
One run at a time per stage: ``<workdir>/<name>.lock`` (``flock``) names the live holder (``lock_holder``).

Inputs are declared before the stage opens (``stage(..., inputs={name: identity.file(p), ...})``), so its
identity (``workspace.identity``: kind, version, settings and each input's identity) is known at once: a
finished stage with the same identity is done (``StageDone``); one whose inputs changed is redone, with one
line saying what changed; one with another config still needs ``force``. ``.partial/config.json`` records
the identity it was started for, and is resumed only under the same one.

``manifest.json`` records "identity", "kind", "version", inputs (``identity.resolve`` records: path, kind, id),
outputs (with sha256), metrics, seed, versions and times; later stages find their inputs through it
(``load_stage``), not by globbing the disk."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from abawkit.config import to_dict
from abawkit.console import console
from abawkit.errors import AbawError
from abawkit.io import fsync_path, read_json, write_json
from abawkit.workspace import identity as ident
from abawkit.workspace.fingerprints import config_hash, content_sha256, versions
from abawkit.workspace.locks import stage_lock

MANIFEST = "manifest.json"



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
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    kind: str = ""
    version: int = ident.DEFAULT_VERSION
    declared: tuple[str, ...] = ()  # the inputs named before the stage opened
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

    @property
    def identity(self) -> str:
        return ident.identity(self.kind or ident.default_kind(self.name), self.version, config_hash(self.config),
                              self.inputs)

    def add_input(self, name: str, path: str | Path, content: bool | None = None) -> None:
        """Record one more input found inside the stage (declare inputs to ``stage(inputs=...)`` when you
        can: only those decide before it runs): a file (or, with ``content``, a checkpoint folder) by content,
        another folder by its listing. Part of the identity recorded at ``finish``."""
        spec = (ident.folder(path) if Path(path).is_dir() else ident.file(path)) if content or Path(path).is_file() \
            else ident.data(path)
        self.inputs[name] = ident.resolve(self.workdir, name, spec)

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
            "identity": self.identity,
            "kind": self.kind or ident.default_kind(self.name),
            "version": self.version,
            "declared": list(self.declared),
            "seed": self.seed,
            "inputs": self.inputs,
            "outputs": {rel: content_sha256(self.dir / rel) for rel in self.outputs},
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
        swap_in(self.dir, self.final_dir)
        return manifest



def swap_in(new: Path, final: Path) -> None:
    """Move a finished folder into place: rename the old one aside, rename the new one in, then delete
    the old one. Interrupted anywhere, ``final`` is the whole old stage, or the whole new one (the aside
    copy, ``<final>.replaced``, is removed by the next swap). Only between the two renames is ``final``
    missing: the stage then reads as not finished and its intact ``.partial`` is resumed."""
    aside = final.with_name(final.name + ".replaced")
    if aside.exists():
        shutil.rmtree(aside)
    if final.exists():
        os.replace(final, aside)
    os.replace(new, final)
    fsync_path(final.parent)
    shutil.rmtree(aside, ignore_errors=True)



def open_stage(
    workdir: str | Path, name: str, config: Any, *, seed: int | None = None, force: bool = False,
    main_process: bool = True, inputs: Mapping[str, ident.Input] | None = None, kind: str = "",
    version: int = ident.DEFAULT_VERSION,
) -> StageRun:
    """Start (or resume) stage ``name`` under ``workdir``, its ``inputs`` declared (see ``identity``).

    Raises ``StageDone`` if it already finished with this identity, ``AbawError`` if it finished with another
    config and ``force`` is off. Finished with the same config but other inputs (or code version): says
    "<name>: <first change>; redoing it" and redoes it. A finished stage recorded without an identity (an older
    workspace) is migrated: its identity is computed from what is there now and recorded, with one line.
    A leftover ``.partial`` folder is kept (resume) only when started for the same identity; with another
    config it is cleared, with other inputs it is cleared with one line. A ``.partial`` started with ``force``
    (or for a redo) is resumed even beside a finished output: the redo it began is what the output will be.
    """
    run = StageRun(name, Path(workdir), config, seed=seed, force=force, main_process=main_process,
                   kind=kind or ident.default_kind(name), version=version)
    manifest = run.final_dir / MANIFEST
    old = read_json(manifest) if manifest.exists() else None
    run.declared = tuple(inputs or {})
    run.inputs = _current_inputs(run, inputs or {}, None if force else old)
    cfg_file = run.dir / "config.json"
    started = read_json(cfg_file) if cfg_file.exists() else {}
    same_partial = started.get("config_hash") == config_hash(config) and started.get("identity") == run.identity
    redoing = not force and started.get("forced") and same_partial
    if old is not None and not force and not redoing:
        if old.get("config_hash") != config_hash(config):
            raise AbawError(f"{run.final_dir} exists from a run with another config; pass --force to overwrite it")
        if "identity" not in old and main_process:
            _migrate_one(run, manifest, old)
        if old.get("identity") in (None, run.identity):
            raise StageDone(run.final_dir)
        why = ident.changes(workdir, old, version=version)
        if not why and old.get("migrated"):  # migrated by `abaw status` without this declaration: record it
            if main_process:
                _record(run, manifest, old)
            raise StageDone(run.final_dir)
        if main_process:
            _say(f"{name}: {(why or ['inputs changed'])[0]}; redoing it")
        redoing = True
    if not main_process:
        return run
    if run.dir.exists() and (force or not same_partial):
        if started.get("config_hash") == config_hash(config) and any(p.name != "config.json" for p in run.dir.iterdir()):
            _say(f"{name}: inputs changed since the interrupted run; starting over")
        shutil.rmtree(run.dir)
    run.dir.mkdir(parents=True, exist_ok=True)
    write_json(cfg_file, {"config": to_dict(config), "config_hash": config_hash(config), "seed": seed,
                          "identity": run.identity, "forced": bool(force or redoing)})
    run.log("start", resumed=any(p.name not in ("config.json",) for p in run.dir.iterdir()))
    return run


def _current_inputs(run: StageRun, declared: Mapping[str, ident.Input],
                    old: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The declared inputs, and those the finished output recorded besides (added inside its run, or by a
    migration), all computed now; a recorded one that is gone stays as recorded (its absence is a change)."""
    out = ident.resolve_all(run.workdir, declared)
    for k, rec in ((old or {}).get("inputs") or {}).items():
        if k not in out and k not in (old or {}).get("declared", ()):
            try:
                out[k] = ident.resolve(run.workdir, k, ident.as_input(rec))
            except AbawError:
                out[k] = {**rec, "id": "missing"}
    return out


def _migrate_one(run: StageRun, manifest: Path, old: dict[str, Any]) -> None:
    """An output written before identities: record the one computed now (from what is there now), say so."""
    _record(run, manifest, old)
    _say(ident.migrated_line(run.workdir, 1))


def _record(run: StageRun, manifest: Path, old: dict[str, Any]) -> None:
    """Record ``run``'s identity and inputs in a finished stage's manifest, keeping its mtime (the launcher's clock)."""
    old.update(identity=run.identity, kind=run.kind, version=run.version, inputs=run.inputs,
               declared=list(run.declared), migrated=True)
    ident.rewrite_manifest(manifest, old)


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)



@contextlib.contextmanager
def stage(workdir: str | Path, name: str, config: Any, **kw: Any) -> Iterator[StageRun]:
    """``with stage(workdir, name, cfg, inputs={...}, kind=..., version=...) as run:`` — finish on success,
    clean up on a user error. ``inputs``: name -> ``identity.file / checkpoint / data / upstream(...)``,
    declared before the stage opens (see ``open_stage``).

    The stage's lock (``stage_lock``) is held from before anything is touched until the end, so a
    second run of the same stage stops with one line instead of writing into the same ``.partial``.
    A crash (any other exception) keeps ``.partial`` so the stage can resume; Ctrl-C keeps it too and
    becomes ``Interrupted`` (exit 130, one line saying how to resume).
    Under ``torchrun`` only rank 0 locks, and every rank enters the body only once rank 0 has prepared
    ``.partial``; rank 0 moves it into place only once every rank has left the body (others may still
    be writing or reading there), and every rank leaves with rank 0's metrics.
    """
    with stage_lock(workdir, name) if kw.get("main_process", True) else contextlib.nullcontext():
        run = open_stage(workdir, name, config, **kw)
        if dist := _distributed():
            dist.barrier()
        try:
            yield run
        except Interrupted:
            raise  # an inner stage already said how to resume
        except AbawError:
            if run.main_process:
                shutil.rmtree(run.dir, ignore_errors=True)
            raise
        except OSError as exc:  # full disk, read-only: keep .partial; name the folder when the library did not
            if exc.filename is None:
                exc.filename = str(run.dir)
            raise
        except KeyboardInterrupt:
            raise Interrupted(f"{name} was interrupted; its progress is kept in {run.dir}: "
                              "run the same command again to resume it") from None
        if dist := _distributed():  # asked again: a stage may join the process group inside its body (TMF's fit)
            run.metrics = dist.broadcast_object(run.metrics)  # also the barrier before rank 0 moves the folder
        run.finish()



class Interrupted(AbawError):
    """Ctrl-C during a stage: ``.partial`` is kept; exit code 130 (128 + SIGINT), as shells expect."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=130)



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
