"""Soak: stress runs back to back for a set time, sampling resident and device memory; growth after warm-up.

Runs ``run_stress`` with ``--threads`` threads x ``--iterations`` iterations of the
``seed`` workload over and over until ``--duration`` seconds have passed (the
last run finishes), while a sampler thread reads, every ``--interval`` s, this
process's resident set size (psutil, else /proc) and, on CUDA or MPS, the memory
torch's caching allocator holds and what the card has in use.

Growth after warm-up: the first ``--warmup`` fraction of the time is warm-up
(allocator pools, kernels, lazily loaded libraries). Baseline = the median RSS
over the next 10% of the time; end = the median over the last 10%; growth =
end / baseline - 1, target <= 5%. Because one run's own bookkeeping (its
latency ring and checksums, freed when it returns) rises and falls inside each
run, medians over windows, not single readings, are compared; the slope of a
least-squares line through the post-warm-up samples (scipy.stats.linregress,
MB per minute with its standard error) says whether it keeps growing.

Writes a PNG of memory over time (``--figure``) and the samples as CSV (``--csv``).

    python benchmarks/soak.py --duration 300 --figure soak_cpu.png
    python benchmarks/soak.py --device cuda --size 256 --duration 480 --figure soak_cuda.png
    python benchmarks/soak.py --tiny
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import bad_arg, device_memory, load_average, machine_line, rss_bytes  # noqa: E402
from scipy import stats  # noqa: E402

from mpslab.run.config import ConfigError, StressConfig  # noqa: E402
from mpslab.run.runner import run_stress  # noqa: E402

TARGET = 0.05
MB = 1e6


class Sampler(threading.Thread):
    """Reads RSS and device memory every ``interval`` s until stopped."""

    def __init__(self, device: str, interval: float) -> None:
        super().__init__(daemon=True, name="soak-sampler")
        self.device, self.interval = device, interval
        self.rows: list[dict[str, float]] = []
        self.runs = 0
        self._halt = threading.Event()
        self.t0 = time.perf_counter()

    def sample(self) -> None:
        row = {"t": time.perf_counter() - self.t0, "rss_mb": rss_bytes() / MB, "runs": self.runs}
        row.update({f"dev_{k}_mb": v / MB for k, v in device_memory(self.device).items()})
        self.rows.append(row)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


def window_median(t: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    sel = (t >= lo) & (t <= hi)
    return float(np.median(y[sel])) if sel.any() else float("nan")


def growth(rows: list[dict[str, float]], key: str, warmup_end: float, end: float) -> dict[str, float]:
    t = np.array([r["t"] for r in rows])
    y = np.array([r.get(key, np.nan) for r in rows])
    span = end - warmup_end
    base = window_median(t, y, warmup_end, warmup_end + 0.1 * span)
    last = window_median(t, y, end - 0.1 * span, end)
    after = t >= warmup_end
    slope = se = float("nan")
    if after.sum() >= 3 and np.ptp(t[after]) > 0:
        fit = stats.linregress(t[after], y[after])
        slope, se = fit.slope * 60, fit.stderr * 60
    return {
        "base": base,
        "end": last,
        "growth": last / base - 1 if base > 0 else float("nan"),
        "max": float(np.nanmax(y[after])) if after.any() else float("nan"),
        "slope": slope,
        "slope_se": se,
    }


def figure(rows: list[dict[str, float]], warmup_end: float, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t"] for r in rows]
    dev_keys = [k for k in rows[0] if k.startswith("dev_")]
    fig, axes = plt.subplots(2 if dev_keys else 1, 1, figsize=(8, 5 if dev_keys else 3), sharex=True, squeeze=False)
    ax = axes[0][0]
    ax.plot(t, [r["rss_mb"] for r in rows], lw=1, label="resident set (RSS)")
    ax.set_ylabel("MB")
    ax.set_title(title, fontsize=9)
    for a in axes[:, 0]:
        a.axvspan(0, warmup_end, color="0.9", label="warm-up")
    ax.legend(loc="lower right", fontsize=8)
    if dev_keys:
        ax2 = axes[1][0]
        for k in dev_keys:
            ax2.plot(t, [r[k] for r in rows], lw=1, label=k[4:-3].replace("_", " "))
        ax2.set_ylabel("device MB")
        ax2.legend(loc="lower right", fontsize=8)
    axes[-1][0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | mps (default cpu)")
    p.add_argument("--threads", type=int, default=64, help="threads per run (default 64)")
    p.add_argument("--size", type=int, default=32, help="workload size (default 32)")
    p.add_argument("--iterations", type=int, default=8000, help="iterations per thread per run (default 8000)")
    p.add_argument("--duration", type=float, default=300.0, help="seconds of runs back to back (default 300)")
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of the time that is warm-up (default 0.2)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between memory samples (default 0.5)")
    p.add_argument("--no-verify", action="store_true", help="oracle off (default: on, as run_stress's default)")
    p.add_argument("--figure", default=None, help="PNG of memory over time (default: none)")
    p.add_argument("--csv", default=None, help="the samples as CSV (default: none)")
    p.add_argument("--tiny", action="store_true", help="a few seconds: 4 threads x 50 iterations, size 8, 3 s")
    args = p.parse_args(argv)
    if args.tiny:
        args.threads, args.iterations, args.size, args.duration, args.interval = 4, 50, 8, 3.0, 0.1
    if args.duration <= 0 or args.interval <= 0 or not 0 <= args.warmup < 0.9:
        return bad_arg("soak", "--duration and --interval must be > 0 and --warmup in [0, 0.9)")
    try:
        cfg = StressConfig(
            threads=args.threads,
            iterations=args.iterations,
            size=args.size,
            device=args.device,
            verify=not args.no_verify,
        )
    except ConfigError as exc:
        return bad_arg("soak", str(exc))

    print(f"soak: {machine_line(cfg.device)}")
    print(
        f"{cfg.threads} threads x {cfg.iterations} iterations of 'seed' size {cfg.size} per run, oracle "
        f"{'on' if cfg.verify else 'off'}, runs back to back for {args.duration:.0f} s; memory sampled every "
        f"{args.interval} s; warm-up = first {args.warmup:.0%} of the time; growth = median of the last 10% "
        f"over median of the 10% after warm-up; target <= {TARGET:.0%}"
    )
    sampler = Sampler(cfg.device, args.interval)
    sampler.sample()
    sampler.start()
    errors = mismatches = ops = 0
    run_seconds = []
    while time.perf_counter() - sampler.t0 < args.duration:
        r = run_stress(cfg)
        errors += r.error_count
        mismatches += r.mismatch_count
        ops += r.completed
        run_seconds.append(r.seconds)
        sampler.runs += 1
    sampler.stop()
    end = sampler.rows[-1]["t"]
    warmup_end = args.warmup * end
    rows = sampler.rows
    print(
        f"{sampler.runs} runs in {end:.1f} s ({ops} steps, {ops / max(sum(run_seconds), 1e-9):.0f} ops/s in the "
        f"timed regions), {errors} harness errors, {mismatches} mismatches, {len(rows)} samples"
    )
    print(
        f"{'memory':<22} {'start MB':>9} {'base MB':>9} {'end MB':>9} {'max MB':>9} {'growth':>8} "
        f"{'slope MB/min':>18}  within {TARGET:.0%}"
    )
    verdicts = []
    for key in [k for k in rows[0] if k.endswith("_mb")]:
        g = growth(rows, key, warmup_end, end)
        ok = g["growth"] <= TARGET
        verdicts.append(ok)
        slope = f"{g['slope']:+.2f} +- {g['slope_se']:.2f}"
        print(
            f"{key[:-3]:<22} {rows[0][key]:>9.1f} {g['base']:>9.1f} {g['end']:>9.1f} {g['max']:>9.1f} "
            f"{g['growth']:>+8.1%} {slope:>18}  {'yes' if ok else 'NO'}"
        )
    print(f"growth after warm-up within {TARGET:.0%}: {'yes' if all(verdicts) else 'NO'}")
    if args.csv:
        keys = list(rows[0])
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
        print(f"samples written to {args.csv}")
    if args.figure:
        figure(
            rows,
            warmup_end,
            args.figure,
            f"soak: {cfg.threads} threads, seed size {cfg.size}, {cfg.device}, "
            f"{sampler.runs} runs of {cfg.iterations} iterations",
        )
        print(f"figure written to {args.figure}")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
