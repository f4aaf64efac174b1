"""Load: one big stress run (256 threads x 1,000 iterations, oracle on): harness errors, wall time, peak memory.

One ``run_stress`` call of ``--threads`` x ``--iterations`` steps of the ``seed``
workload with the oracle on. Printed: the run's outcome; its harness errors
(exceptions the runner caught: target zero) and mismatches; wall time of the
whole call (thread start, timed region, the oracle's serial replay) next to the
timed region alone; this process's peak resident set size (getrusage, the
high-water mark since start, so it includes the interpreter and torch) and its
RSS before the run; on CUDA the caching allocator's peak (max_memory_allocated
and max_memory_reserved).

    python benchmarks/load.py --size 64          # cpu here
    python benchmarks/load.py --device cuda      # size 256
    python benchmarks/load.py --tiny
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from _common import bad_arg, load_average, machine_line, peak_rss_bytes, rss_bytes  # noqa: E402

from mpslab.run.config import ConfigError, StressConfig  # noqa: E402
from mpslab.run.runner import run_stress  # noqa: E402

GB = 1e9


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | mps (default cpu)")
    p.add_argument("--threads", type=int, default=256, help="threads (default 256)")
    p.add_argument("--iterations", type=int, default=1000, help="iterations per thread (default 1000)")
    p.add_argument("--size", type=int, default=256, help="workload size (default 256)")
    p.add_argument("--tiny", action="store_true", help="a few seconds: 16 threads x 20 iterations, size 8")
    args = p.parse_args(argv)
    if args.tiny:
        args.threads, args.iterations, args.size = 16, 20, 8
    try:
        cfg = StressConfig(
            threads=args.threads, iterations=args.iterations, size=args.size, device=args.device, verify=True
        )
    except ConfigError as exc:
        return bad_arg("load", str(exc))
    cuda = cfg.device.startswith("cuda") and torch.cuda.is_available()

    print(f"load: {machine_line(cfg.device)}")
    print(
        f"one run_stress: {cfg.threads} threads x {cfg.iterations} iterations of 'seed' size {cfg.size}, "
        f"sync every {cfg.sync_every}, oracle on"
    )
    rss0 = rss_bytes()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    r = run_stress(cfg)
    wall = time.perf_counter() - t0
    print(f"outcome {r.outcome}: {r.completed} steps completed, {r.verified} checked by the oracle")
    print(f"harness errors: {r.error_count}   mismatches: {r.mismatch_count}")
    print(
        f"wall time: {wall:.1f} s (timed region {r.seconds:.1f} s at {r.ops_per_s:.0f} ops/s; "
        f"oracle replay and the rest {wall - r.seconds:.1f} s)"
    )
    print(
        f"peak RSS: {peak_rss_bytes() / GB:.2f} GB (RSS before the run {rss0 / GB:.2f} GB, after {rss_bytes() / GB:.2f} GB)"  # noqa: E501
    )
    if cuda:
        print(
            f"CUDA allocator peak: {torch.cuda.max_memory_allocated() / GB:.3f} GB allocated, "
            f"{torch.cuda.max_memory_reserved() / GB:.3f} GB reserved"
        )
    for e in r.errors[:5]:
        print(f"  error: {e}")
    print(f"load average after: {load_average()}")
    return 0 if r.error_count == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
