"""Isolated trials: each run of a config in its own child process, every outcome classified.

``run_trials(config, trials=N, timeout_s=...)`` runs ``run_stress(config)`` N
times, each time in a fresh child process, and returns one DataFrame row per
trial. The parent survives whatever the child does:

``ok`` / ``error`` / ``mismatch``
    the child wrote its result (``StressResult.to_row()``) and exited 0.
``crash``
    the child died by a signal (``signal`` = ``SIGSEGV``, ``signal_number`` = 11)
    or exited non-zero, or exited without writing a result.
``hang``
    no exit within ``timeout_s`` (counted from the child's start, interpreter
    start-up included in ``spawn`` mode): the child is sent ``SIGUSR1``, on which
    ``faulthandler`` writes every thread's Python stack (``hang_stacks``), then
    its process group is killed.

Each row also keeps the last 40 lines of the child's stderr (``stderr_tail``:
where a Metal assertion or ``faulthandler``'s fatal-signal report appears),
``wall_s`` (the child's lifetime as the parent saw it), the config's fields, and
the ``env_*`` columns (the child's own, or the parent's when the child wrote none).

Two ways to start a child (``mode``):

``spawn``
    a new interpreter per trial (``python -c <bootstrap>``): ~3 s of start-up
    and ``import torch`` per trial. The only mode outside Linux (forking after
    Metal/Objective-C has started is unsafe on macOS).
``forkserver`` (Linux; what ``auto`` picks there)
    one server process imports torch and mpslab once, initialises no device
    and runs no tensor op, and forks one child per trial. Each child is still a
    fresh process (own address space, own device context), so isolation is
    kept; the import is paid once. The server stays up between calls (so a
    sweep pays it once), under the interpreter it was started with, and exits
    when the parent exits, after 5 minutes idle, or on ``shutdown_server()``.

``python=`` names another interpreter (another venv, another torch build): the
children and the fork server run under it, and load this mpslab package from its
own directory, so nothing needs installing there. Before any trial, one probe
child under that interpreter validates the config and reports its environment.

Calls from several threads at once take turns on the fork server (one batch at a
time); ``spawn`` batches run side by side.

Nothing is left behind: children run in their own process group, which is
killed after each trial; a ``KeyboardInterrupt`` (Ctrl-C, a notebook's
interrupt) kills the running trial and the fork server before it propagates; on
Linux children die with their parent even on ``kill -9`` (``PR_SET_PDEATHSIG``).
POSIX only.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import ctypes
import datetime as _dt
import faulthandler
import hashlib
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from mpslab.run.config import ConfigError, StressConfig
from mpslab.trials import records as _records

__all__ = ["run_trials", "classify", "shutdown_server", "OUTCOMES", "MODES", "default_mode"]

OUTCOMES = ("ok", "error", "mismatch", "crash", "hang")
MODES = ("auto", "spawn", "forkserver")

STDERR_TAIL_LINES = 40
STDERR_LINE_CHARS = 400
HANG_STACKS_CHARS = 32_000
STACKS_WAIT_S = 2.0  # after SIGUSR1: how long the child gets to write its stacks
REAP_WAIT_S = 5.0  # after SIGKILL: how long until the exit is seen
SERVER_START_S = 180.0  # fork server: interpreter start-up and imports
SERVER_REPLY_S = 30.0  # fork server: time to fork and answer with the child's pid
SERVER_IDLE_S = 300.0  # fork server: exits after this long without a request
PROBE_TIMEOUT_S = 180.0  # the probe under another interpreter
_EXIT_HARNESS = 70  # a child whose own harness failed (no result)
_EXIT_ORPHAN = 71  # a child whose parent was gone before it could watch it

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the mpslab package folder

# Loads this mpslab package, from its own directory, into any interpreter:
# no installation there and nothing else put on sys.path (so another venv's torch
# is the one imported).
_LOAD_MPSLAB = r"""
import importlib.util
_spec = importlib.util.spec_from_file_location(
    "mpslab", _pkg + "/__init__.py", submodule_search_locations=[_pkg])
_mod = importlib.util.module_from_spec(_spec)
sys.modules["mpslab"] = _mod
_spec.loader.exec_module(_mod)
"""

# A spawned trial child: argv = package dir, stacks file, request (JSON).
# faulthandler first, so a hang during start-up still gets its stacks dumped.
_CHILD_BOOT = r"""
import sys, faulthandler, signal
_pkg, _stacks_path, _request = sys.argv[1], sys.argv[2], sys.argv[3]
faulthandler.enable(file=sys.stderr, all_threads=False)
_stacks = open(_stacks_path, "w")
faulthandler.register(signal.SIGUSR1, file=_stacks, all_threads=True)
""" + _LOAD_MPSLAB + r"""
from mpslab.trials.isolate import _spawned_child_main
sys.exit(_spawned_child_main(_request))
"""

# The fork server: argv = package dir.
_SERVER_BOOT = r"""
import sys
_pkg = sys.argv[1]
""" + _LOAD_MPSLAB + r"""
from mpslab.trials.isolate import _serve
sys.exit(_serve())
"""


def default_mode() -> str:
    """What ``mode="auto"`` means on this platform: ``forkserver`` on Linux, else ``spawn``."""
    return "forkserver" if sys.platform.startswith("linux") else "spawn"


def classify(exit_code: int | None, timed_out: bool, result_outcome: str | None) -> str:
    """The outcome class of one trial.

    ``exit_code`` follows ``subprocess``: negative for death by a signal.
    ``result_outcome`` is the outcome the child wrote (``ok``, ``error``,
    ``mismatch``), or ``None`` when it wrote none.
    """
    if timed_out:
        return "hang"
    if exit_code != 0:
        return "crash"
    if result_outcome not in ("ok", "error", "mismatch"):
        return "crash"
    return result_outcome


# =========================================================================== child side


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


def _blank_row(config: StressConfig, env: dict[str, Any]) -> dict[str, Any]:
    """``to_row()``'s columns for a trial that left no result: config and env filled, measurements NaN."""
    from mpslab.run.runner import StressResult, latency_summary

    row = StressResult(config=config, seconds=math.nan, completed=0,
                       latency_ms=latency_summary([]), environment=env).to_row()
    keep = set(config.to_dict()) | {"outcome", "ops"}
    for key in row:
        if key not in keep and not key.startswith("env_"):
            row[key] = math.nan
    row["first_error"] = None
    return row


def _environment_block(device: str) -> dict[str, Any]:
    from mpslab.run.environment import environment

    return environment(device)


def _handle_request(req: dict[str, Any]) -> int:
    """Run one request in this (child) process and write its answer to ``req["result"]``."""
    config = StressConfig.from_dict(req["config"])
    if req.get("probe"):
        env = _environment_block(config.device)
        payload = {"config": config.to_dict(), "environment": env, "template": _blank_row(config, env)}
    else:
        from mpslab.run.runner import run_stress

        result = run_stress(config)
        payload = {"row": result.to_row()}
    _write_json_atomic(req["result"], payload)
    return 0


def _spawned_child_main(request: str) -> int:
    """Entry point of a spawned child (see ``_CHILD_BOOT``)."""
    req = json.loads(request)
    _die_with_parent(int(req["parent"]))
    _prefer_as_oom_victim()
    return _handle_request(req)


def _forked_child_main(req: dict[str, Any], server_pid: int) -> int:
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


class _LineReader:
    """Newline-delimited messages from a file descriptor, with deadlines (``select``)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def readline(self, deadline: float | None) -> bytes | None:
        """The next line (without its newline); ``None`` past ``deadline``; ``b""`` at end of file."""
        while b"\n" not in self.buf:
            timeout = None
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return None
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return b""
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line


def _send(fd: int, obj: Any) -> None:
    data = (json.dumps(obj) + "\n").encode()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _serve() -> int:
    """The fork server's loop: one request line in, one forked child, its pid and exit status out.

    Runs no tensor op and initialises no device, so every forked child starts
    from a process that has only imported torch and mpslab. Exits when its
    stdin closes (the parent has gone: the running child is killed first) or
    after ``SERVER_IDLE_S`` without a request.
    """
    from mpslab.run.environment import git_commit
    import platform

    git_commit()  # cached, so children do not run git for every trial
    platform.platform()
    server_pid = os.getpid()
    reader = _LineReader(0)
    _send(1, {"ready": True, "pid": server_pid, "executable": sys.executable})
    while True:
        line = reader.readline(time.monotonic() + SERVER_IDLE_S)
        if not line:  # idle too long, or the parent closed the pipe
            return 0
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = _EXIT_HARNESS
            try:
                code = _forked_child_main(req, server_pid)
            except BaseException:
                try:
                    traceback.print_exc()
                    sys.stderr.flush()
                except BaseException:
                    pass
            finally:
                os._exit(code)
        _send(1, {"pid": pid})
        code = _wait_child_or_parent(pid, reader)
        if code is None:  # the parent has gone
            return 0
        _send(1, {"pid": pid, "exit": code})


def _wait_child_or_parent(pid: int, reader: _LineReader) -> int | None:
    """Wait for child ``pid``; if the parent closes our stdin first, kill the child and return ``None``."""
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pidfd = None
    try:
        while True:
            fds = [reader.fd] + ([pidfd] if pidfd is not None else [])
            ready, _, _ = select.select(fds, [], [], None if pidfd is not None else 0.005)
            if reader.fd in ready:
                chunk = os.read(reader.fd, 65536)
                if not chunk:
                    _kill_group(pid)
                    os.waitpid(pid, 0)
                    return None
                reader.buf += chunk
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
    finally:
        if pidfd is not None:
            os.close(pidfd)


# =========================================================================== parent side


def _kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (and ``pid`` itself, in case it has not set it up yet)."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class _Exit:
    code: int | None  # subprocess convention: negative = killed by that signal
    timed_out: bool
    wall_s: float


class _Handle:
    """A running trial child: its pid, and a wait that returns its exit code or ``None``."""

    pid: int

    def wait(self, timeout: float) -> int | None:
        raise NotImplementedError


class _PopenHandle(_Handle):
    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.pid = proc.pid

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return None


class _ServerHandle(_Handle):
    def __init__(self, server: "_ForkServer", pid: int) -> None:
        self.server = server
        self.pid = pid

    def wait(self, timeout: float) -> int | None:
        msg = self.server.read(time.monotonic() + max(timeout, 0.0))
        if msg is None:
            return None
        if msg.get("pid") != self.pid or "exit" not in msg:
            raise _ServerBroken(f"fork server: unexpected message {msg!r}")
        return int(msg["exit"])


class _ServerBroken(RuntimeError):
    """The fork server died or answered out of turn."""


def _supervise(handle: _Handle, started: float, timeout_s: float, stacks_path: str) -> _Exit:
    """Wait for the child until ``timeout_s`` after ``started``; past it, dump its stacks and kill it.

    A child still running at the deadline is a hang, whatever it does afterwards.
    """
    code = handle.wait(started + timeout_s - time.monotonic())
    if code is not None:
        _kill_group(handle.pid)  # whatever it left running in its group
        return _Exit(code, False, time.monotonic() - started)
    wall = time.monotonic() - started
    try:
        os.kill(handle.pid, signal.SIGUSR1)
    except ProcessLookupError:
        pass
    code = _wait_for_stacks(handle, stacks_path)
    _kill_group(handle.pid)
    if code is None and handle.wait(REAP_WAIT_S) is None:
        raise _ServerBroken(f"trial child {handle.pid} did not end {REAP_WAIT_S:g} s after SIGKILL")
    return _Exit(None, True, wall)


def _wait_for_stacks(handle: _Handle, stacks_path: str) -> int | None:
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


class _SpawnRunner:
    """One fresh interpreter per trial."""

    mode = "spawn"

    def __init__(self, python: str) -> None:
        self.python = python
        self.current: _PopenHandle | None = None

    def run(self, req: dict[str, Any], timeout_s: float) -> _Exit:
        started = time.monotonic()
        with open(req["stderr"], "wb") as err:
            proc = subprocess.Popen(
                # the environment is inherited, not put on the command line (where `ps` shows it)
                [self.python, "-c", _CHILD_BOOT, _PKG_DIR, req["stacks"],
                 json.dumps({k: v for k, v in req.items() if k != "env"})],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                start_new_session=True, close_fds=True, cwd=req["cwd"],
            )
        self.current = _PopenHandle(proc)
        exit_ = _supervise(self.current, started, timeout_s, req["stacks"])
        self.current = None  # kept on an exception, for abort()
        return exit_

    def abort(self) -> None:
        handle, self.current = self.current, None
        if handle is not None:
            _kill_group(handle.pid)
            handle.wait(REAP_WAIT_S)

    def release(self) -> None:
        pass


class _ForkServer:
    """The long-lived process that forks trial children (see ``_serve``)."""

    def __init__(self, python: str, key: str) -> None:
        self.python = python
        self.key = key
        fd, self.log_path = tempfile.mkstemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-forkserver-", suffix=".log")
        try:
            self.proc = subprocess.Popen(
                [python, "-c", _SERVER_BOOT, _PKG_DIR],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=fd,
                start_new_session=True, close_fds=True,
            )
        finally:
            os.close(fd)
        self.reader = _LineReader(self.proc.stdout.fileno())  # type: ignore[union-attr]
        try:
            msg = self.read(time.monotonic() + SERVER_START_S)
        except _ServerBroken:
            msg = None
        except BaseException:  # Ctrl-C while it starts: take it down too
            self.close()
            raise
        if not msg or not msg.get("ready"):
            tail = _last_line(_read_end(self.log_path)) or "no output"
            self.close()
            raise _ServerBroken(f"the fork server under {python} did not start: {tail}")
        self.pid = int(msg["pid"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def read(self, deadline: float) -> dict[str, Any] | None:
        line = self.reader.readline(deadline)
        if line is None:
            return None
        if line == b"":
            raise _ServerBroken(f"the fork server exited ({_last_line(_read_end(self.log_path)) or 'no output'})")
        return json.loads(line)

    def start(self, req: dict[str, Any]) -> _ServerHandle:
        try:
            _send(self.proc.stdin.fileno(), req)  # type: ignore[union-attr]
        except (BrokenPipeError, OSError) as exc:
            raise _ServerBroken(f"the fork server does not take requests: {exc}") from None
        msg = self.read(time.monotonic() + SERVER_REPLY_S)
        if not msg or "pid" not in msg or "exit" in msg:
            raise _ServerBroken(f"the fork server did not fork: {msg!r}")
        return _ServerHandle(self, int(msg["pid"]))

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        _kill_group(self.proc.pid)
        try:
            self.proc.wait(REAP_WAIT_S)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


_SERVER_LOCK = threading.Lock()
_SERVER: _ForkServer | None = None


# Environment variables that torch, its thread pools, the allocator or Python itself may
# read once, when the fork server imports torch: a change to one starts a new server.
# Every other variable reaches the trial child anyway (each request carries the environment).
_IMPORT_TIME_ENV = ("PYTORCH", "TORCH", "OMP_", "KMP_", "GOMP_", "MKL_", "OPENBLAS_", "VECLIB_",
                    "CUDA", "NVIDIA_", "HIP_", "ROCR_", "HSA_", "MPS_", "METAL_", "PYTHON",
                    "LD_", "DYLD_", "MALLOC")


def _server_key(python: str) -> str:
    """A fork server serves one interpreter and one set of import-time environment variables."""
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(_IMPORT_TIME_ENV))
    return hashlib.sha256(f"{python}\0{json.dumps(env)}".encode()).hexdigest()


def _get_server(python: str) -> _ForkServer:
    global _SERVER
    key = _server_key(python)
    if _SERVER is not None and (_SERVER.key != key or not _SERVER.alive()):
        _SERVER.close()
        _SERVER = None
    if _SERVER is None:
        _SERVER = _ForkServer(python, key)
    return _SERVER


def _drop_server() -> None:
    global _SERVER
    server, _SERVER = _SERVER, None
    if server is not None:
        server.close()


def shutdown_server() -> None:
    """Stop the fork server now (it also stops by itself at exit and after 5 minutes idle)."""
    with _SERVER_LOCK:
        _drop_server()


atexit.register(shutdown_server)


class _ForkServerRunner:
    """Trials forked from the shared fork server; holds the server lock while it runs."""

    mode = "forkserver"

    def __init__(self, python: str) -> None:
        self.python = python
        self.current: _ServerHandle | None = None
        _SERVER_LOCK.acquire()
        try:
            self.server = _get_server(python)
        except BaseException:
            _SERVER_LOCK.release()
            raise

    def run(self, req: dict[str, Any], timeout_s: float) -> _Exit:
        started = time.monotonic()
        try:
            self.current = self.server.start(req)
        except _ServerBroken:
            if self.server.alive():
                raise
            _drop_server()  # it had gone (idle exit, killed): one fresh start
            self.server = _get_server(self.python)
            started = time.monotonic()
            self.current = self.server.start(req)
        exit_ = _supervise(self.current, started, timeout_s, req["stacks"])
        self.current = None  # kept on an exception, for abort()
        return exit_

    def abort(self) -> None:
        handle, self.current = self.current, None
        if handle is not None:
            _kill_group(handle.pid)
        _drop_server()

    def release(self) -> None:
        _SERVER_LOCK.release()


# --------------------------------------------------------------------------- files and rows

_TEMP_PREFIX = "mpslab-"  # + owner pid + "-trials-..." (a folder) or "-forkserver-....log"


def _remove_stale_temp() -> None:
    """Remove the temporary folders and logs of mpslab processes that no longer exist.

    A parent killed with ``kill -9`` cannot clean up after itself; the next
    ``run_trials`` does, for the current user's entries whose owner pid is gone.
    """
    tmp = tempfile.gettempdir()
    try:
        names = os.listdir(tmp)
    except OSError:
        return
    for name in names:
        if not name.startswith(_TEMP_PREFIX):
            continue
        pid_text, _, rest = name[len(_TEMP_PREFIX):].partition("-")
        if not pid_text.isdigit() or not rest.startswith(("trials-", "forkserver-")):
            continue
        path = os.path.join(tmp, name)
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
            os.kill(int(pid_text), 0)
            continue  # its owner is alive
        except ProcessLookupError:
            pass
        except OSError:  # not ours to judge (permissions), or gone meanwhile
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass



def _read_end(path: str, limit: int = 256 * 1024) -> str:
    """The last ``limit`` bytes of a file as text, '' if there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            data = fh.read()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``, each cut to ``STDERR_LINE_CHARS``."""
    return "\n".join(ln[:STDERR_LINE_CHARS] for ln in text.splitlines()[-lines:])


def _last_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return ""


# What a diagnosis line in a crashed child's stderr contains, most telling first: a failed
# assertion (Metal's "failed assertion `...'"), then Python's fatal-signal report, then the rest.
_NOTABLE = (("assert",), ("fatal",), ("error", "exception", "abort", "killed", "terminat"))


def _notable_line(text: str) -> str | None:
    """The last stderr line of the most telling kind (an assertion, a fatal error, ...)."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("File \"", "Extension modules:"))]
    for words in _NOTABLE:
        for line in reversed(lines):
            if any(word in line.lower() for word in words):
                return line[:300]
    return None


def _read_stacks(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(HANG_STACKS_CHARS + 1)
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if len(text) > HANG_STACKS_CHARS:
        text = text[:HANG_STACKS_CHARS] + "\n[... cut]"
    return text


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def _read_result(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


@dataclass
class _Plan:
    """Everything a batch needs, checked before any trial runs."""

    config: dict[str, Any]  # StressConfig.to_dict(), normalised (device resolved)
    env: dict[str, Any]  # the trial interpreter's environment block (time: when planned)
    template: dict[str, Any]  # to_row() columns of a trial without result
    python: str
    mode: str
    timeout_s: float
    batch: str


def _trial_row(plan: _Plan, k: int, exit_: _Exit, payload: dict[str, Any] | None, stderr_tail: str,
               diag: str | None, hang_stacks: str, started_at: str) -> dict[str, Any]:
    child_row = payload.get("row") if payload else None
    result_outcome = child_row.get("outcome") if isinstance(child_row, dict) else None
    outcome = classify(exit_.code, exit_.timed_out, result_outcome)
    if isinstance(child_row, dict):
        row = dict(child_row)
    else:
        row = dict(plan.template)
        row["env_time"] = started_at
    code = exit_.code
    sig = -code if code is not None and code < 0 else None
    if outcome == "hang":
        what = (f"no exit within {plan.timeout_s:g} s"
                + (" (its result was written: it hung on the way out)" if child_row else "")
                + "; stacks dumped, then killed")
        row["first_error"] = what
    elif outcome == "crash":
        how = f"killed by {_signal_name(sig)} (signal {sig})" if sig is not None else f"exit code {code}"
        how += " after writing its result" if child_row else " without a result"
        row["first_error"] = how + (f"; stderr: {diag}" if diag else "")
    row.update({
        "trial": k,
        "outcome": outcome,
        "exit_code": code if code is not None and code >= 0 else None,
        "signal": _signal_name(sig) if sig is not None else None,
        "signal_number": sig,
        "wall_s": exit_.wall_s,
        "stderr_tail": stderr_tail,
        "hang_stacks": hang_stacks if outcome == "hang" else "",
        "launch": plan.mode,
    })
    return row


def _run_one(runner: Any, plan: _Plan, k: int, workdir: str) -> dict[str, Any]:
    """One trial: start, supervise, read what the child left, classify; returns its record."""
    base = os.path.join(workdir, f"trial-{k}")
    req = {
        "config": plan.config,
        "trial": k,
        "result": base + ".json",
        "stderr": base + ".stderr",
        "stacks": base + ".stacks",
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "parent": os.getpid(),
    }
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    exit_ = runner.run(req, plan.timeout_s)
    payload = _read_result(req["result"])
    stderr = _read_end(req["stderr"])
    row = _trial_row(plan, k, exit_, payload, _tail(stderr), _notable_line(stderr),
                     _read_stacks(req["stacks"]) if exit_.timed_out else "", started_at)
    for suffix in (".json", ".stderr", ".stacks"):
        try:
            os.unlink(base + suffix)
        except OSError:
            pass
    return _records.make_record(row, batch=plan.batch, config=plan.config)


# --------------------------------------------------------------------------- checks and the plan


def _check_inputs(trials: Any, timeout_s: Any, python: Any, mode: Any, batch: Any) -> tuple[str, str]:
    """Refuse bad input with one ``ConfigError`` line; returns (interpreter path, concrete mode)."""
    if os.name != "posix":
        raise ConfigError("run_trials: isolated trials need a POSIX system (Linux or macOS)")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials={trials!r}: must be an integer >= 1")
    if (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
            or not math.isfinite(timeout_s) or timeout_s <= 0):
        raise ConfigError(f"timeout_s={timeout_s!r}: must be a number of seconds > 0")
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r}: must be one of {', '.join(MODES)}")
    if mode == "forkserver" and not sys.platform.startswith("linux"):
        raise ConfigError(f"mode='forkserver': Linux only (forking after Metal/ObjC start is unsafe on "
                          f"{sys.platform}); use 'spawn' or 'auto'")
    if batch is not None and (not isinstance(batch, str) or not batch):
        raise ConfigError(f"batch={batch!r}: must be None or a non-empty string")
    if python is None:
        path = sys.executable
    else:
        if not isinstance(python, (str, os.PathLike)) or not os.fspath(python):
            raise ConfigError(f"python={python!r}: must be the path of a Python interpreter")
        text = os.fspath(python)
        found = text if os.sep in text else shutil.which(text)
        if not found or not os.path.isfile(found):
            raise ConfigError(f"python={text!r}: no such file")
        if not os.access(found, os.X_OK):
            raise ConfigError(f"python={text!r}: not executable")
        path = os.path.abspath(found)
    return path, default_mode() if mode == "auto" else mode


def _make_runner(mode: str, python: str) -> Any:
    return _ForkServerRunner(python) if mode == "forkserver" else _SpawnRunner(python)


def _probe(runner: Any, config: dict[str, Any], python: str, workdir: str) -> dict[str, Any]:
    """Validate ``config`` under the trial interpreter and fetch its environment block."""
    base = os.path.join(workdir, "probe")
    req = {"probe": True, "config": config, "result": base + ".json", "stderr": base + ".stderr",
           "stacks": base + ".stacks", "cwd": os.getcwd(), "env": dict(os.environ), "parent": os.getpid()}
    exit_ = runner.run(req, PROBE_TIMEOUT_S)
    payload = _read_result(req["result"])
    if exit_.code != 0 or not payload or "template" not in payload:
        why = _last_line(_read_end(req["stderr"])) or (
            f"no answer within {PROBE_TIMEOUT_S:g} s" if exit_.timed_out else f"exit code {exit_.code}")
        raise ConfigError(f"python={python!r}: the trial interpreter refused the config: {why}")
    return payload


def _plan(config: Any, python: str, mode: str, timeout_s: float, batch: str | None,
          runner: Any, workdir: str) -> _Plan:
    same = python == os.path.abspath(sys.executable)
    if same:
        cfg = config if isinstance(config, StressConfig) else StressConfig.from_dict(dict(config))
        env = _environment_block(cfg.device)
        cfg_dict, template = cfg.to_dict(), _blank_row(cfg, env)
    else:
        raw = config.to_dict() if isinstance(config, StressConfig) else dict(config)
        answer = _probe(runner, raw, python, workdir)
        cfg_dict, env, template = answer["config"], answer["environment"], answer["template"]
    key = _records.batch_key(
        config=cfg_dict, timeout_s=float(timeout_s), python=python,
        environment={k: v for k, v in env.items() if k != "time"}, label=batch,
    )
    return _Plan(cfg_dict, env, template, python, mode, float(timeout_s), key)


# --------------------------------------------------------------------------- the public call


def run_trials(
    config: StressConfig | dict[str, Any],
    trials: int = 20,
    timeout_s: float = 60.0,
    python: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    *,
    mode: str = "auto",
    batch: str | None = None,
    progress: bool | None = None,
    client: Any = None,
):
    """Run ``config`` ``trials`` times, each in its own child process; one DataFrame row per trial.

    config     a ``StressConfig`` (or its ``to_dict()``, validated by the trial interpreter)
    trials     number of trials (>= 1), numbered 0 .. trials-1
    timeout_s  seconds from a child's start to its exit; past it the trial is a ``hang``
    python     interpreter for the children (default: this one); e.g. another venv's torch build
    store      a JSON-lines file: each trial is appended as it ends, and trials of the
               same batch already there are not run again (resume)
    mode       ``auto`` (forkserver on Linux, else spawn), ``spawn`` or ``forkserver``
    batch      a label that starts a new batch of an otherwise identical run in the same store
    progress   a tqdm bar; ``None``: only for more than 5 trials to run
    client     a ``distributed.Client`` or a ``concurrent.futures.Executor``: the trials run
               on its workers, each still in its own child process (``executors.run_fleet``)

    Several processes may share one ``store``: each trial number is claimed
    before it runs, so none runs twice and each call returns the whole batch.

    Columns: ``trial``, ``outcome`` (ok | error | mismatch | crash | hang),
    ``exit_code``, ``signal``, ``signal_number``, ``seconds``, ``wall_s``,
    ``ops_per_s``, ``error_count``, ``mismatch_count``, ``latency_*_ms``,
    ``first_error``, every other ``StressResult.to_row()`` column (config fields,
    ``env_*``), ``stderr_tail``, ``hang_stacks``, ``launch`` (the mode used), ``batch``, ``env_id``.
    Measurements are NaN for a trial that left no result. ``df.attrs`` holds
    ``batch`` (the batch key), ``resumed`` (trials read back from the store) and
    ``ran`` (trials run by this call). Bad input raises one
    ``ConfigError`` (a ``ValueError``) line before any trial runs.
    """
    if client is not None:
        if python is not None:
            raise ConfigError("python=: not with client= (each worker runs its trials under its own interpreter)")
        from mpslab.trials.executors import run_fleet

        return run_fleet(config, trials, timeout_s, store, client, mode=mode, batch=batch, progress=progress)
    if not isinstance(config, (StressConfig, dict)):
        raise ConfigError(f"config: must be a StressConfig or a dict, got {type(config).__name__}")
    python_path, concrete = _check_inputs(trials, timeout_s, python, mode, batch)
    trial_store = _records.TrialStore(store) if store is not None else None

    _remove_stale_temp()
    workdir = tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-trials-")
    runner = None
    bar = None
    try:
        try:
            runner = _make_runner(concrete, python_path)
        except _ServerBroken as exc:
            raise ConfigError(f"python={python_path!r}: {exc}") from None
        plan = _plan(config, python_path, concrete, timeout_s, batch, runner, workdir)
        from mpslab.trials.executors import drive_batch

        known = trial_store.finished(plan.batch) if trial_store is not None else {}
        todo_n = trials - len([k for k in known if k < trials])
        show = progress if progress is not None else todo_n > 5
        if show and todo_n:
            from mpslab.run.progress import progress_bar

            bar = progress_bar(trials, initial=trials - todo_n, desc=f"trials {plan.config['workload']}",
                               unit="trial", enabled=True)
        counts: dict[str, int] = {}

        def submit(k: int) -> Any:  # here, one at a time: a future already done
            fut: Any = concurrent.futures.Future()
            rec = _run_one(runner, plan, k, workdir)
            rec["result"]["worker"] = "local"
            fut.set_result(rec)
            return fut

        def on_record(rec: dict[str, Any]) -> None:
            outcome = rec["result"]["outcome"]
            counts[outcome] = counts.get(outcome, 0) + 1
            if bar is not None:
                bar.set_postfix({o: counts[o] for o in OUTCOMES if o in counts}, refresh=False)
                bar.update(1)

        records, ran = drive_batch(submit, trials=trials, batch=plan.batch, config=plan.config,
                                   store=trial_store, capacity=1, on_record=on_record)
    except BaseException:
        if runner is not None:
            _without_sigint(runner.abort)
        raise
    finally:
        if bar is not None:
            bar.close()
        if runner is not None:
            runner.release()
        shutil.rmtree(workdir, ignore_errors=True)
    df = _records.records_frame(records[k] for k in sorted(records))
    df.attrs.update(batch=plan.batch, resumed=len(records) - ran, ran=ran)
    return df


def _without_sigint(fn: Callable[[], None]) -> None:
    """Run clean-up with Ctrl-C held back (main thread only), so a second Ctrl-C cannot cut it short."""
    if threading.current_thread() is not threading.main_thread():
        fn()
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        fn()
    finally:
        signal.signal(signal.SIGINT, previous)
