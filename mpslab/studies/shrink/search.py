"""The shrinking search: smaller configurations that still fail, each judged by isolated trials.

``shrink_config(config, ...)`` first measures the original (``judge`` runs
``trials`` isolated trials of a config and counts the failures of the original's
outcome class). Then, one dimension at a time and delta-debugging style, it
searches for the smallest value that still fails: threads, iterations, size,
warm-up (binary search between the floor and the current value, assuming that
less rarely fails more), list-valued workload parameters (the workload's declared
steps: halves, then single elements removed), and the sync pattern (throttle off,
shared stream, synchronise only at the end). It repeats the passes until one
changes nothing. A failure that survives with one worker thread needs no second
thread: it is thread affinity (the work fails off the main thread), not a race, and
the search says so (``ShrinkSearch.notes``, ``AFFINITY_NOTE``).

Keep rule: a candidate is kept only if at least ``ceil(threshold * trials)``
of its trials (and at least one) fail *in the original's outcome class*, with
``threshold = keep_fraction * (original rate)`` (default half the original's rate).
Why: the reproducer is only useful if it still fails often enough that a
reviewer running it a handful of times sees the failure; trading a 90% crash for a
5% one would make a smaller script that nobody can confirm. A crash that turns
into an exception is a different bug, so other outcome classes do not count.

What it is not: the trial runner (``mpslab.trials.isolate.run_trials``) nor
the writers (``script``, ``report``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from mpslab.studies.summary import AFFINITY_NOTE, FAILED_OUTCOMES
from mpslab.trials.outcomes import Outcome

__all__ = ["Judgement", "ShrinkSearch", "shrink_config", "judge"]

FLOORS = {"threads": 1, "iterations": 1, "size": 1, "warmup": 0}


@dataclass
class Judgement:
    config: Any
    failures: int  # failures in the target outcome class
    trials: int
    outcomes: dict[str, int]
    rows: Any = None  # the trials' DataFrame

    @property
    def rate(self) -> float:
        return self.failures / self.trials if self.trials else 0.0


@dataclass
class ShrinkSearch:
    original: Judgement
    final: Judgement
    outcome: str  # the target outcome class
    needed: int  # failures a candidate needs out of its trials to be kept
    path: list[str] = field(default_factory=list)  # every step taken, kept or not
    judged: int = 0
    notes: list[str] = field(default_factory=list)  # what the shrunk configuration says about the bug

    @property
    def single_thread(self) -> bool:
        """The failure survives with one worker thread: no second thread is needed (thread affinity)."""
        return self.outcome != Outcome.OK and self.final.config.threads == 1


def judge(config: Any, trials: int, timeout_s: float, python: str | None, outcome: str | None = None) -> Judgement:
    from mpslab.trials.isolate import run_trials

    df = run_trials(config, trials=trials, timeout_s=timeout_s, python=python, progress=False)
    counts = df["outcome"].value_counts().to_dict()
    if outcome is None:
        failures = int(df["outcome"].isin(FAILED_OUTCOMES).sum())  # a lost trial is no evidence either way
    else:
        failures = int((df["outcome"] == outcome).sum())
    return Judgement(config, failures, len(df), {k: int(v) for k, v in counts.items()}, df)


def _describe(c: Any) -> str:
    return (
        f"threads={c.threads} iterations={c.iterations} size={c.size} warmup={c.warmup} "
        f"sync_every={c.sync_every} streams={c.streams} throttle={c.throttle}"
        + (f" params={dict(c.params)}" if c.params else "")
    )


def shrink_config(
    config: Any,
    *,
    trials: int = 10,
    timeout_s: float = 60.0,
    python: str | None = None,
    keep_fraction: float = 0.5,
    max_passes: int = 3,
    log: Callable[[str], None] | None = None,
) -> ShrinkSearch:
    """Shrink ``config`` (a failing ``StressConfig``); ``ShrinkSearch.final`` is the smallest kept."""
    say = log or (lambda line: None)
    first = judge(config, trials, timeout_s, python)
    say(f"original: {_describe(config)} -> {first.failures}/{first.trials} failed {first.outcomes}")
    if first.failures == 0:
        return ShrinkSearch(first, first, Outcome.OK, 1, [f"original did not fail in {trials} trials"], 1)
    fails = {k: v for k, v in first.outcomes.items() if k in FAILED_OUTCOMES}
    outcome = max(fails, key=lambda k: fails[k])
    base = Judgement(config, fails[outcome], first.trials, first.outcomes, first.rows)
    needed = max(1, math.ceil(keep_fraction * base.failures / base.trials * trials - 1e-9))
    search = ShrinkSearch(base, base, outcome, needed, judged=1)
    say(
        f"target: outcome {outcome!r}; a candidate is kept with >= {needed} of {trials} trials {outcome} "
        f"(half the original's rate {base.failures}/{base.trials})"
    )

    seen: dict[Any, Judgement] = {}  # a configuration is judged once (a later pass may propose it again)

    def tries(changes: dict[str, Any], what: str) -> bool:
        try:
            candidate = replace(search.final.config, **changes)  # validated at construction
        except ValueError as exc:  # e.g. a param combination the workload refuses
            search.path.append(f"{what}: skipped ({exc})")
            return False
        if candidate in seen:
            return False  # judged before and not kept then (a kept one became the current config)
        j = seen[candidate] = judge(candidate, trials, timeout_s, python, outcome)
        search.judged += 1
        kept = j.failures >= needed
        line = f"{what}: {j.failures}/{j.trials} {outcome} -> {'kept' if kept else 'rejected'}"
        search.path.append(line)
        say(line)
        if kept:
            search.final = j
        return kept

    for _ in range(max_passes):
        before = search.final.config
        for dim, floor in FLOORS.items():
            lo, hi = floor, getattr(search.final.config, dim)
            while lo < hi:
                mid = (lo + hi) // 2
                if tries({dim: mid}, f"{dim} {hi} -> {mid}"):
                    hi = mid
                else:
                    lo = mid + 1
        _shrink_params(search, tries)
        c = search.final.config
        for field_name, simpler in (("throttle", None), ("streams", "shared"), ("sync_every", 0)):
            if getattr(c, field_name) != simpler:
                tries({field_name: simpler}, f"{field_name} {getattr(c, field_name)} -> {simpler}")
                c = search.final.config
        if search.final.config == before:
            break
    say(f"shrunk: {_describe(search.final.config)} ({search.judged} configurations judged)")
    if search.single_thread:
        f = search.final
        note = f"{AFFINITY_NOTE} ({f.failures} of {f.trials} one-thread trials {outcome})"
        search.notes.append(note)
        say(note)
    return search


def _shrink_params(search: ShrinkSearch, tries: Callable[[Any, str], bool]) -> None:
    """List-valued parameters (the workload's declared steps): ddmin-style halves, then single elements."""
    for key, value in list(search.final.config.params.items()):
        if not isinstance(value, (list, tuple)) or len(value) < 2:
            continue
        items = list(value)
        n = 2
        while len(items) >= 2:
            size = math.ceil(len(items) / n)
            chunks = [items[i : i + size] for i in range(0, len(items), size)]
            reduced = False
            for k in range(len(chunks)):
                rest = [x for j, ch in enumerate(chunks) if j != k for x in ch]
                if rest and _try_param(search, tries, key, rest, f"params.{key}: drop {chunks[k]}"):
                    items, n, reduced = rest, max(2, n - 1), True
                    break
            if not reduced:
                if n >= len(items):
                    break
                n = min(len(items), 2 * n)


def _try_param(search: ShrinkSearch, tries: Callable[[Any, str], bool], key: str, value: list, what: str) -> bool:
    params = dict(search.final.config.params)
    params[key] = type(search.final.config.params[key])(value)
    return tries({"params": params}, what)
