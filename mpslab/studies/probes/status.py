"""What a coverage row can say: the statuses, the evidence collected, the evidence needed.

What it is: the five statuses and their meaning, ``Evidence`` (what was seen around one run of a
probe), ``Need`` (what evidence makes a row ``covered`` on one backend) and ``ProbeFailure``.
What it is not: how evidence is collected (``evidence``) or how a status is decided (``runner``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COVERED",
    "EXERCISED",
    "NOT_APPLICABLE",
    "NOT_RUN",
    "FAILED",
    "STATUSES",
    "STATUS_MEANING",
    "BACKEND_KINDS",
    "Evidence",
    "Need",
    "ProbeFailure",
]

COVERED = "covered"
EXERCISED = "exercised"
NOT_APPLICABLE = "not applicable"
NOT_RUN = "not run"
FAILED = "failed"
STATUSES = (COVERED, EXERCISED, NOT_APPLICABLE, NOT_RUN, FAILED)
STATUS_MEANING = {
    COVERED: "ran alone and from T threads at once, results right, and the evidence this backend "
    "can give was collected in this run",
    EXERCISED: "ran alone and from T threads at once, results right, but no evidence is available on "
    "this backend (or the evidence named was not seen; the evidence column says which)",
    NOT_APPLICABLE: "the concept does not exist on this backend; nothing was run",
    NOT_RUN: "the backend is not present on this machine (or was not asked for); nothing was run",
    FAILED: "the probe raised, hung or produced a wrong result (the error column has the traceback)",
}
BACKEND_KINDS = ("cpu", "cuda", "mps")


class ProbeFailure(AssertionError):
    """A probe's result was wrong (raised by the probe; the row becomes ``failed``)."""


@dataclass
class Evidence:
    """What was collected around one run of a probe (one mode)."""

    calls: dict[str, list[Any]] = field(default_factory=dict)  # name -> [count, set of thread ids]
    stats: dict[str, int] = field(default_factory=dict)  # counter increases
    facts: list[str] = field(default_factory=list)  # the probe's own observations
    notes: list[str] = field(default_factory=list)  # e.g. profiler unavailable

    def merge(self, other: Evidence) -> Evidence:
        out = Evidence(
            {k: [v[0], set(v[1])] for k, v in self.calls.items()}, dict(self.stats), list(self.facts), list(self.notes)
        )
        for k, (n, threads) in other.calls.items():
            cur = out.calls.setdefault(k, [0, set()])
            cur[0] += n
            cur[1] |= threads
        for k, v in other.stats.items():
            out.stats[k] = out.stats.get(k, 0) + v
        out.facts += [f for f in other.facts if f not in out.facts]
        out.notes += [n for n in other.notes if n not in out.notes]
        return out


@dataclass(frozen=True)
class Need:
    """The evidence that makes a row ``covered`` on one backend.

    calls  groups of names; from each group at least one must be recorded by torch.profiler
    stats  (counter, minimum increase) pairs
    facts  the probe itself must report at least one observation
    """

    calls: tuple[tuple[str, ...], ...] = ()
    stats: tuple[tuple[str, int], ...] = ()
    facts: bool = False

    def missing(self, ev: Evidence) -> list[str]:
        out = []
        for group in self.calls:
            if not any(name in ev.calls for name in group):
                out.append(" or ".join(group) + " not recorded")
        for key, minimum in self.stats:
            if ev.stats.get(key, 0) < minimum:
                out.append(f"{key} rose by {ev.stats.get(key, 0)} (needed >= {minimum})")
        if self.facts and not ev.facts:
            out.append("the probe observed nothing that shows the path")
        return out

    def names(self) -> set[str]:
        return {n for group in self.calls for n in group}

    def describe(self) -> str:
        parts = [" or ".join(g) for g in self.calls]
        parts += [f"{k} +{m}" for k, m in self.stats]
        if self.facts:
            parts.append("the probe's own observation")
        return "; ".join(parts)
