"""Child processes for the studies: run one, capture its exit code and output, read crash text.

What it is: ``run_script`` (one of the ordinary modules in ``mpslab/studies/scripts/``, run by
its file path under the current interpreter), ``run_child`` (a ``python -c`` snippet, for tests
and one-off checks), the ``ChildResult`` they return, the stderr markers that mean a crash,
and ``grace``, the extra wait a runner allows past an inner timeout.

What it is not: the isolated-trial machinery (``mpslab.trials.isolate``, with its fork server
and supervision) nor the child programs themselves (``mpslab.studies.scripts``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CRASH_MARKERS", "SCRIPTS_DIR", "ChildResult", "grace", "run_child", "run_script", "script_path"]

# stderr text that means the process crashed rather than exited.
CRASH_MARKERS = (
    "Segmentation fault",
    "Fatal Python error",
    "terminate called",
    "core dumped",
    "Aborted",
    "Bus error",
    "SIGSEGV",
    "SIGABRT",
)

SCRIPTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts")


def grace(timeout: float) -> float:
    """Extra seconds a runner waits past ``timeout`` (inner timeouts fire first)."""
    return min(30.0, max(1.0, float(timeout)))


@dataclass
class ChildResult:
    returncode: int | None  # None: killed after the timeout
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def crash_text(self) -> list[str]:
        return [m for m in CRASH_MARKERS if m in self.stderr]

    def describe(self) -> str:
        if self.timed_out:
            return f"no exit within {self.seconds:.0f} s (killed)"
        rc = self.returncode
        how = f"exit {rc}" if rc >= 0 else f"killed by signal {-rc}"
        tail = self.stderr.strip().splitlines()[-1:] if self.stderr.strip() else []
        return how + (f"; stderr ends: {tail[0][:160]}" if tail else "; stderr empty")


def script_path(name: str) -> str:
    """The file of the child script ``mpslab/studies/scripts/<name>.py``."""
    path = os.path.join(SCRIPTS_DIR, f"{name}.py")
    if not name.isidentifier() or name == "__init__" or not os.path.isfile(path):
        known = sorted(f[:-3] for f in os.listdir(SCRIPTS_DIR) if f.endswith(".py") and f != "__init__.py")
        raise ValueError(f"script={name!r}: unknown; known: {', '.join(known)}")
    return path


def _run(cmd: list[str], timeout: float) -> ChildResult:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired as exc:

        def text(v: Any) -> str:
            return v.decode(errors="replace") if isinstance(v, bytes) else (v or "")

        return ChildResult(None, text(exc.stdout), text(exc.stderr), time.perf_counter() - t0)
    return ChildResult(out.returncode, out.stdout, out.stderr, time.perf_counter() - t0)


def run_script(script: str, args: Sequence[Any], timeout: float = 120.0) -> ChildResult:
    """Run a child script (a name from ``mpslab/studies/scripts/`` or a path to a ``.py`` file).

    The script runs by its path under ``sys.executable`` (no shell): the scripts import
    torch only, so the child needs no installed mpslab.
    """
    path = script if script.endswith(".py") and os.path.isfile(script) else script_path(script)
    return _run([sys.executable, path, *[str(a) for a in args]], timeout)


def run_child(code: str, args: Sequence[Any], timeout: float = 120.0) -> ChildResult:
    """Run ``python -c code args...`` (no shell) and capture its exit code and output."""
    return _run([sys.executable, "-c", code, *[str(a) for a in args]], timeout)
