#!/usr/bin/env bash
# Fetch, on a machine that reaches PyPI, the wheels a bare CUDA image lacks (benchmarks/gpu_wheels.txt) into
# .whl/ at the project root; copy the project with .whl/ to the GPU machine and run benchmarks/gpu.sh there,
# which installs them with `pip install --no-index --no-deps` (no registry needed there).
#
#   bash benchmarks/gpu_wheels.sh            # wheels for CPython 3.12 on x86_64 Linux
#   PYVER=3.11 bash benchmarks/gpu_wheels.sh # another Python on the GPU machine
#
# Environment: PY (the pip to run, default python3), PYVER (target Python, default 3.12), DEST (default .whl).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
PYVER=${PYVER:-3.12}
DEST=${DEST:-.whl}
mkdir -p "$DEST"
"$PY" -m pip download --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$DEST" -r benchmarks/gpu_wheels.txt
echo "wheels for Python $PYVER in $DEST/:"
ls -1 "$DEST"
