"""Stage locks: one run of a stage at a time per workspace (``<workdir>/<name>.lock``, ``flock``).

Writes the lock file (holder's pid, host, start time) and removes it when the stage ends; a killed
holder never blocks, as the kernel drops its ``flock``."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator

from abawkit.errors import AbawError


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
