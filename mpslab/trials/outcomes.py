"""Outcome classes of a trial, and reading what a finished child left behind.

``classify`` turns an exit (code, timeout, the outcome the child wrote) into one of
``ok | error | mismatch | crash | hang``; the helpers read a child's stderr tail, its most
telling diagnosis line, its hang stacks and its result file. Not here: starting or
supervising children (``supervise``, ``forkserver``), or turning an exit into a record
(``plan``).
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

OUTCOMES = ("ok", "error", "mismatch", "crash", "hang")

STDERR_TAIL_LINES = 40

STDERR_LINE_CHARS = 400

HANG_STACKS_CHARS = 32_000


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
    lines = [ln for ln in lines if ln and not ln.startswith(('File "', "Extension modules:"))]
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
