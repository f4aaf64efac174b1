"""CLI start-up: whole-process wall time of ``python -m mpslab --help`` and of argument errors.

Each run is a fresh child process, timed from its start to its exit with a monotonic clock
(interpreter start-up, imports, argument parsing, exit). The commands run in turn, round after
round, so a change in the machine's load falls on all of them alike; the figures are the median,
min and max over the rounds. ``python -c pass`` is the floor (an interpreter that does nothing)
and ``python -c "import torch"`` the cost the command line avoids by not importing torch.

    python benchmarks/cli_startup.py                  # 20 rounds
    python benchmarks/cli_startup.py --repeats 50
    python benchmarks/cli_startup.py --tiny           # 3 rounds, no torch row
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_S = 0.5  # the bound for --help and an argument error (median)

COMMANDS = [
    ("python -c pass", ["-c", "pass"], None),
    ("python -c 'import torch'", ["-c", "import torch"], None),
    ("python -m mpslab --help", ["-m", "mpslab", "--help"], 0),
    ("python -m mpslab stres  (typo)", ["-m", "mpslab", "stres"], 2),
    ("python -m mpslab stress --threads many", ["-m", "mpslab", "stress", "--threads", "many"], 2),
]


def _time_once(args: list[str], expect: int | None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if expect is not None and proc.returncode != expect:
        raise SystemExit(f"cli_startup: {' '.join(args)} exited {proc.returncode}, expected {expect}: {proc.stderr}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20, help="rounds (default %(default)s)")
    ap.add_argument("--tiny", action="store_true", help="3 rounds, without the import-torch row")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        print(f"cli_startup.py: --repeats={args.repeats}: must be >= 1", file=sys.stderr)
        return 2
    rounds = 3 if args.tiny else args.repeats
    commands = [c for c in COMMANDS if not (args.tiny and "import torch" in c[0])]
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "not installed"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, python "
        f"{platform.python_version()}, torch {torch_version}, load average at start {load}"
    )
    times: dict[str, list[float]] = {label: [] for label, _, _ in commands}
    for _ in range(rounds):
        for label, cmd, expect in commands:
            times[label].append(_time_once(cmd, expect))
    floor = statistics.median(times[commands[0][0]])
    print(f"{rounds} rounds, whole-process wall time (s):")
    print(f"{'command':<42} {'median':>7} {'min':>7} {'max':>7}  {'median - floor':>14}")
    for label, _, _ in commands:
        ts = times[label]
        med = statistics.median(ts)
        print(f"{label:<42} {med:7.3f} {min(ts):7.3f} {max(ts):7.3f}  {med - floor:14.3f}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    cli = [label for label, _, expect in commands if expect is not None]
    worst = max(statistics.median(times[label]) for label in cli)
    verdict = "under" if worst < TARGET_S else "NOT under"
    print(f"load average at end {load}")
    print(f"slowest CLI median {worst:.3f} s: {verdict} the {TARGET_S} s bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
