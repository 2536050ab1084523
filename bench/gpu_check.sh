#!/usr/bin/env bash
# Every GPU check of vpr in one run, meant to finish in under 5 minutes on one H100/H200
# with 16 CPU cores. Prints (and writes under OUT_DIR) the device and every figure:
# training and extraction throughput of the fast pipeline, of the seed's design and of
# the compiled model, model-only ceilings, peak host/device memory.
#
#   bash bench/gpu_check.sh [OUT_DIR]
#
# Needs vpr importable (pip install -e ., or its wheels on PYTHONPATH: torch, torchvision,
# lightning, pytorch-metric-learning, faiss-cpu, utm, pyyaml, pillow, tqdm, matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-bench_out}}
mkdir -p "$OUT_DIR"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/device.txt"
WORKERS=$(python -c "import os; print(min(16, os.cpu_count()))")
python bench/speed.py --device cuda --places 64 --workers "$WORKERS" --steps 30 --warmup 8 \
    --data /tmp/vpr_bench_data --out "$OUT_DIR/speed_gpu.json" | tee "$OUT_DIR/speed_gpu.md"
