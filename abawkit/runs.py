"""Run directories: resolved config, manifest, logs, atomic writes, resume and ``--force``.

Every stage writes into ``<workdir>/<name>/`` (``name`` may be nested, e.g. ``finetune/au/fold3``).
While running it writes into ``<name>.partial/``; only a finished stage is renamed into place, so a
crash or a bad input never leaves a half-written stage behind. A stage interrupted by a crash keeps
its ``.partial`` folder (checkpoints) and resumes from it when started again with the same config;
a user error (``AbawError``) removes it. A finished stage is a no-op on re-run unless ``force``.
One run at a time per stage: ``<workdir>/<name>.lock`` (``flock``) names the live holder (``lock_holder``).

``manifest.json`` records inputs (files and checkpoint folders with their content ``sha256``, data
folders with their ``listing_sha256``), outputs (with sha256), metrics, seed, versions and times; later stages find their inputs through it (``load_stage``), not by globbing the disk.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import platform
import secrets
import shutil
import socket
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from abawkit.config import to_dict
from abawkit.errors import AbawError, first_line
from abawkit.files import folder_key, hidden

MANIFEST = "manifest.json"


# ----------------------------------------------------------------------------- atomic files
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Durable: the temp file is fsynced before the rename and its folder after, so after a power cut
    ``path`` is the old file or the whole new one, never an empty file that counts as written
    (manifests, checkpoints, submissions and every other output go through here).
    The temp file is created with mode 0666 minus the umask (0644 under umask 022), like any file
    ``open()`` creates; ``mkstemp``'s 0600 would hide outputs from teammates on a shared server.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temp(path)
    try:
        yield tmp_path
        fsync_path(tmp_path)
        os.replace(tmp_path, path)
        fsync_path(path.parent)
    except OSError as exc:  # name the file the user knows (a full disk in write() names none)
        if exc.filename in (None, str(tmp_path)):
            exc.filename = str(path)
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def fsync_path(path: str | Path) -> None:
    """fsync a file's data, or a folder's entries (the renames into it), by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(path: Path) -> Path:
    """A new empty ``.<name>.<random>.tmp`` beside ``path`` (O_EXCL: never someone else's file)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:  # read-only, no permission: name the file the user knows
            exc.filename = str(path)
            raise
    raise AbawError(f"{path.parent}: cannot create a temporary file")


def write_error(path: str | Path, exc: BaseException | str) -> OSError:
    """An ``OSError`` naming ``path`` for a library whose failed write says only "failed" (soundfile,
    torch.save, cv2.imwrite): ENOSPC when the disk is (nearly) full, else EIO."""
    try:
        full = shutil.disk_usage(Path(path).parent).free < 1 << 20
    except OSError:
        full = False
    code = errno.ENOSPC if full else errno.EIO
    return OSError(code, f"{os.strerror(code)}: {first_line(exc, 120)}", str(path))


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
    """Streamed sha256 of a file's bytes. Files of ``CACHE_MIN`` bytes or more are cached by
    (path, size, mtime_ns, inode) under ``hash_cache_dir()``, so a 1 GB checkpoint read by many jobs
    is hashed once; a rewritten file changes its mtime_ns and is hashed again."""
    st = os.stat(path)
    cache = _cache_file(path, st) if st.st_size >= CACHE_MIN else None
    if cache is not None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            hit = cache.read_text().strip()
            if len(hit) == 64:
                return hit
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    digest = h.hexdigest()
    if cache is not None:
        with contextlib.suppress(OSError):  # a read-only cache only costs time
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache) as tmp:
                tmp.write_text(digest + "\n")
    return digest


CACHE_MIN = 1 << 20


def hash_cache_dir() -> Path:
    """``$ABAW_HASH_CACHE``, else ``$XDG_CACHE_HOME/abawkit/sha256`` (``~/.cache/...``)."""
    if env := os.environ.get("ABAW_HASH_CACHE"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "abawkit" / "sha256"


def _cache_file(path: str | Path, st: os.stat_result) -> Path:
    key = f"{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_dev}"
    return hash_cache_dir() / hashlib.sha256(key.encode()).hexdigest()


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _walk(root: str | Path) -> Iterator[tuple[str, str, list[str]]]:
    """(folder, its path relative to ``root``, its visible file names sorted), folders sorted.

    Follows links to folders, each folder once (by ``files.folder_key``, so a link cycle ends); skips
    hidden names (``files.hidden``: ``.x``, macOS ``._x`` copies); a link that points nowhere is an error
    naming the link. ``scandir`` gives each entry's type without a ``stat`` (only links are followed,
    and each folder is stat'ed once), so 3 M crops list in seconds (``os.walk`` + a check per file: ~10x slower)."""
    stack, seen = [str(root)], {folder_key(str(root))}
    while stack:
        dirpath = stack.pop()
        dirs, files = [], []
        with os.scandir(dirpath) as it:
            entries = sorted((e for e in it if not hidden(e.name)), key=lambda e: e.name)  # first name wins
        for entry in entries:
            if entry.is_symlink() and not os.path.exists(entry.path):
                raise AbawError(f"{entry.path}: dangling symbolic link "
                                f"(it points to {os.readlink(entry.path)}, which does not exist)")
            if not entry.is_dir():
                files.append(entry.name)
            elif (key := folder_key(entry.path)) not in seen:
                seen.add(key)
                dirs.append(entry.name)
        yield dirpath, os.path.relpath(dirpath, root), files
        stack.extend(os.path.join(dirpath, d) for d in sorted(dirs, reverse=True))


def content_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, or of a folder's relative names with each file's content sha256
    (a checkpoint folder: retrained weights of the same shape change it)."""
    p = Path(path)
    if p.is_symlink() and not p.exists():
        raise AbawError(f"{p}: dangling symbolic link (it points to {os.readlink(p)}, which does not exist)")
    if p.is_file():
        return sha256_file(p)
    h = hashlib.sha256()
    for dirpath, rel, files in _walk(p):
        for f in files:
            h.update(f"{rel}/{f}\0{sha256_file(os.path.join(dirpath, f))}\n".encode())
    return h.hexdigest()


def listing_sha256(path: str | Path) -> str:
    """sha256 of a folder's listing: each folder's relative name and mtime_ns; each file's name, and
    the size and mtime_ns of every file that is not an image (annotations, test lists, templates).

    A release or face collection holds millions of crops: their names and their folders' mtime_ns
    need no per-file ``stat`` (see README: a 3 M-crop listing), and adding, removing or replacing a
    crop changes its folder's mtime_ns; a crop rewritten in place under the same name does not."""
    h = hashlib.sha256()
    for dirpath, rel, files in _walk(path):
        lines = [f"{rel}/\0{os.stat(dirpath).st_mtime_ns}"]
        for f in files:
            if f.lower().endswith(IMAGE_SUFFIXES):
                lines.append(f)
            else:
                st = os.stat(os.path.join(dirpath, f))
                lines.append(f"{f}\0{st.st_size}\0{st.st_mtime_ns}")
        h.update(("\n".join(lines) + "\n").encode())  # one update per folder: 3 M crops hash in seconds
    return h.hexdigest()


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

    def add_input(self, name: str, path: str | Path, content: bool | None = None) -> None:
        """Record an input with its fingerprint: a file's (or, with ``content``, a checkpoint folder's)
        ``sha256``, a data folder's ``listing_sha256`` (see ``listing_sha256``)."""
        if content or Path(path).is_file():
            self.inputs[name] = {"path": str(path), "sha256": content_sha256(path)}
        else:
            self.inputs[name] = {"path": str(path), "listing_sha256": listing_sha256(path)}

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
    main_process: bool = True,
) -> StageRun:
    """Start (or resume) stage ``name`` under ``workdir``.

    Raises ``StageDone`` if it already finished with this config, ``AbawError`` if it finished
    with another config and ``force`` is off. A leftover ``.partial`` folder with the same config
    is kept (resume); with another config it is cleared. A ``.partial`` started with ``force`` is
    resumed even beside a finished output: the redo it began is what the output will be.
    """
    run = StageRun(name, Path(workdir), config, seed=seed, force=force, main_process=main_process)
    manifest = run.final_dir / MANIFEST
    cfg_file = run.dir / "config.json"
    started = read_json(cfg_file) if cfg_file.exists() else {}
    redoing = not force and started.get("forced") and started.get("config_hash") == config_hash(config)
    if manifest.exists() and not force and not redoing:
        old = read_json(manifest)
        if old.get("config_hash") == config_hash(config):
            raise StageDone(run.final_dir)
        raise AbawError(f"{run.final_dir} exists from a run with another config; pass --force to overwrite it")
    if not main_process:
        return run
    if run.dir.exists() and (force or started.get("config_hash") != config_hash(config)):
        shutil.rmtree(run.dir)
    run.dir.mkdir(parents=True, exist_ok=True)
    write_json(cfg_file, {"config": to_dict(config), "config_hash": config_hash(config), "seed": seed,
                          "forced": bool(force or redoing)})
    run.log("start", resumed=any(p.name not in ("config.json",) for p in run.dir.iterdir()))
    return run


@contextlib.contextmanager
def stage(workdir: str | Path, name: str, config: Any, **kw: Any) -> Iterator[StageRun]:
    """``with stage(...) as run:`` — finish on success, clean up on a user error.

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


# ----------------------------------------------------------------------------- stage locks
def lock_path(workdir: str | Path, name: str) -> Path:
    """``<workdir>/<name>.lock``, beside the stage folder (``W/finetune/au/fold3.lock``)."""
    return Path(workdir) / f"{name}.lock"


@contextlib.contextmanager
def stage_lock(workdir: str | Path, name: str) -> Iterator[None]:
    """Hold stage ``name``'s lock (``flock``, so a killed holder never blocks: the kernel drops it).

    The file holds ``{"pid", "host", "started"}`` of the holder and is removed when the stage ends.
    Another process holding it -> ``AbawError`` naming its pid and host.
    """
    path = lock_path(workdir, name)
    fd = _acquire(path, name)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if _same_file(fd, path):
                path.unlink()  # while still locked: a waiter re-checks the inode and retries
        os.close(fd)


def _acquire(path: Path, name: str, grace_s: float = 0.5) -> int:
    """Open + ``flock`` the lock file; retry for ``grace_s`` (a ``lock_holder`` probe holds it for microseconds)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + grace_s
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            if time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            raise AbawError(f"{name} is already running (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
                            f"lock {path}): wait for it to end, or stop it, then run this again") from None
        if _same_file(fd, path):  # else the holder removed it between our open and flock: take the new one
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}).encode())
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _read_holder(fd: int) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        if isinstance(info, dict):
            return info
    return {}


def lock_holder(workdir: str | Path, name: str) -> dict[str, Any] | None:
    """``{"pid", "host", "started"}`` if a live process holds stage ``name``'s lock, else None.

    A lock file left by a killed run is not held (the kernel released its ``flock``): None.
    """
    import fcntl

    try:
        fd = os.open(lock_path(workdir, name), os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"pid": None, "host": None, "started": None, **_read_holder(fd)}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


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
