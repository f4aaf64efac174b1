"""Runner overhead: ``run_stress`` against a bare loop doing the same work.

The promise: the stress runner keeps at least 97% of a bare loop's ops/s.

The bare loop does exactly the workload steps the runner does, per thread:
same thread count, same generator seeds, same warm-up, the same barrier start,
the same synchronisation every ``sync_every`` steps and at the end, the same
clock (barrier release -> every thread joined -> device synchronised). It has
none of the runner's bookkeeping: no per-iteration clock readings, no latency
array, no checksums, no error capture, no progress counter.

Each repeat runs the bare loop, the runner with ``verify=True`` and the runner
with ``verify=False`` back to back, in a rotating order, so drift on the
machine falls on all three alike. The runner's ops/s is its own
``StressResult.ops_per_s``: the timed region only, not the oracle's replay.

Every run does the same total work, ``--ops`` steps (the seed's 64 x 200 =
12800), split over the threads: 64 threads x 200 iterations, 1 thread x 12800.
The one-thread rows show the runner's own per-iteration cost without lock
contention; the 64-thread rows are the seed's configuration.

    python benchmarks/runner_overhead.py                             # cpu: sizes 16, 64, 256; 1 and 64 threads
    python benchmarks/runner_overhead.py --device cuda --repeats 9
    python benchmarks/runner_overhead.py --sizes 256 --threads 64 --repeats 3
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from mpslab import ConfigError, StressConfig, run_stress  # noqa: E402
from mpslab.run.backends import get_backend  # noqa: E402
from mpslab.run.environment import environment  # noqa: E402
from mpslab.run.runner import thread_seed  # noqa: E402
from mpslab.run.workloads import WorkerContext, get_workload  # noqa: E402

PROMISE = 0.97


def bare_loop(config: StressConfig) -> float:
    """ops/s of the workload steps alone, threaded and synchronised as the runner does."""
    backend = get_backend(config.device)
    workload = get_workload(config.workload)
    device = backend.device
    state = None
    if workload.setup_fn is not None:
        state = workload.setup_fn(WorkerContext(-1, device, config.torch_dtype, config.size, None))
        backend.synchronize()
    barrier = threading.Barrier(config.threads + 1)
    semaphore = threading.BoundedSemaphore(config.throttle) if config.throttle else None
    step = workload.step
    sync_every, iterations = config.sync_every, config.iterations

    def worker(t: int) -> None:
        stream = backend.new_stream() if config.streams == "per-thread" else None
        with backend.use_stream(stream):
            ctx = WorkerContext(t, device, config.torch_dtype, config.size, None, state)
            if config.warmup:
                ctx.generator = torch.Generator(device=device).manual_seed(thread_seed(config.seed, t) ^ 0x5EED)
                for i in range(config.warmup):
                    step(ctx, i)
                backend.synchronize_stream(stream)
            ctx.generator = torch.Generator(device=device).manual_seed(thread_seed(config.seed, t))
            sync = backend.synchronize_stream
            barrier.wait()
            for i in range(iterations):
                if semaphore is None:
                    step(ctx, i)
                else:
                    with semaphore:
                        step(ctx, i)
                if sync_every and (i + 1) % sync_every == 0:
                    sync(stream)
            sync(stream)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(config.threads)]
    for th in threads:
        th.start()
    barrier.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    backend.synchronize()
    return config.ops / (time.perf_counter() - t0)


def runner(config: StressConfig) -> float:
    result = run_stress(config)
    if result.outcome != "ok":
        raise SystemExit(f"runner_overhead: the runner's outcome was {result.outcome}, not ok:\n{result.summary()}")
    return result.ops_per_s


def measure(config: StressConfig, repeats: int) -> dict[str, list[float]]:
    variants = {
        "bare": lambda: bare_loop(config),
        "verify": lambda: runner(config.replace(verify=True)),
        "no-verify": lambda: runner(config.replace(verify=False)),
    }
    names = list(variants)
    samples: dict[str, list[float]] = {n: [] for n in names}
    variants["bare"]()  # one untimed round: first-call costs (allocator, kernels) land nowhere
    for r in range(repeats):
        for n in names[r % 3:] + names[: r % 3]:  # rotate the order every repeat
            gc.collect()
            samples[n].append(variants[n]())
    return samples


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps | auto (default cpu)")
    p.add_argument("--sizes", default="16,64,256", help="workload sizes, comma-separated (default 16,64,256)")
    p.add_argument("--threads", default="1,64", help="thread counts, comma-separated (default 1,64)")
    p.add_argument("--ops", type=int, default=12800,
                   help="steps per run, split over the threads: iterations = ops / threads (default 12800)")
    p.add_argument("--sync-every", type=int, default=20, help="synchronise every k iterations (default 20)")
    p.add_argument("--workload", default="seed", help="workload name (default seed)")
    p.add_argument("--repeats", type=int, default=7, help="interleaved repeats per variant (default 7)")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        print("runner_overhead: --sizes and --threads must be integers separated by commas", file=sys.stderr)
        return 2
    for name, value in (("--repeats", args.repeats), ("--ops", args.ops)):
        if value < 1:
            print(f"runner_overhead: {name}={value}: must be >= 1", file=sys.stderr)
            return 2
    if not sizes or not thread_counts or any(args.ops % t for t in thread_counts):
        print(f"runner_overhead: --ops={args.ops} must split evenly over every --threads value ({args.threads})",
              file=sys.stderr)
        return 2
    try:
        configs = [StressConfig(threads=t, iterations=args.ops // t, sync_every=args.sync_every,
                                workload=args.workload, size=s, device=args.device)
                   for s in sizes for t in thread_counts]
    except ConfigError as exc:
        print(f"runner_overhead: {exc}", file=sys.stderr)
        return 2

    env = environment(configs[0].device)
    print(f"runner overhead: {configs[0].device} ({env['device_name']}), torch {env['torch']}, "
          f"{torch.get_num_threads()} intra-op threads, {os.cpu_count()} cpus")
    print(f"workload {args.workload!r}, {args.ops} steps per run (threads x iterations), sync every "
          f"{args.sync_every}; {args.repeats} interleaved repeats per variant; medians of ops/s")
    print("ratio = runner/bare, ratio of the medians, with the min..max of the per-repeat ratios; "
          f"+us/op = extra wall time per step; promise: ratio >= {PROMISE:.2f}")
    print(f"{'size':>5} {'thr':>4} {'iter':>6}  {'bare ops/s':>10}  {'verify ops/s':>12} {'ratio':>5} {'[min..max]':>12} "
          f"{'+us/op':>6}  {'no-verify':>10} {'ratio':>5} {'[min..max]':>12} {'+us/op':>6}")
    worst = float("inf")
    for cfg in configs:
        s = measure(cfg, args.repeats)
        bare = statistics.median(s["bare"])
        cells = []
        for n in ("verify", "no-verify"):
            med = statistics.median(s[n])
            paired = [a / b for a, b in zip(s[n], s["bare"])]
            ratio = med / bare
            worst = min(worst, ratio)
            cells.append(f"{med:>10.1f} {ratio:>5.3f} {f'[{min(paired):.2f}..{max(paired):.2f}]':>12} "
                         f"{(1 / med - 1 / bare) * 1e6:>+6.2f}")
        print(f"{cfg.size:>5} {cfg.threads:>4} {cfg.iterations:>6}  {bare:>10.1f}  {cells[0]:>12}  {cells[1]}", flush=True)
    verdict = "kept" if worst >= PROMISE else "NOT kept"
    print(f"lowest runner/bare ratio of medians: {worst:.3f} -> promise (ratio >= {PROMISE:.2f}) {verdict}")
    return 0 if worst >= PROMISE else 1


if __name__ == "__main__":
    sys.exit(main())
