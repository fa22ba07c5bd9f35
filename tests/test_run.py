"""`abaw run` / `abaw status`: the job graph, skip of finished jobs, failures, parallel slots, kill + resume.

The scheduler is tested on cheap fake jobs (a few lines of Python each, writing a stage manifest);
the real plan through `--dry-run` on the demo and abaw5 recipes. The real pipeline runs in test_demo.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.errors import AbawError
from abawkit.run import build, local
from abawkit.run import plan as pl
from abawkit.run.plan import Job

runner = CliRunner()

FAKE = """
import json, os, pathlib, sys, time
from abawkit.workspace.locks import stage_lock
w = pathlib.Path(sys.argv[1]); me = sys.argv[2]; deps = sys.argv[3].split(",") if sys.argv[3] else []
lock = stage_lock(w, me); lock.__enter__()  # as every stage does: a second run of it exits 2
with open(w / "order.txt", "a") as f:
    f.write(me + "\\n")
(w / "argv").mkdir(exist_ok=True)
(w / "argv" / me.replace("/", "_")).write_text(" ".join(sys.argv[4:]))
if any(not (w / d / "manifest.json").exists() for d in deps):
    sys.exit(3)  # started before a dependency finished
(w / "env").mkdir(exist_ok=True)
(w / "env" / me.replace("/", "_")).write_text(json.dumps({k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")}))
wait = os.environ.get("FAKE_WAIT_" + me.replace("/", "_"))
if wait:  # block until another job made this file (only possible when both run at once)
    deadline = time.time() + 30
    while not (w / wait).exists() and time.time() < deadline:
        time.sleep(0.05)
    if not (w / wait).exists():
        sys.exit(4)
if me.startswith("slow") and not (w / "go").exists():
    (w / "slow.pid").write_text(str(os.getpid()))
    import signal; signal.pause()
if me.startswith("bad") or (w / ("fail_" + me)).exists():
    print("boom: bad input", file=sys.stderr); sys.exit(2)
m = w / me / "manifest.json"
m.parent.mkdir(parents=True, exist_ok=True)
m.write_text(json.dumps({"metrics": {"val_score": 0.5}}))
"""


def fake(work: Path, id_: str, deps: tuple[str, ...] = (), *args: str, recipe: str = "", marker: str | None = None,
         force: tuple[str, ...] = ()) -> Job:
    """A job of a few lines of Python; ``recipe``: a folder whose ``<stage>.toml`` is its config."""
    return Job(id_, id_.split("/")[0], (sys.executable, "-c", FAKE, str(work), id_, ",".join(deps), *args), deps,
               pl.stage_marker(id_) if marker is None else marker, force=force, recipe=recipe)


def order(work: Path) -> list[str]:
    path = work / "order.txt"
    return path.read_text().split() if path.exists() else []


def cpu(n: int = 1) -> list[local.Slot]:
    return local.slots(None, n)


def test_jobs_run_after_their_dependencies_and_rerun_skips_finished(tmp_path):
    jobs = [fake(tmp_path, "prep"), fake(tmp_path, "pretrain", ("prep",)), fake(tmp_path, "ft/a", ("pretrain",)),
            fake(tmp_path, "ft/b", ("pretrain",)), fake(tmp_path, "ens", ("ft/a", "ft/b"))]
    state = local.execute(tmp_path, jobs, cpu(2), threads=1)
    assert set(state.values()) == {"done"}
    ran = order(tmp_path)
    assert sorted(ran) == sorted(j.id for j in jobs) and ran[0] == "prep" and ran[-1] == "ens"
    assert local.execute(tmp_path, jobs, cpu(2), threads=1) == state
    assert order(tmp_path) == ran  # nothing started again
    record = pl.read_record(tmp_path)
    assert record["ft/a"]["device"] == "cpu" and record["ft/a"]["wall_s"] >= 0
    assert (tmp_path / "run" / "logs" / "ft__a.log").read_text().startswith("$ ")


def test_a_failing_job_stops_only_its_dependants(tmp_path):
    jobs = [fake(tmp_path, "prep"), fake(tmp_path, "bad", ("prep",)), fake(tmp_path, "after-bad", ("bad",)),
            fake(tmp_path, "later", ("after-bad",)), fake(tmp_path, "other", ("prep",))]
    state = local.execute(tmp_path, jobs, cpu(1), threads=1)
    assert state == {"prep": "done", "bad": "failed", "after-bad": "blocked", "later": "blocked", "other": "done"}
    assert "after-bad" not in order(tmp_path)
    log = Path(pl.read_record(tmp_path)["bad"]["log"])
    assert "boom: bad input" in log.read_text()
    result = runner.invoke(app, ["status", "-w", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "failed" in result.output and "blocked" in result.output and str(log) in result.output.replace("\n", "")


def test_stale_jobs_are_redone_with_their_dependants(tmp_path):
    jobs = [fake(tmp_path, "a"), fake(tmp_path, "b", ("a",)), fake(tmp_path, "c", ("b",)), fake(tmp_path, "d")]
    local.execute(tmp_path, jobs, cpu(1), threads=1)
    earlier = (tmp_path / "a" / "manifest.json").stat().st_mtime - 100
    for j in ("b", "c"):  # a was redone after b and c
        os.utime(tmp_path / j / "manifest.json", (earlier, earlier))
    assert pl.states(tmp_path, jobs) == {"a": "done", "b": "stale", "c": "stale", "d": "done"}
    (tmp_path / "order.txt").unlink()
    local.execute(tmp_path, jobs, cpu(1), threads=1)
    assert order(tmp_path) == ["b", "c"]


def six_gpus(monkeypatch) -> None:
    """The machine has GPUs 0-5 (``--gpus`` is checked against them)."""
    from abawkit import devices

    monkeypatch.setattr(devices, "visible_gpus", lambda environ=None, dev=None: [str(i) for i in range(6)])


def test_independent_jobs_run_side_by_side_with_their_own_gpu_and_threads(tmp_path, monkeypatch):
    six_gpus(monkeypatch)
    monkeypatch.setenv("FAKE_WAIT_x", "y/manifest.json")  # x finishes only once y did: needs two slots at once
    jobs = [fake(tmp_path, "x"), fake(tmp_path, "y")]
    state = local.execute(tmp_path, jobs, local.slots("0,1", 1), threads=3)
    assert state == {"x": "done", "y": "done"}
    env = [json.loads((tmp_path / "env" / j).read_text()) for j in ("x", "y")]
    assert sorted(e["CUDA_VISIBLE_DEVICES"] for e in env) == ["0", "1"]
    assert {e["OMP_NUM_THREADS"] for e in env} == {"3"}


def test_a_running_stage_shows_its_epoch_and_step(tmp_path):
    job = fake(tmp_path, "ft/a")
    assert pl.progress(tmp_path, job) is None
    log = tmp_path / "ft" / "a.partial" / "log.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps({"event": "train", "epoch": 1, "step": s}) + "\n" for s in range(0, 2000, 10)))
    assert pl.progress(tmp_path, job) == "epoch 1 step 1990"


def test_slots_and_threads_follow_the_options(monkeypatch):
    six_gpus(monkeypatch)
    assert [s.device for s in local.slots("2,5", 1)] == ["cuda:2", "cuda:5"]
    assert len(local.slots(None, 3)) == 3
    cores = len(os.sched_getaffinity(0))
    assert local.threads_per_job(0, 1) == cores and local.threads_per_job(0, 10 * cores) == 1
    assert local.threads_per_job(2, 4) == 2
    for bad in ("a,b", ","):
        with pytest.raises(AbawError, match="--gpus"):
            local.slots(bad, 1)


def test_killing_the_run_kills_its_jobs_and_a_rerun_resumes(tmp_path):
    jobs = [fake(tmp_path, "first"), fake(tmp_path, "slow", ("first",)), fake(tmp_path, "last", ("slow",))]
    code = ("import sys, pathlib; from abawkit.run import local as e; from test_run import fake;"
            "w = pathlib.Path(sys.argv[1]); e.execute(w, [fake(w, 'first'), fake(w, 'slow', ('first',)),"
            " fake(w, 'last', ('slow',))], e.slots(None, 1), threads=1)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env, stdout=subprocess.DEVNULL)
    pid_file, deadline = tmp_path / "slow.pid", time.time() + 60
    while not pid_file.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert pid_file.exists(), "the slow job never started"
    assert pl.states(tmp_path, jobs)["slow"] == "running"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    child = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert pl.states(tmp_path, jobs) == {"first": "done", "slow": "pending", "last": "pending"}
    (tmp_path / "go").write_text("")
    (tmp_path / "order.txt").unlink()
    assert set(local.execute(tmp_path, jobs, cpu(1), threads=1).values()) == {"done"}
    assert order(tmp_path) == ["slow", "last"]  # the finished job was not redone


def test_a_second_run_on_the_same_workspace_is_refused(tmp_path):
    import fcntl

    lock = tmp_path / "run" / "run.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps({"pid": 4242, "host": "h"}))
        f.flush()
        with pytest.raises(AbawError, match="already running .*4242"):
            local.execute(tmp_path, [fake(tmp_path, "a")], cpu(1), threads=1)
        assert not (tmp_path / "order.txt").exists()


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    work = tmp_path / "w"
    result = runner.invoke(app, ["run", "--release", str(release), "-w", str(work), "--dry-run", "--tasks", "expr,va"])
    assert result.exit_code == 0, result.output
    out = result.output
    for job in ("prep", "pretrain", "features/fbank", "finetune/expr/fold0", "features/mae-expr", "tmf/va/fold1",
                "ensemble/va", "smooth/expr", "submit/va", "validate/expr"):
        assert job in out, job
    assert "finetune/au" not in out and "pending" in out
    assert not work.exists()  # nothing was written, nothing was run


def test_abaw5_plan_needs_the_audio_checkpoints_and_has_six_folds(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    mae = tmp_path / "mae.pth"
    mae.write_bytes(b"x")
    base = ["run", "--release", str(release), "-w", str(tmp_path / "w"), "--recipe", "abaw5", "--dry-run"]
    result = runner.invoke(app, base)
    assert result.exit_code == 2 and "--audio hubert=CHECKPOINT" in result.output and "Traceback" not in result.output
    inp = build.RunInputs(tmp_path / "w", "abaw5", release, mae=mae, audio={"hubert": "h", "vggish": "v"})
    from abawkit.config import load_config

    jobs = build.build(load_config(build.RunConfig, "run", "abaw5"), inp)
    ids = [j.id for j in jobs]
    assert "pretrain" not in ids and "features/hubert" in ids and "features/vggish" in ids
    assert sum(i.startswith("finetune/") for i in ids) == 18 and "features/mae-va-fold5" in ids
    ft = next(j for j in jobs if j.id == "finetune/au/fold3")
    assert ft.deps == ("prep",) and str(mae) in ft.cmd
    tmf = next(j for j in jobs if j.id == "tmf/expr/fold2")
    assert set(tmf.deps) == {"features/mae-expr-fold2", "features/hubert", "features/vggish"}
    ens = next(j for j in jobs if j.id == "ensemble/au")
    assert ens.deps == tuple(f"tmf/au/fold{f}" for f in range(6)) and ens.cmd.count("--val") == 6


def test_status_without_a_run_is_one_line_error(tmp_path):
    result = runner.invoke(app, ["status", "-w", str(tmp_path)])
    assert result.exit_code == 2 and "no `abaw run`" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("cmd", ["run", "status"])
def test_help(cmd):
    result = runner.invoke(app, [cmd, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


@pytest.mark.slow
def test_run_on_another_synthetic_release_killed_and_resumed(tmp_path):
    """The acceptance run, tiny: synth seed 1 -> `abaw run --jobs 2`, SIGTERM once pre-training is done, re-run:
    finished jobs are not redone, every submission validates and `abaw status` shows every job done."""
    from test_demo import tiny_recipe

    recipe = tiny_recipe(tmp_path / "recipe")
    release, work = tmp_path / "release", tmp_path / "w"
    assert runner.invoke(app, ["synth", str(release), "--recipe", str(recipe), "--seed", "1"]).exit_code == 0
    cmd = [sys.executable, "-m", "abawkit.cli", "run", "--release", str(release), "-w", str(work),
           "--recipe", str(recipe), "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (work / "pretrain" / "manifest.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) != 0
    pretrained = (work / "pretrain" / "manifest.json").stat().st_mtime
    assert pl.states(work, pl.load_plan(work))["validate/va"] == "pending"
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "start pretrain" not in done.stdout and (work / "pretrain" / "manifest.json").stat().st_mtime == pretrained
    status = runner.invoke(app, ["status", "-w", str(work)])
    assert status.exit_code == 0 and ": 27 done" in status.output, status.output  # 3 tasks x (finetune, extract,
    # 2 TMF folds, ensemble, smooth, submit, validate) + prep, pretrain, fbank
    for track, tag in (("au", "AU"), ("expr", "EXPR"), ("va", "VA")):
        res = runner.invoke(app, ["validate", str(work / "submissions" / "demo" / f"{tag}_predictions.txt"),
                                  "--track", track, "-w", str(work)])
        assert res.exit_code == 0 and "OK" in res.output, res.output
