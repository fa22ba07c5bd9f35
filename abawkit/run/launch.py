"""``abaw run`` / ``abaw status`` / ``abaw run --cancel``: build the plan, start it with a launcher
(local or SLURM), print the table of job states.

Reads the recipe (through ``run.build``) and the run's record; writes through the launchers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from abawkit.console import console, table
from abawkit.errors import AbawError
from abawkit.run import plan as pl
from abawkit.run import slurm
from abawkit.run.build import RunConfig, RunInputs, build
from abawkit.run.local import execute, slots, threads_per_job
from abawkit.run.plan import Job
from abawkit.workspace.locks import lock_holder


def summary(workdir: Path, jobs: list[Job], title: str, live: dict[str, str] | None = None,
            record: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """Print the plan's table, then why each job is not done; returns the states.

    Under 120 columns (80 when piped) the table is compact: job, state, metric, wall time, where it
    ran, in a borderless layout that never wraps a cell; wider, it adds each job's stage and dependencies."""
    from rich import box

    record = pl.read_record(workdir) if record is None else record
    assessed = pl.assess(workdir, jobs, record, live)
    cols = pl.COLUMNS if console.width >= 120 else pl.NARROW
    t = table("", cols, [[r[c] for c in cols] for r in pl.rows(workdir, jobs, record, assessed)])
    if cols is pl.NARROW:
        t.box, t.pad_edge, t.show_edge = box.SIMPLE_HEAD, False, False
    for c in t.columns:
        c.no_wrap = c.header != "depends on"
    console.print(t)
    state = {k: v.state for k, v in assessed.items()}
    console.print(f"{title}: {pl.counts(state)}", soft_wrap=True)
    for job in jobs:
        st = assessed[job.id]
        if st.reason:
            log = record.get(job.id, {}).get("log") if st.state == "failed" else None
            colour = "red" if st.state == "failed" else "yellow"
            console.print(f"[{colour}]{st.state}:[/] {job.id}: {st.reason}" + (f"; log {log}" if log else ""),
                          soft_wrap=True, markup=True)
            if log and (last := pl.last_line(Path(log))):
                console.print(f"  {last}", soft_wrap=True, markup=False)
    return state


def run(cfg: RunConfig, inp: RunInputs, gpus: str | None = None, dry_run: bool = False, force: bool = False,
        before: Sequence[Job] = (), after: Sequence[Job] = (), launcher: str = "local",
        wait: bool = False, only: Sequence[Job] | None = None) -> dict[str, str]:
    """Build the plan (``before`` jobs, e.g. the one writing the release, the recipe's, then ``after``),
    print it for ``dry_run``, else run it (``launcher``: local, or slurm: submit, and follow the jobs
    with ``wait``); fails (exit 1) if any job did not finish (with slurm: failed, or not done after ``wait``).
    ``only``: exactly these jobs instead of the recipe's plan (the CE demo's basic-expression workspace)."""
    jobs = list(only) if only is not None else [*before, *build(cfg, inp, synth=before[-1].id if before else ""), *after]
    pl.check_graph(jobs)
    if dry_run:
        return summary(inp.workdir, jobs, "plan (dry run: nothing was started)")
    t0 = time.time()
    live: dict[str, str] = {}
    if launcher == "slurm":
        live = slurm.submit(inp.workdir, jobs, cfg.slurm, cfg.threads, force=force)
        if wait:
            slurm.wait(inp.workdir, jobs)
            live = {}
        title = f"abaw run (slurm{', waited' if wait else ''}): {time.time() - t0:.0f} s"
    elif launcher == "local":
        if queued := slurm.observe(inp.workdir, jobs)[1]:  # never a second copy of a job SLURM will run
            raise AbawError(f"{len(queued)} job(s) of {inp.workdir} are queued or running in SLURM (first: "
                            f"{next(iter(queued))}): wait for them (--launcher slurm --wait) or cancel them (--cancel)")
        slots_ = slots(gpus, cfg.jobs)
        threads = threads_per_job(cfg.threads, len(slots_))
        execute(inp.workdir, jobs, slots_, threads, force=force)
        title = f"abaw run: {len(slots_)} slot(s) x {threads} thread(s), {time.time() - t0:.0f} s"
    else:
        raise AbawError(f"--launcher {launcher!r}: expected local or slurm")
    state = summary(inp.workdir, jobs, title, live)
    bad = [j for j in jobs if state[j.id] not in ("done", *live.values())]
    if bad:
        first = pl.read_record(inp.workdir).get(bad[0].id, {})
        raise AbawError(f"{len(bad)} job(s) not done, first: {bad[0].id} ({state[bad[0].id]})"
                        + (f", log {first['log']}" if first.get("log") else ""), code=1)
    return state


def cancel(workdir: Path) -> list[str]:
    """``abaw run --cancel``: cancel the workspace's queued and running SLURM jobs."""

    ids = slurm.cancel(Path(workdir), pl.load_plan(workdir))
    console.print(f"cancelled {len(ids)} SLURM job(s)" + (f": {', '.join(ids)}" if ids else ""))
    return ids


def status(workdir: Path) -> dict[str, str]:
    """``abaw status``: the saved plan's table, from markers, locks, the run's record and SLURM's queue."""

    workdir = Path(workdir)
    jobs = pl.load_plan(workdir)
    holder = lock_holder(workdir / pl.RUN_DIR, "run")
    console.print(f"abaw run on {workdir}: " + (f"running (pid {holder.get('pid', '?')} on {holder.get('host', '?')})"
                                                if holder is not None else "not running"))
    try:
        record, live = slurm.observe(workdir, jobs)
    except AbawError as exc:  # SLURM jobs, but no squeue here: states from the files alone
        console.print(f"[yellow]note:[/] {exc}")
        record, live = pl.read_record(workdir), {}
    return summary(workdir, jobs, f"status of {workdir}", live, record)
