"""What a claim costs: trials per second through the store alone (no trial runs), one writer and several.

Each writer is a fresh process that loops ``take(1)``, ``append`` (one record line, fsync) and
``done`` on one batch of one store until the batch is complete, as ``drive_batch`` does with
a capacity of one; the figures are the whole batch's wall time and trials per second, the
median over the rounds, with every record counted once at the end (a check, not a figure).
A real trial takes a child process and at least tens of milliseconds, so this is the store's
share of it.

    python benchmarks/store_claims.py                 # 400 trials, writers 1 and 4, 3 rounds
    python benchmarks/store_claims.py --tiny          # 20 trials, 1 round
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import bad_arg  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from mpslab.trials.records import make_record
from mpslab.trials.store import TrialStore
store = TrialStore({path!r})
with store.claimant("b", {n}) as c:
    while True:
        got = c.take(1)
        if not got:
            if c.held_by_others():
                time.sleep(0.005)
                continue
            break
        row = {{"trial": got[0], "outcome": "ok", "seconds": 0.0, "threads": 1, "env_host": "bench"}}
        store.append(make_record(row, batch="b", config={{"threads": 1}}))
        c.done(got[0])
"""


def one_round(n: int, writers: int) -> float:
    """Seconds from starting ``writers`` processes on a fresh store to the last one's exit."""
    from mpslab.trials.records import read_records

    with tempfile.TemporaryDirectory(prefix="mpslab-bench-store-") as folder:
        path = os.path.join(folder, "t.jsonl")
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen([sys.executable, "-c", WRITER.format(root=ROOT, path=path, n=n)]) for _ in range(writers)
        ]
        codes = [p.wait() for p in procs]
        seconds = time.perf_counter() - t0
        if codes != [0] * writers:
            raise SystemExit(f"store_claims: a writer failed (exit codes {codes})")
        trials = sorted(r["trial"] for r in read_records(path))
        if trials != list(range(n)):
            raise SystemExit(f"store_claims: {len(trials)} records for {n} trials: a trial duplicated or lost")
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--writers", default="1,4", help="comma-separated writer counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tiny", action="store_true", help="20 trials, 1 round")
    args = ap.parse_args(argv)
    try:
        writers = [int(w) for w in args.writers.split(",")]
    except ValueError:
        return bad_arg("store_claims", f"--writers={args.writers!r}: must be integers separated by commas, e.g. 1,4")
    for name, value in (("--trials", args.trials), ("--rounds", args.rounds), ("--writers", min(writers))):
        if value < 1:
            return bad_arg("store_claims", f"{name}={value}: must be >= 1")
    if args.tiny:
        args.trials, args.rounds = 20, 1
    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"{'writers':>7}  {'trials':>6}  {'median s':>8}  {'trials/s':>8}  (each trial recorded once: checked)")
    for w in writers:
        median = statistics.median(one_round(args.trials, w) for _ in range(args.rounds))
        print(f"{w:>7}  {args.trials:>6}  {median:>8.2f}  {args.trials / median:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
