"""Two compute nodes on one machine: DDP pre-training across them, and a node failing under a job.

The tests marked `slurm` need a cluster of at least two responding nodes (``SLURM_NODES=2 .ci/slurm-up.sh``:
each slurmd in its own network and UTS namespace) at the address ``SLURM_CONF`` gives; they skip otherwise.
Each submits through ``run.slurm.submit`` (the batch script ``[slurm.pretrain] nodes = 2`` produces:
``srun`` + torchrun, c10d rendezvous on the first node, gloo) and follows it through the workspace's record.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch
from test_finetune import FAST, TINY_MAE
from test_torchrun import torchrun

from abawkit.run import plan as pl
from abawkit.run import slurm
from abawkit.run.plan import Job

TWO_NODES = slurm.SlurmConfig(pretrain=slurm.Resources(nodes=2))


def test_every_batch_script_asks_to_be_requeued_and_appends_to_its_log(tmp_path):
    script = slurm.batch_script(tmp_path, Job("prep", "prep", ("/py", "-m", "abawkit.cli", "prep")),
                                ["/py", "-m", "abawkit.cli", "prep"], slurm.Resources(), threads=1)
    assert {"#SBATCH --requeue", "#SBATCH --open-mode=append"} <= set(script.splitlines())


def test_a_requeued_job_is_queued_whatever_its_earlier_run_left(tmp_path, monkeypatch):
    """A node failure may kill a run after ``srun`` returned and its exit file was written: while SLURM holds
    the job again, and while it runs again, that file is not its end."""
    jobs = [Job("pretrain", "pretrain", ("/py",)), Job("finetune", "finetune", ("/py",), ("pretrain",))]
    record = {j.id: {"state": "queued", "slurm_id": str(i)} for i, j in enumerate(jobs, 1)}
    (tmp_path / "run" / "exits").mkdir(parents=True)
    (tmp_path / "run" / "exits" / "1.json").write_text('{"rc": 1, "wall_s": 5}')
    monkeypatch.setattr(slurm, "queue", lambda ids: {"1": ("PENDING", 1), "2": ("PENDING", 0)})
    assert slurm.refresh(tmp_path, jobs, record) == {"pretrain": "queued", "finetune": "queued"}
    assert record["pretrain"]["state"] == "queued"
    stale = tmp_path / "run" / "exits" / "1.json"
    probe = [sys.executable, "-c", f"import os, sys; sys.exit(os.path.exists({str(stale)!r}))"]
    run_again = slurm.batch_script(tmp_path, jobs[0], probe, slurm.Resources(), threads=1)
    env = {**os.environ, "SLURM_JOB_ID": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    assert subprocess.run(["bash", "-c", run_again], env=env, capture_output=True).returncode == 0  # gone while it runs
    assert '"rc": 0' in stale.read_text()


@pytest.fixture(scope="module")
def nodes() -> list[str]:
    """The names of the responding nodes, or a skip when fewer than two answer."""
    if shutil.which("sinfo") is None:
        pytest.skip("no sinfo on PATH (SLURM_NODES=2 .ci/slurm-up.sh sets up a two-node cluster)")
    out = subprocess.run(["sinfo", "--noheader", "--Node", "--responding", "--format=%N"], capture_output=True,
                         text=True, timeout=30)
    names = sorted(set(out.stdout.split()))
    if len(names) < 2:
        pytest.skip(f"two responding SLURM nodes needed, found {names} (SLURM_NODES=2 .ci/slurm-up.sh)")
    return names


def until(what: Callable[[], object], timeout: float, why: str) -> object:
    """Poll the cluster (a real scheduler: no event to wait on) until ``what()`` is truthy."""
    end = time.monotonic() + timeout
    while not (got := what()):
        assert time.monotonic() < end, f"timed out after {timeout:.0f} s: {why}"
        time.sleep(0.5)
    return got


def finish(work: Path, job: Job, timeout: float = 600) -> dict:
    """Follow the job (refreshing the workspace record) to its end; its record."""
    until(lambda: not slurm.observe(work, [job])[1], timeout, f"{job.id} still queued or running")
    return pl.read_record(work)[job.id]


@pytest.mark.slurm
def test_pretrain_on_two_nodes_equals_two_processes_on_one(nodes, prep_workspace, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for work in (one, two):
        shutil.copytree(prep_workspace, work)
    args = [*FAST, *TINY_MAE, "--set", "train.device=cpu"]
    local = torchrun("pretrain", "-w", str(one), *args, cwd=tmp_path)  # one node, 2 processes, OMP_NUM_THREADS=1
    assert local.returncode == 0, local.stdout + local.stderr
    job = Job("pretrain", "pretrain", (sys.executable, "-m", "abawkit.cli", "pretrain", "-w", str(two), *args),
              marker=pl.stage_marker("pretrain"))
    slurm.submit(two, [job], TWO_NODES, threads=1)  # the batch script sets OMP_NUM_THREADS=1 as well
    try:
        rec = finish(two, job)
    finally:
        slurm.cancel(two, [job])
    log = Path(rec["log"]).read_text()
    assert rec["state"] == "done" and rec["rc"] == 0, log
    where = dict(re.findall(r"(?m)^rank (\d) of 2 on (\S+)$", log))
    assert sorted(where) == ["0", "1"] and len(set(where.values())) == 2 and set(where.values()) <= set(nodes), log
    # Bit-identical: gloo's all-reduce of two ranks adds two gradients (a + b == b + a in IEEE), and each rank
    # reads the same shard with the same seed wherever it runs.
    a = torch.load(one / "pretrain" / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    b = torch.load(two / "pretrain" / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


ATTEMPT = """\
import os, socket, sys, time
restart = os.environ.get("SLURM_RESTART_COUNT", "0")
with open(sys.argv[1], "a") as f:
    f.write(f"{restart} {os.environ['RANK']} {socket.gethostname()}\\n")
if restart == "0":
    time.sleep(600)  # the first run never ends by itself: only the requeued one does
"""


def attempts(path: Path, restart: str) -> dict[str, str]:
    """rank -> host of the ranks that started run ``restart`` of the job."""
    rows = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    return {rank: host for r, rank, host in rows if r == restart}


def scontrol(*args: str) -> str:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=30, check=True).stdout


def job_facts(sid: str) -> dict[str, str]:
    return dict(re.findall(r"(JobState|Restarts)=(\S+)", scontrol("show", "job", sid)))


@pytest.mark.slurm
def test_a_node_set_down_under_a_job_requeues_it_and_it_finishes_once_the_node_is_back(nodes, tmp_path):
    work, script, seen = tmp_path / "work", tmp_path / "attempt.py", tmp_path / "attempts.txt"
    work.mkdir()
    script.write_text(ATTEMPT)
    job = Job("pretrain", "pretrain", (sys.executable, str(script), str(seen)))  # a two-node DDP job (torchrun)
    slurm.submit(work, [job], TWO_NODES, threads=1)
    sid = pl.read_record(work)["pretrain"]["slurm_id"]
    try:
        first = until(lambda: len(attempts(seen, "0")) == 2 and attempts(seen, "0"), 300, "first run on 2 nodes")
        down = first["1"]
        scontrol("update", f"nodename={down}", "state=down", "reason=abawkit-test")
        try:
            until(lambda: (f := job_facts(sid)).get("Restarts") == "1" and f.get("JobState") == "PENDING", 60,
                  f"job {sid} requeued")
            assert slurm.observe(work, [job])[1] == {"pretrain": "queued"}  # nothing read it as failed meanwhile
            assert not (work / "run" / "exits" / f"{sid}.json").exists()
            assert "DOWN" in scontrol("show", "node", down)  # it stays down (and the 2-node job waits) until resumed
        finally:
            scontrol("update", f"nodename={down}", "state=resume")
        rec = finish(work, job)
    finally:
        slurm.cancel(work, [job])
    log = Path(rec["log"]).read_text()
    assert rec["state"] == "done" and rec["rc"] == 0, log
    again = attempts(seen, "1")
    assert sorted(again) == ["0", "1"] and len(set(again.values())) == 2, seen.read_text()
    assert log.count(f"(SLURM job {sid} on ") == 2, log  # the first run's log is kept
