"""``abaw run``: every stage a recipe needs, as a graph of jobs run in parallel (one per GPU or CPU slot).

prep -> pretrain (or an MAE file / a backbone) -> finetune[task, fold] -> extract vision[task, fold]
(``vision = "frozen"``: one extract straight from the backbone instead) + extract audio[model] ->
tmf[task, fold] -> ensemble[task] (weighted by validation) -> smooth-search[task] -> submit[track] ->
validate[track]. Each job is ``python -m abawkit.cli <command>`` in a subprocess with
its own log (``<workdir>/run/logs/<job>.log``), its own process group, ``CUDA_VISIBLE_DEVICES`` set to
its GPU (``--gpus``) and ``threads`` torch threads. Finished jobs are skipped; interrupted ones resume
from their stage's ``.partial``; a failing job stops only the jobs that depend on it.

Reads ``recipes/<recipe>/run.toml`` (tasks, folds, parallel jobs) and the recipe's ``tmf.toml`` (the
features each task fuses: the audio models to extract) and ``submit.toml`` (the submission name).
Writes ``<workdir>/run/plan.json``, ``jobs.json`` (state, device, wall time per job) and ``logs/``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from abawkit import plan as pl
from abawkit.errors import AbawError
from abawkit.plan import Job, stage_marker
from abawkit.runs import lock_holder, stage_lock, write_text
from abawkit.stages.slurm import SlurmConfig

COSTS = {"synth": 1.0, "prep": 1.0, "pretrain": 6.0, "finetune": 4.0, "extract": 1.0, "tmf": 2.0,
         "ensemble": 0.3, "smooth": 0.3, "submit": 0.2, "validate": 0.1}


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0  # not used by the plan; --seed is passed to every job
    tasks: tuple[str, ...] = ("au", "expr", "va")
    folds: tuple[int, ...] = (0, 1, 2, 3, 4, 5)  # TMF folds, ensembled for the test set (fold 0 = official split)
    encoder_folds: tuple[int, ...] = ()  # folds fine-tuning their own encoder; empty = every fold (others use fold 0's)
    name: str = ""  # submission folder; empty = submit.toml's name
    jobs: int = 1  # parallel CPU jobs (without --gpus)
    threads: int = 0  # torch threads per job; 0 = the machine's cores // parallel jobs
    vision: str = "finetune"  # finetune: per task/fold from --mae/--backbone; frozen: one extract straight from it
    slurm: SlurmConfig = field(default_factory=SlurmConfig)  # --launcher slurm: resources per stage


@dataclass(frozen=True)
class RunInputs:
    """What the command line adds to the recipe: where things are."""

    workdir: Path
    recipe: str
    release: Path
    mae: Path | None = None  # an MAE checkpoint: no pre-training
    audio: dict[str, str] = field(default_factory=dict)  # audio model -> checkpoint
    seed: int | None = None  # passed to every job when given
    images: Path | None = None  # face images for pre-training (default: <release>/pretrain_faces if any)
    synth_faces: bool = False  # the release is yet to be synthesised, with pretrain_faces/


# ----------------------------------------------------------------------------- the plan
class Builder:
    """Appends jobs in dependency order; ``cli`` builds a job's command line."""

    def __init__(self, inp: RunInputs) -> None:
        self.inp = inp
        self.jobs: list[Job] = []

    def cli(self, *args: str, common: bool = True) -> tuple[str, ...]:
        extra = ("-w", str(self.inp.workdir), "--recipe", self.inp.recipe) if common else ()
        seed = ("--seed", str(self.inp.seed)) if common and self.inp.seed is not None else ()
        return (sys.executable, "-m", "abawkit.cli", *args, *extra, *seed)

    def add(self, id_: str, stage: str, args: Sequence[str], deps: Sequence[str] = (), marker: str | None = None,
            common: bool = True, force: tuple[str, ...] = ("--force",)) -> str:
        deps = tuple(d for d in deps if d)
        self.jobs.append(Job(id_, stage, self.cli(*args, common=common), deps,
                             stage_marker(id_) if marker is None else marker, COSTS[stage], force, self.inp.recipe))
        return id_


def resolve_recipe(recipe: str) -> str:
    """A recipe folder as an absolute path (jobs may run elsewhere), a recipe name as is."""
    return str(Path(recipe).resolve()) if Path(recipe).is_dir() else recipe


def tmf_features(recipe: str, t: str) -> tuple[str, ...]:
    """The feature stores the recipe's TMF fuses for task ``t`` (tmf.toml [features])."""
    from abawkit.config import load_config
    from abawkit.stages.tmf import TMFConfig

    return tuple(getattr(load_config(TMFConfig, "tmf", recipe).features, t))


def vision_store(recipe: str) -> str:
    """The vision feature name TMF fuses: extract.toml's vision.name, default "mae" (fine-tuned encoders
    write ``<name>-<task>[-fold<N>]``, a frozen backbone ``<name>``)."""
    from abawkit.config import load_config
    from abawkit.stages.extract import ExtractConfig

    return load_config(ExtractConfig, "extract", recipe).vision.name or "mae"


def audio_models(recipe: str, tasks: Sequence[str], vision: Sequence[str] = ("mae",)) -> list[str]:
    """Audio feature stores the recipe's TMF uses for these tasks (every feature but the vision ones)."""
    return sorted({f for t in tasks for f in tmf_features(recipe, t) if f not in vision})


def submission_name(cfg: RunConfig, recipe: str) -> str:
    from abawkit.config import load_config
    from abawkit.stages.submit import SubmitConfig

    return cfg.name or load_config(SubmitConfig, "submit", recipe).name


def build(cfg: RunConfig, inp: RunInputs, synth: str = "") -> list[Job]:
    """The recipe's jobs for this release, dependencies first. ``synth``: the job that writes the release."""
    from abawkit.labels import task

    tasks = [task(t).name for t in cfg.tasks]
    if not tasks or not cfg.folds:
        raise AbawError("run: name at least one task and one fold")
    b = Builder(inp)
    if cfg.vision not in ("finetune", "frozen"):
        raise AbawError(f"run: vision must be finetune or frozen, got {cfg.vision!r}")
    prep = b.add("prep", "prep", ["prep", "--release", str(inp.release)], [synth])
    frozen = _frozen(b, inp, prep) if cfg.vision == "frozen" else {}
    pretrain = "" if frozen else _pretrain(b, inp, synth)
    audio = {m: _audio(b, inp, m, prep) for m in audio_models(inp.recipe, tasks, ("mae", vision_store(inp.recipe)))}
    name = submission_name(cfg, inp.recipe)
    for t in tasks:
        vision = frozen or _encoders(b, cfg, inp, t, prep, pretrain)
        feats = tmf_features(inp.recipe, t)
        for f in cfg.folds:
            b.add(f"tmf/{t}/fold{f}", "tmf", ["train", "tmf", "--task", t, "--fold", str(f)],
                  [vision.get(f, vision.get(0, "")), *(audio[m] for m in feats if m in audio)])
        _finish(b, cfg, t, name)
    return b.jobs


def _pretrain(b: Builder, inp: RunInputs, synth: str) -> str:
    if inp.mae is not None:
        if not inp.mae.exists():
            raise AbawError(f"--mae {inp.mae}: checkpoint file or folder not found")
        return ""
    from abawkit.config import load_config
    from abawkit.stages.pretrain import PretrainConfig

    images = inp.images
    faces = inp.release / "pretrain_faces"
    in_recipe = load_config(PretrainConfig, "pretrain", inp.recipe).data.images
    if images is None and not in_recipe and (faces.is_dir() or inp.synth_faces):
        images = faces  # the synthetic stand-in for an external face collection
    args = ["pretrain", *(["--images", str(images)] if images else [])]
    return b.add("pretrain", "pretrain", args, [synth] if images or in_recipe else ["prep"])


def _frozen(b: Builder, inp: RunInputs, prep: str) -> dict[int, str]:
    """vision = "frozen": one ``extract vision --checkpoint BACKBONE`` every task and fold fuses."""
    if inp.mae is None or not inp.mae.exists():
        raise AbawError("run: vision = \"frozen\" extracts straight from a backbone: pass --backbone FILE_OR_FOLDER")
    store = vision_store(inp.recipe)
    return {0: b.add(f"features/{store}", "extract", ["extract", "vision", "--checkpoint", str(inp.mae),
                                                      "--name", store], [prep])}


def _audio(b: Builder, inp: RunInputs, model: str, prep: str) -> str:
    ckpt = inp.audio.get(model)
    if model != "fbank" and not ckpt:
        raise AbawError(f"recipe {inp.recipe!r} fuses {model} features: pass --audio {model}=CHECKPOINT")
    args = ["extract", "audio", "--model", model, *(["--checkpoint", ckpt] if ckpt else [])]
    return b.add(f"features/{model}", "extract", args, [prep])


def _encoders(b: Builder, cfg: RunConfig, inp: RunInputs, t: str, prep: str, pretrain: str) -> dict[int, str]:
    """finetune + extract vision per encoder fold -> {fold: its vision feature job}."""
    folds = cfg.encoder_folds or cfg.folds
    if any(f not in folds for f in cfg.folds) and 0 not in folds:
        raise AbawError("run: folds without their own encoder use fold 0's: add 0 to encoder_folds")
    out = {}
    for f in folds:
        init = ["--init", str(inp.mae)] if inp.mae else []
        ft = b.add(f"finetune/{t}/fold{f}", "finetune", ["finetune", "--task", t, "--fold", str(f), *init], [prep, pretrain])
        base = vision_store(inp.recipe)
        store = f"{base}-{t}" if f == 0 else f"{base}-{t}-fold{f}"
        name = ["--name", store] if base != "mae" else []  # a recipe's vision.name would be every task's
        out[f] = b.add(f"features/{store}", "extract", ["extract", "vision", "--task", t, "--fold", str(f), *name], [ft])
    return out


def _finish(b: Builder, cfg: RunConfig, t: str, name: str) -> None:
    """ensemble (weighted by each fold's validation score) -> smooth-search (fold 0) -> submit -> validate."""
    from abawkit.submission import TRACK_TAGS

    w = b.inp.workdir
    tmf = [f"tmf/{t}/fold{f}" for f in cfg.folds]
    preds = [str(w / j / "pred_test.parquet") for j in tmf]
    vals = [a for j in tmf for a in ("--val", str(w / j / "pred_val.parquet"))]
    ens = b.add(f"ensemble/{t}", "ensemble", ["ensemble", *preds, *vals], tmf)
    smooth = b.add(f"smooth/{t}", "smooth", ["smooth-search", "--task", t, "--pred", str(w / tmf[0] / "pred_val.parquet")],
                   [tmf[0]])
    tag = TRACK_TAGS[t]
    sub = b.add(f"submit/{t}", "submit", ["submit", "--track", t, "--name", name, "--out", str(w / "submissions")],
                [ens, smooth], marker=f"submissions/{name}/submission_{tag}.json", force=())
    b.add(f"validate/{t}", "validate", ["validate", str(w / "submissions" / name / f"{tag}_predictions.txt"),
                                        "--track", t, "-w", str(w)], [sub], marker="", common=False, force=())


# ----------------------------------------------------------------------------- the scheduler
@dataclass(frozen=True)
class Slot:
    """Where one job runs at a time: a GPU (``CUDA_VISIBLE_DEVICES``) or a CPU share."""

    device: str
    env: dict[str, str]


def slots(gpus: str | None, jobs: int) -> list[Slot]:
    """``--gpus 0,1`` -> one slot per GPU; else ``jobs`` slots spread over the visible GPUs (or CPU slots).

    GPU numbers are read through an inherited ``CUDA_VISIBLE_DEVICES`` (``abawkit.devices``).
    """
    from abawkit.devices import job_gpus

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
        from abawkit.console import console

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
        from abawkit.console import console

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
        from abawkit.console import console

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


def summary(workdir: Path, jobs: list[Job], title: str, live: dict[str, str] | None = None,
            record: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """Print the plan's table, then why each job is not done; returns the states.

    Under 120 columns (80 when piped) the table is compact: job, state, metric, wall time, where it
    ran, in a borderless layout that never wraps a cell; wider, it adds each job's stage and dependencies."""
    from rich import box

    from abawkit.console import console, table

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
        wait: bool = False) -> dict[str, str]:
    """Build the plan (``before`` jobs, e.g. the one writing the release, the recipe's, then ``after``),
    print it for ``dry_run``, else run it (``launcher``: local, or slurm: submit, and follow the jobs
    with ``wait``); fails (exit 1) if any job did not finish (with slurm: failed, or not done after ``wait``)."""
    jobs = [*before, *build(cfg, inp, synth=before[-1].id if before else ""), *after]
    pl.check_graph(jobs)
    if dry_run:
        return summary(inp.workdir, jobs, "plan (dry run: nothing was started)")
    t0 = time.time()
    live: dict[str, str] = {}
    if launcher == "slurm":
        from abawkit.stages import slurm

        live = slurm.submit(inp.workdir, jobs, cfg.slurm, cfg.threads, force=force)
        if wait:
            slurm.wait(inp.workdir, jobs)
            live = {}
        title = f"abaw run (slurm{', waited' if wait else ''}): {time.time() - t0:.0f} s"
    elif launcher == "local":
        from abawkit.stages import slurm

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
    from abawkit.console import console
    from abawkit.stages import slurm

    ids = slurm.cancel(Path(workdir), pl.load_plan(workdir))
    console.print(f"cancelled {len(ids)} SLURM job(s)" + (f": {', '.join(ids)}" if ids else ""))
    return ids


def status(workdir: Path) -> dict[str, str]:
    """``abaw status``: the saved plan's table, from markers, locks, the run's record and SLURM's queue."""
    from abawkit.console import console
    from abawkit.stages import slurm

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
