#!/usr/bin/env bash
# The GPU checks of the deep path (docs/deep.md), one short script:
#   1. the tiny recipe (params/deep-tiny.yaml) fine-tuned on CUDA with mixed precision, failing
#      unless training really ran on the GPU -> benchmarks/results/gpu_check.json;
#   2. the real sizes (benchmarks/gpu_paths.py): a CamemBERT-base-sized transformer, EfficientNet-Lite0
#      fine-tuning and the frozen image embedder on CUDA vs CPU -> benchmarks/results/gpu_paths.json.
# About 5 minutes on a CUDA machine.
#
#   bash benchmarks/gpu_check.sh              # a venv .venv-gpu with the `deep` extra (needs the package index)
#   WHEELS=.whl bash benchmarks/gpu_check.sh  # offline: the machine's python3 already has torch,
#       transformers, tokenizers, onnxruntime, scikit-learn, pandas, pillow and pyyaml; the project's
#       other imports are wheels in .whl (docs/deep.md lists them), installed into a scratch folder
#   PRECISION=fp16 ...                        # GPUs without bf16
set -euo pipefail
cd "$(dirname "$0")/.."
PRECISION="${PRECISION:-bf16}"

if [ -n "${WHEELS:-}" ]; then
  PY=python3
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/rakuten-gpu-site "$WHEELS"/*.whl
  export PYTHONPATH="/tmp/rakuten-gpu-site:$PWD/src"
else
  if [ ! -x .venv-gpu/bin/python ]; then
    python3 -m venv .venv-gpu
  fi
  # torch==2.13.0 from the package index: on Linux its default wheel is the CUDA build.
  .venv-gpu/bin/python -m pip install --quiet -c constraints.txt -e '.[deep]'
  PY=.venv-gpu/bin/python
fi
"$PY" - <<'PYCHECK'
import torch
assert torch.cuda.is_available(), f"torch {torch.__version__} sees no CUDA device"
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__, flush=True)
PYCHECK
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
"$PY" benchmarks/deep_speed.py \
  --device cuda --precision "$PRECISION" --require-device cuda --epochs 3 \
  --out benchmarks/results/gpu_check.json
echo "wrote benchmarks/results/gpu_check.json"
"$PY" benchmarks/gpu_paths.py --device cuda --precision "$PRECISION" \
  --out benchmarks/results/gpu_paths.json
