#!/usr/bin/env bash
# The typed trials floor on a CUDA machine: the CLI's trials with a store (records only, claims in the
# SQLite sidecar, resume), run_batch on a process pool (the one driver with an Executor), two writers on one
# store, and the casebook on cuda and cpu. Usage, from the repo root: OUT=/tmp/floor bash benchmarks/trials_floor_cuda.sh
set -u
OUT=${OUT:-reports/trials-floor-cuda}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu checks the script itself anywhere
export DEVICE
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
{
step "environment"
$PY -c "import json, sys; from mpslab.run.environment import environment; json.dump(environment('cuda'), sys.stdout, indent=1)"
step "mpslab trials on cuda, twice on one store (the second run resumes)"
for i in 1 2; do
  timeout 200 $PY -m mpslab trials --device "$DEVICE" --workload seed --threads 8 --iterations 50 --size 256 --trials 10 \
    --timeout 120 --store "$OUT/trials.jsonl" --no-progress
  echo "exit $?"
done
step "what the store holds"
$PY - "$OUT/trials.jsonl" <<'PY'
import os, sqlite3, sys
import pandas as pd
path = sys.argv[1]
df = pd.read_json(path, lines=True)
print("pandas.read_json rows:", len(df), "kinds:", sorted(df["kind"].unique()))
print("sidecar:", os.path.exists(path + ".claims"), "claim rows left:",
      sqlite3.connect(path + ".claims").execute("select count(*) from claims").fetchone()[0])
PY
step "two writers on one store, started together"
for w in a b; do
  timeout 300 $PY -m mpslab trials --device "$DEVICE" --workload mlp --threads 4 --iterations 20 --trials 16 \
    --timeout 120 --store "$OUT/shared.jsonl" --no-progress --json > "$OUT/writer_$w.json" 2> "$OUT/writer_$w.err" &
done
wait
$PY - "$OUT" <<'PY'
import collections, json, sys
from mpslab.trials.records import read_records
out = sys.argv[1]
recs = read_records(f"{out}/shared.jsonl")
per = collections.Counter(r["trial"] for r in recs)
print("records:", len(recs), "distinct trials:", len(per), "run twice:", [k for k, n in per.items() if n > 1])
for w in "ab":
    text = open(f"{out}/writer_{w}.json").read()
    doc = json.loads(text) if text.strip() else {}
    trials = doc.get("trials") or []
    print("writer", w, "returned", len(trials), "trials:", sorted(t["trial"] for t in trials) == list(range(16)))
PY
step "run_batch on a process pool (executor=), cuda"
cat > "$OUT/pool_batch.py" <<'PY'
import concurrent.futures as cf
import multiprocessing as mp
import os

from mpslab import StressConfig, run_batch

if __name__ == "__main__":  # the pool's spawned workers import this file again
    config = StressConfig(threads=4, iterations=20, workload="mlp", device=os.environ["DEVICE"])
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        batch = run_batch(config, trials=6, timeout_s=120, executor=pool, progress=False)
    print("batch", batch.batch, "ran", batch.ran, {o.value: n for o, n in batch.counts().items() if n})
    print(batch.frame()[["trial", "outcome", "worker", "wall_s"]].round(3).to_string(index=False))
PY
timeout 300 $PY "$OUT/pool_batch.py"
step "casebook on cuda and cpu (matrix, one build, 5 trials each)"
[ -n "${SKIP_CASEBOOK:-}" ] || timeout 420 $PY -m mpslab matrix --pythons "$(command -v $PY)" --device cuda --trials 5 --out "$OUT/casebook-cuda" --quiet
[ -n "${SKIP_CASEBOOK:-}" ] || timeout 200 $PY -m mpslab matrix --pythons "$(command -v $PY)" --device cpu --trials 5 --out "$OUT/casebook-cpu" --quiet
step "done"
} 2>&1 | tee "$OUT/log.txt"
