"""The local launcher of ``abaw run``: jobs as subprocesses on GPU or CPU slots, ready jobs first by
critical path, each with its own log, process group and ``CUDA_VISIBLE_DEVICES``.

Writes ``<workdir>/run/jobs.json`` (state, device, wall time per job), ``run/logs/`` and ``run/done/``."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from abawkit.console import console
from abawkit.devices import job_gpus
from abawkit.errors import AbawError
from abawkit.io import write_text
from abawkit.run import plan as pl
from abawkit.run.plan import Job
from abawkit.workspace.locks import stage_lock


@dataclass(frozen=True)
class Slot:
    """Where one job runs at a time: a GPU (``CUDA_VISIBLE_DEVICES``) or a CPU share."""

    device: str
    env: dict[str, str]



def slots(gpus: str | None, jobs: int) -> list[Slot]:
    """``--gpus 0,1`` -> one slot per GPU; else ``jobs`` slots spread over the visible GPUs (or CPU slots).

    GPU numbers are read through an inherited ``CUDA_VISIBLE_DEVICES`` (``abawkit.devices``).
    """

    return [Slot(f"cuda:{g}", {"CUDA_VISIBLE_DEVICES": g}) if g is not None else Slot("cpu", {})
            for g in job_gpus(gpus, jobs)]



def threads_per_job(threads: int, n_slots: int) -> int:
    """Torch threads of each job: the recipe's, else the machine's cores shared by the parallel jobs."""
    return threads or max(1, len(os.sched_getaffinity(0)) // n_slots)



class _Scheduler:
    """Starts ready jobs on free slots, highest critical path first; collects exits from waiter threads."""

    def __init__(self, workdir: Path, jobs: list[Job], todo: dict[str, bool], slots_: list[Slot], threads: int) -> None:
        self.workdir, self.jobs, self.todo, self.threads = workdir, jobs, todo, threads
        self.free = list(range(len(slots_)))
        self.slots = slots_
        self.prio = pl.priorities(jobs)
        self.record = pl.read_record(workdir)
        self.done = {j.id for j in jobs if j.id not in todo}
        self.procs: dict[str, tuple[subprocess.Popen, int, contextlib.ExitStack]] = {}
        self.exits: queue.Queue[tuple[str, int]] = queue.Queue()
        self.waiting: set[str] = set()  # jobs whose stage lock another process holds

    def ready(self) -> list[Job]:
        waiting = [j for j in self.jobs if j.id in self.todo and j.id not in self.procs]
        return sorted((j for j in waiting if all(d in self.done for d in j.deps)), key=lambda j: -self.prio[j.id])

    def start_ready(self) -> bool:
        """Start ready jobs on free slots; a job whose stage lock is held elsewhere waits for it (never
        two runs of one stage). True if some ready job is waiting for such a lock."""

        held = False
        for job in self.ready():
            if not self.free:
                break
            holder = pl.running(self.workdir, job)
            if holder is not None:
                held = True
                if job.id not in self.waiting:
                    console.print(f"[yellow]wait[/]  {job.id}: running elsewhere (pid {holder.get('pid', '?')} "
                                  f"on {holder.get('host', '?')})")
                    self.waiting.add(job.id)
                continue
            self.start(job)
        return held

    def start(self, job: Job) -> None:
        """Start one job in its own session (killed as a group); on any failure the slot and lock are released."""

        slot = self.free.pop(0)
        log = self.workdir / pl.RUN_DIR / "logs" / f"{job.slug}.log"
        cmd = [*job.cmd, *(job.force if self.todo[job.id] else ())]
        env = {**os.environ, **self.slots[slot].env, "OMP_NUM_THREADS": str(self.threads),
               "MKL_NUM_THREADS": str(self.threads), "PYTHONUNBUFFERED": "1"}
        lock = contextlib.ExitStack()
        try:
            path = pl.job_lock_path(self.workdir, job)
            lock.enter_context(stage_lock(path.parent, path.name.removesuffix(".lock")))
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "w") as f:
                f.write("$ " + " ".join(cmd) + "\n")
                f.flush()
                proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        except BaseException:
            lock.close()
            self.free.insert(0, slot)
            raise
        self.procs[job.id] = (proc, slot, lock)
        threading.Thread(target=lambda: self.exits.put((job.id, proc.wait())), daemon=True).start()
        self.record[job.id] = {"state": "running", **pl.identity(job), "argv": cmd, "pid": proc.pid,
                               "device": self.slots[slot].device,
                               "threads": self.threads, "started": time.time(), "log": str(log)}
        pl.write_record(self.workdir, self.record)
        console.print(f"[cyan]start[/] {job.id} on {self.slots[slot].device}")

    def finish(self, job_id: str, rc: int) -> None:
        proc, slot, lock = self.procs.pop(job_id)
        lock.close()
        self.free.append(slot)
        job = next(j for j in self.jobs if j.id == job_id)
        if rc == 0 and job.own_marker:
            write_text(pl.marker_path(self.workdir, job), f"{job.id} exit 0\n")
        rec = self.record[job_id]
        rec.update(finished=time.time(), rc=rc, state="done" if rc == 0 else "failed")
        rec["wall_s"] = round(rec["finished"] - rec["started"], 1)
        del self.todo[job_id]
        if rc == 0:
            self.done.add(job_id)
            console.print(f"[green]done[/]  {job_id} ({rec['wall_s']} s)")
        else:
            console.print(f"[red]failed[/] {job_id} (exit {rc}): see {rec['log']}")
            for dep in pl.dependants(self.jobs, job_id):
                if self.todo.pop(dep, None) is not None:
                    self.record[dep] = {"state": "blocked", "after": job_id}
        pl.write_record(self.workdir, self.record)

    def loop(self) -> None:
        while self.todo:
            held = self.start_ready()
            if not self.procs and not held:
                break
            with contextlib.suppress(queue.Empty):
                self.finish(*self.exits.get(timeout=1.0))

    def stop(self) -> None:
        """Terminate every running job's process group (its DataLoader workers too); stages keep .partial.
        Kills first, records after: a full disk cannot leave a job running."""
        for proc, _, _ in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 20
        for job_id, (proc, _, lock) in list(self.procs.items()):
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            lock.close()
            if job_id in self.record:
                self.record[job_id].update(state="interrupted", finished=None)
        self.procs.clear()
        with contextlib.suppress(OSError):
            pl.write_record(self.workdir, self.record)



class _Interrupted(BaseException):
    pass



@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM / SIGHUP stop the run like Ctrl-C does (children are killed, state stays resumable)."""
    def raise_(signum: int, _frame: Any) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    old = {s: signal.signal(s, raise_) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)



def execute(workdir: Path, jobs: list[Job], slots_: list[Slot], threads: int, force: bool = False) -> dict[str, str]:
    """Run every job not done (see ``plan.todo``); returns final states. However the scheduler ends
    (Ctrl-C, SIGTERM, a full disk, a job that cannot start), it stops its jobs first."""
    workdir = Path(workdir)
    pl.check_graph(jobs)
    with stage_lock(workdir / pl.RUN_DIR, "run"):
        pl.save_plan(workdir, jobs)
        todo = pl.todo(workdir, jobs, pl.assess(workdir, jobs), force)
        sched = _Scheduler(workdir, jobs, todo, slots_, threads)
        try:
            with _signals_interrupt():
                sched.loop()
        except (KeyboardInterrupt, _Interrupted):
            sched.stop()
            raise AbawError(f"interrupted: running jobs were stopped; run again to resume ({workdir})", code=130) from None
        except BaseException:
            sched.stop()
            raise
    return pl.states(workdir, jobs)
