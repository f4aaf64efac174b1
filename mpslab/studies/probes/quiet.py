"""Kineto's start/stop chatter, filtered out of stderr at its source; everything else kept.

What it is: ``kineto_quiet()``, a context manager the evidence collector wraps around each
``torch.profiler`` start and stop. The torch build's libkineto writes ``USDT: ...
SyncActivityProfilerHandler.cpp ...] profiler_start`` / ``profiler_stop`` (and ``STAGE:``)
lines straight to file descriptor 2 at every start and stop; in an executed notebook they
become red stderr blocks. ``KINETO_LOG_LEVEL`` can hide them only if set before kineto's first
start in the process, and only by raising the level past kineto's own ERROR messages too, so
instead fd 2 is pointed at a temporary file for the start (or stop) call, and afterwards every
line that is not one of those two kinds is written back to the real fd 2: kineto's warnings
and errors, and anything another thread wrote meanwhile, still reach the reader.

What it is not: a general stderr capture (the window is one profiler start or stop call) nor
a filter for Python warnings (those go through ``warnings`` and are left alone).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

__all__ = ["KINETO_NOISE", "kineto_quiet"]

# libkineto's own log format: "<TYPE>:<date> <time> <pid>:<tid> <file>:<line>] <message>"
KINETO_NOISE = re.compile(rb"^(?:USDT|STAGE):\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+:\d+ [\w.]+:\d+\] ")

_LOCK = threading.Lock()  # fd 2 is process-wide: one window at a time


@contextlib.contextmanager
def kineto_quiet() -> Iterator[None]:
    """Drop kineto's USDT/STAGE lines written to fd 2 inside the block; write the rest back."""
    with _LOCK:
        try:
            sys.stderr.flush()
        except Exception:  # a closed or replaced sys.stderr: nothing buffered to keep in order
            pass
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all: nothing can reach the reader anyway
            yield
            return
        try:
            with tempfile.TemporaryFile() as tmp:
                os.dup2(tmp.fileno(), 2)
                try:
                    yield
                finally:
                    os.dup2(saved, 2)
                    tmp.seek(0)
                    kept = b"".join(
                        line for line in tmp.read().splitlines(keepends=True) if not KINETO_NOISE.match(line)
                    )
                    if kept:
                        os.write(2, kept)
        finally:
            os.close(saved)
