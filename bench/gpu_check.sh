#!/usr/bin/env bash
# Every GPU check of vpr in one run, meant to finish in under 5 minutes on one H100/H200
# with 16 CPU cores. Prints (and writes under OUT_DIR) the device and every figure:
# training and extraction throughput of the seed's design, of the fast pipeline with JPEGs
# decoded in the CPU workers, with JPEGs decoded on the GPU (nvjpeg), and of the latter
# compiled; model-only ceilings; peak host/device memory; the nvjpeg pixel test.
#
#   bash bench/gpu_check.sh [OUT_DIR]
#   SPEED_ARGS="--small --device cpu" bash bench/gpu_check.sh /tmp/out   # dry run on a CPU
#
# Needs torch, torchvision, lightning (and numpy, scikit-learn, pillow, pyyaml, tqdm,
# matplotlib); vpr itself runs from src/. Wheels in .whl/ (made by bench/gpu_wheels.sh:
# pytorch-metric-learning, faiss-cpu, utm) are installed first if present.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-bench_out}}
mkdir -p "$OUT_DIR"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/vpr_site .whl/*.whl
    export PYTHONPATH="/tmp/vpr_site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/device.txt"
fi
"$PYTHON" -c "import torch, torchvision, lightning; print('torch', torch.__version__, \
'torchvision', torchvision.__version__, 'lightning', lightning.__version__)"
# nvjpeg gives (nearly) the pixels of the CPU decoder; the GPU-only test runs here.
"$PYTHON" -m pytest -q -p no:cacheprovider tests/unit/inputs/test_device_decode.py 2>&1 | tail -3 \
    | tee "$OUT_DIR/device_decode_tests.txt"
WORKERS=$("$PYTHON" -c "import os; print(min(16, os.cpu_count()))")
# shellcheck disable=SC2086  # SPEED_ARGS is a list of words
"$PYTHON" bench/speed.py --places 64 --workers "$WORKERS" --steps 30 --warmup 8 \
    --data /tmp/vpr_bench_data --out "$OUT_DIR/speed_gpu.json" ${SPEED_ARGS:-} \
    | tee "$OUT_DIR/speed_gpu.md"
