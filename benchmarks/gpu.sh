#!/usr/bin/env bash
# One command for a GPU machine: the CUDA tests, the loader and extraction benchmarks at ViT-B/16 @ 224,
# and the demo; sized for < 8 minutes on one H100/H200; prints a final table (paste it into the README).
#
#   bash benchmarks/gpu.sh                                    # from the project root
#   PY=python3 PYTHONPATH=/tmp/site:$PWD bash benchmarks/gpu.sh   # a bare CUDA image (see GPU.md)
#
# Environment: PY (python, default python3), WORKERS (loader workers, default cores - 2), OUT (logs, default
# /tmp/abaw-gpu), DEMO_S (cap on the demo's seconds, default 200), COMPILE=1 (also time a torch.compile'd
# MAE step; adds about a minute), SMOKE=1 (tiny sizes: checks the script itself on a CPU in ~2 minutes).
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export PYTHONPATH=${PYTHONPATH:-$PWD}
WORKERS=${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}
OUT=${OUT:-/tmp/abaw-gpu}
mkdir -p "$OUT"
# sizes: ViT-B/16 @ 224 on a GPU; SMOKE=1 shrinks every figure to check the script on a CPU
if [ "${SMOKE:-0}" = 1 ]; then
  ENC="--encoder micro --img-size 32"; LB="--batch 32 --seconds 1 --warmup 1 --faces 128 --decoder-depth 1"
  EB="--batch 32 --seconds 3 --warmup 1 --videos 6 --warmup-videos 1 --faces 128"; DEMO_S=${DEMO_S:-20}
else
  ENC="--encoder base --img-size 224"; LB="--batch 256 --seconds 12 --warmup 5 --faces 4096 --decoder-depth 8"
  EB="--batch 512 --seconds 30 --warmup 10 --videos 24 --warmup-videos 4 --faces 2048"; DEMO_S=${DEMO_S:-200}
fi
declare -a ROWS

row() { ROWS+=("$1|$2"); }
pick() { grep -m1 "$1" "$2" | sed -e "s/^[^:]*: *//" -e 's/^ *//'; }  # the value after "label:" in a log
timed() {  # timed NAME CMD... -> seconds and exit code recorded, output in $OUT/NAME.log
  local name=$1; shift
  local t0=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  row "$name: exit code, seconds" "$rc, $(( SECONDS - t0 ))"
  echo "== $name: exit $rc in $(( SECONDS - t0 )) s (log $OUT/$name.log)"
  tail -n 12 "$OUT/$name.log"
}

"$PY" - <<'EOF' | tee "$OUT/device.txt"
import torch
print("device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)")
print("torch:", torch.__version__)
EOF

timed pytest-gpu "$PY" -m pytest -m gpu -p no:cacheprovider -rf
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
timed demo timeout "$DEMO_S" "$PY" -m abawkit.cli demo --workdir "$OUT/demo"
row "demo" "$(grep -q 'ablation' "$OUT/demo.log" && echo finished || echo "not finished within ${DEMO_S} s")"

echo
echo "| $(pick device "$OUT/device.txt"), torch $(pick torch "$OUT/device.txt") | value |"
echo "|---|---|"
for r in "${ROWS[@]}"; do echo "| ${r%%|*} | ${r#*|} |"; done
