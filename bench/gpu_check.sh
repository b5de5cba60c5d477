#!/usr/bin/env bash
# One-shot GPU check for the li2 trainer: environment, `pytest -m gpu`, and the Z_97 K=512 bench.
#
#   bench/gpu_check.sh --prepare   # here (CPU box): copy pure-Python test deps into var/gpu-deps
#   bench/gpu_check.sh             # on the GPU box, repo root; carry var/gpu-deps; logs go to $OUT
#
# Installs nothing on the GPU box: uses its python3 + torch, PYTHONPATH=worker (+ var/gpu-deps only
# when a module is missing there). Every step has a timeout, so the logs always come back.
set -u
cd "$(dirname "$0")/.."
DEPS=var/gpu-deps
if [ "${1:-}" = "--prepare" ]; then
  SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  rm -rf "$DEPS" && mkdir -p "$DEPS"
  for m in marshmallow safetensors yaml _pytest pytest pluggy iniconfig packaging tqdm pygments pytest_timeout.py; do
    cp -r "$SITE/$m" "$DEPS/"
  done
  find "$DEPS" -name __pycache__ -prune -exec rm -rf {} +
  du -sh "$DEPS"; exit 0
fi

OUT=${OUT:-var/gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH=worker:service
if ! $PY -c 'import marshmallow, safetensors, yaml, pytest, tqdm' 2>/dev/null; then
  export PYTHONPATH=$PYTHONPATH:$DEPS
fi
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  $PY -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda,
          "available", torch.cuda.is_available()); print(torch.cuda.get_device_name(0))' 2>&1
  echo "PYTHONPATH=$PYTHONPATH"
} > "$OUT/env.txt"
cat "$OUT/env.txt"

LI2_COMPILE=0 timeout 150 $PY -m pytest -q -m gpu tests/core/test_gpu.py -p no:cacheprovider \
  -W ignore::pytest.PytestConfigWarning > "$OUT/pytest-gpu.txt" 2>&1
echo "pytest -m gpu: exit $?" | tee -a "$OUT/pytest-gpu.txt"; tail -5 "$OUT/pytest-gpu.txt"

COMMON=(--order 97 --hidden 512 --fraction 0.4 --device cuda --repeats 1)
timeout 260 $PY bench/bench_trainer.py "${COMMON[@]}" --runs 256,64,16,1 --epochs 200 --eval-every 50 \
  --write "$OUT/BENCHMARKS.md" > "$OUT/bench-compiled.txt" 2>&1
echo "bench (compiled): exit $?" | tee -a "$OUT/bench-compiled.txt"; tail -9 "$OUT/bench-compiled.txt"
timeout 70 $PY bench/bench_trainer.py "${COMMON[@]}" --runs 256 --no-auto --epochs 100 --eval-every 1 \
  > "$OUT/bench-measure-every-epoch.txt" 2>&1
echo "bench (metrics every epoch, R=256): exit $?" | tee -a "$OUT/bench-measure-every-epoch.txt"
tail -3 "$OUT/bench-measure-every-epoch.txt"
LI2_COMPILE=0 timeout 70 $PY bench/bench_trainer.py "${COMMON[@]}" --runs 256 --no-auto --epochs 100 --eval-every 50 \
  > "$OUT/bench-eager.txt" 2>&1
echo "bench (eager, R=256): exit $?" | tee -a "$OUT/bench-eager.txt"; tail -3 "$OUT/bench-eager.txt"
