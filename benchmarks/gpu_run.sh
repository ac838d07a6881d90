#!/usr/bin/env bash
# The GPU run, from the repository root on a machine with CUDA: install the package (no network:
# its dependencies must already be there), run every section of bench_gpu.py inside its time
# budget, and leave the JSON, the log and nvidia-smi's answer in $OUT.
#
#   bash benchmarks/gpu_run.sh                 # OUT=<folder> bash ... to choose where the files go
#
# For a check on a CPU machine, without installing anything:
#   GPU_RUN_SKIP_INSTALL=1 GPU_RUN_ARGS="--quick --device cpu" OUT=/tmp/gpu-out bash benchmarks/gpu_run.sh
#
# Environment: OUT (default: a new temporary folder), PYTHON (default python3), GPU_RUN_ARGS
# (more arguments for bench_gpu.py), GPU_RUN_SKIP_INSTALL=1 (use the package as it is installed
# or on PYTHONPATH), GPU_RUN_TIMEOUT (seconds before bench_gpu.py is killed; default 540: its
# own limit is 500 s, and one command on the device may run 600 s).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$(mktemp -d)}"
PYTHON="${PYTHON:-python3}"
TIMEOUT="${GPU_RUN_TIMEOUT:-540}"
mkdir -p "$OUT"
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
start=$(date +%s)

if [ "${GPU_RUN_SKIP_INSTALL:-0}" != 1 ]; then
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation --no-index -e . \
        >"$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; echo "install failed"; exit 1; }
fi
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
fi
echo "install and checks took $(($(date +%s) - start)) s; output in $OUT"

# shellcheck disable=SC2086  # GPU_RUN_ARGS is a list of words
timeout --signal=TERM --kill-after=10 "$TIMEOUT" \
    "$PYTHON" benchmarks/bench_gpu.py --out "$OUT/gpu.json" ${GPU_RUN_ARGS:-} 2>&1 \
    | grep -v '^USDT:' | tee "$OUT/bench_gpu.log"
status=${PIPESTATUS[0]}
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    echo "bench_gpu.py stopped after ${TIMEOUT} s: $OUT/gpu.json holds the sections it finished"
fi
echo "exit $status after $(($(date +%s) - start)) s"
exit "$status"
