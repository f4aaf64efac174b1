"""The fork server: one long-lived process per interpreter that forks trial children.

It imports torch and mpslab once, initialises no device and runs no tensor op, then
forks one child per request (``serve``, its loop, runs in the server process). The
parent side (``_ForkServer``) starts and talks to it; one server per interpreter and
set of import-time environment variables is kept alive side by side, so trials under
two interpreters can be interleaved without restarts. Not here: supervising a child
(``supervise``) or the batch (``isolate``).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Any

from mpslab.trials.child import EXIT_HARNESS, forked_child_main
from mpslab.trials.outcomes import last_line, read_end
from mpslab.trials.supervise import (
    BOOT,
    REAP_WAIT_S,
    TEMP_PREFIX,
    ChildHandle,
    ServerBroken,
    TrialRunner,
    kill_group,
)

SERVER_START_S = 180.0  # fork server: interpreter start-up and imports

SERVER_REPLY_S = 30.0  # fork server: time to fork and answer with the child's pid

SERVER_IDLE_S = 300.0  # fork server: exits after this long without a request


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
        view = view[os.write(fd, view) :]


def serve() -> int:
    """The fork server's loop: one request line in, one forked child, its pid and exit status out.

    Runs no tensor op and initialises no device, so every forked child starts
    from a process that has only imported torch and mpslab. Exits when its
    stdin closes (the parent has gone: the running child is killed first) or
    after ``SERVER_IDLE_S`` without a request.
    """
    import platform

    from mpslab.run.environment import git_commit
    from mpslab.run.workloads import list_workloads

    list_workloads()  # torch first (an interpreter without it is refused naming it), and every built-in workload
    import mpslab.run.runner  # noqa: F401  (what every child runs: imported once here rather than in each child)

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
            code = EXIT_HARNESS
            try:
                code = forked_child_main(req, server_pid)
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
                    kill_group(pid)
                    os.waitpid(pid, 0)
                    return None
                reader.buf += chunk
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
    finally:
        if pidfd is not None:
            os.close(pidfd)


class _ServerHandle(ChildHandle):
    def __init__(self, server: _ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid

    def wait(self, timeout: float) -> int | None:
        msg = self.server.read(time.monotonic() + max(timeout, 0.0))
        if msg is None:
            return None
        if msg.get("pid") != self.pid or "exit" not in msg:
            raise ServerBroken(f"fork server: unexpected message {msg!r}")
        return int(msg["exit"])


class _ForkServer:
    """The long-lived process that forks trial children (see ``serve``)."""

    def __init__(self, python: str, key: str) -> None:
        self.python = python
        self.key = key
        fd, self.log_path = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-forkserver-", suffix=".log")
        try:
            self.proc = subprocess.Popen(
                [python, BOOT, "server"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=fd,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(fd)
        self.reader = _LineReader(self.proc.stdout.fileno())  # type: ignore[union-attr]
        try:
            msg = self.read(time.monotonic() + SERVER_START_S)
        except ServerBroken:
            msg = None
        except BaseException:  # Ctrl-C while it starts: take it down too
            self.close()
            raise
        if not msg or not msg.get("ready"):
            tail = last_line(read_end(self.log_path)) or "no output"
            self.close()
            raise ServerBroken(f"the fork server under {python} did not start: {tail}")
        self.pid = int(msg["pid"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def read(self, deadline: float) -> dict[str, Any] | None:
        line = self.reader.readline(deadline)
        if line is None:
            return None
        if line == b"":
            raise ServerBroken(f"the fork server exited ({last_line(read_end(self.log_path)) or 'no output'})")
        return json.loads(line)

    def start(self, req: dict[str, Any]) -> _ServerHandle:
        try:
            _send(self.proc.stdin.fileno(), req)  # type: ignore[union-attr]
        except (BrokenPipeError, OSError) as exc:
            raise ServerBroken(f"the fork server does not take requests: {exc}") from None
        msg = self.read(time.monotonic() + SERVER_REPLY_S)
        if not msg or "pid" not in msg or "exit" in msg:
            raise ServerBroken(f"the fork server did not fork: {msg!r}")
        return _ServerHandle(self, int(msg["pid"]))

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        kill_group(self.proc.pid)
        try:
            self.proc.wait(REAP_WAIT_S)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


# Environment variables that torch, its thread pools, the allocator or Python itself may
# read once, when the fork server imports torch: a change to one starts a new server.
# Every other variable reaches the trial child anyway (each request carries the environment).


_IMPORT_TIME_ENV = (
    "PYTORCH",
    "TORCH",
    "OMP_",
    "KMP_",
    "GOMP_",
    "MKL_",
    "OPENBLAS_",
    "VECLIB_",
    "CUDA",
    "NVIDIA_",
    "HIP_",
    "ROCR_",
    "HSA_",
    "MPS_",
    "METAL_",
    "PYTHON",
    "LD_",
    "DYLD_",
    "MALLOC",
)


def _server_key(python: str) -> str:
    """A fork server serves one interpreter and one set of import-time environment variables."""
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(_IMPORT_TIME_ENV))
    return hashlib.sha256(f"{python}\0{json.dumps(env)}".encode()).hexdigest()


# One server per key, alive side by side; each key has its own lock, held by the batch using it.
_REGISTRY_LOCK = threading.Lock()
_SERVERS: dict[str, _ForkServer] = {}
_KEY_LOCKS: dict[str, threading.Lock] = {}


def _key_lock(key: str) -> threading.Lock:
    with _REGISTRY_LOCK:
        return _KEY_LOCKS.setdefault(key, threading.Lock())


def _get_server(python: str, key: str) -> _ForkServer:
    """The live server for ``key`` (caller holds its key lock), started if there is none."""
    with _REGISTRY_LOCK:
        server = _SERVERS.get(key)
        if server is not None and not server.alive():
            del _SERVERS[key]
            server.close()
            server = None
    if server is None:
        server = _ForkServer(python, key)
        with _REGISTRY_LOCK:
            _SERVERS[key] = server
    return server


def _drop_server(key: str) -> None:
    with _REGISTRY_LOCK:
        server = _SERVERS.pop(key, None)
    if server is not None:
        server.close()


def running_servers() -> dict[str, int]:
    """Interpreter path -> pid of each fork server now alive (one per interpreter and import-time env)."""
    with _REGISTRY_LOCK:
        return {s.python: s.pid for s in _SERVERS.values() if s.alive()}


def shutdown_server() -> None:
    """Stop every fork server now (each also stops by itself at exit and after 5 minutes idle).

    Waits for a batch that is using a server to finish with it first.
    """
    with _REGISTRY_LOCK:
        keys = list(_SERVERS)
    for key in keys:
        with _key_lock(key):
            _drop_server(key)


atexit.register(shutdown_server)


class ForkServerRunner(TrialRunner):
    """Trials forked from this interpreter's fork server; holds that server's lock while it runs."""

    mode = "forkserver"

    def __init__(self, python: str) -> None:
        super().__init__(python)
        self.key = _server_key(python)
        self.lock = _key_lock(self.key)
        self.lock.acquire()
        try:
            self.server = _get_server(python, self.key)
        except BaseException:
            self.lock.release()
            raise

    def start(self, req: dict[str, Any]) -> tuple[ChildHandle, float]:
        started = time.monotonic()
        try:
            return self.server.start(req), started
        except ServerBroken:
            if self.server.alive():
                raise
        _drop_server(self.key)  # it had gone (idle exit, killed): one fresh start
        self.server = _get_server(self.python, self.key)
        started = time.monotonic()
        return self.server.start(req), started

    def after_abort(self, handle: ChildHandle | None) -> None:
        _drop_server(self.key)

    def release(self) -> None:
        self.lock.release()
