#!/usr/bin/env bash
# GPU figures of docs/performance.md in one short run (about 5 minutes on an H100):
# ensemble training (vectorised vs loop), enrollment scaling, batched CAM++ extraction.
# Usage: bash benchmarks/gpu_check.sh   (from the repository root; writes results/gpu_*.json)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
# 1. 1, 5, 10, 30 adapters, vectorised vs loop, batch 16 and full batch (10 epochs, projected to 75).
timeout 120 $PY benchmarks/bench_ensemble.py --device cuda --parts speed --speed-epochs 10 --runs 1 \
    --threads 0 --out results/gpu_ensemble.json
# 2. Full v2 fit with the default recipe (15 epochs x batch 32), K = 5 ... 1000.
timeout 240 $PY benchmarks/bench_enrollment.py --device cuda --ks 5 20 40 100 500 1000 --runs 1 \
    --threads 0 --timeout 60 --out results/gpu_enrollment.json
# 3. Batched extraction of 1024 3 s files: decoding in CPU workers; fbank batched on the GPU
#    (fp32, then bf16 autocast for the network), and for comparison fbank in the CPU workers.
for flag in "" "--bf16"; do
    timeout 60 $PY benchmarks/bench_identify.py --device cuda --parts throughput --n-clips 1024 \
        --batch 256 --threads 0 --features device $flag --out "results/gpu_throughput${flag:+_bf16}.json"
done
timeout 60 $PY benchmarks/bench_identify.py --device cuda --parts throughput --n-clips 1024 \
    --batch 256 --threads 0 --features workers --out results/gpu_throughput_cpu_fbank.json
