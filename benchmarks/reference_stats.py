"""Recompute the statistics the README and notebooks quote from the committed trial stores (no trial is run).

Reads the reference runs' CSV stores under ``data/`` and prints, with today's methods: the failure-rate bounds
(rounded outward), and each build comparison's table (Barnard's test with Holm's rule over the scenarios,
throughput paired by interleaved round with Bonferroni-level intervals). Every store named here was written
with ``block=5`` (the notebook's and the CLI's default), so round = trial // 5.

    python benchmarks/reference_stats.py > data/stats/reference_stats.txt
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pandas as pd  # noqa: E402

from mpslab.studies.compare import FAMILY_RULE, compare_table  # noqa: E402
from mpslab.trials.stats import failure_rate  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
H100 = os.path.join(ROOT, "reference", "h100-2026-11-24")
CPU = os.path.join(ROOT, "reference", "cpu-2026-11-24")
BLOCK = 5


def rates(title: str, path: str, by: str | None = None) -> None:
    df = pd.read_csv(path)
    print(f"## {title}: {os.path.relpath(path, os.path.dirname(ROOT))}")
    groups = df.groupby(by, sort=False) if by else [("all", df)]
    for key, part in groups:
        print(f"  {key}: {failure_rate(part, pool=True).verdict}")
    print()


def comparison(title: str, path: str) -> None:
    rows = pd.read_csv(path)
    table = compare_table(rows, block=BLOCK)
    print(f"## {title}: {os.path.relpath(path, os.path.dirname(ROOT))} (block {BLOCK})")
    print(f"  {FAMILY_RULE}")
    for r in table.itertuples():
        a = f"a {r.a_failures}/{r.a_trials} ({r.a_interval})"
        print(f"  {r.scenario}: {a}, b {r.b_failures}/{r.b_trials} ({r.b_interval})")
        print(f"      failures: {r.verdict}")
        print(f"      throughput: {r.throughput}")
    print()


def main() -> int:
    rates("H100 03: isolated 64 x 200 trials", os.path.join(H100, "report", "data", "ultimate_stress_trials.csv"))
    rates("H100 04: scenarios", os.path.join(H100, "report", "data", "scenario_trials.csv"), by="scenario")
    rates("H100 scenario library, 10 each", os.path.join(H100, "scenario_trials.csv"), by="scenario")
    rates("CPU 03: isolated 64 x 200 trials", os.path.join(CPU, "report", "data", "ultimate_stress_trials.csv"))
    rates("CPU 04: scenarios", os.path.join(CPU, "report", "data", "scenario_trials.csv"), by="scenario")
    comparison("H100 06: A/A", os.path.join(H100, "report", "data", "compare_trials.csv"))
    comparison("CPU 06: A/A", os.path.join(CPU, "report", "data", "compare_trials.csv"))
    comparison("CPU: torch 2.13.0 vs 2.14.1", os.path.join(ROOT, "compare-2.13.0-vs-2.14.1", "compare_trials.csv"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
