"""What the free-threaded stores in this folder record: each run's GIL state, and GIL off against GIL on.

Run from the repository root with the project's venv: `.venv/bin/python data/freethreaded-2026-12-06/gil_states.py`.
For each store: the interpreter label and the GIL at a trial's start and end, as the trial records carry them
(``env_interpreter``, ``env_gil_enabled_start`` / ``_end``), counted per torch build. Then, per case (casebook)
or scenario (library) and build, the trials run with PYTHON_GIL=0 against those with PYTHON_GIL=1, with
Barnard's exact test (``mpslab.trials.stats.compare_rates``; intervals 95%, exact). Only one test per pair is
printed without a multiple-test correction: read a single small p-value among many as a lead, not a finding.
"""

from pathlib import Path

import pandas as pd

from mpslab.trials.records import load_records
from mpslab.trials.stats import compare_rates

HERE = Path(__file__).resolve().parent
# The workload column names the case (casebook) or the scenario (library).
RUNS = {
    "casebook": ("casebook-gil0/matrix.jsonl", "casebook-gil1/matrix.jsonl"),
    "fx cases": ("fx-cases-gil0/matrix.jsonl", "fx-cases-gil1/matrix.jsonl"),
    "library": ("library-gil0/compare.jsonl", "library-gil1/compare.jsonl"),
}
GIL_COLUMNS = ["env_torch", "env_interpreter", "env_gil_enabled_start", "env_gil_enabled_end"]


def main() -> None:
    for kind, (off_path, on_path) in RUNS.items():
        frames = {}
        for label, rel in (("PYTHON_GIL=0", off_path), ("PYTHON_GIL=1", on_path)):
            path = HERE / rel
            if not path.exists():
                print(f"{kind} {label}: {rel} not there")
                continue
            df = load_records(path)
            frames[label] = df
            print(f"{kind} {label}: {rel}, {len(df)} trials")
            for values, n in df.groupby(GIL_COLUMNS, dropna=False).size().items():
                print("  " + ", ".join(f"{c}={v}" for c, v in zip(GIL_COLUMNS, values)) + f": {n}")
        if len(frames) < 2:
            continue
        off, on = frames["PYTHON_GIL=0"], frames["PYTHON_GIL=1"]
        print(f"{kind}: GIL off -> GIL on, per workload and build")
        quiet = 0
        for (name, torch), a in off.groupby(["workload", "env_torch"], sort=False):
            b = on[(on["workload"] == name) & (on["env_torch"] == torch)]
            if b.empty:
                continue
            c = compare_rates(a["outcome"].tolist(), b["outcome"].tolist(), labels=("GIL off", "GIL on"))
            if c.before.failures or c.after.failures:
                print(f"  {name} {torch}: {c.verdict}")
            else:
                quiet += 1
            if kind == "library":
                # Medians of runs made one after the other on a shared machine: a description, not a test.
                ma, mb = (pd.to_numeric(x["ops_per_s"], errors="coerce").median() for x in (a, b))
                print(
                    f"  {name} {torch}: median ops/s GIL off {ma:,.0f} ({len(a)} trials), GIL on {mb:,.0f} ({len(b)})"
                )
        print(f"  ({quiet} pairs where neither side failed have no verdict line)\n")


if __name__ == "__main__":
    main()
