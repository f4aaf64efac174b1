#!/usr/bin/env bash
# Run the instrument's own benchmarks on one machine and pack the outputs. From the repo root:
#   OUT=reports/bench DEVICE=cuda bash benchmarks/bench_all.sh [overhead timer load trials pipeline soak]...
# Each step writes <step>.txt (and soak its PNG/CSV) into $OUT/bench; $OUT/bench-<steps>.tgz packs them.
# Sizes: CUDA uses size 256 (the seed round's); the CPU uses smaller sizes so a 2-core VM finishes.
set -u
OUT=${OUT:-reports/bench}
DEVICE=${DEVICE:-cpu}
SOAK_S=${SOAK_S:-300}
W="$OUT/bench"
mkdir -p "$W"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
steps=${*:-overhead timer load trials pipeline soak}
if [ "$DEVICE" = cpu ]; then SIZE=64; OPS=6400; LOAD_SIZE=64; SOAK_SIZE=32; else SIZE=256; OPS=12800; LOAD_SIZE=256; SOAK_SIZE=256; fi
{ echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"; echo "host: $(uname -a)"; echo "cpus: $(nproc)";
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; $PY -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")';
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader;
  echo "command: OUT=$OUT DEVICE=$DEVICE SOAK_S=$SOAK_S bash benchmarks/bench_all.sh $steps"; } > "$W/environment.txt"
for s in $steps; do
  echo "=== $s ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
  case "$s" in
    overhead) $PY benchmarks/runner_overhead.py --device "$DEVICE" --size $SIZE --ops $OPS --pairs 30 2>&1 | tee "$W/runner_overhead.txt" ;;
    timer) $PY benchmarks/timer_agreement.py --device "$DEVICE" --rounds ${TIMER_ROUNDS:-5} 2>&1 | tee "$W/timer_agreement.txt" ;;
    load) $PY benchmarks/load.py --device "$DEVICE" --size $LOAD_SIZE 2>&1 | tee "$W/load.txt" ;;
    trials) $PY benchmarks/trial_rate.py 2>&1 | tee "$W/trial_rate.txt" ;;
    pipeline) $PY benchmarks/pipeline_time.py --device "$DEVICE" --repeats 3 2>&1 | tee "$W/pipeline_time.txt" ;;
    soak) $PY benchmarks/soak.py --device "$DEVICE" --size $SOAK_SIZE --iterations 2000 --duration "$SOAK_S" \
            --figure "$W/soak.png" --csv "$W/soak.csv" 2>&1 | tee "$W/soak.txt" ;;
    *) echo "bench_all.sh: unknown step $s (overhead timer load trials pipeline soak)"; exit 2 ;;
  esac
done
tar -czf "$OUT/bench-$(echo $steps | tr ' ' '-').tgz" -C "$OUT" bench
