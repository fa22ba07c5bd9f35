"""Atomic, durable file writes and JSON reads: every output of abawkit goes through here.

A write goes to a temp file beside its target, is fsynced and renamed into place, so after a crash or a
power cut a path holds the old file or the whole new one, never a half-written one. Reads and writes
name the file the user knows in every error."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Iterator

from abawkit.errors import AbawError, first_line


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
