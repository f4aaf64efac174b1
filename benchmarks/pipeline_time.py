"""Pipeline time: wall time of the whole notebook series, ``python -m mpslab run``, over several repeats.

Each repeat is one fresh ``python -m mpslab run --profile PROFILE --device DEVICE
--out TMPDIR`` child process (all notebooks, executed by papermill, report
written), timed from its start to its exit with a monotonic clock; the figures
are the median, min and max over the repeats. Every repeat writes into its own
temporary folder (removed afterwards), so no repeat reuses another's outputs.
A repeat that exits non-zero stops the benchmark with its last output lines.

    python benchmarks/pipeline_time.py                        # quick profile, cpu, 3 repeats
    python benchmarks/pipeline_time.py --device cuda --repeats 3
    python benchmarks/pipeline_time.py --tiny                 # one repeat of one notebook
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import bad_arg, load_average, machine_line  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one(profile: str, device: str, only: list[str], timeout: float) -> float:
    with tempfile.TemporaryDirectory(prefix="mpslab-pipeline-") as out:
        cmd = [sys.executable, "-m", "mpslab", "run", "--profile", profile, "--device", device, "--out", out]
        for name in only:
            cmd += ["--only", name]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise SystemExit(f"pipeline_time: {' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick", help="notebooks/profiles.yml profile (default quick)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | mps | auto (default cpu)")
    p.add_argument("--repeats", type=int, default=3, help="repeats (default 3)")
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="only this notebook (repeatable)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds before one repeat is given up (default 1800)")
    p.add_argument("--tiny", action="store_true", help="one repeat of notebook 01 only, quick profile")
    args = p.parse_args(argv)
    if args.tiny:
        args.repeats, args.only, args.profile = 1, ["01"], "quick"
    if args.repeats < 1:
        return bad_arg("pipeline_time", f"--repeats={args.repeats}: must be >= 1")

    which = ", ".join(args.only) if args.only else "all notebooks"
    print(f"pipeline time: {machine_line(args.device)}")
    print(
        f"python -m mpslab run --profile {args.profile} --device {args.device} ({which}), {args.repeats} repeats, "
        f"each a fresh process into its own temporary folder"
    )
    times = []
    for k in range(args.repeats):
        times.append(one(args.profile, args.device, args.only, args.timeout))
        print(f"  repeat {k + 1}: {times[-1]:.1f} s (load average {load_average()})", flush=True)
    print(
        f"pipeline time ({args.profile}, {which}): median {statistics.median(times):.1f} s, "
        f"min {min(times):.1f} s, max {max(times):.1f} s over {len(times)} repeats"
    )
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
