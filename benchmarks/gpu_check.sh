#!/usr/bin/env bash
# One short GPU check of the deep path (docs/deep.md): install the `deep` extra, fine-tune the tiny
# recipe (params/deep-tiny.yaml) on CUDA with mixed precision, fail unless training really ran on
# the GPU, and record training samples/s, inference latency and peak GPU memory in
# benchmarks/results/gpu_check.json. About 2 minutes on a CUDA machine, most of it the install.
#
#   bash benchmarks/gpu_check.sh            # PRECISION=fp16 for GPUs without bf16
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
PRECISION="${PRECISION:-bf16}"

if [ ! -x .venv-gpu/bin/python ]; then
  "$PY" -m venv .venv-gpu
fi
# torch==2.13.0 from the package index: on Linux its default wheel is the CUDA build.
.venv-gpu/bin/python -m pip install --quiet -c constraints.txt -e '.[deep]'
.venv-gpu/bin/python - <<'PYCHECK'
import torch
assert torch.cuda.is_available(), f"torch {torch.__version__} sees no CUDA device"
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
PYCHECK
HF_HUB_OFFLINE=1 .venv-gpu/bin/python benchmarks/deep_speed.py \
  --device cuda --precision "$PRECISION" --require-device cuda --epochs 3 \
  --out benchmarks/results/gpu_check.json
echo "wrote benchmarks/results/gpu_check.json"
