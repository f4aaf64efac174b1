"""The standalone reproducer: ``repro_<name>.py``, torch and the standard library only, no mpslab.

``write_script(path, config, workload)`` writes a script that runs the shrunk
pattern (the workload's step and setup from ``source.standalone_source``, the
config's threads / iterations / size / dtype / device / warm-up / sync cadence)
in a fresh child process ``N`` times and prints how many failed and how:
a death by a signal or a non-zero exit is ``crash``, no exit within the timeout
``hang``, an exception in a worker ``error`` (exit 3), a result that differs
from a serial replay of the same thread ``mismatch`` (exit 4). It exits 1 when
any run failed. What it is not: the search (``search``) nor the report (``report``).
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from mpslab.studies.shrink.source import standalone_source

__all__ = ["script_text", "write_script"]

_TOLERANCE = {"float64": 1e-9, "float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}

_HARNESS = r'''

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
'''


def _interpreter_lines(python: str | None, torch_version: str | None, script_name: str) -> str:
    torch_text = f"torch {torch_version}" if torch_version else "torch"
    where = f"the one that ran the trials ({torch_text}):\n    {python}" if python else f"one with {torch_text}"
    return (
        f"Needs a Python that has torch, as {where}\n"
        f"and nothing else outside the standard library. Run it with that interpreter, e.g.\n"
        f"    {shlex.quote(python) if python else 'python'} {shlex.quote(script_name)} --runs 20\n"
    )


def _torch_import(python: str | None, torch_version: str | None) -> str:
    """``import torch``, once, that names the interpreter to use when this one has no torch."""
    want = f"{python} (torch {torch_version or '?'})" if python else "a Python with torch"
    return (
        "import sys\n\n"
        f"NEEDS = {want!r}\n"
        "try:\n"
        "    import torch\n"
        "except ImportError:\n"
        "    sys.exit(f'this reproducer needs a Python with torch, e.g. {NEEDS}; {sys.executable} has none')\n"
    )


def script_text(
    config: Any,
    workload: Any,
    *,
    runs: int = 10,
    timeout_s: float = 60.0,
    title: str = "",
    python: str | None = None,
    torch_version: str | None = None,
    script_name: str = "repro.py",
) -> str:
    """The reproducer's source for ``config`` (a ``StressConfig``) and its ``workload``.

    ``python`` and ``torch_version`` name the interpreter (and its torch) that ran the trials: the
    header tells the reader which Python the script needs.
    """
    cfg = {
        "threads": config.threads,
        "iterations": config.iterations,
        "size": config.size,
        "dtype": config.dtype,
        "device": config.device,
        "seed": config.seed,
        "warmup": config.warmup,
        "sync_every": config.sync_every,
        "throttle": config.throttle,
        "params": dict(config.params),
        "verify": bool(config.verify),
        "final_sync": bool(workload.final_sync),
        "rtol": _TOLERANCE[config.dtype],
        "scale": float(workload.scale(config.size)),
    }
    head = (
        f'"""{title or f"Standalone reproducer: workload {workload.name!r}"}\n\n'
        "Written by `python -m mpslab shrink`.\n"
        + _interpreter_lines(python, torch_version, script_name)
        + "It runs the pattern below in a fresh process --runs times and prints how many runs failed\n"
        f"(exit 1 if any did).\n"
        f"Shrunk pattern: {config.threads} thread(s) x {config.iterations} iteration(s), size {config.size}, "
        f"{config.dtype} on {config.device}, warm-up {config.warmup}, sync every "
        f'{config.sync_every or "run (end only)"}.\n"""\n\n'
    )
    # the workload's own imports may name torch too: one import of it, first
    source = [line for line in standalone_source(workload).splitlines() if line not in ("import torch", "import sys")]
    body = _torch_import(python, torch_version) + "\n".join(source) + "\n"
    settings = f"\n\nCONFIG = {cfg!r}\nRUNS = {int(runs)}\nTIMEOUT_S = {float(timeout_s)!r}\n"
    return head + body + settings + _HARNESS


def write_script(path: str, config: Any, workload: Any, **kw: Any) -> str:
    text = script_text(config, workload, **kw)
    compile(text, path, "exec")  # never write a script that does not parse
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o755)
    return path
