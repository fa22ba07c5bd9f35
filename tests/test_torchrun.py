"""The real multi-process path: ``torchrun --nproc_per_node 2 -m abawkit.cli ...`` on CPU (gloo).

The engine's own DDP test (test_engine.py) drives ``fit`` with ``mp.spawn``; these go through the
command line exactly as a user launches a multi-GPU job, so rank set-up, the rank-0-only run directory,
barriers and video sharding are all exercised.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import torch
from test_finetune import FAST, TINY_MAE
from test_tmf import make_encoder, make_prep

from abawkit.features.store import open_store
from abawkit.io import read_json


def one_thread_env() -> dict[str, str]:
    """This environment without a rank's variables, on one torch thread per process."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return {**env, "OMP_NUM_THREADS": "1"}


def torchrun(*args: str, cwd) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "abawkit.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=one_thread_env(), capture_output=True, text=True, timeout=300)


def test_pretrain_under_torchrun_two_ranks(prep_workspace, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(prep_workspace, work)
    res = torchrun("pretrain", "-w", str(work), *FAST, *TINY_MAE, "--set", "train.device=cpu", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    d = work / "pretrain"
    assert (d / "checkpoint.pt").is_file() and not (work / "pretrain.partial").exists()
    m = read_json(d / "metrics.json")
    assert m["steps"] == 3 and np.isfinite(m["final_loss"])
    assert read_json(d / "manifest.json")["status"] == "done"
    assert res.stdout.count("MAE pre-training") == 1  # only rank 0 prints
    here = socket.gethostname()  # each rank says where it runs (a multi-node job's log shows both hosts)
    said = sorted(line for line in res.stdout.splitlines() if line.startswith("rank "))
    assert said == [f"rank {r} of 2 on {here}" for r in (0, 1)]
    state = torch.load(d / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert not any(k.startswith("module.") for k in state["model"])  # DDP wrapper never leaks into checkpoints


def test_extract_vision_sharded_over_two_ranks_equals_one_process(tmp_path):
    enc = make_encoder(tmp_path / "enc.pt")
    one, two = make_prep(tmp_path / "one"), make_prep(tmp_path / "two")
    args = ["extract", "vision", "--checkpoint", str(enc), "--set", "vision.workers=0", "--set", "vision.device=cpu"]
    # the ranks' thread count too: bit-equality holds for the same kernels, and the thread count can pick others
    single = subprocess.run([sys.executable, "-m", "abawkit.cli", *args, "-w", str(one)], cwd=tmp_path,
                            env=one_thread_env(), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stdout + single.stderr
    res = torchrun(*args, "-w", str(two), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    a, b = open_store(one, "mae"), open_store(two, "mae")
    assert b.info()["dim"] == a.info()["dim"]
    for v in (f"v{i}" for i in range(6)):  # every video written once, by whichever rank owned it
        assert np.array_equal(np.asarray(a.read(v, 40)), np.asarray(b.read(v, 40))), v


def test_audio_extraction_and_tmf_under_torchrun(tmp_path):
    from abawkit.predictions import read_predictions

    work = make_prep(tmp_path / "w")
    enc = make_encoder(tmp_path / "enc.pt")
    for args in (["extract", "vision", "--checkpoint", str(enc), "--set", "vision.workers=0", "--set", "vision.device=cpu"],
                 ["extract", "audio", "--model", "fbank", "--set", "audio.device=cpu"],
                 ["train", "tmf", "--task", "va", "--features", "mae,fbank", *FAST, "--set", "train.device=cpu",
                  "--set", "clips.length=10", "--set", "clips.stride=5", "--set", "clips.eval_stride=5",
                  "--set", "train.batch_size=2"]):
        res = torchrun(*args, "-w", str(work), cwd=tmp_path)
        assert res.returncode == 0, (args[:2], res.stdout + res.stderr)
    assert open_store(work, "fbank").info()["flags"] == {"v3": {"missing_audio": True}}  # gathered from both ranks
    out = work / "tmf" / "va" / "fold0"
    assert len(read_predictions(out / "pred_val.parquet", "va").df) == 40
    assert read_json(out / "manifest.json")["status"] == "done" and not (out / "last.pt").exists()


def test_one_and_two_ranks_train_with_the_same_effective_batch_and_lr_schedule(prep_workspace, tmp_path):
    """Issue 25 (7): the recipe fixes the global batch; 2 ranks take half of it each, in the same steps."""
    args = ["pretrain", *TINY_MAE, "--set", "train.device=cpu", "--set", "train.num_workers=0", "--set", "data.max_images=96",
            "--set", "train.global_batch=32", "--set", "train.batch_size=16", "--set", "train.epochs=2",
            "--set", "train.log_every=1", "--set", "train.warmup_epochs=1"]
    logs = {}
    for ranks in (1, 2):
        work = tmp_path / f"r{ranks}"
        shutil.copytree(prep_workspace, work)
        cmd = [*args, "-w", str(work)]
        res = (torchrun(*cmd, cwd=tmp_path) if ranks == 2 else
               subprocess.run([sys.executable, "-m", "abawkit.cli", *cmd], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}))
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"effective batch 32 (16 x {3 - ranks} accum x {ranks} rank(s))" in " ".join(res.stdout.split())
        logs[ranks] = [json.loads(line) for line in (work / "pretrain" / "log.jsonl").read_text().splitlines()]
    sched = {r: next(e for e in log if e["event"] == "schedule") for r, log in logs.items()}
    for key in ("effective_batch", "lr", "steps", "steps_per_epoch"):
        assert sched[1][key] == sched[2][key], key
    assert sched[1]["effective_batch"] == 32 and sched[1]["steps"] == 2 * (96 // 32)
    lrs = {r: [e["lr"] for e in log if e["event"] == "train"] for r, log in logs.items()}
    assert lrs[1] == lrs[2] and len(lrs[1]) == 6 and len(set(lrs[1])) > 1  # warm-up then cosine, step for step
    assert read_json(work / "pretrain" / "manifest.json")["metrics"]["effective_batch"] == 32
