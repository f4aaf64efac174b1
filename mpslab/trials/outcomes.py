"""Outcome classes of a trial, and reading what a finished child left behind.

``Outcome`` is the one list of how a trial can end; ``classify`` turns an exit (code,
timeout, the outcome the child wrote) into one of them; the helpers read a child's stderr tail, its most
telling diagnosis line, its hang stacks and its result file. Not here: starting or
supervising children (``supervise``, ``forkserver``), or turning an exit into a record
(``plan``).
"""

from __future__ import annotations

import json
import os
import signal
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    """How one trial ended. A ``str`` subclass (Python 3.10 has no ``StrEnum``), so a member
    equals, hashes and formats as its value: ``Outcome.CRASH == "crash"``, a pandas column of
    plain strings compares with members, and records stay plain JSON."""

    OK = "ok"  # the child wrote its result: every step ran and agreed with the serial replay
    ERROR = "error"  # a step raised
    MISMATCH = "mismatch"  # every step ran, but some output differs from the serial replay
    CRASH = "crash"  # the child died by a signal or exited without a clean result
    HANG = "hang"  # no exit within the timeout
    LOST = "lost"  # the worker running it died and would not be replaced: no evidence either way

    __str__ = str.__str__
    __format__ = str.__format__

    def __hash__(self) -> int:
        return str.__hash__(self)

    @property
    def is_failure(self) -> bool:
        """A failure of the code under test (``lost`` is not: it says nothing of that code)."""
        return self in _FAILURES

    @property
    def is_evidence(self) -> bool:
        """The trial ran to an outcome of the code under test (everything but ``lost``)."""
        return self is not Outcome.LOST

    @classmethod
    def parse(cls, value: Any) -> Outcome:
        """``value`` as an ``Outcome``, or a ``ValueError`` naming the allowed values."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"outcome={value!r}: must be one of {', '.join(o.value for o in cls)}") from None


_FAILURES = frozenset({Outcome.ERROR, Outcome.MISMATCH, Outcome.CRASH, Outcome.HANG})

# Derived views of ``Outcome``, in its order: the failures, and the five ends a child can reach.
FAILURES: tuple[Outcome, ...] = tuple(o for o in Outcome if o.is_failure)
OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome if o.is_evidence)

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
