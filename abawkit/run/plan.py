"""The job graph of ``abaw run`` and the state of each job, from facts recorded when it ran.

A job is one ``abaw`` command (one stage) with the jobs it depends on and its marker: a file on the
workspace's filesystem that exists once it finished (its stage's ``manifest.json``; for jobs
without one, ``run/done/<job>``, written by the launcher when the job exits 0). Every time compared
is a marker's mtime, so every clock is the workspace's file server's (see ``marker_time``).

Each launch records in ``<workdir>/run/jobs.json`` the job's command line and config hash
(``identity``: the command without its interpreter, and the recipe file its stage reads, parsed),
then its exit code. States, recomputed at any time (so ``abaw status`` works while a run is going):

- ``done``: its last run exited 0, with the command line and config hash it would have now, its
  marker exists, its stage's identity has not changed (``workspace.identity.changes`` on its manifest: every
  input recomputed now), and every job it depends on is done and finished no later;
- ``stale``: finished once, but not ``done``: ``reason`` says why ("config changed", "command
  changed", the first line of ``identity.changes``: "input changed: checkpoints/hubert (checkpoint)",
  "labels changed: VA_Estimation_Challenge/Train_Set/x.txt", "input redone: X"; "input X stale",
  "no record of a run that succeeded");
- ``running`` / ``queued``: its stage lock or the local scheduler's job lock is held by a live
  process, or its SLURM job is running / waiting (``live``);
- ``failed``: its last run exited non-zero or ended without an exit code (log in ``run/logs/``),
  whether or not an older output is still there;
- ``blocked``: something it depends on failed in the run that should have started it;
- ``pending``: not finished (never started, or interrupted: its stage resumes from ``.partial``).

Reads ``jobs.json`` (per job: state, command, config hash, exit code, device or SLURM id, wall time,
log), written by the launchers in ``run/local.py`` and ``run/slurm.py``, and the stages' manifests; writes
nothing itself except through ``write_record`` and ``migrate`` (identities of a workspace made before them).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from abawkit.config import recipe_file
from abawkit.console import console
from abawkit.errors import AbawError
from abawkit.io import read_json, write_json
from abawkit.workspace import identity as ident
from abawkit.workspace.locks import lock_holder
from abawkit.workspace.stage import MANIFEST

RUN_DIR = "run"
RECORD = "jobs.json"
METRIC_KEYS = ("val_score", "score", "final_loss", "frames")
LIVE = ("running", "queued")


@dataclass(frozen=True)
class Job:
    """One command of the plan. ``marker`` is relative to the workspace; empty = ``run/done/<slug>``."""

    id: str
    stage: str
    cmd: tuple[str, ...]  # the full command line (``python -m abawkit.cli ...``)
    deps: tuple[str, ...] = ()
    marker: str = ""
    cost: float = 1.0  # rough relative duration: long jobs on the critical path start first
    force: tuple[str, ...] = ("--force",)  # appended to redo a finished job
    recipe: str = ""  # the recipe whose ``<stage>.toml`` the job reads (part of its config hash)

    @property
    def slug(self) -> str:
        return self.id.replace("/", "__")

    @property
    def own_marker(self) -> bool:
        """True when the launcher writes the marker (the command writes no manifest of its own)."""
        return not self.marker


def stage_marker(name: str) -> str:
    return f"{name}/{MANIFEST}"


def stage_of(job: Job) -> str:
    """The stage folder a job writes (its marker is that stage's manifest), "" for a launcher marker."""
    return job.marker[: -len(MANIFEST) - 1] if job.marker.endswith("/" + MANIFEST) else ""


def migrate(workdir: Path, jobs: Sequence[Job]) -> int:
    """Record the identities of finished stages written before identities existed (computed from what is
    there now, each planned dependency as a stage input), in plan order; one line says how many."""
    stages = {j.id: stage_of(j) for j in jobs}
    outputs = [(stages[j.id], {stages[d]: ident.upstream(stages[d]) for d in j.deps if stages.get(d)})
               for j in jobs if stages[j.id]]
    return ident.migrate(workdir, outputs, lambda line: console.print(line, markup=False, soft_wrap=True))


def marker_path(workdir: Path, job: Job) -> Path:
    return Path(workdir) / (job.marker or f"{RUN_DIR}/done/{job.slug}")


def marker_time(workdir: Path, job: Job) -> int | None:
    """The marker's mtime in ns (the workspace filesystem's clock), None if the job never finished."""
    try:
        return os.stat(marker_path(workdir, job)).st_mtime_ns
    except OSError:
        return None


def identity(job: Job) -> dict[str, Any]:
    """What a job's "done" is tied to: its command line (without the interpreter, which may move) and a
    hash of that command with the recipe file its stage resolves its config from (parsed: comments do
    not count). ``--seed``, ``--mae``, ``--set`` and a recipe edit all change it."""

    recipe: Any = None
    try:
        path = recipe_file(job.recipe, job.stage) if job.recipe else None
    except AbawError:  # a stage without a recipe file (validate)
        path = None
    if path is not None:
        try:
            recipe = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):  # the job itself will say what is wrong
            recipe = "unreadable"
    cmd = list(job.cmd[1:])
    blob = json.dumps({"cmd": cmd, "recipe": recipe}, sort_keys=True, default=str)
    return {"cmd": cmd, "config_hash": hashlib.sha256(blob.encode()).hexdigest()[:16]}


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


def running(workdir: Path, job: Job) -> dict[str, Any] | None:
    """The holder of the job's stage lock or of the local scheduler's job lock, None if neither is held."""
    lock = job_lock_path(workdir, job)
    return lock_holder(workdir, job.id) or lock_holder(lock.parent, lock.name.removesuffix(".lock"))


# ----------------------------------------------------------------------------- states
@dataclass(frozen=True)
class State:
    state: str
    reason: str = ""


def assess(workdir: Path, jobs: Sequence[Job], record: Mapping[str, dict[str, Any]] | None = None,
           live: Mapping[str, str] | None = None) -> dict[str, State]:
    """State and reason of every job (see the module docstring), dependencies first.

    ``live``: job -> "running" / "queued" for jobs a launcher knows to be alive (SLURM's queue)."""
    record = read_record(workdir) if record is None else record
    live = live or {}
    migrate(workdir, jobs)
    out: dict[str, State] = {}
    when: dict[str, int | None] = {}
    for job in jobs:
        when[job.id] = marker_time(workdir, job)
        out[job.id] = _assess_one(workdir, job, record.get(job.id, {}), live.get(job.id), out, when)
    return out


def _assess_one(workdir: Path, job: Job, rec: dict[str, Any], live: str | None, out: dict[str, State],
                when: dict[str, int | None]) -> State:
    last = rec.get("state")
    if live or running(workdir, job):
        return State(live or "running")
    if last == "failed":
        return State("failed", f"last run failed (exit {rec.get('rc', '?')})" if rec.get("rc") is not None
                     else "last run ended without an exit code (cancelled or killed)")
    if last == "blocked":
        return State("blocked", f"{rec.get('after', 'a dependency')} failed")
    t = when[job.id]
    if t is None:
        return State("pending", "interrupted" if last in ("interrupted", *LIVE) else "")
    if last != "done" or rec.get("rc") != 0:
        return State("stale", "no record of a run that succeeded")
    now = identity(job)
    if rec.get("cmd") != now["cmd"]:
        return State("stale", "command changed")
    if rec.get("config_hash") != now["config_hash"]:
        return State("stale", "config changed")
    if job.marker.endswith(MANIFEST) and (changed := ident.changes(workdir, read_json(marker_path(workdir, job)))):
        return State("stale", changed[0])
    for d in job.deps:
        if out[d].state != "done":
            return State("stale", f"input {d} {out[d].state}")
        if (when[d] or 0) > t:
            return State("stale", f"input redone: {d}")
    return State("done")


def states(workdir: Path, jobs: Sequence[Job], record: Mapping[str, dict[str, Any]] | None = None,
           live: Mapping[str, str] | None = None) -> dict[str, str]:
    """State of every job (see the module docstring), dependencies first."""
    return {k: v.state for k, v in assess(workdir, jobs, record, live).items()}


def todo(workdir: Path, jobs: Sequence[Job], state: Mapping[str, State], force: bool = False) -> dict[str, bool]:
    """Jobs to run (every one not done, or all with ``force``) -> whether to pass its ``--force``.

    A job whose old output is still there starts over, and so does every job after a job redone in
    this run: nothing resumes from a ``.partial`` built on old inputs, nor keeps an output made from them."""
    out: dict[str, bool] = {}
    for job in jobs:
        if force or state[job.id].state != "done":
            out[job.id] = (force or marker_time(workdir, job) is not None
                           or any(d in out for d in job.deps))
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
    try:
        last = json.loads(last_line(Path(workdir) / f"{job.id}.partial" / "log.jsonl"))
    except json.JSONDecodeError:
        return None
    parts = [f"{k} {last[k]}" for k in ("epoch", "step") if k in last]
    return " ".join(parts) or None


def last_line(path: Path) -> str:
    """The last non-empty line of a log (a stage's last event, a failed job's one-line error), read
    from the end; "" if there is none."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def rows(workdir: Path, jobs: Sequence[Job], record: dict[str, dict[str, Any]],
         state: Mapping[str, State]) -> list[dict[str, Any]]:
    """One row per job: job, stage, state, metric (or a running job's epoch and step), wall time,
    where it ran (device, or SLURM job id and how many times SLURM restarted it), depends on."""
    out = []
    for job in jobs:
        rec, st = record.get(job.id, {}), state[job.id].state
        wall = rec.get("wall_s")
        m = metric(workdir, job) if st in ("done", "stale") else None
        if st == "running":
            m = progress(workdir, job)
            wall = time.time() - rec["started"] if rec.get("state") == "running" and rec.get("started") else None
        where = f"slurm {rec['slurm_id']}" if rec.get("slurm_id") else rec.get("device", "-")
        if rec.get("restarts"):  # requeued by a time limit or a preemption, resumed each time
            where += f" ({rec['restarts']} restart{'s' if rec['restarts'] > 1 else ''})"
        out.append({"job": job.id, "stage": job.stage, "state": st, "metric": "-" if m is None else m,
                    "wall": "-" if wall is None else f"{wall:.1f} s", "where": where,
                    "depends on": ", ".join(job.deps) or "-"})
    return out


COLUMNS = ("job", "stage", "state", "metric", "wall", "where", "depends on")
NARROW = ("job", "state", "metric", "wall", "where")  # fits 80 columns; the dependencies are in the plan


def counts(state: Mapping[str, str]) -> str:
    order = ("done", "running", "queued", "stale", "pending", "failed", "blocked")
    return ", ".join(f"{sum(s == k for s in state.values())} {k}" for k in order if k in state.values())


def save_plan(workdir: Path, jobs: Iterable[Job]) -> None:
    """The plan itself, so ``abaw status`` shows it without the recipe or the run's options."""
    write_json(Path(workdir) / RUN_DIR / "plan.json",
               {"jobs": [{"id": j.id, "stage": j.stage, "cmd": list(j.cmd), "deps": list(j.deps), "marker": j.marker,
                          "cost": j.cost, "force": list(j.force), "recipe": j.recipe} for j in jobs]})


def load_plan(workdir: Path) -> list[Job]:
    path = Path(workdir) / RUN_DIR / "plan.json"
    if not path.exists():
        raise AbawError(f"{path} not found: no `abaw run` (or `abaw demo`) has been started in {workdir}")
    return [Job(j["id"], j["stage"], tuple(j["cmd"]), tuple(j["deps"]), j["marker"], j["cost"], tuple(j["force"]),
                j.get("recipe", "")) for j in read_json(path)["jobs"]]
