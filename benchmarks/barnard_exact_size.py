"""The exact size of mpslab's failure test (Barnard's, two-sided, p < 0.05), worst case over the true rate.

Writes ``data/stats/barnard_exact_size.csv``: one row per pair of trial counts (equal n = 10..60 and a listed
set of unequal pairs) with the sup over the common true failure rate of P(significant), as a grid maximum and a
rigorous upper bound between grid points (``mpslab.trials.exact.exact_size``), the rate that attains it, the
number of rejecting tables, and the tables where one more failure on the side that already fails more loses
significance. ``tests/test_exact.py`` recomputes some rows. Runs on the CPU, minutes (every distinct table is
one ``scipy.stats.barnard_exact`` call):

    python benchmarks/barnard_exact_size.py [--out data/stats/barnard_exact_size.csv] [--equal 10 60]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mpslab.trials.exact import GRID, exact_size, monotone_violations, pvalue_matrix  # noqa: E402

UNEQUAL = [(10, 20), (10, 30), (10, 60), (20, 30), (20, 40), (20, 60), (30, 40), (30, 60), (40, 60), (50, 60)]
ALPHA = 0.05
FIELDS = [
    "na",
    "nb",
    "alpha",
    "rate_grid",
    "size_grid_max",
    "size_upper",
    "worst_rate",
    "rejecting_tables",
    "monotone_violations",
]


def row(na: int, nb: int) -> dict:
    p = pvalue_matrix(na, nb)
    size = exact_size(p, ALPHA)
    bad = monotone_violations(p, ALPHA)
    return {
        "na": na,
        "nb": nb,
        "alpha": ALPHA,
        "rate_grid": GRID,
        "size_grid_max": f"{size.grid_max:.6f}",
        "size_upper": f"{size.upper:.6f}",
        "worst_rate": f"{size.worst_rate:.5f}",
        "rejecting_tables": int((p < ALPHA).sum()),
        "monotone_violations": ";".join(f"{fa}/{na} {fb}/{nb} +{side}" for fa, fb, side in bad),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("data", "stats", "barnard_exact_size.csv"))
    ap.add_argument("--equal", nargs=2, type=int, default=(10, 60), metavar=("FROM", "TO"))
    args = ap.parse_args()
    pairs = [(n, n) for n in range(args.equal[0], args.equal[1] + 1)] + UNEQUAL
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    start = time.monotonic()
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        for na, nb in pairs:
            r = row(na, nb)
            w.writerow(r)
            fh.flush()
            print(f"{na:3d} {nb:3d}  size <= {r['size_upper']}  ({time.monotonic() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
