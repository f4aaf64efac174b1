"""Outcome classes of a trial, and reading what a finished child left behind.

``classify`` turns an exit (code, timeout, the outcome the child wrote) into an ``Outcome`` (the
one list of how a trial can end, in ``mpslab.run.outcome``, re-exported here); the helpers read a
child's stderr tail, its most telling diagnosis line, its hang stacks and its result file. Not here: starting or
supervising children (``supervise``, ``forkserver``), or turning an exit into a record
(``plan``).
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from mpslab.run.outcome import FAILURES, OUTCOMES, Outcome

__all__ = [
    "Outcome",
    "FAILURES",
    "OUTCOMES",
    "classify",
    "read_end",
    "tail_lines",
    "last_line",
    "notable_line",
    "read_stacks",
    "signal_name",
    "read_result",
]

STDERR_TAIL_LINES = 40

STDERR_LINE_CHARS = 400

HANG_STACKS_CHARS = 32_000


def classify(exit_code: int | None, timed_out: bool, result_outcome: str | None) -> Outcome:
    """The outcome class of one trial.

    ``exit_code`` follows ``subprocess``: negative for death by a signal.
    ``result_outcome`` is the outcome the child wrote (``ok``, ``error``,
    ``mismatch``), or ``None`` when it wrote none.
    """
    if timed_out:
        return Outcome.HANG
    if exit_code != 0 or result_outcome not in (Outcome.OK, Outcome.ERROR, Outcome.MISMATCH):
        return Outcome.CRASH
    return Outcome(result_outcome)


def read_end(path: str, limit: int = 256 * 1024) -> str:
    """The last ``limit`` bytes of a file as text, '' if there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            data = fh.read()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")


def tail_lines(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``, each cut to ``STDERR_LINE_CHARS``."""
    return "\n".join(ln[:STDERR_LINE_CHARS] for ln in text.splitlines()[-lines:])


def last_line(text: str) -> str:
    """The last non-blank line of ``text``, stripped ('' if none): a refusal's one-line reason."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return ""


# What a diagnosis line in a crashed child's stderr contains, most telling first: a failed
# assertion (Metal's "failed assertion `...'"), then Python's fatal-signal report, then the rest.
_NOTABLE = (("assert",), ("fatal",), ("error", "exception", "abort", "killed", "terminat"))


def notable_line(text: str) -> str | None:
    """The last stderr line of the most telling kind (an assertion, a fatal error, ...)."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(('File "', "Extension modules:"))]
    for words in _NOTABLE:
        for line in reversed(lines):
            if any(word in line.lower() for word in words):
                return line[:300]
    return None


def read_stacks(path: str) -> str:
    """The hang stacks ``faulthandler`` wrote to ``path``, cut to ``HANG_STACKS_CHARS`` ('' if none)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(HANG_STACKS_CHARS + 1)
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if len(text) > HANG_STACKS_CHARS:
        text = text[:HANG_STACKS_CHARS] + "\n[... cut]"
    return text


def signal_name(number: int) -> str:
    """``SIGSEGV`` for 11; ``SIG<n>`` for a number this platform has no name for."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def read_result(path: str) -> dict[str, Any] | None:
    """The JSON object a child wrote to ``path``, or ``None`` when it wrote none (or a torn one)."""
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None
