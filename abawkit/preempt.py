"""Stop requests to a training process: save a checkpoint, exit "not finished", resume later.

A SLURM job asks to be warned before its time limit (``--signal=B:USR1@<grace>``; the batch script passes
the USR1 on to the command), and a scheduler that preempts or requeues a job sends SIGTERM first (then
SIGKILL after ``KillWait``). Either signal only sets a flag here; ``engine.fit`` checks it after each
optimizer step, saves its resume checkpoint (atomically) and raises ``NotFinished``: the command exits
with ``EXIT_NOT_FINISHED`` (75, ``EX_TEMPFAIL``: "try again"), the stage keeps its ``.partial``, and the
batch script requeues the job (same SLURM id, so ``afterok`` dependants wait for the real end).

USR1 is caught from the command's first instant (``install``, called by the CLI), so a warning that
arrives while torch is still importing is not fatal; SIGTERM only while a loop can act on it
(``catching``), so everything else still ends on it as before. Reads and writes nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

from abawkit.workspace.stage import Interrupted

EXIT_NOT_FINISHED = 75
_requested: list[str] = []  # names of the signals received, oldest first


class NotFinished(Interrupted):
    """A stop request honoured: checkpoint saved, ``.partial`` kept, exit 75."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = EXIT_NOT_FINISHED


def _note(signum: int, _frame: Any) -> None:
    _requested.append(signal.Signals(signum).name)


def requested() -> str:
    """The first stop signal received ("SIGUSR1", "SIGTERM"), or "" if none."""
    return _requested[0] if _requested else ""


def clear() -> None:
    _requested.clear()


def install() -> None:
    """Catch USR1 for the whole process (a no-op off the main thread, where signals cannot be set)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGUSR1, _note)


@contextlib.contextmanager
def catching() -> Iterator[None]:
    """While a training loop runs: USR1 and TERM are stop requests; the old handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _note) for s in (signal.SIGUSR1, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
