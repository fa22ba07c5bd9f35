"""benchmarks/gpu.sh on a machine that cannot run it: it names what is missing and stops, in seconds.

A bare interpreter (a venv without packages) stands in for a bare CUDA image; a wheel built here stands
in for the wheels of benchmarks/gpu_wheels.sh, installed with no package index.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def gpu_sh(tmp_path: Path, py: str, **env: str) -> subprocess.CompletedProcess:
    full = {**{k: v for k, v in os.environ.items() if k not in ("SMOKE", "PYTHONPATH")}, "PY": py,
            "OUT": str(tmp_path / "out"), "SITE": str(tmp_path / "site"), "WHEELS": str(tmp_path / "wheels"), **env}
    return subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh")], env=full, capture_output=True, text=True,
                          timeout=240, cwd=tmp_path)


def test_bare_python_gets_the_list_of_what_is_missing(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    res = gpu_sh(tmp_path, str(tmp_path / "bare" / "bin" / "python"))
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert "missing prerequisites" in out and "torch (pip: torch)" in out and "av (pip: av)" in out
    assert "gpu_wheels.sh" in out  # says how to get them
    assert not (tmp_path / "out" / "pytest-gpu.log").exists()  # nothing else ran, no table of empty cells


def fake_wheel(folder: Path, name: str, body: str) -> Path:
    """A minimal wheel of one module, as pip accepts it without an index."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-99.0-py3-none-any.whl"
    info = f"{name}-99.0.dist-info"
    files = {f"{name}/__init__.py": body,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 99.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{k},,\n" for k in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
    return path


@pytest.mark.slow  # imports every prerequisite twice: ~30 s on 2 shared cores
def test_missing_module_is_installed_from_local_wheels_then_no_gpu_stops(tmp_path):
    broken = tmp_path / "broken" / "av"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('simulated: av is not installed')\n")
    fake_wheel(tmp_path / "wheels", "av", "WORKS = True\n")
    res = gpu_sh(tmp_path, sys.executable, PYTHONPATH=str(tmp_path / "broken"))
    out = res.stdout + res.stderr
    assert "installing the wheels" in out and (tmp_path / "site" / "av" / "__init__.py").is_file(), out
    assert res.returncode == 2 and "no CUDA device visible to torch" in out, out  # this machine has no GPU
    assert "missing prerequisites" not in out  # the wheel's av shadows the broken one
    assert not (tmp_path / "out" / "pytest-gpu.log").exists()
