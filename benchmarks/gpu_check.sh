#!/usr/bin/env bash
# Issue 6's GPU figures in one command, for a session lent a GPU machine (see docs/performance.md).
# That machine has python3 with a CUDA PyTorch, pandas and tqdm, and no network: nothing is installed,
# the repository is imported from PYTHONPATH. Before the call, here:
#   mkdir -p data/fashion_mnist && cp /usr/share/datasets/fashion-mnist/*.gz data/fashion_mnist/
# then run `bash benchmarks/gpu_check.sh` there with `data/fashion_mnist` carried. The logs go to $OUT
# (or build/). SCALE=ci runs the same steps small, to try the script on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=${OUT:-build}
mkdir -p "$out"
python=${PYTHON:-python3}
if command -v nvidia-smi > /dev/null; then nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; fi
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
"$python" benchmarks/batched_models.py | tee "$out/batched_models.log"
"$python" benchmarks/lottery_figure.py --scale "${SCALE:-gpu}" --batched-only 2>&1 \
  | grep -v "it/s]" | tee "$out/lottery_figure.log"
