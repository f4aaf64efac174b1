#!/usr/bin/env bash
# How the committed CUDA reference results were made (a machine with torch + CUDA; papermill and
# nbconvert may come from a wheel folder). Usage, from the repo root:
#   OUT=reports/cuda-reference bash benchmarks/cuda_reference.sh [tests|stress|validation|bench|report]...
# Every step writes into $WORK (default $OUT/work); it is packed into $OUT/cuda-<steps>.tgz at the end.
set -u
OUT=${OUT:-reports/cuda-reference}
W="${WORK:-$OUT/work}"
mkdir -p "$W"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
steps=${*:-tests stress validation bench report}

step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

for s in $steps; do
  case "$s" in
    tests)
      step "test suite on this machine (CUDA tests enabled where present)"
      timeout 420 $PY -m pytest -q -p no:cacheprovider --ignore=tests/test_pipeline.py tests 2>&1 \
        | tail -n 40 | tee "$W/pytest.txt"
      ;;
    stress)
      step "seed stress, shared stream"
      $PY -m mpslab stress --device cuda --threads 64 --iterations 200 --sync-every 20 | tee "$W/stress_shared.txt"
      step "seed stress, per-thread streams"
      $PY -m mpslab stress --device cuda --threads 64 --iterations 200 --sync-every 20 --streams per-thread \
        | tee "$W/stress_per_thread.txt"
      step "isolated trials of the seed config"
      $PY -m mpslab trials --device cuda --threads 64 --iterations 200 --sync-every 20 --trials 20 --timeout 120 \
        --store "$W/trials_cuda.jsonl" --no-progress | tail -n 8 | tee "$W/trials.txt"
      ;;
    bench)
      step "runner overhead"
      timeout 300 $PY benchmarks/runner_overhead.py --device cuda --repeats 5 2>&1 | tee "$W/runner_overhead.txt"
      step "trial rate"
      timeout 200 $PY benchmarks/trial_rate.py --spawn-repeats 2 --spawn-trials 3 2>&1 | tee "$W/trial_rate.txt"
      ;;
    validation)
      step "coverage walkthrough and edge cases"
      timeout 400 $PY benchmarks/device_validation.py "$W/validation" 2>&1 | tail -n 80 | tee "$W/validation.txt"
      ;;
    report)
      step "notebook series, seed profile, on cuda"
      timeout 500 $PY -m mpslab run --profile seed --device cuda --out "$W/report" -p 'sweep_streams=[shared, per-thread]' \
        2>&1 | grep -v "Kernel is running over TCP" | tee "$W/report.txt"
      ;;
    *) echo "unknown step $s (tests | stress | validation | bench | report)"; exit 2 ;;
  esac
done
name="cuda-$(echo $steps | tr ' ' '-').tgz"
tar czf "$OUT/$name" -C "$W" .
echo "packed $OUT/$name"
