#!/usr/bin/env bash
# Downloads, into .whl/, the wheels that bench/gpu_check.sh needs on a GPU machine whose
# Python (3.12) has torch, torchvision, lightning, numpy, scikit-learn, pillow, pyyaml, tqdm
# and matplotlib but not vpr's other dependencies. Run it where pip reaches PyPI; .whl/ is
# git-ignored. On the GPU machine, gpu_check.sh installs them with
#   pip install --no-index --no-deps --target /tmp/site .whl/*.whl
#
#   bash bench/gpu_wheels.sh [PYTHON_VERSION]      # default 3.12
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-3.12}
PLATFORMS=()
for n in 28 27 17; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
PLATFORMS+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PY" \
    --implementation cp "${PLATFORMS[@]}" -d .whl \
    pytorch-metric-learning==2.9.0 faiss-cpu==1.15.1 utm==0.9.0
ls -l .whl
