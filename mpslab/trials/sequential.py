"""Run trials until a failure-rate claim is supported: ``--until-bound 1%``, with a valid stopping rule.

The rule is a *planned zero-failure test*, not a bound re-checked after every
trial. For a target rate ``p`` and confidence ``c`` it plans

    n = ceil(log(1 - c) / log(1 - p))        (299 for "below 1% at 95%")

trials, the smallest n whose Clopper-Pearson one-sided upper bound after 0 of
n failures lies below ``p``. The claim "failure rate below p" is made only when
all n planned trials ran clean. At the first failure the claim at that target is
lost for good (it is then reported as not met, with the rate observed so far);
with ``stop_on_failure`` the run stops there, else it goes on to the planned n so
the reported rate has its full sample behind it. A true rate of exactly ``p``
passes all n trials with probability ``(1 - p)**n <= 1 - c``: the claim is wrong
at most 5% of the time at 95%, however the run is stopped early (stopping only
ever removes claims). Re-checking a bound after every trial and stopping when it
dips below ``p`` would instead claim "below 1%" for a true 1% rate 12-20% of the
time (``naive_peeking_claims`` shows it; the tests measure both).

What it is not: a trial runner (``run_until_bound`` takes any ``run_chunk``
callable; ``trials_chunk_runner`` wraps ``mpslab.trials.isolate.run_trials`` with a
store so every chunk resumes the same batch). Trials run in chunks; the
trials of a chunk still running when a limit is reached are waited for and
counted (a run_trials call is never cut short).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mpslab.run.values import parse_duration as parse_duration_of
from mpslab.run.values import parse_proportion, zero_failure_trials
from mpslab.trials.outcomes import Outcome
from mpslab.trials.stats import FailureRate, failure_rate, format_percent

__all__ = [
    "ZeroFailurePlan",
    "BoundRun",
    "planned_trials",
    "run_until_bound",
    "parse_target",
    "parse_duration",
    "trials_chunk_runner",
    "naive_peeking_claims",
    "target_text",
    "first_failure_bound",
]


def parse_target(text: Any) -> float:
    """``"1%"``, ``"0.01"`` or ``0.01`` -> 0.01; anything not strictly between 0 and 1 -> ``ConfigError``."""
    return parse_proportion(text, "until_bound")


def parse_duration(text: Any) -> float:
    """``"10m"``, ``"90s"``, ``"1h"`` or ``"30"`` (seconds) -> seconds (> 0); else ``ConfigError``."""
    return parse_duration_of(text, "max_time")


planned_trials = zero_failure_trials


def target_text(target: float, confidence: float = 0.95) -> str:
    """The target as printed in "failure rate below ...": never below the target, nor below what the plan shows.

    The target itself when 2 to 6 significant digits print it exactly (``1.25%`` stays
    ``1.25%``, never ``1.2%``); otherwise the bound after the planned n clean trials,
    ``1 - (1 - c)**(1/n)`` (< target), rounded up with the fewest digits that stay at or
    below the target; failing both, the target rounded up.
    """
    limit = Decimal(repr(float(target))) * 100
    for digits in range(2, 7):
        text = format_percent(target, "up", digits)
        if Decimal(text.rstrip("%")) == limit:
            return text
    bound = 1.0 - (1.0 - confidence) ** (1.0 / planned_trials(target, confidence))
    for digits in range(2, 7):
        text = format_percent(bound, "up", digits)
        if Decimal(text.rstrip("%")) <= limit:
            return text
    return format_percent(target, "up", 6)


def first_failure_bound(k: int, confidence: float = 0.95) -> float:
    """One-sided upper bound of the failure rate when the run stopped at its first failure, trial ``k``.

    With ``--stop-on-failure`` the trial count is set by the first failure (inverse
    sampling), so a fixed-n interval does not cover at its level. The bound inverts
    P(no failure in the first k - 1 trials) = (1 - p)**(k - 1) at 1 - ``confidence``:
    these events and the planned test's "all n clean" are nested tails of one
    ordering (the later the first failure, the lower the rate), so whatever the run
    prints, target claim or this bound, is wrong with probability at most 1 - ``confidence``.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r}: the first failure's trial number must be an integer >= 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r}: must lie between 0 and 1")
    return 1.0 if k == 1 else 1.0 - (1.0 - confidence) ** (1.0 / (k - 1))


@dataclass(frozen=True)
class ZeroFailurePlan:
    """The planned zero-failure test of "failure rate below ``target``" at ``confidence``."""

    target: float
    confidence: float = 0.95

    @property
    def n(self) -> int:
        return planned_trials(self.target, self.confidence)

    def claim(self, failures: int, trials: int) -> bool:
        """Whether the claim holds: every one of at least ``n`` trials clean."""
        return failures == 0 and trials >= self.n


@dataclass
class BoundRun:
    """How a run until the bound ended."""

    plan: ZeroFailurePlan
    outcomes: list[str] = field(default_factory=list)
    stopped_by: str = ""  # target | failure | planned | max-trials | max-time
    elapsed_s: float = 0.0

    @property
    def trials(self) -> int:
        return len(self.outcomes)

    @property
    def failures(self) -> int:
        return sum(1 for o in self.outcomes if o != Outcome.OK)

    @property
    def met(self) -> bool:
        return self.plan.claim(self.failures, self.trials)

    def rate(self) -> FailureRate | None:
        """The observed rate with a fixed-n interval; ``None`` when the run stopped at a failure.

        A run stopped at its first failure had its trial count set by that failure:
        a fixed-n interval would not cover at its level (``first_failure_bound`` does).
        """
        if not self.outcomes or self.stopped_by == "failure":
            return None
        return failure_rate(list(self.outcomes), confidence=self.plan.confidence)

    def _stopped_at_failure_text(self) -> str:
        k = next(i for i, o in enumerate(self.outcomes, 1) if o != Outcome.OK)
        level = f"{self.plan.confidence * 100:g}%"
        extra = self.failures - 1
        bound = (
            "no upper bound below 100% (the first trial failed)"
            if k == 1
            else f"failure rate below {format_percent(first_failure_bound(k, self.plan.confidence), 'up')} "
            f"({level} one-sided, exact for a run stopped at its first failure: the trial count was set by it, "
            f"so no fixed-n interval applies)"
        )
        more = f"; {extra} more failure(s) in the chunk that was running are not counted in it" if extra else ""
        return f"first failure at trial {k}: {bound}{more}"

    def verdict(self) -> str:
        p, level = target_text(self.plan.target, self.plan.confidence), f"{self.plan.confidence * 100:g}%"
        if self.met:
            return (
                f"target met: {self.trials} of {self.trials} trials clean, failure rate below {p} "
                f"({level} one-sided, planned zero-failure test of n={self.plan.n})"
            )
        why = {
            "failure": "stopped at the first failure",
            "planned": f"a failure among the {self.plan.n} planned trials",
            "max-trials": "the trial limit reached first",
            "max-time": "the time limit reached first",
        }
        reason = why.get(self.stopped_by, self.stopped_by)
        if self.failures:
            reason = f"{self.failures} failure(s): the claim at {p} fails ({reason})"
        rate = self.rate()
        if self.stopped_by == "failure":
            tail = f"; {self._stopped_at_failure_text()}"
        else:
            tail = f"; observed: {rate.verdict}" if rate is not None else ""
        return f"target NOT met (below {p} at {level}): {reason}{tail}"


def run_until_bound(
    run_chunk: Callable[[int], Sequence[str]],
    plan: ZeroFailurePlan,
    *,
    max_trials: int | None = None,
    max_time_s: float | None = None,
    stop_on_failure: bool = False,
    chunk: int = 10,
    pilot: int = 3,
    announce: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> BoundRun:
    """Run trials through ``run_chunk(k)`` (runs ``k`` more, returns their outcomes) under ``plan``.

    Stops when the planned ``n`` trials are done (met if all clean), at the
    first failure with ``stop_on_failure``, or at ``max_trials`` / ``max_time_s``.
    A chunk that has begun is always finished and counted. ``announce`` gets the
    plan line (trials needed) and, after one start-up trial and a ``pilot`` chunk, the ETA line.
    """
    say = announce or (lambda line: None)
    n = plan.n
    goal = n if max_trials is None else min(n, max_trials)
    say(
        f"until-bound: 'failure rate below {target_text(plan.target, plan.confidence)}' at {plan.confidence * 100:g}% "
        f"needs {n} clean trials (planned zero-failure test; the first failure ends the claim)"
        + (
            f"; --max-trials {max_trials} < {n}: the target cannot be met"
            if max_trials is not None and max_trials < n
            else ""
        )
    )
    run = BoundRun(plan)
    start = clock()
    stage = 0  # 0: one warm-up trial (start-up costs), 1: the pilot that measures the rate, 2: chunks
    while True:
        elapsed = clock() - start
        if run.failures and stop_on_failure:
            run.stopped_by = "failure"
            break
        if run.trials >= goal:
            run.stopped_by = ("target" if run.met else "planned") if run.trials >= n else "max-trials"
            break
        if max_time_s is not None and elapsed >= max_time_s:
            run.stopped_by = "max-time"
            break
        k = min((1, pilot, chunk)[stage], goal - run.trials)
        if stage == 2 and max_time_s is not None and run.trials:
            per = elapsed / run.trials  # keep the last chunk within the time left
            k = max(1, min(k, int((max_time_s - elapsed) / per) if per > 0 else k))
        t0 = clock()
        outcomes = list(run_chunk(k))
        if len(outcomes) != k:
            raise RuntimeError(f"run_chunk({k}) returned {len(outcomes)} outcomes")
        run.outcomes.extend(outcomes)
        if stage == 1 or (stage == 0 and run.trials >= goal):
            per = (clock() - t0) / k
            left = max(0, goal - run.trials)
            say(
                f"until-bound: {per:.2f} s per trial measured over {k} (after a first, start-up trial); "
                f"ETA for the remaining {left}: {_duration(per * left)}"
            )
        stage = min(stage + 1, 2)
    run.elapsed_s = clock() - start
    return run


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def trials_chunk_runner(config: Any, store: str, **trial_kwargs: Any) -> tuple[Callable[[int], list[str]], list[Any]]:
    """A ``run_chunk`` over isolated trials: each call extends one stored batch by ``k`` trials.

    Returns the callable and a list that collects the DataFrame of each call
    (the last one holds every trial of the batch).
    """
    from mpslab.trials.isolate import run_trials

    frames: list[Any] = []
    total = [0]

    def run_chunk(k: int) -> list[str]:
        total[0] += k
        df = run_trials(config, trials=total[0], store=store, **trial_kwargs)
        frames.append(df)
        return df["outcome"].tolist()[total[0] - k :]

    return run_chunk, frames


def naive_peeking_claims(
    rate: float, target: float, *, runs: int, max_trials: int, confidence: float = 0.95, seed: int = 0
) -> float:
    """Fraction of simulated runs that the *invalid* rule (stop when the Clopper-Pearson
    upper bound first dips below ``target``) ends with a "below target" claim."""
    import numpy as np
    from scipy.stats import beta

    rng = np.random.default_rng(seed)
    k = np.arange(1, max_trials + 1)
    claims = 0
    for _ in range(runs):
        fails = np.cumsum(rng.random(max_trials) < rate)
        upper = np.where(fails < k, beta.ppf(confidence, fails + 1, k - fails), 1.0)
        claims += bool(np.any(upper < target))
    return claims / runs
