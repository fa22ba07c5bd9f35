"""`abaw run --launcher slurm`: batch scripts (text, resources, DDP), reconciliation with SLURM's view, and,
marked `slurm`, the real thing on a one-node cluster (`.ci/slurm-up.sh`; skipped without `sbatch`).

The real tests run the tiny demo recipe on a small synthetic release (`--tasks va --folds 0`, 10 jobs), once
with the local launcher and once through SLURM, then break one job mid-way and cancel a fresh run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from abawkit.config import load_config
from abawkit.errors import AbawError
from abawkit.run import build, launch, slurm
from abawkit.run import plan as pl
from abawkit.run.plan import Job


def job(id_: str, stage: str, deps: tuple[str, ...] = (), marker: str | None = None) -> Job:
    return Job(id_, stage, (sys.executable, "-m", "abawkit.cli", stage, "-w", "W"), deps,
               pl.stage_marker(id_) if marker is None else marker)


def test_ddp_stages_run_as_srun_plus_torchrun_across_nodes(tmp_path):
    res = load_config(build.RunConfig, "run", "abaw5").slurm
    pretrain = slurm.batch_script(tmp_path, job("pretrain", "pretrain"), ["/py", "-m", "abawkit.cli", "pretrain"],
                                  res.for_stage("pretrain"), threads=8)
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --time=3-00:00:00", "#SBATCH --mem=64G", "#SBATCH --cpus-per-task=8",
                 f'#SBATCH --output="{tmp_path}/run/logs/pretrain.log"', "#SBATCH --kill-on-invalid-dep=yes"):
        assert line in pretrain.splitlines(), line
    assert ("srun --kill-on-bad-exit=1 /py -m torch.distributed.run --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d"
            ' --rdzv-endpoint "$head:29500" --rdzv-id "$SLURM_JOB_ID" -m abawkit.cli pretrain') in pretrain
    assert "--gres" not in pretrain
    tmf = slurm.batch_script(tmp_path, job("tmf/va/fold0", "tmf"), ["/py", "-m", "abawkit.cli", "train", "tmf"],
                             res.for_stage("tmf"), threads=8)
    assert "#SBATCH --gres=gpu:1" in tmf and "srun " not in tmf and "--nodes" not in tmf
    assert "then /py -m abawkit.cli train tmf & else /py -m abawkit.cli train tmf & fi\n" in tmf
    for text in (pretrain, tmf):
        assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0  # valid shell


def test_the_batch_script_records_its_exit_code_and_marker_on_the_workspace(tmp_path):
    validate = job("validate/va", "validate", marker="")
    script = slurm.batch_script(tmp_path, validate, [sys.executable, "-c", "import sys; sys.exit(0)"],
                                slurm.Resources(), threads=1)
    env = {**os.environ, "SLURM_JOB_ID": "77", "PYTHONPATH": str(Path(__file__).parents[1])}
    assert subprocess.run(["bash", "-c", script], env=env, capture_output=True).returncode == 0
    assert (tmp_path / "run" / "done" / "validate__va").is_file()
    assert (tmp_path / "run" / "exits" / "77.json").read_text().count('"rc": 0') == 1
    failing = slurm.batch_script(tmp_path, job("tmf", "tmf"), [sys.executable, "-c", "raise SystemExit(3)"],
                                 slurm.Resources(), threads=1)
    env["SLURM_JOB_ID"] = "78"
    assert subprocess.run(["bash", "-c", failing], env=env, capture_output=True).returncode == 3
    assert '"rc": 3' in (tmp_path / "run" / "exits" / "78.json").read_text()


def test_reconcile_reads_exits_queue_and_blocks_after_a_failure(tmp_path, monkeypatch):
    jobs = [job("a", "prep"), job("b", "tmf", ("a",)), job("c", "submit", ("b",)), job("d", "prep"),
            job("e", "tmf", ("d",))]
    record = {j.id: {"state": "queued", "slurm_id": str(i)} for i, j in enumerate(jobs, 1)}
    (tmp_path / "run" / "exits").mkdir(parents=True)
    for sid, rc in (("1", 0), ("2", 3)):
        (tmp_path / "run" / "exits" / f"{sid}.json").write_text(f'{{"rc": {rc}, "wall_s": 5}}')
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "manifest.json").write_text("{}")
    monkeypatch.setattr(slurm, "queue", lambda ids: {"1": ("COMPLETED", 0), "2": ("FAILED", 0), "3": ("CANCELLED", 0),
                                                     "4": ("RUNNING", 2), "5": ("PENDING", 0)})
    live = slurm.refresh(tmp_path, jobs, record)
    assert live == {"d": "running", "e": "queued"}
    assert record["a"]["state"] == "done" and record["b"]["rc"] == 3
    assert record["c"] == {**record["c"], "state": "blocked", "after": "b"}
    assert record["d"]["restarts"] == 2  # SLURM requeued it twice (time limit, preemption)
    assert "slurm 4 (2 restarts)" in [r["where"] for r in pl.rows(tmp_path, jobs, record, pl.assess(tmp_path, jobs, record, live))]
    got = pl.states(tmp_path, jobs, record, live)
    assert got == {"a": "stale", "b": "failed", "c": "blocked", "d": "running", "e": "queued"}  # a: no identity


def test_the_local_launcher_never_starts_a_job_slurm_will_run(tmp_path, monkeypatch):
    from test_run import fake

    jobs = [fake(tmp_path, "a")]
    monkeypatch.setattr(launch, "build", lambda cfg, inp, synth="": jobs)
    pl.write_record(tmp_path, {"a": {"state": "queued", "slurm_id": "5"}})
    monkeypatch.setattr(slurm, "queue", lambda ids: {"5": ("PENDING", 0)})
    with pytest.raises(AbawError, match="queued or running in SLURM"):
        launch.run(build.RunConfig(), build.RunInputs(tmp_path, "demo", tmp_path))
    assert not (tmp_path / "order.txt").exists()


def test_status_judges_an_unwaited_slurm_run_from_the_refreshed_record_and_saves_it(tmp_path, monkeypatch):
    """Issue 25 (1): every job still `queued` on disk; SLURM and the exit files say done / failed / cancelled."""
    from test_run import fake, order

    jobs = [fake(tmp_path, "a"), fake(tmp_path, "bad", ("a",)), fake(tmp_path, "c", ("bad",)), fake(tmp_path, "d")]
    pl.save_plan(tmp_path, jobs)
    pl.write_record(tmp_path, {j.id: {"state": "queued", **pl.identity(j), "slurm_id": str(i)}
                               for i, j in enumerate(jobs, 1)})
    (tmp_path / "run" / "exits").mkdir(parents=True)
    for sid, rc in (("1", 0), ("2", 2), ("4", 0)):
        (tmp_path / "run" / "exits" / f"{sid}.json").write_text(f'{{"rc": {rc}, "wall_s": 5}}')
    for done in ("a", "d"):
        (tmp_path / done).mkdir()
        (tmp_path / done / "manifest.json").write_text("{}")
    monkeypatch.setattr(slurm, "queue", lambda ids: {"3": ("CANCELLED", 0)})
    assert launch.status(tmp_path) == {"a": "done", "bad": "failed", "c": "blocked", "d": "done"}
    assert {k: r["state"] for k, r in pl.read_record(tmp_path).items()} == {
        "a": "done", "bad": "failed", "c": "blocked", "d": "done"}  # written back
    monkeypatch.setattr(launch, "build", lambda cfg, inp, synth="": jobs)
    with pytest.raises(AbawError):  # `bad` fails again
        launch.run(build.RunConfig(), build.RunInputs(tmp_path, "demo", tmp_path))
    assert order(tmp_path) == ["bad"]  # nothing that succeeded under SLURM ran again


# ----------------------------------------------------------------------------- a real cluster
no_sbatch = pytest.mark.skipif(shutil.which("sbatch") is None, reason="no sbatch on PATH (make test-slurm sets one up)")


def abaw(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "abawkit.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1200, env={**os.environ, "COLUMNS": "80"})


@pytest.mark.slurm
@no_sbatch
def test_a_workspace_path_with_spaces_quotes_unicode_and_percent_runs_under_slurm(tmp_path):
    """Issue 25 (2): sbatch reads `#SBATCH` lines with its own quoting rules, slurmd expands `%` in --output."""
    from test_run import fake

    work = tmp_path / "my runs" / "it's \"Ré\" 100%j \\ x"
    work.mkdir(parents=True)
    jobs = [fake(work, "a"), fake(work, "b", ("a",))]
    slurm.submit(work, jobs, slurm.SlurmConfig(), threads=1)
    slurm.wait(work, jobs, poll_s=1)
    assert pl.states(work, jobs) == {"a": "done", "b": "done"}
    assert (work / "run" / "logs" / "b.log").read_text().startswith("(SLURM job ")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from test_demo import tiny_recipe

    root = tmp_path_factory.mktemp("slurm")
    recipe = tiny_recipe(root / "recipe")
    assert abaw("synth", str(root / "release"), "--recipe", str(recipe), "--seed", "1", cwd=root).returncode == 0
    return root


def run_args(root: Path, work: str, *more: str) -> list[str]:
    return ["run", "--release", str(root / "release"), "-w", str(root / work), "--recipe", str(root / "recipe"),
            "--tasks", "va", "--folds", "0", *more]


@pytest.fixture(scope="module")
def both(release):
    local = abaw(*run_args(release, "local"), cwd=release)
    assert local.returncode == 0, local.stdout + local.stderr
    remote = abaw(*run_args(release, "slurm", "--launcher", "slurm", "--wait"), cwd=release)
    assert remote.returncode == 0, remote.stdout + remote.stderr
    return release, local.stdout, remote.stdout


@pytest.mark.slurm
@no_sbatch
def test_slurm_submission_validates_and_equals_the_local_one(both):
    root, _, out = both
    file = "submissions/demo/VA_predictions.txt"
    assert (root / "slurm" / file).read_bytes() == (root / "local" / file).read_bytes()
    check = abaw("validate", str(root / "slurm" / file), "--track", "va", "-w", str(root / "slurm"), cwd=root)
    assert check.returncode == 0 and "OK" in check.stdout
    status = abaw("status", "-w", str(root / "slurm"), cwd=root)
    assert ": 10 done" in status.stdout and "slurm " in status.stdout, status.stdout
    assert max(map(len, status.stdout.splitlines())) <= 80


@pytest.mark.slurm
@no_sbatch
def test_a_job_failing_midway_is_failed_blocks_its_dependants_and_a_rerun_resubmits_only_those(both):
    root, _, _ = both
    smooth = root / "recipe" / "smooth.toml"
    good = smooth.read_text()
    before = pl.read_record(root / "slurm")
    try:  # a negative width passes the config check and fails inside the search
        smooth.write_text(good.replace("gaussian = [2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 50.0]",
                                       "gaussian = [-1.0]"))
        broken = abaw(*run_args(root, "slurm", "--launcher", "slurm", "--wait"), cwd=root)
    finally:
        smooth.write_text(good)
    assert broken.returncode == 1
    state = pl.assess(root / "slurm", pl.load_plan(root / "slurm"))
    assert state["smooth/va"].state == "failed" and state["ensemble/va"].state == "done"
    assert state["submit/va"] == pl.State("blocked", "smooth/va failed") and state["validate/va"].state == "blocked"
    assert "failed: smooth/va: last run failed (exit 1)" in broken.stdout
    again = abaw(*run_args(root, "slurm", "--launcher", "slurm", "--wait"), cwd=root)
    assert again.returncode == 0, again.stdout
    submitted = [line.split()[1].rstrip(":") for line in again.stdout.splitlines() if line.startswith("submit ")]
    assert submitted == ["smooth/va", "submit/va", "validate/va"]
    assert pl.read_record(root / "slurm")["prep"]["slurm_id"] == before["prep"]["slurm_id"]


@pytest.mark.slurm
@no_sbatch
def test_cancel_leaves_nothing_queued(release):
    root = release
    sub = abaw(*run_args(root, "cancel", "--launcher", "slurm"), cwd=root)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    ids = [r["slurm_id"] for r in pl.read_record(root / "cancel").values()]
    assert len(ids) == 10
    cancel = abaw("run", "-w", str(root / "cancel"), "--cancel", cwd=root)
    assert cancel.returncode == 0 and "cancelled" in cancel.stdout
    queue = slurm.queue_states(ids)
    assert not [s for s in queue.values() if s in ("PENDING", "RUNNING", "CONFIGURING")], queue
    status = abaw("status", "-w", str(root / "cancel"), cwd=root)
    assert "queued" not in status.stdout and "running" not in status.stdout.split("not running")[-1]




# ----------------------------------------------------------------------------- time limits and preemption
def settle(ids: list[str], timeout_s: float = 900, quiet_polls: int = 3) -> None:
    """Block until SLURM holds none of ``ids`` queued or running for ``quiet_polls`` polls in a row (bounded):
    a requeued job passes through CANCELLED before it is PENDING again, and one poll can land there."""
    deadline, quiet = time.time() + timeout_s, 0
    while quiet < quiet_polls:
        live = any(s in slurm.LIVE_STATES for s in slurm.queue_states(ids).values())
        quiet = 0 if live else quiet + 1
        assert time.time() < deadline, f"SLURM jobs {ids} still live after {timeout_s} s"
        time.sleep(2)


def train_job(root: Path, work: Path, stage: str, *args: str) -> Job:
    return Job(stage, stage, (sys.executable, "-m", "abawkit.cli", stage, "-w", str(work), "--recipe", str(root / "recipe"),
                              "--seed", "1", "--set", "train.num_workers=0", *args), marker=pl.stage_marker(stage))


def reference(root: Path, job: Job, src: Path, work: Path) -> Path:
    """The same command, uninterrupted, on this machine (as many threads as the batch script gives)."""
    cmd = [str(work) if a == str(src) else a for a in job.cmd]
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stdout + res.stderr
    return work


def same_weights(a: Path, b: Path) -> bool:
    import torch

    x, y = (torch.load(p, map_location="cpu", weights_only=True)["model"] for p in (a, b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.slurm
@no_sbatch
def test_a_pretrain_longer_than_its_time_limit_finishes_through_requeues_with_the_same_weights(release):
    root, work = release, release / "limited"
    job = train_job(root, work, "pretrain", "--images", str(root / "release" / "pretrain_faces"),
                    "--set", "train.epochs=150", "--set", "train.checkpoint_every=0")
    cfg = slurm.SlurmConfig(pretrain=slurm.Resources(time="1", signal_grace=20))  # 1 minute against ~2
    live = slurm.submit(work, [job], cfg, threads=1)
    settle([pl.read_record(work)["pretrain"]["slurm_id"]])
    status = abaw("status", "-w", str(work), cwd=root)
    rec = pl.read_record(work)["pretrain"]
    assert live and rec["state"] == "done" and rec["restarts"] >= 1, (rec, status.stdout)  # >= 2 on a slower node
    word = "restart)" if rec["restarts"] == 1 else "restarts)"  # the table says "(1 restart)", "(2 restarts)"
    assert f"({rec['restarts']} {word}" in status.stdout and ": 1 done" in status.stdout, status.stdout
    log = (work / "run" / "logs" / "pretrain.log").read_text()
    assert log.count("(not finished: requeue)") == rec["restarts"], log
    ref = reference(root, job, work, root / "limited-ref")
    assert same_weights(work / "pretrain" / "checkpoint.pt", ref / "pretrain" / "checkpoint.pt")


@pytest.mark.slurm
@no_sbatch
def test_a_finetune_requeued_midway_resumes_and_ends_with_the_same_weights(release):
    root, work = release, release / "preempted"
    prep = abaw("prep", "--release", str(root / "release"), "-w", str(work), "--recipe", str(root / "recipe"), cwd=root)
    assert prep.returncode == 0, prep.stdout
    shutil.copytree(work, root / "preempted-ref")
    job = train_job(root, work, "finetune", "--task", "va", "--fold", "0", "--scratch", "--set", 'tag=""',
                    "--set", "train.epochs=6")
    job = Job("finetune/va/fold0", "finetune", job.cmd, marker=pl.stage_marker("finetune/va/fold0"))
    slurm.submit(work, [job], slurm.SlurmConfig(), threads=1)
    sid = pl.read_record(work)[job.id]["slurm_id"]
    log = work / "finetune" / "va" / "fold0.partial" / "log.jsonl"
    deadline = time.time() + 600
    while '"event": "train"' not in (log.read_text() if log.exists() else ""):  # mid-way: after its first steps
        assert time.time() < deadline and slurm.queue_states([sid]).get(sid) in slurm.LIVE_STATES, "never started"
        time.sleep(1)
    assert subprocess.run(["scontrol", "requeue", sid], capture_output=True).returncode == 0  # as a preemption does
    settle([sid])
    status = abaw("status", "-w", str(work), cwd=root)
    rec = pl.read_record(work)[job.id]
    assert rec["state"] == "done" and rec["restarts"] == 1 and "(1 restart)" in status.stdout, (rec, status.stdout)
    assert '"event": "resume"' in (work / "finetune" / "va" / "fold0" / "log.jsonl").read_text()
    ref = reference(root, job, work, root / "preempted-ref")
    assert same_weights(work / "finetune/va/fold0/best.pt", ref / "finetune/va/fold0/best.pt")


@pytest.mark.slurm
@no_sbatch
def test_status_after_an_unwaited_run_and_a_local_rerun_redoes_only_what_failed(both):
    """Issue 25 (1) for real: done / failed / blocked once the jobs end; the local launcher then starts only those."""
    root, _, _ = both
    smooth = root / "recipe" / "smooth.toml"
    good = smooth.read_text()
    try:
        smooth.write_text(good.replace("gaussian = [2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 50.0]",
                                       "gaussian = [-1.0]"))
        sub = abaw(*run_args(root, "slurm", "--launcher", "slurm"), cwd=root)  # not waited: the default
        assert sub.returncode == 0, sub.stdout + sub.stderr
        settle([r["slurm_id"] for r in pl.read_record(root / "slurm").values() if r.get("state") in pl.LIVE])
    finally:
        smooth.write_text(good)
    status = abaw("status", "-w", str(root / "slurm"), cwd=root)
    assert ": 7 done, 1 failed, 2 blocked" in status.stdout, status.stdout
    assert "failed: smooth/va: last run failed (exit" in status.stdout and "blocked: submit/va: smooth/va failed" in status.stdout
    again = abaw(*run_args(root, "slurm"), cwd=root)  # the local launcher
    assert again.returncode == 0, again.stdout
    started = [line.split()[1] for line in again.stdout.splitlines() if line.startswith("start ")]
    assert sorted(started) == ["smooth/va", "submit/va", "validate/va"], again.stdout
