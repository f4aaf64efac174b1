"""``Outcome``: the one list of how a run or a trial can end, and the views derived from it.

It lives on the lowest floor because an in-process run (``StressResult.outcome``: ok, error,
mismatch) and an isolated trial (plus crash, hang, lost) end in members of the same list.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = ["Outcome", "FAILURES", "OUTCOMES"]


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

    # Printed as the string it is, also inside a container or with ``!r`` (``{'crash': 3}``,
    # ``outcome 'crash'``): what a user reads in a summary, a report or a shrink log.
    __str__ = str.__str__
    __format__ = str.__format__
    __repr__ = str.__repr__

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
