#!/usr/bin/env bash
# How the committed CUDA reference results were made (a machine with torch + CUDA; papermill and
# nbconvert may come from a wheel folder). Usage, from the repo root:
#   OUT=reports/cuda-reference bash benchmarks/cuda_reference.sh [tests|measure|report]...
# Every step writes into $OUT/work; the whole folder is packed into $OUT/cuda-reference.tgz at the end.
set -u
OUT=${OUT:-reports/cuda-reference}
W="$OUT/work"
mkdir -p "$W"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
steps=${*:-tests measure report}

step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

for s in $steps; do
  case "$s" in
    tests)
      step "test suite on this machine (CUDA tests enabled where present)"
      timeout 420 $PY -m pytest -q -p no:cacheprovider --ignore=tests/test_pipeline.py tests 2>&1 \
        | tail -n 40 | tee "$W/pytest.txt"
      ;;
    measure)
      step "seed stress, shared stream"
      $PY -m mpslab stress --device cuda --threads 64 --iterations 200 --sync-every 20 | tee "$W/stress_shared.txt"
      step "seed stress, per-thread streams"
      $PY -m mpslab stress --device cuda --threads 64 --iterations 200 --sync-every 20 --streams per-thread \
        | tee "$W/stress_per_thread.txt"
      step "isolated trials of the seed config"
      $PY -m mpslab trials --device cuda --threads 64 --iterations 200 --sync-every 20 --trials 20 --timeout 120 \
        --store "$W/trials_cuda.jsonl" --no-progress | tail -n 8 | tee "$W/trials.txt"
      step "runner overhead"
      $PY benchmarks/runner_overhead.py --device cuda 2>&1 | tee "$W/runner_overhead.txt"
      step "trial rate"
      $PY benchmarks/trial_rate.py 2>&1 | tee "$W/trial_rate.txt"
      step "coverage walkthrough and edge cases"
      timeout 400 $PY benchmarks/device_validation.py "$W/validation" 2>&1 | tail -n 80 | tee "$W/validation.txt"
      ;;
    report)
      step "notebook series, seed profile, on cuda"
      timeout 500 $PY -m mpslab run --profile seed --device cuda --out "$W/report" -p 'sweep_streams=[shared, per-thread]' \
        2>&1 | grep -v "Kernel is running over TCP" | tee "$W/report.txt"
      ;;
    *) echo "unknown step $s (tests | measure | report)"; exit 2 ;;
  esac
done
tar czf "$OUT/cuda-reference.tgz" -C "$W" .
echo "packed $OUT/cuda-reference.tgz"
