"""mpslab's pytest plugin and pytest-run-parallel on the same planted cases and two real PyTorch bugs.

Every case is one step ``step(ctx, i)``; both tools run it from ``--threads`` threads,
``--iterations`` steps each:

* mpslab: ``@pytest.mark.concurrent(step=..., trials=T, max_failure="50%")``, every case a
  must-pass test, all cases in one pytest run (the trials are child processes);
* pytest-run-parallel: a test body that calls the step ``iterations`` times, run with
  ``--parallel-threads N``; one pytest run per case (a crash ends a run), with an outer
  timeout (it has none of its own), plus one run of all cases together.

A case is *caught* when the test fails (or its run dies). The planted cases: ``pass`` (must
pass), ``error`` (thread 0 raises), ``mismatch`` (worker threads return a value the main
thread would not: no thread raises), ``crash`` (thread 0 aborts), ``hang`` (thread 0 sleeps).
The real bugs are the example file's steps (examples/test_concurrency_example.py):
pytorch#112775 and pytorch#186537. Times are each test's duration as pytest's JUnit XML
reports it (the wall time of the run where it was killed).

    python benchmarks/pytest_plugin_vs_run_parallel.py                 # threads 4, iterations 10, trials 5
    python benchmarks/pytest_plugin_vs_run_parallel.py --trials 10 --outer-timeout 120
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from _common import machine_line  # noqa: E402

STEPS = """
import os
import sys
import threading
import time

import torch

sys.path.insert(0, {examples!r})
from test_concurrency_example import (  # noqa: E402,F401
    dynamo_setup, dynamo_shapes_in_workers, fx_setup, fx_trace_while_serving,
)


def good(ctx, i):
    a = torch.randn(16, 16, generator=ctx.generator)
    return a @ a


def raises(ctx, i):
    if ctx.thread == 0 and i == 2:
        raise RuntimeError("planted error")
    return good(ctx, i)


def differs(ctx, i):
    out = good(ctx, i)
    return out + 1 if threading.current_thread() is not threading.main_thread() else out


def crashes(ctx, i):
    if ctx.thread == 0 and i == 2:
        os.abort()
    return good(ctx, i)


def hangs(ctx, i):
    if ctx.thread == 0 and i == 2:
        time.sleep(3600)
    return good(ctx, i)
"""

# case -> (step, setup or None, the extra marker options)
CASES = {
    "pass": ("good", None, ""),
    "error": ("raises", None, ""),
    "mismatch": ("differs", None, ""),
    "crash": ("crashes", None, ""),
    "hang": ("hangs", None, ""),
    "fx_112775": ("fx_trace_while_serving", "fx_setup", ""),
    "dynamo_186537": ("dynamo_shapes_in_workers", "dynamo_setup", ", warmup=0"),
}

RUN_PARALLEL = """
import itertools

import torch

from bench_steps import {step}{setup_import}

THREADS, ITERATIONS = {threads}, {iterations}
_ids = itertools.count()


class Ctx:
    def __init__(self, thread, state):
        self.thread, self.state = thread, state
        self.device, self.dtype, self.size = torch.device("cpu"), torch.float32, 64
        self.generator = torch.Generator().manual_seed(max(thread, 0))


STATE = {setup_call}


def test_{case}():
    ctx = Ctx(next(_ids) % THREADS, STATE)  # each of the threads its own index, as mpslab's workers have
    for i in range(ITERATIONS):
        {step}(ctx, i)
"""


def _pytest(args: list[str], cwd: str, timeout: float) -> tuple[str, float]:
    """Run pytest; returns (how it ended, wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"killed at the outer timeout ({timeout:g} s)", time.perf_counter() - t0
    wall = time.perf_counter() - t0
    if code < 0:
        return f"died of {signal.Signals(-code).name}", wall
    return f"exit {code}", wall


def _junit(path: str) -> dict[str, tuple[str, float]]:
    """testcase name -> (passed | failed | skipped, seconds)."""
    if not os.path.exists(path):
        return {}
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        kind = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        out[case.get("name")] = ("failed" if kind in ("failure", "error") else kind, float(case.get("time", 0)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--trials", type=int, default=5, help="mpslab trials per case (>= 5: max_failure is 50%%)")
    ap.add_argument("--timeout", type=float, default=30.0, help="mpslab's per-trial hang timeout, seconds")
    ap.add_argument("--outer-timeout", type=float, default=90.0, help="the kill timeout of each run-parallel run")
    args = ap.parse_args(argv)
    if args.threads < 1 or args.iterations < 3 or args.trials < 5:
        ap.error(
            f"--threads={args.threads} --iterations={args.iterations} --trials={args.trials}: need >= 1, >= 3, >= 5"
        )
    print(machine_line("cpu"))
    from importlib.metadata import version

    import pytest_run_parallel  # noqa: F401  (fails here, not halfway, when it is not installed)

    print(f"pytest {version('pytest')}, pytest-run-parallel {version('pytest-run-parallel')}")
    work = tempfile.mkdtemp(prefix="mpslab-vs-run-parallel-")
    with open(os.path.join(work, "bench_steps.py"), "w") as fh:
        fh.write(STEPS.format(examples=os.path.join(ROOT, "examples")))
    opts = f"threads={args.threads}, iterations={args.iterations}, trials={args.trials}, timeout={args.timeout}"
    marked = ["import pytest", "from bench_steps import *  # noqa: F403", ""]
    for case, (step, setup, extra) in CASES.items():
        setup_opt = f", setup={setup}" if setup else ""
        marked += [f"@pytest.mark.concurrent(step={step}{setup_opt}, {opts}, max_failure='50%'{extra})",
                   f"def test_{case}():", "    pass", ""]  # fmt: skip
    with open(os.path.join(work, "test_mpslab_cases.py"), "w") as fh:
        fh.write("\n".join(marked))
    for case, (step, setup, _) in CASES.items():
        with open(os.path.join(work, f"test_rp_{case}.py"), "w") as fh:
            fh.write(RUN_PARALLEL.format(
                step=step, case=case, threads=args.threads, iterations=args.iterations,
                setup_import=f", {setup}" if setup else "", setup_call=f"{setup}(Ctx(-1, None))" if setup else "None",
            ))  # fmt: skip

    print(f"\nmpslab: one run of all {len(CASES)} cases, {opts}, max_failure 50%, device cpu")
    ended, wall = _pytest(["test_mpslab_cases.py", "--mpslab-device", "cpu", "--junitxml=mpslab.xml"], work, 3600)
    mp = _junit(os.path.join(work, "mpslab.xml"))
    m_survived = "yes" if ended.startswith("exit") and len(mp) == len(CASES) else f"no ({ended})"
    print(f"  run: {ended}, {len(mp)} of {len(CASES)} results, {wall:.0f} s")
    rp: dict[str, tuple[str, str, float]] = {}
    rp_args = ["--parallel-threads", str(args.threads), "--iterations", "1"]
    for case in CASES:
        xml = f"rp_{case}.xml"
        ended, wall = _pytest([f"test_rp_{case}.py", *rp_args, f"--junitxml={xml}"], work, args.outer_timeout)
        got = _junit(os.path.join(work, xml)).get(f"test_{case}")
        rp[case] = (got[0], ended, got[1]) if got else ("no result", ended, wall)
    ended, wall = _pytest(
        [*(f"test_rp_{c}.py" for c in CASES), *rp_args, "--junitxml=rp_all.xml"], work, args.outer_timeout * 2
    )
    together = _junit(os.path.join(work, "rp_all.xml"))
    print(f"run-parallel: one run per case, {' '.join(rp_args)}, outer timeout {args.outer_timeout:g} s")
    print(f"  all cases in one run: {ended}, {len(together)} of {len(CASES)} results, {wall:.0f} s")

    print(
        "\n| case | mpslab: test | caught | run survived | s/test "
        "| run-parallel: test | caught | run survived | s/test |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for case in CASES:
        m_outcome, m_s = mp.get(f"test_{case}", ("no result", float("nan")))
        r_outcome, r_end, r_s = rp[case]
        m_caught = "n/a" if case == "pass" else ("yes" if m_outcome == "failed" else "no")
        r_caught = {"failed": "yes", "passed": "no"}.get(r_outcome, "run died" if "died" in r_end else "run killed")
        r_caught = "n/a" if case == "pass" and r_outcome == "passed" else r_caught
        r_survived = "yes" if r_end.startswith("exit") else f"no ({r_end})"
        print(f"| {case} | {m_outcome} | {m_caught} | {m_survived} | {m_s:.1f} "
              f"| {r_outcome} | {r_caught} | {r_survived} | {r_s:.1f} |")  # fmt: skip
    print(f"\nfiles: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
