"""Stop requests (issue 25, 3 and 4): SLURM's USR1 before a time limit and the SIGTERM of a preemption make
``fit`` save and exit 75; the resumed run ends with the weights of an uninterrupted one. The batch script
passes the USR1 on to its command and a restarted job drops ``--force`` (bash, no cluster needed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_engine import CFG, NoisyRegression, mse, tiny_model, weights

from abawkit.engine import fit
from abawkit.run import plan as pl
from abawkit.run import slurm
from abawkit.workspace.stage import StageDone, open_stage


@pytest.fixture
def quiet_signals():
    """Without the engine's handlers these signals are ignored (never fatal to pytest): a stop is the engine's doing."""
    from abawkit import preempt

    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGUSR1, signal.SIGTERM)}
    yield preempt
    preempt.clear()
    for s, h in old.items():
        signal.signal(s, h)


def signalling(at_step: int, signum: int):
    """A loss that sends ``signum`` to this process during optimizer step ``at_step`` (1-based)."""
    calls = []

    def loss(model, batch):
        calls.append(1)
        if len(calls) == at_step * CFG.accum_steps:
            os.kill(os.getpid(), signum)
        return mse(model, batch)
    return loss


@pytest.mark.parametrize("signum,at_step", [(signal.SIGUSR1, 5), (signal.SIGTERM, 8)])  # mid-epoch; an epoch's end
def test_a_stop_request_saves_exits_75_and_the_resumed_run_equals_an_uninterrupted_one(tmp_path, quiet_signals, signum,
                                                                                        at_step):
    ckpt = tmp_path / "last.pt"
    stopped = tiny_model()
    with pytest.raises(quiet_signals.NotFinished) as stop:
        fit(stopped, signalling(at_step, signum), NoisyRegression(), CFG, seed=3, progress=False, checkpoint_path=ckpt)
    assert stop.value.code == 75 and signal.Signals(signum).name in str(stop.value)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["step"] == at_step and len(saved["history"]) == at_step // 4  # 4 steps per epoch: ends are evaluated
    quiet_signals.clear()
    resumed = tiny_model()
    assert fit(resumed, mse, NoisyRegression(), CFG, seed=3, progress=False, checkpoint_path=ckpt).steps == 12
    full = tiny_model()
    fit(full, mse, NoisyRegression(), CFG, seed=3, progress=False)
    for a, b in zip(weights(full), weights(resumed)):
        assert torch.equal(a, b)


def test_a_forced_redo_under_way_is_resumed_not_mistaken_for_the_old_output(tmp_path):
    """A requeued job runs its command again without --force: its .partial, not the old output, is the stage."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class C:
        seed: int = 0

    open_stage(tmp_path, "toy", C()).finish()
    with pytest.raises(StageDone):
        open_stage(tmp_path, "toy", C())
    open_stage(tmp_path, "toy", C(), force=True).path("last.pt").write_text("half")  # then preempted
    again = open_stage(tmp_path, "toy", C())
    assert again.path("last.pt").read_text() == "half"


def script_run(tmp_path: Path, argv: list[str], restart: str) -> subprocess.Popen:
    job = pl.Job("pretrain", "pretrain", tuple(argv), marker="")
    text = slurm.batch_script(tmp_path, job, [*argv, "--force"], slurm.Resources(signal_grace=30), threads=1)
    env = {**os.environ, "SLURM_JOB_ID": "991", "SLURM_RESTART_COUNT": restart, "PATH": os.environ["PATH"],
           "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.Popen(["bash", "-c", text], env=env, stdout=subprocess.PIPE, text=True)


CHILD = ("import signal, sys; signal.signal(signal.SIGUSR1, lambda *a: sys.exit(75)); "
         "print('ready', sys.argv[1:], flush=True); signal.alarm(20); signal.pause()")  # no USR1 in 20 s: dies (142)


def test_the_batch_script_passes_usr1_to_its_command_and_a_restart_drops_force(tmp_path):
    proc = script_run(tmp_path, [sys.executable, "-c", CHILD], restart="0")
    while not (line := proc.stdout.readline()).startswith("ready") and line:
        pass
    assert line.strip() == "ready ['--force']"
    proc.send_signal(signal.SIGUSR1)  # SLURM's --signal=B:USR1 goes to the batch shell only
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 75  # the command's "not finished" (no SLURM job 991 to requeue here: recorded)
    assert json.loads((tmp_path / "run" / "exits" / "991.json").read_text())["rc"] == 75
    again = script_run(tmp_path, [sys.executable, "-c", "import sys; print('ready', sys.argv[1:])"], restart="2")
    out, _ = again.communicate(timeout=60)
    assert "ready []" in out and again.returncode == 0
    assert json.loads((tmp_path / "run" / "exits" / "991.json").read_text())["restarts"] == 2


def test_the_command_writes_its_own_exit_status_for_the_batch_script(tmp_path):
    """A USR1 racing a command's end cuts the batch script's `wait` short (138): the script takes the status
    the command wrote itself (``ABAW_EXIT_STATUS_FILE``), so a finished stage is never recorded as failed."""
    import os
    import subprocess
    import sys

    from abawkit.run import slurm
    from abawkit.run.plan import Job

    status = tmp_path / "status"
    env = {**os.environ, slurm.STATUS_ENV: str(status)}
    done = subprocess.run([sys.executable, "-m", "abawkit.cli", "validate", str(tmp_path / "none.txt"), "--track", "au",
                           "-w", str(tmp_path)], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and status.read_text().strip() == "2"
    job = Job("pretrain", "pretrain", (sys.executable, "-m", "abawkit.cli", "pretrain"))
    script = slurm.batch_script(tmp_path, job, job.cmd, slurm.Resources(time="1", signal_grace=20), 1)
    lines = script.splitlines()
    read = next(i for i, line in enumerate(lines) if "&& rc=$(cat" in line)
    assert f"export {slurm.STATUS_ENV}=" in script and read > next(i for i, line in enumerate(lines) if line.startswith("wait"))


def test_a_command_that_crashes_writes_a_failing_status(tmp_path):
    """An exception escaping the command (not a one-line error) is exit 1 for Python: the status file says so,
    never 0 (a crashed stage recorded as done under SLURM)."""
    import os
    import subprocess
    import sys

    from abawkit.run import slurm

    status = tmp_path / "status"
    code = ("import sys; sys.argv = ['abaw', 'status', '-w', sys.argv[1]]; import abawkit.run.launch as l; "
            "l.status = lambda *a, **k: 1 / 0; from abawkit.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, slurm.STATUS_ENV: str(status)})
    assert done.returncode == 1 and status.read_text().strip() == "1", done.stderr[-300:]
