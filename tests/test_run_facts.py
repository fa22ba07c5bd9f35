"""`abaw run` bookkeeping that can be trusted: states from recorded facts, forced downstream, no orphans,
one clock, a status that fits 80 columns. Each test reproduces a defect of issue 17 on cheap fake jobs."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from test_run import cpu, fake, order
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.run import local
from abawkit.run import plan as pl
from abawkit.workspace.locks import stage_lock

runner = CliRunner()


def argv(work: Path, job: str) -> str:
    return (work / "argv" / job.replace("/", "_")).read_text()


def test_a_failed_forced_rerun_is_failed_and_says_so(tmp_path):
    jobs = [fake(tmp_path, "a"), fake(tmp_path, "b", ("a",))]
    assert set(local.execute(tmp_path, jobs, cpu(), threads=1).values()) == {"done"}
    (tmp_path / "fail_a").write_text("")
    state = local.execute(tmp_path, jobs, cpu(), threads=1, force=True)
    assert state == {"a": "failed", "b": "blocked"}  # a's old manifest is still there: not "done"
    out = runner.invoke(app, ["status", "-w", str(tmp_path)]).output
    assert "failed: a: last run failed (exit 2)" in out and "blocked: b: a failed" in out
    assert "  boom: bad input" in out  # the last line of its log


def test_a_failed_rerun_of_a_stale_job_is_failed(tmp_path):
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "a.toml").write_text("lr = 0.1\n")
    jobs = [fake(tmp_path, "a", recipe=str(recipe))]
    local.execute(tmp_path, jobs, cpu(), threads=1)
    (recipe / "a.toml").write_text("lr = 0.2\n")
    (tmp_path / "fail_a").write_text("")
    assert local.execute(tmp_path, jobs, cpu(), threads=1) == {"a": "failed"}


def test_config_and_command_changes_make_jobs_stale_with_the_reason(tmp_path):
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "a.toml").write_text("lr = 0.1  # a comment\n")
    jobs = [fake(tmp_path, "a", recipe=str(recipe)), fake(tmp_path, "b", ("a",), recipe=str(recipe))]
    local.execute(tmp_path, jobs, cpu(), threads=1)
    (recipe / "a.toml").write_text("lr = 0.1  # another comment\n")  # the same config
    assert pl.states(tmp_path, jobs) == {"a": "done", "b": "done"}
    (recipe / "a.toml").write_text("lr = 0.2\n")
    why = pl.assess(tmp_path, jobs)
    assert why["a"] == pl.State("stale", "config changed") and why["b"] == pl.State("stale", "input a stale")
    out = runner.invoke(app, ["status", "-w", str(tmp_path)]).output
    assert "stale: a: config changed" in out
    (tmp_path / "order.txt").unlink()
    assert set(local.execute(tmp_path, jobs, cpu(), threads=1).values()) == {"done"}
    assert order(tmp_path) == ["a", "b"]
    reseeded = [fake(tmp_path, "a", (), "--seed", "1", recipe=str(recipe)), jobs[1]]  # e.g. another --seed
    assert pl.assess(tmp_path, reseeded)["a"] == pl.State("stale", "command changed")
    assert pl.states(tmp_path, reseeded)["b"] == "stale"


def test_jobs_after_a_redone_job_start_over_instead_of_resuming(tmp_path):
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "a.toml").write_text("lr = 0.1\n")
    jobs = [fake(tmp_path, "a", recipe=str(recipe), force=("--force",)),
            fake(tmp_path, "b", ("a",), force=("--force",)), fake(tmp_path, "c", ("b",), force=("--force",))]
    (tmp_path / "fail_b").write_text("")  # b stops half-way (as if it kept a .partial built on a's output)
    assert local.execute(tmp_path, jobs, cpu(), threads=1) == {"a": "done", "b": "failed", "c": "blocked"}
    (tmp_path / "fail_b").unlink()
    (recipe / "a.toml").write_text("lr = 0.2\n")  # a is redone: b must not resume from the old a
    assert set(local.execute(tmp_path, jobs, cpu(), threads=1).values()) == {"done"}
    assert argv(tmp_path, "a") == "--force" and argv(tmp_path, "b") == "--force" and argv(tmp_path, "c") == "--force"


def test_a_job_that_cannot_start_stops_the_jobs_already_running(tmp_path):
    slow = fake(tmp_path, "slow")
    broken = pl.Job("broken", "broken", (str(tmp_path / "no-such-python"), "-c", "pass"), marker="broken/manifest.json")
    pid = None
    try:
        with pytest.raises(FileNotFoundError):
            local.execute(tmp_path, [slow, broken], cpu(2), threads=1)
        pid = pl.read_record(tmp_path)["slow"]["pid"]
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # stopped (and reaped) before the scheduler gave up
        assert pl.read_record(tmp_path)["slow"]["state"] == "interrupted"
        assert pl.states(tmp_path, [slow, broken]) == {"slow": "pending", "broken": "pending"}
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def test_a_job_whose_stage_is_running_elsewhere_is_waited_for_not_started(tmp_path, monkeypatch):
    """`a` is held by another process until the scheduler says it waits for it; then `a` runs."""
    from abawkit.console import console

    jobs = [fake(tmp_path, "a"), fake(tmp_path, "b")]
    held, waiting = threading.Event(), threading.Event()
    real_print = console.print
    monkeypatch.setattr(console, "print", lambda *a, **k: (waiting.set() if "wait" in str(a[0]) else None,
                                                           real_print(*a, **k)))

    def other_run():
        with stage_lock(tmp_path, "a"):
            held.set()
            waiting.wait(5)  # (without waiting, the scheduler would start `a` now, and `a` would fail)

    threading.Thread(target=other_run, daemon=True).start()
    held.wait(10)
    assert local.execute(tmp_path, jobs, cpu(2), threads=1) == {"a": "done", "b": "done"}
    assert waiting.is_set()


def test_markers_use_one_clock_the_workspace_filesystem(tmp_path, monkeypatch):
    """The scheduler's clock 100 s behind the file server's: validate-like jobs (no manifest) stay done."""
    skewed = types.SimpleNamespace(time=lambda: time.time() - 100, monotonic=time.monotonic, sleep=time.sleep)
    monkeypatch.setattr(local, "time", skewed)
    jobs = [fake(tmp_path, "submit"), fake(tmp_path, "validate", ("submit",), marker="")]
    assert local.execute(tmp_path, jobs, cpu(), threads=1) == {"submit": "done", "validate": "done"}
    assert (tmp_path / "run" / "done" / "validate").is_file()
    (tmp_path / "order.txt").unlink()
    assert local.execute(tmp_path, jobs, cpu(), threads=1) == {"submit": "done", "validate": "done"}
    assert order(tmp_path) == []


def test_status_fits_80_columns(tmp_path):
    ids = ["prep", "pretrain", "finetune/expr/fold0", "features/mae-expr-fold5", "tmf/expr/fold0-vision",
           "ensemble/expr", "smooth/expr", "submit/expr-fold0"]
    jobs = [fake(tmp_path, ids[0])] + [fake(tmp_path, j, tuple(ids[:i])) for i, j in enumerate(ids) if i]
    local.execute(tmp_path, jobs, cpu(), threads=1)
    out = runner.invoke(app, ["status", "-w", str(tmp_path)], env={"COLUMNS": "80"}).output
    assert max(map(len, out.splitlines())) <= 80, out
    for j in ids:
        assert any(line.split() and line.split()[0] == j for line in out.splitlines()), (j, out)
    assert "0.5" in out and "done" in out
    wide = runner.invoke(app, ["status", "-w", str(tmp_path)], env={"COLUMNS": "200"}).output
    assert "depends on" in wide and "finetune/expr/fold0, features/mae-expr-fold5" in wide.replace("\n", " ")


def test_a_jobs_identity_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    job = pl.Job("validate/va", "validate", (sys.executable, "-m", "abawkit.cli", "validate"), recipe="demo")
    here = pl.identity(job)
    monkeypatch.chdir(tmp_path)
    assert pl.identity(job) == here
    moved = pl.Job(job.id, job.stage, ("/another/venv/bin/python", *job.cmd[1:]), recipe="demo")
    assert pl.identity(moved) == here  # a moved interpreter is the same command
