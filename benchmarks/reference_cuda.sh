#!/usr/bin/env bash
# The CUDA reference runs (a machine with torch + CUDA; papermill and the Jupyter stack may come from a
# wheel folder .whl). Each step writes under $W and has its own time limit, so that one slow step cannot
# cost the others; at the end $W is packed into $OUT/<steps>.tgz. Usage, from the repo root:
#   OUT=/tmp/ref bash benchmarks/reference_cuda.sh scenarios oracle      # any of the steps below
#   P_04="trials=100" FLEET=8 OUT=/tmp/ref bash benchmarks/reference_cuda.sh series-04   # trials on 8 Dask workers
set -u
OUT=${OUT:-reports/cuda-reference}
W="${WORK:-$OUT/work}"
mkdir -p "$W"
if [ -d .whl ] && ! python3 -c "import papermill" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site JUPYTER_PATH=/tmp/site/share/jupyter  # nbconvert's templates
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
steps=${*:-scenarios oracle}
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
$PY -c "import json, sys; from mpslab.run.environment import environment; json.dump(environment('cuda'), sys.stdout, indent=1)" \
  > "$W/environment.json" 2>/dev/null

for s in $steps; do
  case "$s" in
    scenarios)
      step "the scenario library as isolated trials on cuda (10 each), then handoff x 100"
      timeout 330 $PY - "$W" <<'PY' 2>&1 | tee "$W/scenarios.txt"
import sys
from mpslab.studies.scenarios import run_library
w = sys.argv[1]
rows, table = run_library(None, "cuda", trials=10, timeout_s=120, store=f"{w}/scenario_trials.jsonl", progress=False)
rows.to_csv(f"{w}/scenario_trials.csv", index=False)
table.to_csv(f"{w}/scenario_table.csv", index=False)
print(table.drop(columns=[c for c in ("citation",) if c in table.columns]).to_string())
rows, table = run_library(["handoff"], "cuda", trials=100, timeout_s=120, store=f"{w}/handoff_trials.jsonl",
                          progress=False)
table.to_csv(f"{w}/handoff_table.csv", index=False)
print(table.to_string())
PY
      ;;
    oracle)
      step "oracle: false alarms over every workload and dtype (fingerprint), then its cost"
      timeout 240 $PY benchmarks/oracle_false_alarms.py --device cuda --runs 12 --threads 8 --iterations 50 2>&1 \
        | tee "$W/oracle_false_alarms.txt"
      timeout 90 $PY benchmarks/oracle_cost.py --device cuda --sizes 64,256 2>&1 | tee "$W/oracle_cost.txt"
      ;;
    advise)
      step "advisor: mlp and transformer, 3 minutes each"
      [ -n "${SKIP_MLP:-}" ] || timeout 250 $PY -m mpslab advise --workload mlp --device cuda --budget 3m --out "$W/advise-mlp" --no-progress \
        2>&1 | tee "$W/advise_mlp.txt"
      timeout 250 $PY -m mpslab advise --workload transformer --device cuda --budget 3m --out "$W/advise-transformer" \
        --no-progress 2>&1 | tee "$W/advise_transformer.txt"
      ;;
    casebook)
      step "casebook: every case and control that applies on cuda and on cpu, 10 isolated trials each (matrix, one build)"
      timeout 420 $PY -m mpslab matrix --pythons "$(command -v $PY)" --device cuda --trials ${CASEBOOK_TRIALS:-10} \
        --out "$W/casebook-cuda" --quiet 2>&1 | tee "$W/casebook_cuda.txt"
      timeout 150 $PY -m mpslab matrix --pythons "$(command -v $PY)" --device cpu --trials ${CASEBOOK_TRIALS:-10} \
        --out "$W/casebook-cpu" --quiet 2>&1 | tee "$W/casebook_cpu.txt"
      ;;
    fleet)
      step "fleet scaling: CPU trials per second against Dask workers"
      timeout 200 $PY benchmarks/fleet_scaling.py --workers 1 2 4 8 --trials 64 2>&1 | tee "$W/fleet_scaling.txt"
      ;;
    series-*)
      nb=${s#series-}
      var="P_$nb"; extra=(); for kv in ${!var:-}; do extra+=(-p "$kv"); done  # e.g. P_04="trials=10"
      if [ -n "${FLEET:-}" ]; then  # FLEET=N: the notebook's trials run on N local Dask workers (one GPU shared)
        $PY -c "import time; from distributed import LocalCluster
c = LocalCluster(n_workers=$FLEET, threads_per_worker=1, processes=True, scheduler_port=8786, dashboard_address=None)
print('fleet up:', c.scheduler_address, flush=True); time.sleep(10**6)" > "$W/fleet_$nb.log" 2>&1 &
        fleet_pid=$!; for _ in $(seq 60); do grep -q "fleet up" "$W/fleet_$nb.log" && break; sleep 1; done
        extra+=(-p scheduler=tcp://127.0.0.1:8786)
      fi
      step "notebook $nb, full profile ${extra[*]:-}, on cuda"
      timeout ${LIMIT:-560} $PY -m mpslab run --profile full --device cuda --only "$nb" --out "$W/report" "${extra[@]}" 2>&1 \
        | grep -v "Kernel is running over TCP" | tee "$W/report_$nb.txt"
      [ -z "${FLEET:-}" ] || kill "$fleet_pid" 2>/dev/null
      ;;
    *) echo "unknown step $s"; exit 2 ;;
  esac
done
name="$(echo $steps | tr ' ' '-').tgz"
tar czf "$OUT/$name" -C "$W" .
echo "packed $OUT/$name"
