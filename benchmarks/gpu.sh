#!/usr/bin/env bash
# One command for a GPU machine: the CUDA tests, the loader and extraction benchmarks at ViT-B/16 @ 224,
# and the demo; sized for < 8 minutes on one H100/H200; prints a final table (paste it into the README).
#
#   bash benchmarks/gpu.sh          # from the project folder alone, on a machine with a CUDA build of torch
#
# A bare CUDA image (python + its own torch, no package index): on a machine that reaches PyPI run
# `bash benchmarks/gpu_wheels.sh` (the few wheels such an image lacks -> .whl/), copy the project with .whl/
# to the GPU machine and run this script there: it installs them with
# `pip install --no-index --no-deps --target $SITE .whl/*.whl` and puts $SITE and the project on PYTHONPATH.
# `benchmarks/gpu_check.py` runs first and names anything still missing (exit 2, nothing else runs).
#
# Environment: PY (python, default python3), SITE (where the wheels go, default /tmp/abaw-site), WHEELS
# (default .whl), WORKERS (loader workers, default cores - 2), OUT (logs, default /tmp/abaw-gpu), DEMO_S
# (cap on the demo's seconds, default 200), COMPILE=1 (also time a torch.compile'd MAE step; adds about a
# minute), SMOKE=1 (tiny sizes, no GPU needed: checks the script itself on a CPU in ~2 minutes).
# A step that fails stops the script with its exit code, after its log tail and the rows so far; only the
# demo may run out of its time cap.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
SITE=${SITE:-/tmp/abaw-site}
WHEELS=${WHEELS:-.whl}
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
WORKERS=${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}
OUT=${OUT:-/tmp/abaw-gpu}
mkdir -p "$OUT"
CHECK=(benchmarks/gpu_check.py)
if [ "${SMOKE:-0}" = 1 ]; then CHECK+=(--allow-cpu); fi

# prerequisites: install the local wheels only when a module is missing, then check again
if ! "$PY" "${CHECK[@]}" > "$OUT/check.txt" 2>&1; then
  if compgen -G "$WHEELS/*.whl" > /dev/null && grep -q "^missing prerequisites" "$OUT/check.txt"; then
    echo "== installing the wheels of $WHEELS into $SITE (no package index)"
    "$PY" -m pip install -q --no-index --no-deps --upgrade --target "$SITE" "$WHEELS"/*.whl
  fi
  if ! "$PY" "${CHECK[@]}" > "$OUT/check.txt" 2>&1; then
    cat "$OUT/check.txt"
    exit 2
  fi
fi
cat "$OUT/check.txt"

# sizes: ViT-B/16 @ 224 on a GPU; SMOKE=1 shrinks every figure to check the script on a CPU
if [ "${SMOKE:-0}" = 1 ]; then
  ENC="--encoder micro --img-size 32"; LB="--batch 32 --seconds 1 --warmup 1 --faces 128 --decoder-depth 1"
  EB="--batch 32 --seconds 3 --warmup 1 --videos 6 --warmup-videos 1 --faces 128"; DEMO_S=${DEMO_S:-20}
else
  ENC="--encoder base --img-size 224"; LB="--batch 256 --seconds 12 --warmup 5 --faces 4096 --decoder-depth 8"
  EB="--batch 512 --seconds 30 --warmup 10 --videos 24 --warmup-videos 4 --faces 2048"; DEMO_S=${DEMO_S:-200}
fi
declare -a ROWS=()

row() { ROWS+=("$1|${2:-n/a (see the logs in $OUT)}"); }
pick() { grep -m1 "$1" "$2" | sed -e "s/^[^:]*: *//" -e 's/^ *//' || true; }  # the value after "label:" in a log
table() {
  echo
  echo "| $(pick '^device:' "$OUT/check.txt"), torch $(pick '^torch:' "$OUT/check.txt") | value |"
  echo "|---|---|"
  for r in "${ROWS[@]}"; do echo "| ${r%%|*} | ${r#*|} |"; done
}
timed() {  # timed [--allow RC] NAME CMD... -> exit code and seconds recorded, output in $OUT/NAME.log
  local allow=0
  if [ "$1" = --allow ]; then allow=$2; shift 2; fi
  local name=$1; shift
  local t0=$SECONDS rc=0
  "$@" > "$OUT/$name.log" 2>&1 || rc=$?
  row "$name: exit code, seconds" "$rc, $(( SECONDS - t0 ))"
  echo "== $name: exit $rc in $(( SECONDS - t0 )) s (log $OUT/$name.log)"
  tail -n 12 "$OUT/$name.log"
  if [ "$rc" != 0 ] && [ "$rc" != "$allow" ]; then
    echo "== $name failed (exit $rc): stopping; the rows so far:"
    table
    exit "$rc"
  fi
}

if [ "${SMOKE:-0}" = 1 ]; then  # no GPU to run them on: check that they are collected
  timed pytest-gpu "$PY" -m pytest -m gpu -p no:cacheprovider --collect-only -q
else
  timed pytest-gpu "$PY" -m pytest -m gpu -p no:cacheprovider -rf
fi
row "pytest -m gpu" "$(grep -E '[0-9]+ (passed|failed|error)' "$OUT/pytest-gpu.log" | tail -n 1)"

# MAE with the paper's decoder (8 x 512, 16 heads), batch 256, bf16, fused AdamW; loader vs the 606ffbf reference
timed bench-loader "$PY" benchmarks/bench_loader.py $ENC $LB --workers "$WORKERS" --train --reference
L="$OUT/bench-loader.log"
row "bytes/image across the worker boundary (reference)" "$(pick 'bytes/image across' "$L") ($(pick 'bytes/image, reference' "$L" | cut -d' ' -f1))"
for k in workers loader reference model both; do
  row "loader bench: $k (img/s)" "$(grep -m1 "^$k " "$L" | awk '{print $2}')"
done
row "loader bench: both / slower of the two" "$(pick 'both / slower' "$L" | cut -d' ' -f1)"

timed bench-extract "$PY" benchmarks/bench_extract.py $ENC $EB --workers "$WORKERS" --rounds 1
E="$OUT/bench-extract.log"
row "extract bench: bare forward / extract (img/s)" "$(grep -m1 '^round 0' "$E" | awk '{print $5 " / " $8}')"
row "extract bench: extract / bare forward" "$(pick 'median of rounds' "$E")"

if [ "${COMPILE:-0}" = 1 ]; then
  timed bench-compile "$PY" benchmarks/bench_loader.py $ENC $LB --workers "$WORKERS" --train --compile --skip-loader
  row "compiled MAE step, model alone (img/s)" "$(grep -m1 '^model ' "$OUT/bench-compile.log" | awk '{print $2}')"
fi

rm -rf "$OUT/demo"
timed --allow 124 demo timeout "$DEMO_S" "$PY" -m abawkit.cli demo --workdir "$OUT/demo"
row "demo" "$(grep -q 'ablation' "$OUT/demo.log" && echo finished || echo "not finished within ${DEMO_S} s")"

table
