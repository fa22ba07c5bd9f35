"""Shared fixtures: a tiny synthetic release and a prepared workspace, built once per session.

Both are read-only for tests: copy them (``shutil.copytree``) before changing anything.
``synth_release``: 10 annotation names (one ``_left``/``_right`` pair, one video without a crop
folder), 60 frames at 30 fps, 64 px crops, seed 0. ``prep_workspace``: a workdir whose ``prep/``
stage (frames, videos, splits, audio, crops) was made from it with the demo recipe at size 64.
``keep_torch_threads`` (every test): torch's thread count is put back after each test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TINY = {"videos": 10, "frames": 60, "size": 64, "seed": 0, "faces": 40}


@pytest.fixture(scope="session")
def synth_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from abawkit.stages.synth import SynthConfig, run

    out = tmp_path_factory.mktemp("synth") / "release"
    run(SynthConfig(**TINY), out)
    return out


@pytest.fixture(scope="session")
def prep_workspace(synth_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from abawkit.stages.prep import PrepConfig, run

    workdir = tmp_path_factory.mktemp("work")
    run(PrepConfig(release=str(synth_release), size=TINY["size"]), workdir)
    return workdir


@pytest.fixture(scope="session", autouse=True)
def hash_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoint hashes are cached per user (``runs.hash_cache_dir``): tests keep theirs in a temp folder."""
    import os

    path = tmp_path_factory.mktemp("sha256-cache")
    os.environ["ABAW_HASH_CACHE"] = str(path)
    return path


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """A command run in-process (CliRunner) calls ``torch.set_num_threads`` when its recipe sets ``threads``
    (the demo's predict: 1). Without this, every later test in the session ran on that one thread, whatever
    OMP_NUM_THREADS said, so which kernels a test saw depended on the tests run before it."""
    torch = sys.modules.get("torch")  # never imported here: tests without torch stay fast
    before = torch.get_num_threads() if torch else None
    yield
    if before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)
