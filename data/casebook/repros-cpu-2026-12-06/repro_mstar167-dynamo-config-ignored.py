"""Standalone reproducer: workload 'mstar167-dynamo-config-ignored'

Written by `python -m mpslab shrink`.
Needs a Python that has torch, as the one that ran the trials (torch 2.13.0+cpu):
    /work/wt/repro/.venv/bin/python
and nothing else outside the standard library. Run it with that interpreter, e.g.
    /work/wt/repro/.venv/bin/python repro_mstar167-dynamo-config-ignored.py --runs 20
It runs the pattern below in a fresh process --runs times and prints how many runs failed
(exit 1 if any did).
Shrunk pattern: 1 thread(s) x 1 iteration(s), size 1, float32 on cpu, warm-up 0, sync every run (end only).
"""

import sys

NEEDS = '/work/wt/repro/.venv/bin/python (torch 2.13.0+cpu)'
try:
    import torch
except ImportError:
    sys.exit(f'this reproducer needs a Python with torch, e.g. {NEEDS}; {sys.executable} has none')



def step(ctx, i):
    import torch._dynamo
    seen = {key: getattr(torch._dynamo.config, key) for key in ctx.state}
    lost = {key: value for key, value in seen.items() if value != ctx.state[key]}
    if lost:
        raise RuntimeError(f'dynamo settings made on the main thread not seen in this thread: {lost} (set {ctx.state})')
    return torch.randn(ctx.size, generator=ctx.generator)


def setup(ctx):
    """Settings assigned at import time on the main thread, as mstar's engine module does."""
    import torch._dynamo
    wanted = {'recompile_limit': 84, 'specialize_int': False, 'allow_unspec_int_on_nn_module': True}
    for key, value in wanted.items():
        setattr(torch._dynamo.config, key, value)
    return wanted


CONFIG = {'threads': 1, 'iterations': 1, 'size': 1, 'dtype': 'float32', 'device': 'cpu', 'seed': 0, 'warmup': 0, 'sync_every': 0, 'throttle': None, 'params': {}, 'verify': True, 'final_sync': True, 'rtol': 0.0001, 'scale': 1.0}
RUNS = 5
TIMEOUT_S = 120.0


# ----------------------------------------------------------------------------- the harness

import subprocess
import sys
import threading


class Ctx:
    """What the step sees: thread index, device, dtype, size, its own generator, the shared state."""

    def __init__(self, thread, device, dtype, size, generator, state, params):
        self.thread, self.device, self.dtype, self.size = thread, device, dtype, size
        self.generator, self.state, self.params = generator, state, params


def thread_seed(seed, thread):
    return (seed * 1_000_003 + thread * 7_919 + 1) % (2**63 - 1)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def scalar(out):
    return out if out.dim() == 0 else out.sum()


def run_once():
    c = CONFIG
    device, dtype = torch.device(c["device"]), getattr(torch, c["dtype"])
    state = setup(Ctx(-1, device, dtype, c["size"], None, None, c["params"])) if setup else None
    barrier = threading.Barrier(c["threads"])
    sem = threading.BoundedSemaphore(c["throttle"]) if c["throttle"] else None
    errors, sums = [], {}

    def worker(t):
        ctx = Ctx(t, device, dtype, c["size"], None, state, c["params"])
        try:
            if c["warmup"]:
                ctx.generator = torch.Generator(device=device).manual_seed(thread_seed(c["seed"], t) ^ 0x5EED)
                for i in range(c["warmup"]):
                    step(ctx, i)
                synchronize(device)
            ctx.generator = torch.Generator(device=device).manual_seed(thread_seed(c["seed"], t))
            barrier.wait()
            out = []
            for i in range(c["iterations"]):
                if sem is None:
                    out.append(scalar(step(ctx, i)))
                else:
                    with sem:
                        out.append(scalar(step(ctx, i)))
                if c["sync_every"] and (i + 1) % c["sync_every"] == 0:
                    synchronize(device)
            if c["final_sync"]:
                synchronize(device)
                sums[t] = torch.stack(out).to("cpu", torch.float64)
        except Exception as exc:
            errors.append(f"thread {t}: {type(exc).__name__}: {exc}")
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(c["threads"])]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 3
    if not c["final_sync"] or not c["verify"]:
        return 0
    for t, got in sorted(sums.items()):  # the oracle: the same thread's work replayed serially
        ctx = Ctx(t, device, dtype, c["size"], torch.Generator(device=device).manual_seed(thread_seed(c["seed"], t)),
                  state, c["params"])
        want = torch.stack([scalar(step(ctx, i)) for i in range(c["iterations"])]).to("cpu", torch.float64)
        tol = c["rtol"] * torch.clamp(want.abs(), min=c["scale"])
        bad = ~((got - want).abs() <= tol) & ~(got.isnan() & want.isnan())
        if bool(bad.any()):
            print(f"thread {t}: {int(bad.sum())} result(s) differ from a serial replay", file=sys.stderr)
            return 4
    return 0


def main():
    import argparse
    import signal

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=RUNS, help="fresh processes to run (default %(default)s)")
    p.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds before a run is a hang")
    p.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.once:
        sys.exit(run_once())
    failed = 0
    for k in range(args.runs):
        try:
            proc = subprocess.run([sys.executable, __file__, "--once"], capture_output=True, text=True,
                                  timeout=args.timeout)
            code = proc.returncode
            how = ("ok" if code == 0 else "error" if code == 3 else "mismatch" if code == 4 else
                   f"crash ({signal.Signals(-code).name})" if code < 0 else f"crash (exit {code})")
            tail = (proc.stderr.strip().splitlines() or [""])[-1]
        except subprocess.TimeoutExpired:
            how, tail = "hang", f"no exit within {args.timeout:g} s"
        failed += how != "ok"
        print(f"run {k + 1:>3}/{args.runs}: {how}" + (f"  {tail[:200]}" if how != "ok" and tail else ""), flush=True)
    print(f"failed {failed} of {args.runs} runs (torch {torch.__version__}, device {CONFIG['device']})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
