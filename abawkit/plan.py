"""The job graph of ``abaw run`` and the state of each job, read from the workspace.

A job is one ``abaw`` command (one stage) with the jobs it depends on and the file whose existence
means it finished (its stage's ``manifest.json``, or the run's own record for jobs without one).
States, recomputed from disk at any time (so ``abaw status`` works while a run is going):

- ``done``: finished, and after every job it depends on (which are done too);
- ``stale``: finished, but something it depends on finished later or is missing: it must be redone;
- ``running``: its stage lock or the scheduler's job lock is held by a live process;
- ``failed``: the last run of it exited non-zero (its log is in ``<workdir>/run/logs/``);
- ``blocked``: something it depends on failed in this run;
- ``pending``: not started (or interrupted: its stage resumes from ``.partial``).

Reads ``<workdir>/run/jobs.json`` (per job: state, device, wall time, log, exit code), written by
``stages/run.py``; writes nothing itself except through ``write_record``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from abawkit.errors import AbawError
from abawkit.runs import MANIFEST, lock_holder, read_json, write_json

RUN_DIR = "run"
RECORD = "jobs.json"
METRIC_KEYS = ("val_score", "score", "final_loss", "frames")


@dataclass(frozen=True)
class Job:
    """One command of the plan. ``marker`` is relative to the workspace; empty = the run's record."""

    id: str
    stage: str
    cmd: tuple[str, ...]  # the full command line (``python -m abawkit.cli ...``)
    deps: tuple[str, ...] = ()
    marker: str = ""
    cost: float = 1.0  # rough relative duration: long jobs on the critical path start first
    force: tuple[str, ...] = ("--force",)  # appended to redo a stale (or --force'd) job

    @property
    def slug(self) -> str:
        return self.id.replace("/", "__")


def stage_marker(name: str) -> str:
    return f"{name}/{MANIFEST}"


def check_graph(jobs: Sequence[Job]) -> None:
    """Unique ids, known dependencies, listed before their dependants (the plan is built in order)."""
    seen: set[str] = set()
    for job in jobs:
        if job.id in seen:
            raise AbawError(f"plan: job {job.id} appears twice")
        missing = [d for d in job.deps if d not in seen]
        if missing:
            raise AbawError(f"plan: job {job.id} depends on {missing[0]}, which is not planned before it")
        seen.add(job.id)


def dependants(jobs: Sequence[Job], failed: str) -> set[str]:
    """Every job that (transitively) depends on ``failed``."""
    out: set[str] = set()
    for job in jobs:  # topological order: one pass suffices
        if failed in job.deps or out.intersection(job.deps):
            out.add(job.id)
    return out


def priorities(jobs: Sequence[Job]) -> dict[str, float]:
    """Length (in cost) of the longest chain from each job to the end of the plan: start those first."""
    prio: dict[str, float] = {}
    for job in reversed(jobs):
        after = [prio[j.id] for j in jobs if job.id in j.deps]
        prio[job.id] = job.cost + max(after, default=0.0)
    return prio


# ----------------------------------------------------------------------------- the run's record
def record_path(workdir: Path) -> Path:
    return Path(workdir) / RUN_DIR / RECORD


def read_record(workdir: Path) -> dict[str, dict[str, Any]]:
    path = record_path(workdir)
    return read_json(path).get("jobs", {}) if path.exists() else {}


def write_record(workdir: Path, jobs: dict[str, dict[str, Any]]) -> None:
    write_json(record_path(workdir), {"jobs": jobs, "updated": time.time()})


def job_lock_path(workdir: Path, job: Job) -> Path:
    return Path(workdir) / RUN_DIR / "locks" / f"{job.slug}.lock"


def running(workdir: Path, job: Job) -> bool:
    lock = job_lock_path(workdir, job)
    return (lock_holder(workdir, job.id) is not None
            or lock_holder(lock.parent, lock.name.removesuffix(".lock")) is not None)


# ----------------------------------------------------------------------------- states
def finished_at(workdir: Path, job: Job, record: dict[str, dict[str, Any]]) -> float | None:
    """When the job last finished (marker file's time, else the run's record), None if it never did."""
    if job.marker:
        path = Path(workdir) / job.marker
        return path.stat().st_mtime if path.exists() else None
    rec = record.get(job.id, {})
    return rec.get("finished") if rec.get("state") == "done" else None


def states(workdir: Path, jobs: Sequence[Job], record: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """State of every job (see the module docstring), dependencies first."""
    record = read_record(workdir) if record is None else record
    out: dict[str, str] = {}
    when: dict[str, float] = {}
    for job in jobs:
        t = finished_at(workdir, job, record)
        if running(workdir, job):
            out[job.id] = "running"
        elif t is None:
            last = record.get(job.id, {}).get("state")
            out[job.id] = last if last in ("failed", "blocked") else "pending"
        elif any(out[d] != "done" or when[d] > t for d in job.deps):
            out[job.id] = "stale"
        else:
            out[job.id] = "done"
        if t is not None:
            when[job.id] = t
    return out


def metric(workdir: Path, job: Job) -> float | None:
    """The job's headline number from its manifest (validation score, search score, final loss)."""
    if not job.marker.endswith(MANIFEST):
        return None
    path = Path(workdir) / job.marker
    if not path.exists():
        return None
    metrics = read_json(path).get("metrics", {})
    return next((float(metrics[k]) for k in METRIC_KEYS if isinstance(metrics.get(k), (int, float))), None)


def progress(workdir: Path, job: Job) -> str | None:
    """Where a running stage is: the last ``epoch``/``step`` of its ``.partial/log.jsonl`` (read from the end)."""
    path = Path(workdir) / f"{job.id}.partial" / "log.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            last = json.loads(f.read().splitlines()[-1])
    except (OSError, IndexError, json.JSONDecodeError):
        return None
    parts = [f"{k} {last[k]}" for k in ("epoch", "step") if k in last]
    return " ".join(parts) or None


def rows(workdir: Path, jobs: Sequence[Job], record: dict[str, dict[str, Any]] | None = None,
         state: dict[str, str] | None = None) -> list[list[Any]]:
    """Table rows: job, stage, state, metric (or a running job's epoch and step), wall time, device, depends on."""
    record = read_record(workdir) if record is None else record
    state = states(workdir, jobs, record) if state is None else state
    out = []
    for job in jobs:
        rec = record.get(job.id, {})
        wall = rec.get("wall_s")
        m = metric(workdir, job) if state[job.id] in ("done", "stale") else None
        if state[job.id] == "running":
            m = progress(workdir, job)
            wall = time.time() - rec["started"] if rec.get("state") == "running" else None
        out.append([job.id, job.stage, state[job.id], "-" if m is None else m,
                    "-" if wall is None else f"{wall:.1f} s", rec.get("device", "-"), ", ".join(job.deps) or "-"])
    return out


COLUMNS = ("job", "stage", "state", "metric", "wall", "device", "depends on")


def counts(state: dict[str, str]) -> str:
    order = ("done", "running", "stale", "pending", "failed", "blocked")
    return ", ".join(f"{sum(s == k for s in state.values())} {k}" for k in order if k in state.values())


def save_plan(workdir: Path, jobs: Iterable[Job]) -> None:
    """The plan itself, so ``abaw status`` shows it without the recipe or the run's options."""
    write_json(Path(workdir) / RUN_DIR / "plan.json",
               {"jobs": [{"id": j.id, "stage": j.stage, "cmd": list(j.cmd), "deps": list(j.deps), "marker": j.marker,
                          "cost": j.cost, "force": list(j.force)} for j in jobs]})


def load_plan(workdir: Path) -> list[Job]:
    path = Path(workdir) / RUN_DIR / "plan.json"
    if not path.exists():
        raise AbawError(f"{path} not found: no `abaw run` (or `abaw demo`) has been started in {workdir}")
    return [Job(j["id"], j["stage"], tuple(j["cmd"]), tuple(j["deps"]), j["marker"], j["cost"], tuple(j["force"]))
            for j in read_json(path)["jobs"]]
