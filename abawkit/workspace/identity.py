"""The one identity rule: an output is identified by what made it.

``identity(kind, version, settings_hash, inputs)`` = sha256 over JSON of {"kind": the stage kind, "version": the
code version of that stage (bumped when its bytes would change), "settings": ``config_hash`` of the resolved
config, "inputs": {name: the input's identity}}. An input's identity, by its kind:

- ``file``: its content sha256 (``sha256_file``, cached by size, mtime_ns and inode);
- ``folder`` (a checkpoint folder): ``content_sha256``, every file by content;
- ``listing`` (a release, a face collection): ``listing.listing`` -- names of images, other files by content;
- ``stage`` (an upstream output of the same workspace): the "identity" its manifest.json records.

A stage's manifest records "identity", "kind", "version" and "inputs": {name: {"path", "kind", "id"}} (listings
add "files": {relpath: sha256}). Paths are recorded resolved: relative to the workspace when inside it, else
absolute, so a copied workspace checks its own files and a relative path typed in another folder is not
reopened from the wrong one. ``changes(workdir, manifest)`` recomputes every recorded input now and says what
changed; "done" is a manifest with no change. Workspaces written before identities existed are migrated by
``migrate`` (identities computed from what is there now, one line saying so).

Reads the inputs and manifests; writes manifests only in ``migrate``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from abawkit.console import console
from abawkit.errors import AbawError
from abawkit.io import read_json, write_json
from abawkit.workspace.fingerprints import content_sha256, sha256_file
from abawkit.workspace.listing import listing as list_folder

MANIFEST = "manifest.json"
KINDS = ("file", "folder", "listing", "stage")
DEFAULT_VERSION = 1


@dataclass(frozen=True)
class Input:
    """An input declared before a stage opens: ``kind`` (see ``KINDS``) and its path (a stage: its name)."""

    kind: str
    path: str


def file(path: str | Path) -> Input:
    """A file by content (a relative path is taken from the current folder, as typed)."""
    return Input("file", os.path.abspath(path))


def checkpoint(path: str | Path) -> Input:
    """A checkpoint: a file, or a folder (HF-style) identified by every file's content."""
    return Input("folder" if Path(path).is_dir() else "file", os.path.abspath(path))


def folder(path: str | Path) -> Input:
    return Input("folder", os.path.abspath(path))


def data(path: str | Path) -> Input:
    """A data folder (release, face collection): identified by its listing."""
    return Input("listing", os.path.abspath(path))


def upstream(name: str) -> Input:
    """An upstream stage output of the same workspace (``layout`` name)."""
    return Input("stage", str(name))


def default_kind(name: str) -> str:
    """A stage's kind unless it names one: the first part of its folder name (``finetune/va/fold0`` -> finetune)."""
    return str(name).split("/")[0]


def identity(kind: str, version: int, settings_hash: str, inputs: Mapping[str, Any]) -> str:
    """The identity of an output (see the module docstring); ``inputs``: name -> id, or name -> record."""
    ids = {k: (v["id"] if isinstance(v, Mapping) else v) for k, v in inputs.items()}
    blob = json.dumps({"kind": kind, "version": int(version), "settings": settings_hash, "inputs": ids},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def record_id(record: Mapping[str, Any]) -> str | None:
    """The id an input record holds: ``id``, or what older manifests recorded (``sha256``, ``listing_sha256``)."""
    return record.get("id") or record.get("sha256") or record.get("listing_sha256")


def rewrite_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest`` over ``path`` keeping its mtime: the launcher reads a finished stage's time from it
    (``run.plan.marker_time``), and recording an identity is not a new run."""
    st = os.stat(path)
    write_json(path, manifest)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def migrated_line(workdir: str | Path, n: int) -> str:
    return f"migrated {workdir}: recorded identities for {n} outputs"


def recorded_path(workdir: str | Path, path: str | Path) -> str:
    """``path`` as a manifest records it: relative to the workspace when inside it, else absolute."""
    ws, p = Path(os.path.abspath(workdir)), Path(os.path.abspath(path))
    for a, b in ((p, ws), (p.resolve(), ws.resolve())):
        if a == b or b in a.parents:
            return a.relative_to(b).as_posix() or "."
    return str(p)


def input_path(workdir: str | Path, record: Mapping[str, Any] | str) -> Path:
    """The file or folder a recorded input names (a relative path is inside the workspace)."""
    path = Path(record["path"] if isinstance(record, Mapping) else record)
    return path if path.is_absolute() else Path(workdir) / path


def stage_id(workdir: str | Path, name: str) -> str:
    """The identity recorded by upstream stage ``name`` (migrated first if written before identities); an
    error if it is not finished."""
    path = Path(workdir) / name / MANIFEST
    if not path.exists():
        raise AbawError(f"{path.parent} not found or unfinished")
    ident = read_json(path).get("identity")
    if not ident:  # written by an older abawkit: migrated on first use, and said
        ident = migrate_manifest(workdir, path)["identity"]
        console.print(migrated_line(workdir, 1), markup=False, soft_wrap=True)
    return ident


def resolve(workdir: str | Path, name: str, spec: Input) -> dict[str, Any]:
    """The record of one declared input, its identity computed now."""
    if spec.kind == "stage":
        return {"path": spec.path, "kind": "stage", "id": stage_id(workdir, spec.path)}
    path = input_path(workdir, spec.path)  # declarations are absolute; records may be workspace-relative
    if not path.exists():
        raise AbawError(f"input {name}: {spec.path} not found")
    rec: dict[str, Any] = {"path": recorded_path(workdir, path), "kind": spec.kind}
    if spec.kind == "file":
        rec["id"] = sha256_file(path)
        rec["sha256"] = rec["id"]  # the name older readers look for
    elif spec.kind == "folder":
        rec["id"] = rec["sha256"] = content_sha256(path)
    elif spec.kind == "listing":
        found = list_folder(path)
        rec["id"], rec["files"] = found.id, found.files
    else:
        raise AbawError(f"input {name}: unknown kind {spec.kind!r} (expected one of {', '.join(KINDS)})")
    return rec


def resolve_all(workdir: str | Path, inputs: Mapping[str, Input]) -> dict[str, dict[str, Any]]:
    return {name: resolve(workdir, name, spec) for name, spec in inputs.items()}


def as_input(record: Mapping[str, Any]) -> Input:
    """The declaration a record was made from; an older record (``sha256`` / ``listing_sha256``, no kind) by
    what it holds."""
    if record.get("kind") in KINDS:
        return Input(record["kind"], record["path"])
    if "listing_sha256" in record:
        return Input("listing", record["path"])
    return Input("folder" if Path(record["path"]).is_dir() else "file", record["path"])


def changes(workdir: str | Path, manifest: Mapping[str, Any], *, settings_hash: str | None = None,
            version: int | None = None) -> list[str]:
    """What changed since ``manifest`` was written: one line per change, [] when nothing did.

    Every recorded input is recomputed now ("input changed: <path> (<name>)", "labels changed: <relpath>",
    "input redone: <stage>", "input missing: <path> (<name>)"); with ``settings_hash`` / ``version``, the
    current settings and code version are compared too ("settings changed", "code changed")."""
    out = []
    if settings_hash is not None and manifest.get("config_hash") not in (None, settings_hash):
        out.append("settings changed")
    if version is not None and manifest.get("version", DEFAULT_VERSION) != version:
        out.append(f"code changed (version {manifest.get('version', DEFAULT_VERSION)} -> {version})")
    for name, rec in (manifest.get("inputs") or {}).items():
        out.extend(input_changes(workdir, name, rec))
    return out


def input_changes(workdir: str | Path, name: str, rec: Mapping[str, Any]) -> list[str]:
    """What changed in one recorded input (``changes`` for one record), [] when it is the same now."""
    spec = as_input(rec)
    try:
        now = resolve(workdir, name, spec)
    except AbawError:
        return [f"input missing: {rec['path']} ({name})" if spec.kind != "stage" else f"input missing: {rec['path']}"]
    if now["id"] == record_id(rec):
        return []
    if spec.kind == "stage":
        return [f"input redone: {rec['path']}"]
    if spec.kind == "listing" and "files" in rec:
        old, new = rec["files"], now["files"]
        named = [f"labels changed: {k}" for k in sorted(old.keys() & new.keys()) if old[k] != new[k]]
        named += [f"labels added: {k}" for k in sorted(new.keys() - old.keys())]
        named += [f"labels removed: {k}" for k in sorted(old.keys() - new.keys())]
        if named:
            return named
    return [f"input changed: {rec['path']} ({name})"]


def migrate_manifest(workdir: str | Path, manifest_path: Path, extra: Mapping[str, Input] = (),
                     kind: str | None = None, version: int = DEFAULT_VERSION) -> dict[str, Any]:
    """Record the identity of an output written before identities existed, computed from what is there now:
    its recorded inputs (re-recorded in the new form) plus ``extra`` (e.g. the stages it was planned after).
    Keeps the manifest's mtime (the launcher's clock). Returns the new manifest."""
    man = read_json(manifest_path)
    name = man.get("stage") or manifest_path.parent.relative_to(workdir).as_posix()
    specs = {k: as_input(v) for k, v in (man.get("inputs") or {}).items()}
    specs.update({k: v for k, v in dict(extra).items() if k not in specs})
    records = {}
    for k, spec in specs.items():
        try:
            records[k] = resolve(workdir, k, spec)
        except AbawError:  # gone since: recorded as it was, so the change shows
            records[k] = {**man["inputs"][k], "kind": spec.kind} if k in (man.get("inputs") or {}) else None
    records = {k: v for k, v in records.items() if v is not None}
    man.update(kind=kind or default_kind(name), version=version, inputs=records, migrated=True)
    man["identity"] = identity(man["kind"], version, man.get("config_hash", ""),
                               {k: record_id(v) for k, v in records.items()})
    rewrite_manifest(manifest_path, man)
    return man


def migrate(workdir: str | Path, outputs: Iterable[tuple[str, Mapping[str, Input]]],
            say: Callable[[str], None] | None = None) -> int:
    """Migrate every output (stage name, extra inputs) whose manifest lacks an identity, upstream first
    (give them in plan order); say one line "migrated <workdir>: recorded identities for N outputs". Returns N."""
    n = 0
    for name, extra in outputs:
        path = Path(workdir) / name / MANIFEST
        if not path.exists() or "identity" in read_json(path):
            continue
        live = {k: v for k, v in extra.items() if v.kind != "stage" or (Path(workdir) / v.path / MANIFEST).exists()}
        migrate_manifest(workdir, path, live)
        n += 1
    if n and say is not None:
        say(migrated_line(workdir, n))
    return n
