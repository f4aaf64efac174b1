"""The oracle's cost: ``run_stress`` with verify = off, fingerprint and full, interleaved.

Each repeat runs the three variants back to back in a rotating order (drift on
the machine falls on all alike). Two numbers per variant:

* ops/s of the timed region (``StressResult.ops_per_s``): what the oracle costs
  the hot loop (fingerprint: one device copy of every output into a preallocated
  staging ring, fingerprinted in batches when the ring is full; full: a device
  copy of every output, kept);
* the oracle's own time after the run (wall time of ``run_stress`` minus the
  timed region: replay and comparison).

Medians over the repeats; ratio = variant ops/s / off ops/s (ratio of medians),
with the min..max of the per-repeat ratios. A full run above ``--full-cap-mb``
is refused by the config and shown as "refused". The fingerprint's staging budget
is the run's ``full_cap_mb`` too (shared out over the threads); ``--stage-mb`` sets
it for the fingerprint runs alone (default: the config's default), so raising
``--full-cap-mb`` to let full run does not also raise the fingerprint's budget.

    python benchmarks/oracle_cost.py                                  # cpu: seed, sizes 16,64; 1 and 8 threads
    python benchmarks/oracle_cost.py --device cuda --sizes 64,256 --threads 1,8 --full-cap-mb 1024
    python benchmarks/oracle_cost.py --stage-mb 1                     # the ring far smaller than the run
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from mpslab import ConfigError, StressConfig, run_stress  # noqa: E402
from mpslab.run.environment import environment  # noqa: E402

MODES = ("off", "fingerprint", "full")


def one(config: StressConfig) -> tuple[float, float]:
    t0 = time.perf_counter()
    r = run_stress(config)
    wall = time.perf_counter() - t0
    if r.outcome != "ok":
        raise SystemExit(f"oracle_cost: a clean run was not ok:\n{r.summary()}")
    return r.ops_per_s, wall - r.seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps | auto (default cpu)")
    p.add_argument("--workload", default="seed", help="workload name (default seed)")
    p.add_argument("--sizes", default="16,64", help="comma-separated (default 16,64)")
    p.add_argument("--threads", default="1,8", help="comma-separated (default 1,8)")
    p.add_argument("--ops", type=int, default=1600, help="steps per run, split over the threads (default 1600)")
    p.add_argument("--sync-every", type=int, default=20, help="synchronise every k iterations (default 20)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats per variant (default 5)")
    p.add_argument("--full-cap-mb", type=float, default=256.0, help="full mode's cap (default 256)")
    p.add_argument(
        "--stage-mb",
        type=float,
        default=StressConfig.full_cap_mb,
        help="the fingerprint runs' full_cap_mb: their staging budget (default %(default)g, the config's)",
    )
    p.add_argument("--per-repeat", action="store_true", help="also print every repeat's ops/s")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s]
        threads = [int(t) for t in args.threads.split(",") if t]
    except ValueError:
        print("oracle_cost: --sizes and --threads must be integers separated by commas", file=sys.stderr)
        return 2
    if args.repeats < 1 or any(t < 1 or args.ops % t for t in threads):
        print(
            "oracle_cost: --repeats must be >= 1 and --ops must split evenly over every --threads value",
            file=sys.stderr,
        )
        return 2
    try:
        base = StressConfig(device=args.device, workload=args.workload, threads=1, iterations=1)
    except ConfigError as exc:
        print(f"oracle_cost: {exc}", file=sys.stderr)
        return 2
    env = environment(base.device)
    print(
        f"oracle cost: {base.device} ({env['device_name']}), torch {env['torch']}, "
        f"{torch.get_num_threads()} intra-op threads, {os.cpu_count()} cpus, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(f"full_cap_mb: full {args.full_cap_mb:g} MiB, fingerprint (its staging budget) {args.stage_mb:g} MiB")
    print(
        f"workload {args.workload!r}, {args.ops} steps per run, sync every {args.sync_every}; {args.repeats} "
        "interleaved repeats (order rotated each repeat); medians; ops/s = timed region only; "
        "after = the oracle's replay + comparison after the timed region (s)"
    )
    print(
        f"{'size':>5} {'thr':>4}  {'off ops/s':>10}  {'fingerprint':>11} {'ratio':>5} {'[min..max]':>12} "
        f"{'after':>6}  {'full':>10} {'ratio':>5} {'[min..max]':>12} {'after':>6}"
    )
    for size in sizes:
        for t in threads:
            configs = {}
            for mode in MODES:
                try:
                    configs[mode] = base.replace(
                        threads=t,
                        iterations=args.ops // t,
                        size=size,
                        sync_every=args.sync_every,
                        verify=mode,
                        full_cap_mb=args.stage_mb if mode == "fingerprint" else args.full_cap_mb,
                    )
                except ConfigError:
                    configs[mode] = None
            names = [m for m in MODES if configs[m] is not None]
            one(configs["off"])  # untimed: first-call costs land nowhere
            rate: dict[str, list[float]] = {m: [] for m in names}
            after: dict[str, list[float]] = {m: [] for m in names}
            for r in range(args.repeats):
                for m in names[r % len(names) :] + names[: r % len(names)]:
                    gc.collect()
                    a, b = one(configs[m])
                    rate[m].append(a)
                    after[m].append(b)
            off = statistics.median(rate["off"])
            cells = []
            for m in ("fingerprint", "full"):
                if m not in rate:
                    cells.append(f"{'refused':>10} {'':>5} {'':>12} {'':>6}")
                    continue
                med = statistics.median(rate[m])
                paired = [x / y for x, y in zip(rate[m], rate["off"])]
                cells.append(
                    f"{med:>10.1f} {med / off:>5.3f} {f'[{min(paired):.2f}..{max(paired):.2f}]':>12} "
                    f"{statistics.median(after[m]):>6.2f}"
                )
            print(f"{size:>5} {t:>4}  {off:>10.1f}  {cells[0]:>11}  {cells[1]}", flush=True)
            if args.per_repeat:
                for m in names:
                    print(f"{'':>11}{m:>12} ops/s per repeat: " + " ".join(f"{x:.1f}" for x in rate[m]), flush=True)
    print(f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
