#!/usr/bin/env bash
# The GPU figures of issue 16 in one short call (well under 5 minutes; nothing is installed):
# rpl_v2 fit time for M = 1 and M = 30 at K = 40, batched CAM++ extraction end to end (decoding,
# fbank and network; clips/s and x real time) and identify latency. See benchmarks/gpu_check.py.
# Usage: bash benchmarks/gpu_check.sh             (CUDA; writes results/gpu_check.json)
#        bash benchmarks/gpu_check.sh --dry-run   (tiny sizes on the CPU, seconds; `make bench`)
#        DEVICE=cpu bash benchmarks/gpu_check.sh  (same as --dry-run)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # runs from a checkout, installed or not
DEVICE=${DEVICE:-cuda}
DRY=()
if [ "${1:-}" = "--dry-run" ] || [ "$DEVICE" = "cpu" ]; then
    DEVICE=cpu
    DRY=(--dry-run)
else
    $PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
fi
OUT=results/gpu_check${DRY:+_dry_run}.json
timeout 280 $PY benchmarks/gpu_check.py --device "$DEVICE" "${DRY[@]}" --out "$OUT"
