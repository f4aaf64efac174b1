"""What an edge case is and what it may be expected to do on a backend.

What it is: the edge statuses, ``Expect`` (raises an exception type with a message fragment,
completes with the right result, or is not applicable, with the reason) and its three
constructors, ``EdgeCase`` (name, group, what it does, its action, an expectation per backend
kind), ``CaseContext`` (what an action sees), ``Attempt`` (what one run did) and the two
exceptions an action raises for a wrong result or a child that died.

What it is not: the cases (``cases``, ``process``, ``harness``), the list of them
(``catalogue``) or the code that runs them (``runner``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from mpslab.run.backends import Backend, get_backend

__all__ = [
    "PASS",
    "FAIL",
    "NOT_APPLICABLE",
    "NOT_RUN",
    "EDGE_STATUSES",
    "Attempt",
    "CaseContext",
    "ChildCrashed",
    "EdgeCase",
    "Expect",
    "WrongResult",
    "completes",
    "not_applicable",
    "raises",
]

PASS = "pass"
FAIL = "fail"
NOT_APPLICABLE = "not applicable"
NOT_RUN = "not run"
EDGE_STATUSES = (PASS, FAIL, NOT_APPLICABLE, NOT_RUN)


class WrongResult(AssertionError):
    """A case completed but its result was wrong."""


class ChildCrashed(Exception):
    """A child process died, hung or exited with an unexpected code."""


@dataclass(frozen=True)
class Expect:
    """The expected outcome of a case on one backend."""

    outcome: str  # raises | completes | not applicable
    exception: type[BaseException] | tuple[type[BaseException], ...] | None = None  # any of these
    fragment: str = ""  # case-insensitive part of the message
    note: str = ""  # what this expectation means / why the backend differs

    def describe(self) -> str:
        if self.outcome == "raises":
            kinds = self.exception if isinstance(self.exception, tuple) else (self.exception,)
            text = "raises " + " or ".join(k.__name__ for k in kinds)  # type: ignore[union-attr]
            return text + (f" matching {self.fragment!r}" if self.fragment else "")
        if self.outcome == "completes":
            return "completes with the right result" + (f" ({self.note})" if self.note else "")
        return f"not applicable: {self.note}"

    def met_by(self, attempt: Attempt) -> bool:
        if self.outcome == "completes":
            return attempt.kind == "completed"
        if self.outcome == "raises":
            return (
                attempt.kind == "raised"
                and isinstance(attempt.exc, self.exception)  # type: ignore[arg-type]
                and self.fragment.lower() in str(attempt.exc).lower()
            )
        return False


def raises(
    exception: type[BaseException] | tuple[type[BaseException], ...], fragment: str = "", note: str = ""
) -> Expect:
    return Expect("raises", exception, fragment, note)


def completes(note: str = "") -> Expect:
    return Expect("completes", note=note)


def not_applicable(reason: str) -> Expect:
    return Expect("not applicable", note=reason)


@dataclass
class CaseContext:
    backend: Backend
    threads: int = 4
    size: int = 64
    timeout: float = 120.0
    # the catalogue's runner, handed in by it: a case that checks the runner's own refusals calls it
    # through here, so the catalogue never imports the module that imports the catalogue
    run_edges: Callable[..., object] | None = None

    @property
    def device(self) -> torch.device:
        return self.backend.device

    @property
    def kind(self) -> str:
        return self.backend.kind


ExpectSpec = Expect | Callable[[Backend], Expect]


@dataclass(frozen=True)
class EdgeCase:
    name: str
    group: str
    does: str
    action: Callable[[CaseContext], str]  # returns what happened; raises on error or WrongResult
    expect: Mapping[str, ExpectSpec]  # by backend kind; "*" for every other kind

    def expectation(self, backend: Backend | str) -> Expect:
        b = get_backend(backend) if isinstance(backend, str) else backend
        spec = self.expect.get(b.kind, self.expect.get("*"))
        if spec is None:
            return not_applicable(f"no expectation written for {b.kind}")
        return spec(b) if callable(spec) else spec


@dataclass
class Attempt:
    """What one run of a case did: completed, raised or hung."""

    kind: str  # completed | raised | hang
    summary: str
    exc: BaseException | None = None
    tb: str = ""

    def observed(self) -> str:
        """What happened, in the words of the report's ``observed`` column."""
        return {"completed": "completed: ", "raised": "raised "}.get(self.kind, "hang: ") + self.summary
