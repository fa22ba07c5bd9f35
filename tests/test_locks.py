"""One run per stage: a second concurrent run stops in one line, a kill -9 never blocks a resume,
and the resumed weights equal an uninterrupted run's. Real subprocesses, synchronised by pipes."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.io import read_json
from abawkit.workspace.locks import lock_holder, lock_path
from abawkit.workspace.stage import load_stage, stage

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]

HOLD = """
import sys
from dataclasses import dataclass
from abawkit.workspace.stage import stage

@dataclass(frozen=True)
class C:
    seed: int = 0

with stage(sys.argv[1], sys.argv[2], C()) as run:
    run.path("half.txt").write_text("being written")
    print("ready", flush=True)
    sys.stdin.readline()
    run.add_output("out.txt").write_text("first")
"""

TRAIN = """
import sys
from dataclasses import dataclass
sys.path.insert(0, sys.argv[2])
from test_engine import CFG, NoisyRegression, mse, tiny_model
from abawkit.engine import fit
from abawkit.workspace.stage import stage

@dataclass(frozen=True)
class C:
    seed: int = 0

calls = 0

def loss(model, batch):
    global calls
    calls += 1
    if calls == 2 * 7 + 1:  # inside step 8; steps 6 (checkpoint_every=3) was saved
        print("ready", flush=True)
        sys.stdin.readline()  # killed here
    return mse(model, batch)

with stage(sys.argv[1], "toy", C()) as run:
    fit(tiny_model(), loss, NoisyRegression(), CFG, seed=5, progress=False, checkpoint_path=run.path("last.pt"))
"""


@dataclass(frozen=True)
class C:
    seed: int = 0


def start(script: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)


def wait_ready(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Block until the child prints ``ready`` (bounded: a hung child fails the test, never hangs it)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"child not ready: {line!r}, exit {proc.poll()}")


def test_second_run_of_a_stage_exits_2_while_the_first_finishes(tmp_path):
    first = start(HOLD, str(tmp_path), "prep")
    try:
        wait_ready(first)
        holder = lock_holder(tmp_path, "prep")
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        result = runner.invoke(app, ["prep", "--release", str(tmp_path / "release"), "-w", str(tmp_path)])
        assert result.exit_code == 2, result.output
        line = " ".join(result.output.split())
        assert f"prep is already running (pid {first.pid} on {socket.gethostname()}" in line
        assert (tmp_path / "prep.partial" / "half.txt").read_text() == "being written"  # left alone
        with stage(tmp_path, "finetune/au/fold2", C()) as other:  # another stage runs side by side
            other.add_output("x.txt").write_text("x")
    finally:
        out, _ = first.communicate("go\n", timeout=60)
    assert first.returncode == 0
    assert (tmp_path / "prep" / "out.txt").read_text() == "first" and load_stage(tmp_path, "prep")["status"] == "done"
    assert load_stage(tmp_path, "finetune/au/fold2")["status"] == "done"
    assert not lock_path(tmp_path, "prep").exists() and lock_holder(tmp_path, "prep") is None


def test_kill_9_leaves_no_lock_and_resume_gives_the_same_weights(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_engine import CFG, NoisyRegression, mse, tiny_model, weights

    child = start(TRAIN, str(tmp_path / "w"), str(Path(__file__).parent))
    wait_ready(child)
    child.kill()  # SIGKILL: no cleanup runs
    child.wait(timeout=60)
    assert lock_path(tmp_path / "w", "toy").exists()  # the file stays, the kernel dropped the flock
    assert lock_holder(tmp_path / "w", "toy") is None
    assert read_json(tmp_path / "w" / "toy.partial" / "config.json")["seed"] is None
    with stage(tmp_path / "w", "toy", C()) as run:
        state = torch.load(run.path("last.pt"), weights_only=True)  # plain torch, no allow-list needed
        assert state["step"] == 6
        from abawkit.engine import fit

        resumed = tiny_model()
        torch.nn.init.zeros_(resumed[0].weight)  # whatever the init: the checkpoint decides
        assert fit(resumed, mse, NoisyRegression(), CFG, seed=5, progress=False,
                   checkpoint_path=run.path("last.pt")).steps == 12
    full = tiny_model()
    fit(full, mse, NoisyRegression(), CFG, seed=5, progress=False, checkpoint_path=tmp_path / "full.pt")
    for a, b in zip(weights(full), weights(resumed)):
        assert torch.equal(a, b)
