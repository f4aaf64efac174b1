"""Fleet scaling: CPU trials per second against the number of Dask workers (a benchmark, not a test).

For each worker count W a ``LocalCluster`` of W worker processes (1 thread
each, ``device=1`` resource each, as on a real fleet) runs a warm-up batch (each
worker starts its fork server), then ``--trials`` small isolated CPU trials (1
thread x ``--iterations`` of ``mlp``, size 32) through ``run_trials(client=...)``;
the figure is trials / seconds of that batch. Efficiency = rate(W) / (W * rate(1)).
Run it on an otherwise idle machine with at least W cores::

    .venv/bin/python benchmarks/fleet_scaling.py --workers 1 2 4 8 --trials 64
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distributed import Client, LocalCluster  # noqa: E402

from mpslab.trials.isolate import run_trials  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--iterations", type=int, default=20)
    args = ap.parse_args()
    cfg = dict(threads=1, iterations=args.iterations, workload="mlp", size=32, device="cpu", warmup=0, verify=False)
    print(
        f"{platform.node()}: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"{args.trials} trials per point, 1 thread x {args.iterations} iterations of mlp (size 32) each"
    )
    print("workers  trials/s  efficiency")
    base = None
    for w in args.workers:
        with (
            LocalCluster(
                n_workers=w,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                resources={"device": 1},
                silence_logs=40,
            ) as cluster,
            Client(cluster) as client,
        ):
            run_trials(cfg, trials=2 * w, timeout_s=300, client=client, progress=False, batch="warm-up")
            t0 = time.perf_counter()
            df = run_trials(cfg, trials=args.trials, timeout_s=300, client=client, progress=False)
            rate = len(df) / (time.perf_counter() - t0)
        assert (df["outcome"] == "ok").all(), df["outcome"].value_counts().to_dict()
        base = base or rate
        print(f"{w:>7}  {rate:>8.2f}  {rate / (w * base):>9.0%}")


if __name__ == "__main__":
    main()
