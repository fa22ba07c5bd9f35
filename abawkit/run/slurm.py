"""``abaw run --launcher slurm``: the same plan as the local scheduler, each job a SLURM batch job.

Every job not done, queued or running is submitted with ``sbatch`` in plan order, with
``--dependency=afterok:<ids of the jobs it waits for>`` and ``--kill-on-invalid-dep=yes`` (a failed job's
dependants are cancelled by SLURM instead of waiting forever). ``sbatch`` is called directly rather than
through submitit: a job here is already a command line, the dependencies are one flag, and the script is
plain text a user can read, test (``batch_script``) and resubmit by hand; submitit's value (pickling Python
callables, its own folder of results) would be a second record beside ``run/jobs.json``.

Each job's script runs its command, then records what happened as files on the workspace's filesystem:
``run/exits/<slurm id>.json`` (exit code and wall time) and, for jobs without a stage manifest, the marker
``run/done/<job>``; ``plan.py`` reads states from them, so no clock of a compute node is compared, and judges
"done" by the same identity rule as a stage run by hand (``plan.assess`` -> ``workspace.identity.changes``).
Every job is requeueable (``--requeue``): a node that fails under it puts it back in the queue under the same
SLURM id, so its dependants keep waiting for it, and its log is appended to (``--open-mode=append``). An exit
file an earlier run of a requeued job left is void: each run removes it first, and a pending job is queued.
Resources per stage come from ``run.toml``'s ``[slurm]`` table (its values, overridden by
``[slurm.<stage>]``); ``nodes`` / ``gpus_per_node`` run pretrain and finetune as ``srun`` + torchrun (DDP).

Reads and writes ``<workdir>/run/jobs.json`` (per job: SLURM id, state, command, config hash), writes
``run/slurm/<job>.sh`` and the jobs write ``run/logs/<job>.log``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

from abawkit.console import console
from abawkit.errors import AbawError
from abawkit.io import read_json, write_json, write_text
from abawkit.preempt import EXIT_NOT_FINISHED
from abawkit.run import plan as pl
from abawkit.run.plan import Job
from abawkit.workspace.locks import stage_lock

DDP_STAGES = ("pretrain", "finetune")
STATUS_ENV = "ABAW_EXIT_STATUS_FILE"  # where cli.main writes the command's exit status under a batch script
TRAIN_STAGES = ("pretrain", "finetune", "tmf")  # engine.fit saves and exits 75 on USR1 / TERM (abawkit.preempt)
LIVE_STATES = {"PENDING": "queued", "CONFIGURING": "queued", "REQUEUED": "queued", "RESIZING": "queued",
               "SUSPENDED": "queued", "RUNNING": "running", "COMPLETING": "running"}


@dataclass(frozen=True)
class Resources:
    """One job's request; ``None`` / empty = inherit (``[slurm]``), then SLURM's own default."""

    partition: str = ""
    account: str = ""
    time: str = ""  # e.g. "1-00:00:00"
    cpus: int | None = None  # --cpus-per-task
    mem: str = ""  # e.g. "32G"
    gpus: int | None = None  # --gres=gpu:N (single-process jobs)
    nodes: int | None = None  # pretrain / finetune: srun + torchrun across nodes
    gpus_per_node: int | None = None  # pretrain / finetune: torchrun processes per node
    signal_grace: int | None = None  # training stages: USR1 this many seconds before the time limit; 0 = none

    def over(self, other: Resources) -> Resources:
        """``other``'s values where it sets them, else this one's."""
        return replace(self, **{f.name: getattr(other, f.name) for f in fields(other)
                                if getattr(other, f.name) not in (None, "")})


@dataclass(frozen=True)
class SlurmConfig(Resources):
    """``run.toml [slurm]``: defaults for every job, and a table per stage that needs more."""

    prep: Resources = field(default_factory=Resources)
    pretrain: Resources = field(default_factory=Resources)
    finetune: Resources = field(default_factory=Resources)
    extract: Resources = field(default_factory=Resources)
    tmf: Resources = field(default_factory=Resources)
    ensemble: Resources = field(default_factory=Resources)
    smooth: Resources = field(default_factory=Resources)
    submit: Resources = field(default_factory=Resources)
    validate: Resources = field(default_factory=Resources)
    synth: Resources = field(default_factory=Resources)

    def for_stage(self, stage: str) -> Resources:
        base = Resources(**{f.name: getattr(self, f.name) for f in fields(Resources)})
        return base.over(getattr(self, stage, Resources()))


# ----------------------------------------------------------------------------- the batch script
def batch_script(workdir: Path, job: Job, argv: Sequence[str], res: Resources, threads: int) -> str:
    """The ``sbatch`` script of one job: resources, the command (``srun`` + torchrun for DDP stages),
    then its exit code and marker written as files on the workspace (durably, by ``abawkit.io``).

    A training stage asks for USR1 ``signal_grace`` seconds before its time limit and the script passes it
    on; the stage then saves and exits 75 (``preempt.EXIT_NOT_FINISHED``), and the script requeues the job
    (same id: ``afterok`` dependants wait for its real end). A requeued or restarted run drops ``--force``:
    the redo it began resumes from ``.partial``. The log is appended to, one section per run."""
    log = Path(workdir) / pl.RUN_DIR / "logs" / f"{job.slug}.log"
    lines = ["#!/bin/bash", f"#SBATCH --job-name=abaw:{job.id}", f"#SBATCH --output={directive(log, output=True)}",
             f"#SBATCH --chdir={directive(os.getcwd())}", "#SBATCH --kill-on-invalid-dep=yes",
             "#SBATCH --open-mode=append", "#SBATCH --requeue"]
    lines += [f"#SBATCH --{k}={v}" for k, v in (("partition", res.partition), ("account", res.account),
                                                ("time", res.time), ("mem", res.mem)) if v]
    if res.signal_grace and job.stage in TRAIN_STAGES:
        lines.append(f"#SBATCH --signal=B:USR1@{res.signal_grace}")
    ddp = job.stage in DDP_STAGES and ((res.nodes or 1) > 1 or (res.gpus_per_node or 0) > 0)
    if ddp:
        lines += [f"#SBATCH --nodes={res.nodes or 1}", "#SBATCH --ntasks-per-node=1"]
        lines += [f"#SBATCH --gpus-per-node={res.gpus_per_node}"] if res.gpus_per_node else []
    if res.cpus:
        lines.append(f"#SBATCH --cpus-per-task={res.cpus}")
    if res.gpus and not ddp:
        lines.append(f"#SBATCH --gres=gpu:{res.gpus}")
    lines += ["set -u", f"export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} PYTHONUNBUFFERED=1",
              'echo "(SLURM job $SLURM_JOB_ID on $(hostname), restart ${SLURM_RESTART_COUNT:-0})"',
              # a requeued run: the exit code an earlier run of this id left is void
              f'rm -f {shlex.quote(str(Path(workdir) / pl.RUN_DIR / "exits"))}/"$SLURM_JOB_ID.json"']
    first, again = _command(argv, res, ddp), _command([a for a in argv if a not in job.force], res, ddp)
    status = shlex.quote(str(Path(workdir) / pl.RUN_DIR / "exits")) + '/"$SLURM_JOB_ID.status"'
    if not ddp:  # the command writes its own exit status (cli.main): a USR1 racing its end cannot blur it
        exits = shlex.quote(str(Path(workdir) / pl.RUN_DIR / "exits"))
        lines += [f"export {STATUS_ENV}={status}", f"mkdir -p {exits}; rm -f {status}"]
    lines += ['head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'] if ddp else []
    lines += [f"printf '%s\\n' {shlex.quote('$ ' + shlex.join(argv))}",
              # the warning before the time limit goes to the command (also when it comes before it started)
              "pid=; warned=0; trap 'warned=1; [ -z \"$pid\" ] || kill -USR1 \"$pid\" 2>/dev/null' USR1",
              f'if [ "${{SLURM_RESTART_COUNT:-0}}" = 0 ]; then {first} & else {again} & fi',
              'pid=$!; [ "$warned" = 0 ] || kill -USR1 "$pid" 2>/dev/null',
              '# a trapped signal ends `wait` early: wait while the command lives, then take its reported status',
              'wait "$pid"; rc=$?; while kill -0 "$pid" 2>/dev/null; do wait "$pid"; rc=$?; done',
              'wait "$pid" 2>/dev/null; r=$?; [ "$r" = 127 ] || rc=$r  # 127: already reported (older bash)',
              *([f'[ -s {status} ] && rc=$(cat {status}); rm -f {status}'] if not ddp else []),
              f'if [ "$rc" = {EXIT_NOT_FINISHED} ]; then echo "(not finished: requeue)"; '
              'scontrol requeue "$SLURM_JOB_ID" && exit 0; fi']
    lines += [_record_exit(workdir, job, argv[0]), "exit $rc", ""]
    return "\n".join(lines)


def _command(argv: Sequence[str], res: Resources, ddp: bool) -> str:
    """The job's command line, as ``srun`` + torchrun across the allocation's nodes for DDP stages."""
    if not ddp:
        return shlex.join(argv)
    return "srun --kill-on-bad-exit=1 " + shlex.join([
        argv[0], "-m", "torch.distributed.run", "--nnodes", str(res.nodes or 1), "--nproc-per-node",
        str(res.gpus_per_node or 1), "--rdzv-backend", "c10d"]) + \
        ' --rdzv-endpoint "$head:29500" --rdzv-id "$SLURM_JOB_ID" ' + shlex.join(argv[1:])


def directive(path: str | Path, output: bool = False) -> str:
    """A path as the value of an ``#SBATCH`` line. sbatch reads these lines with its own rules, not the
    shell's: double quotes group (spaces), and inside them a backslash escapes ``"`` and ``\\`` (outside
    quotes a backslash does not protect a space). slurmd then reads ``--output`` as a pattern: ``%%`` is a
    literal ``%``, unless the name holds a backslash, which turns patterns off and is itself escaped."""
    text = str(path)
    if "\n" in text:
        raise AbawError(f"{text!r}: SLURM cannot take a path with a line break; move the workspace")
    if output:
        text = text.replace("\\", "\\\\") if "\\" in text else text.replace("%", "%%")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _record_exit(workdir: Path, job: Job, python: str) -> str:
    """Shell line: ``record_exit`` with the command's exit code (a failure to record it fails the job)."""
    marker = str(pl.marker_path(workdir, job)) if job.own_marker else ""
    call = "import sys; from abawkit.run.slurm import record_exit; record_exit(*sys.argv[1:])"
    return (f'{shlex.join([python, "-c", call, str(workdir), job.id, marker])} "$rc" "$SLURM_JOB_ID" "$SECONDS"'
            ' || { [ "$rc" = 0 ] && rc=1; }')


def record_exit(workdir: str, job_id: str, marker: str, rc: str, slurm_id: str, wall_s: str) -> None:
    """Run at the end of a batch script: ``run/exits/<slurm id>.json`` and, on success, the job's marker
    (both written durably, both on the workspace's filesystem: no compute node's clock is compared)."""
    if int(rc) == 0 and marker:
        write_text(marker, f"{job_id} exit 0\n")
    write_json(Path(workdir) / pl.RUN_DIR / "exits" / f"{slurm_id}.json",
               {"job": job_id, "rc": int(rc), "slurm_id": slurm_id, "wall_s": int(wall_s),
                "restarts": int(os.environ.get("SLURM_RESTART_COUNT") or 0)})


# ----------------------------------------------------------------------------- SLURM's view
def available() -> bool:
    return shutil.which("sbatch") is not None


def _slurm(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise AbawError(f"--launcher slurm: {args[0]} not found on PATH (is this a SLURM login node?)") from None


def queue(ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    """SLURM id -> (state: PENDING, RUNNING, COMPLETED, CANCELLED..., restarts: how many times it was requeued)
    of the jobs SLURM still knows."""
    if not ids:
        return {}
    out = _slurm("squeue", "--noheader", "--states=all", "--Format=JobID:|,State:|,RestartCnt:|",
                 f"--jobs={','.join(ids)}")
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        raise AbawError(f"squeue failed: {out.stderr.strip() or out.stdout.strip()}")
    rows = [line.split("|") for line in out.stdout.split() if line.count("|") >= 3]
    return {r[0]: (r[1], int(r[2]) if r[2].isdigit() else 0) for r in rows}


def queue_states(ids: Sequence[str]) -> dict[str, str]:
    """SLURM id -> SLURM state of the jobs SLURM still knows."""
    return {k: v[0] for k, v in queue(ids).items()}


def refresh(workdir: Path, jobs: Sequence[Job], record: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Bring submitted jobs' records up to date (in memory) from SLURM's queue and the exit files the
    jobs wrote; returns job -> "queued" / "running" for the live ones."""
    subs = {j.id: record[j.id]["slurm_id"] for j in jobs
            if record.get(j.id, {}).get("slurm_id") and record[j.id].get("state") in pl.LIVE}
    found = queue(list(subs.values()))
    states = {k: v[0] for k, v in found.items()}
    live = {}
    for job_id, sid in subs.items():
        rec = record[job_id]
        exit_file = Path(workdir) / pl.RUN_DIR / "exits" / f"{sid}.json"
        if sid in found:
            rec["restarts"] = found[sid][1]
        # A job SLURM holds as pending was requeued if its exit file exists: that file is an earlier run's.
        if states.get(sid) in LIVE_STATES and (not exit_file.exists() or LIVE_STATES[states[sid]] == "queued"):
            live[job_id] = LIVE_STATES[states[sid]]
            rec["slurm_state"] = states[sid]
        elif exit_file.exists():
            ex = read_json(exit_file)
            rec.update(state="done" if ex["rc"] == 0 else "failed", rc=ex["rc"], wall_s=ex.get("wall_s"),
                       slurm_state=states.get(sid, "ended"), restarts=ex.get("restarts", rec.get("restarts", 0)))
        else:  # cancelled, killed (time limit, memory, node), or never started: a failed dependency
            failed = [record[d].get("after", d) for d in next(j for j in jobs if j.id == job_id).deps
                      if record.get(d, {}).get("state") in ("failed", "blocked")]
            if failed:
                rec.update(state="blocked", after=failed[0])
            else:
                rec.update(state="failed", rc=None)
            rec["slurm_state"] = states.get(sid, "ended")
    return live


# ----------------------------------------------------------------------------- submit, wait, cancel
def submit(workdir: Path, jobs: list[Job], cfg: SlurmConfig, threads: int, force: bool = False) -> dict[str, str]:
    """Submit every job not done, queued or running (reconciling with what was submitted before);
    returns job -> "queued"/"running" for what is live afterwards. A failed ``sbatch`` cancels what
    this call submitted: nothing is left queued that the record does not know of."""

    workdir = Path(workdir)
    with stage_lock(workdir / pl.RUN_DIR, "run"):
        pl.save_plan(workdir, jobs)
        record = pl.read_record(workdir)
        live = refresh(workdir, jobs, record)
        state = pl.assess(workdir, jobs, record, live)
        todo = pl.todo(workdir, [j for j in jobs if j.id not in live],
                       {k: v for k, v in state.items() if k not in live}, force)
        ids = {j: record[j]["slurm_id"] for j in live}
        new: list[str] = []
        try:
            for job in jobs:
                if job.id in todo:
                    redo = todo[job.id] or any(d in live for d in job.deps)
                    ids[job.id] = _submit_one(workdir, job, cfg, threads, redo, [ids[d] for d in job.deps if d in ids],
                                              record)
                    new.append(ids[job.id])
                    live[job.id] = "queued"
                    pl.write_record(workdir, record)
                    console.print(f"[cyan]submit[/] {job.id}: SLURM job {ids[job.id]}")
        except BaseException:
            if new:
                _slurm("scancel", *new)
            raise
        pl.write_record(workdir, record)
    return live


def _submit_one(workdir: Path, job: Job, cfg: SlurmConfig, threads: int, redo: bool, after: list[str],
                record: dict[str, dict[str, Any]]) -> str:
    argv = [*job.cmd, *(job.force if redo else ())]
    res = cfg.for_stage(job.stage)
    script = write_text(workdir / pl.RUN_DIR / "slurm" / f"{job.slug}.sh",
                        batch_script(workdir, job, argv, res, threads or res.cpus or 1))
    (workdir / pl.RUN_DIR / "logs").mkdir(parents=True, exist_ok=True)
    (workdir / pl.RUN_DIR / "exits").mkdir(parents=True, exist_ok=True)
    dep = [f"--dependency=afterok:{':'.join(after)}"] if after else []
    out = _slurm("sbatch", "--parsable", *dep, str(script))
    if out.returncode != 0:
        raise AbawError(f"sbatch {script} failed: {out.stderr.strip() or out.stdout.strip()}")
    sid = out.stdout.strip().split(";")[0]
    record[job.id] = {"state": "queued", **pl.identity(job), "argv": argv, "slurm_id": sid, "submitted": time.time(),
                      "log": str(workdir / pl.RUN_DIR / "logs" / f"{job.slug}.log"), "script": str(script)}
    return sid


def observe(workdir: Path, jobs: Sequence[Job]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The run's record brought up to date from SLURM's queue and the exit files, and the live jobs (job ->
    queued / running). The refreshed record is written back under the run lock, so every reader (``abaw
    status``, the local launcher, the next submission) judges states from the same facts; when another
    ``abaw run`` holds that lock, it is the writer, and this call only reads."""
    record = pl.read_record(workdir)
    if not any(r.get("slurm_id") and r.get("state") in pl.LIVE for r in record.values()):
        return record, {}
    try:
        with stage_lock(Path(workdir) / pl.RUN_DIR, "run"):
            record = pl.read_record(workdir)
            live = refresh(workdir, jobs, record)
            pl.write_record(workdir, record)
    except AbawError as exc:
        if "already running" not in str(exc):  # squeue failed: the caller says so
            raise
        live = refresh(workdir, jobs, record)
    return record, live


def wait(workdir: Path, jobs: Sequence[Job], poll_s: float = 5.0) -> None:
    """Follow the workspace's SLURM jobs until none is queued or running."""
    while observe(workdir, jobs)[1]:
        time.sleep(poll_s)


def cancel(workdir: Path, jobs: Sequence[Job]) -> list[str]:
    """``scancel`` every queued or running job of the workspace; their records read as interrupted."""
    workdir = Path(workdir)
    with stage_lock(workdir / pl.RUN_DIR, "run"):
        record = pl.read_record(workdir)
        live = refresh(workdir, jobs, record)
        ids = [record[j]["slurm_id"] for j in live]
        if ids:
            out = _slurm("scancel", *ids)
            if out.returncode != 0:
                raise AbawError(f"scancel failed: {out.stderr.strip()}")
        for j in live:
            record[j].update(state="interrupted", slurm_state="CANCELLED")
        pl.write_record(workdir, record)
    return ids

