"""`pip install .` next to a cluster's own torch: the declared ranges keep it, constraints.txt pins CI.

A throwaway venv sees the project's environment through a .pth file, with torch 2.11 / torchvision 0.26
/ torchaudio 2.11 (the CUDA image of /work/shared/GPU.md) standing in front as installed distributions;
pip resolves offline (``--no-index --dry-run``), so nothing is downloaded and nothing is installed.
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = {"torch": "2.11.0", "torchvision": "0.26.0", "torchaudio": "2.11.0"}


def fake_dist(folder: Path, name: str, version: str) -> None:
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text("")
    (info / "INSTALLER").write_text("pip\n")


@pytest.mark.slow  # builds the project's metadata and resolves: ~20 s
def test_pip_install_keeps_another_supported_torch(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    cluster = tmp_path / "cluster"
    for name, version in CLUSTER.items():
        fake_dist(cluster, name, version)
    purelib = next((venv / "lib").glob("python3*/site-packages"))
    (purelib / "0cluster.pth").write_text(f"{cluster}\n")  # first: the cluster's torch is what is installed
    (purelib / "1project.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # pip, setuptools, the rest
    report = tmp_path / "report.json"
    res = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--dry-run", "--no-index",
                          "--no-build-isolation", "--report", str(report), "-q", str(ROOT)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr  # main: no torch==2.14.1 to be found (it would replace 2.11)
    names = [i["metadata"]["name"] for i in json.loads(report.read_text())["install"]]
    assert names == ["abawkit"], names  # nothing of the cluster's torch stack is replaced


def test_ranges_in_pyproject_and_pins_in_constraints():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_stack = [d for d in deps if d.split(">")[0].split("=")[0].split("<")[0] in CLUSTER]
    assert len(torch_stack) == 3 and not any("==" in d for d in torch_stack), torch_stack
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert all(name in pins for name in CLUSTER)
    make = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt" in make and "torch==" not in make  # one place for the exact versions
