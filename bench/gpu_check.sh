#!/usr/bin/env bash
# One-shot GPU check for the li2 trainer: environment, `pytest -m gpu`, the Z_97 K=512 bench, and
# the checkpoint overhead through the worker (bench/bench_checkpoints.py, SQLite).
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
  for m in marshmallow safetensors yaml _pytest pytest pluggy iniconfig packaging tqdm pygments pytest_timeout.py \
           sqlalchemy celery kombu billiard vine amqp click dateutil six.py tzlocal; do
    cp -r "$SITE/$m" "$DEPS/"
  done
  find "$DEPS" -name __pycache__ -prune -exec rm -rf {} +
  find "$DEPS/sqlalchemy" -name '*.so' -delete  # its optional C speed-ups; pure Python on any CPython
  du -sh "$DEPS"; exit 0
fi

OUT=${OUT:-var/gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH=core:store:worker:service
if ! $PY -c 'import marshmallow, safetensors, yaml, pytest, tqdm, sqlalchemy, celery' 2>/dev/null; then
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
# training.precision on CUDA (unmeasured so far): grokking epoch, final concentration and
# throughput of fp32 / tf32 / bf16 on the Z_23 reference and Z_97 (docs/precision.md).
timeout 240 $PY bench/bench_precision.py --device cuda --configs ref,97:0.4:512:1000 --runs 64 --steps 50 \
  --write "$OUT/BENCHMARKS.md" > "$OUT/bench-precision.txt" 2>&1
echo "bench precision: exit $?" | tee -a "$OUT/bench-precision.txt"; tail -9 "$OUT/bench-precision.txt"
# Per-batch start-up on CUDA (unmeasured so far): fresh processes, eager vs torch.compile with a
# cold and a warm host compile cache (li2_worker.compile_cache, LI2_CACHE_DIR).
timeout 300 $PY bench/bench_startup.py --device cuda --runs 64 --write "$OUT/BENCHMARKS.md" \
  > "$OUT/bench-startup.txt" 2>&1
echo "bench startup: exit $?" | tee -a "$OUT/bench-startup.txt"; tail -6 "$OUT/bench-startup.txt"
# Checkpoint overhead through the worker's path on the GPU (SQLite in $OUT): off vs every 5 s vs
# the old every-50-epochs rate; Z_97 K=512, R=64, eager (no compile wait inside the timing).
LI2_COMPILE=0 timeout 240 $PY bench/bench_checkpoints.py overhead --device cuda --order 97 --hidden 512 \
  --runs 64 --epochs 4000 --interval 5 --repeats 1 --database "sqlite:///$(realpath "$OUT")/bench-checkpoints.sqlite" \
  > "$OUT/bench-checkpoints.txt" 2>&1
echo "bench checkpoints (worker path, cuda): exit $?" | tee -a "$OUT/bench-checkpoints.txt"
grep '^|' "$OUT/bench-checkpoints.txt"
