"""Recompute a casebook matrix's tables from its store, without running a trial.

    python benchmarks/releases/matrix_from_store.py STORE --builds 2.11.0+cu130 2.12.1+cu130 ... [--out DIR]

The builds are the stored records' torch versions (``env_torch``), oldest first, as the matrix ran them. Writes
matrix_table.csv and matrix_tests.csv beside the store (or under --out) and prints the same report as
``python -m mpslab matrix``. For a store whose interpreters are gone (another machine) or whose batch keys an
older mpslab wrote.
"""

from __future__ import annotations

import argparse
import os
import sys

from mpslab.studies.matrix import ALPHA, matrix_table, transitions
from mpslab.trials.records import load_records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store")
    p.add_argument("--builds", nargs="+", required=True, metavar="TORCH", help="env_torch values, oldest first")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    df = load_records(args.store)
    unknown = sorted(set(df["env_torch"]) - set(args.builds))
    if unknown:
        print(f"matrix_from_store: the store has builds not named in --builds: {unknown}", file=sys.stderr)
        return 2
    labels = {t: f"{i + 1}:{t}" for i, t in enumerate(args.builds)}
    rows = df.assign(case=df["workload"], build=df["env_torch"].map(labels))
    cases = list(dict.fromkeys(rows["case"]))
    table = matrix_table(rows, list(labels.values()), cases)
    tests = transitions(table, list(labels.values()), ALPHA)
    out = args.out or os.path.dirname(os.path.abspath(args.store))
    table.to_csv(os.path.join(out, "matrix_table.csv"), index=False)
    tests.to_csv(os.path.join(out, "matrix_tests.csv"), index=False)
    width = max(len(c) for c in cases)
    for r in table.itertuples():
        print(f"{r.case:<{width}}  {r.build:<15} {r.failures}/{r.trials} failed ({r.interval})  {r.outcomes}")
    print(f"\nadjacent builds: Holm over {len(tests)} tests (cases x adjacent pairs), family-wise alpha {ALPHA}")
    for r in tests.itertuples():
        print("  " + "  ".join(f"{k}={v}" for k, v in r._asdict().items() if k != "Index"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
