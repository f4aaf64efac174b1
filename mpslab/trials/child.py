"""What runs inside a trial child: watch the parent, run the request, write the answer.

A request (JSON) names a config and the files to write; the child runs
``run_stress`` (or, for a probe, only validates the config and reports its
environment) and writes its result atomically. Entry points: ``spawned_child_main``
(a fresh interpreter started through ``boot.py``) and ``forked_child_main`` (a child
of the fork server). Not here: deciding what the exit means (``outcomes``) or
supervising the child from the parent (``supervise``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import faulthandler
import json
import math
import os
import re
import signal
import sys
import threading
import time
from typing import Any

from mpslab.run.config import StressConfig
from mpslab.run.interpreter import interpreter_fields
from mpslab.trials.outcomes import Outcome

EXIT_HARNESS = 70  # a child whose own harness failed (no result)

_EXIT_ORPHAN = 71  # a child whose parent was gone before it could watch it


def _die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` ends (Linux: PR_SET_PDEATHSIG; elsewhere a watcher thread)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # PR_SET_PDEATHSIG = 1
                if os.getppid() != parent_pid:
                    os._exit(_EXIT_ORPHAN)
                return
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(_EXIT_ORPHAN)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(_EXIT_ORPHAN)

    threading.Thread(target=watch, name="mpslab-parent-watch", daemon=True).start()


def _prefer_as_oom_victim() -> None:
    """Linux: make this trial child, not the parent or the server, the OOM killer's first choice."""
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")
    except OSError:
        pass


def _write_json_atomic(path: str, obj: Any) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh)
    os.replace(tmp, path)


def blank_row(config: StressConfig, env: dict[str, Any]) -> dict[str, Any]:
    """``to_row()``'s columns for a trial that left no result: config and env filled, measurements NaN."""
    from mpslab.run.result import StressResult
    from mpslab.run.runner import latency_summary

    row = StressResult(
        config=config, seconds=math.nan, completed=0, latency_ms=latency_summary([]), environment=env
    ).to_row()
    keep = {f.name for f in dataclasses.fields(config)} | {"outcome", "ops"}
    for key in row:
        if key not in keep and not key.startswith("env_"):
            row[key] = math.nan
    row["first_error"] = None
    return row


def environment_block(device: str, start: dict[str, Any] | None = None) -> dict[str, Any]:
    """The environment block; ``start``: how Python ran when this child started (else: now).

    ``gil_enabled_end`` is None here: only a trial that ends with a result can say it.
    """
    from mpslab.run.environment import environment

    return {**environment(device), **(start or {}), "gil_enabled_end": None}


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>.+)$', re.M)


def where_raised(traceback_text: str, frames: int = 3) -> str:
    """``at a/b.py:12 in f <- c/d.py:40 in g``: the last ``frames`` frames of a traceback, innermost first."""
    found = _FRAME.findall(traceback_text or "")
    if not found:
        return ""
    parts = []
    for file, line, fn in reversed(found[-frames:]):
        short = "/".join(file.replace(os.sep, "/").split("/")[-2:])
        parts.append(f"{short}:{line} in {fn.strip()}")
    return "at " + " <- ".join(parts)


def _what_happened(result: Any) -> str | None:
    """The first error (with where it was raised when its message is empty), else the first mismatch."""
    if result.errors:
        e = result.errors[0]
        if e.message.strip():
            return f"{e.type}: {e.message}"
        where = where_raised(e.traceback)
        return f"{e.type} (empty message) raised {where}" if where else f"{e.type} (empty message)"
    if result.mismatches:
        m = result.mismatches[0]
        return (
            f"mismatch: {result.mismatch_count} of {result.verified} outputs differ from the serial replay; first: "
            f"thread {m.thread} iteration {m.iteration} ({m.what}){': ' + m.detail if m.detail else ''}; "
            f"sum expected {m.expected:.6g}, got {m.got:.6g}"
        )
    return None


def _handle_request(req: dict[str, Any]) -> int:
    """Run one request in this (child) process and write its answer to ``req["result"]``."""
    start = interpreter_fields(when="start")  # before the work: an import during it may turn the GIL on
    config = StressConfig.from_dict(req["config"])
    if req.get("probe"):
        env = environment_block(config.device, start)
        payload = {"config": config.to_dict(), "environment": env, "template": blank_row(config, env)}
    else:
        from mpslab.run.runner import run_stress

        result = run_stress(config)
        row = result.to_row()
        if result.outcome != Outcome.OK:
            row["first_error"] = _what_happened(result)
        row.update({f"env_{k}": v for k, v in {**start, **interpreter_fields(when="end")}.items()})
        payload = {"row": row}
    _write_json_atomic(req["result"], payload)
    return 0


def spawned_child_main(request: str) -> int:
    """Entry point of a spawned child (started through ``boot.py child``)."""
    req = json.loads(request)
    _die_with_parent(int(req["parent"]))
    _prefer_as_oom_victim()
    return _handle_request(req)


def forked_child_main(req: dict[str, Any], server_pid: int) -> int:
    """Entry point of a child forked by the fork server; the caller ``os._exit``s with its value."""
    os.setsid()
    _die_with_parent(server_pid)
    devnull = os.open(os.devnull, os.O_RDWR)
    err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(err, 2)
    os.close(devnull)
    os.close(err)
    faulthandler.enable(file=sys.stderr, all_threads=False)  # the crashing thread: keeps the tail short
    stacks = open(req["stacks"], "w")
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
    _prefer_as_oom_victim()
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    try:
        return _handle_request(req)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
