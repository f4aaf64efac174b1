"""Supervising one trial child from the parent: wait, time out, dump stacks, kill, reap.

``supervise_child`` waits for a child until its deadline; past it the child is sent
``SIGUSR1`` (``faulthandler`` writes every thread's stack), then its process group is
killed. ``SpawnRunner`` starts each trial as a fresh interpreter through ``boot.py``.
Not here: the fork server (``forkserver``) or what a trial's exit means (``outcomes``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

BOOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boot.py")  # every child starts here
TEMP_PREFIX = "mpslab-"  # + owner pid + "-trials-..." (a folder) or "-forkserver-....log"


STACKS_WAIT_S = 2.0  # after SIGUSR1: how long the child gets to write its stacks

REAP_WAIT_S = 5.0  # after SIGKILL: how long until the exit is seen


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (and ``pid`` itself, in case it has not set it up yet)."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class ChildExit:
    """How a supervised child ended: its exit code, whether it ran past its deadline, its lifetime."""

    code: int | None  # subprocess convention: negative = killed by that signal
    timed_out: bool
    wall_s: float


class ChildHandle:
    """A running trial child: its pid, and a wait that returns its exit code or ``None``."""

    pid: int

    def wait(self, timeout: float) -> int | None:
        raise NotImplementedError


class _PopenHandle(ChildHandle):
    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.pid = proc.pid

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return None


class ServerBroken(RuntimeError):
    """The fork server died or answered out of turn."""


def supervise_child(handle: ChildHandle, started: float, timeout_s: float, stacks_path: str) -> ChildExit:
    """Wait for the child until ``timeout_s`` after ``started``; past it, dump its stacks and kill it.

    A child still running at the deadline is a hang, whatever it does afterwards.
    """
    code = handle.wait(started + timeout_s - time.monotonic())
    if code is not None:
        kill_group(handle.pid)  # whatever it left running in its group
        return ChildExit(code, False, time.monotonic() - started)
    wall = time.monotonic() - started
    try:
        os.kill(handle.pid, signal.SIGUSR1)
    except ProcessLookupError:
        pass
    code = _wait_for_stacks(handle, stacks_path)
    kill_group(handle.pid)
    if code is None and handle.wait(REAP_WAIT_S) is None:
        raise ServerBroken(f"trial child {handle.pid} did not end {REAP_WAIT_S:g} s after SIGKILL")
    return ChildExit(None, True, wall)


def _wait_for_stacks(handle: ChildHandle, stacks_path: str) -> int | None:
    """Give the child up to ``STACKS_WAIT_S`` to finish writing its stacks; its exit code if it ends."""
    end = time.monotonic() + STACKS_WAIT_S
    last = -1
    while time.monotonic() < end:
        code = handle.wait(0.1)
        if code is not None:
            return code
        try:
            size = os.path.getsize(stacks_path)
        except OSError:
            size = 0
        if size and size == last:
            return None
        last = size
    return None


class TrialRunner:
    """Starts trial children one at a time and supervises each (``run``); ``abort`` kills the one running.

    A runner says how a child starts (``start``: its handle and the moment it started) and
    what else an abort ends (``after_abort``); waiting, time-outs, stacks and kills are shared.
    """

    mode = ""

    def __init__(self, python: str) -> None:
        self.python = python
        self.current: ChildHandle | None = None

    def start(self, req: dict[str, Any]) -> tuple[ChildHandle, float]:
        """Start the child of ``req``; its handle and its start (``time.monotonic()``)."""
        raise NotImplementedError

    def run(self, req: dict[str, Any], timeout_s: float) -> ChildExit:
        """One child, from its start to its exit or its deadline (then stacks dumped and killed)."""
        self.current, started = self.start(req)
        exit_ = supervise_child(self.current, started, timeout_s, req["stacks"])
        self.current = None  # kept on an exception, for abort()
        return exit_

    def abort(self) -> None:
        """Kill the child running (its process group), then whatever ``after_abort`` ends."""
        handle, self.current = self.current, None
        if handle is not None:
            kill_group(handle.pid)
        self.after_abort(handle)

    def after_abort(self, handle: ChildHandle | None) -> None:
        """What an abort ends besides the child's group (nothing here)."""

    def release(self) -> None:
        """Give back what the runner holds between trials (nothing here)."""


class SpawnRunner(TrialRunner):
    """One fresh interpreter per trial."""

    mode = "spawn"

    def start(self, req: dict[str, Any]) -> tuple[ChildHandle, float]:
        started = time.monotonic()
        with open(req["stderr"], "wb") as err:
            proc = subprocess.Popen(
                # the environment is inherited, not put on the command line (where `ps` shows it)
                [self.python, BOOT, "child", req["stacks"], json.dumps({k: v for k, v in req.items() if k != "env"})],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
                close_fds=True,
                cwd=req["cwd"],
            )
        return _PopenHandle(proc), started

    def after_abort(self, handle: ChildHandle | None) -> None:
        if handle is not None:
            handle.wait(REAP_WAIT_S)
