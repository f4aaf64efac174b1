"""False alarms of the oracle: clean checksummed runs over the registered workloads and dtypes, counted.

A correct run must never be flagged. This runs ``--runs`` clean in-process
stress runs (different seeds) of every registered workload of kind "workload"
(the instrument's self-test faults and ``racy`` are left out: they fail on
purpose) in every dtype the device supports, with the oracle on, and prints per
(workload, dtype): runs, outputs verified, mismatches, errors. A workload that
cannot run a dtype here is listed as "not applicable" with the refusal's line.

    python benchmarks/oracle_false_alarms.py                         # cpu, 20 runs each
    python benchmarks/oracle_false_alarms.py --device cuda --runs 100 --threads 8 --iterations 50

Exit 0 when no run mismatched, 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mpslab import ConfigError, StressConfig, list_workloads, run_stress  # noqa: E402
from mpslab.run.backends import DTYPES  # noqa: E402
from mpslab.run.environment import environment  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps | auto (default cpu)")
    p.add_argument("--runs", type=int, default=20, help="clean runs per workload and dtype (default 20)")
    p.add_argument("--threads", type=int, default=4, help="threads per run (default 4)")
    p.add_argument("--iterations", type=int, default=25, help="iterations per thread (default 25)")
    p.add_argument("--size", type=int, default=64, help="workload size (default 64)")
    p.add_argument("--workloads", default="", help="comma-separated names (default: every non-fault workload)")
    p.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated (default: all four)")
    p.add_argument("--verify", default="fingerprint", help="fingerprint | full (default fingerprint)")
    args = p.parse_args(argv)
    if args.runs < 1:
        print(f"oracle_false_alarms: --runs={args.runs}: must be >= 1", file=sys.stderr)
        return 2
    names = [w for w in args.workloads.split(",") if w] or [w.name for w in list_workloads(kind="workload")]
    dtypes = [d for d in args.dtypes.split(",") if d]
    try:
        StressConfig(device=args.device, verify=args.verify, threads=1, iterations=1, size=1)
    except ConfigError as exc:
        print(f"oracle_false_alarms: {exc}", file=sys.stderr)
        return 2
    if args.verify == "off":
        print("oracle_false_alarms: --verify off checks nothing", file=sys.stderr)
        return 2
    env = environment(StressConfig(device=args.device, threads=1, iterations=1).device)
    print(
        f"oracle false alarms: {env['device']} ({env['device_name']}), torch {env['torch']}; verify={args.verify}; "
        f"{args.runs} clean runs per workload x dtype, {args.threads} threads x {args.iterations} iterations, "
        f"size {args.size}, seeds 0..{args.runs - 1}"
    )
    print(f"{'workload':<24} {'dtype':<9} {'runs':>5} {'verified':>9} {'mismatch':>8} {'errors':>6}  note")
    total_runs = total_outputs = total_bad = 0
    t0 = time.perf_counter()
    for name in names:
        for dtype in dtypes:
            try:
                base = StressConfig(
                    threads=args.threads,
                    iterations=args.iterations,
                    sync_every=5,
                    workload=name,
                    size=args.size,
                    dtype=dtype,
                    device=args.device,
                    verify=args.verify,
                )
            except ConfigError as exc:
                print(f"{name:<24} {dtype:<9} {'-':>5} {'-':>9} {'-':>8} {'-':>6}  not applicable: {exc}")
                continue
            runs = verified = bad = errors = 0
            note = ""
            for seed in range(args.runs):
                r = run_stress(base.replace(seed=seed))
                runs += 1
                verified += r.verified
                bad += int(r.mismatch_count > 0)
                errors += int(r.error_count > 0)
                if r.mismatch_count and not note:
                    m = r.mismatches[0]
                    note = f"seed {seed}: thread {m.thread} iteration {m.iteration} ({m.what}): {m.detail}"
                elif r.error_count and not note:
                    note = f"seed {seed}: {r.errors[0].type}: {r.errors[0].message}"
            total_runs += runs
            total_outputs += verified
            total_bad += bad
            print(f"{name:<24} {dtype:<9} {runs:>5} {verified:>9} {bad:>8} {errors:>6}  {note}", flush=True)
    print(
        f"total: {total_bad} runs with a mismatch of {total_runs} clean runs ({total_outputs} outputs "
        f"fingerprinted and compared) in {time.perf_counter() - t0:.0f} s"
    )
    return 0 if total_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
