"""The time budget: parsing it, the calibration it is planned from, and the plan that fits it.

The plan is made once, from one short calibration (an in-process run and a few
isolated trials of the first candidate), and stored, so the same command run again
resumes the same plan instead of re-planning. The budget is split in two:

    throughput   ``THROUGHPUT_SHARE`` of what is left after calibration: every candidate
                 measured ``repeats`` times in process, each measurement serving the same
                 number of requests (the largest multiple of the grid's request unit that fits);
    trials       the rest: isolated trials of the fastest candidates, fastest first. The plan
                 picks k, the most candidates that can each get enough clean trials to show a
                 failure rate below ``max_failure`` after Bonferroni over k; if not even one can,
                 every trial goes to the fastest candidate and the tightest bound reached is told.

When even the smallest grid does not fit, candidates are dropped from the end of the
priority order (batched and the simplest controls are kept longest), and the plan says
which. A budget that cannot fit one candidate is refused (``BudgetError``).
Not here: running anything (``measure``), verdicts (``decide``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mpslab.run.config import ConfigError
from mpslab.run.values import parse_duration, zero_failure_trials
from mpslab.studies.advisor.grid import Candidate
from mpslab.studies.advisor.speed import SEPARATION_ALPHA, coverage, interval_name, repeats_for_confidence, smallest_p

__all__ = [
    "parse_budget",
    "trials_needed",
    "Calibration",
    "Plan",
    "make_plan",
    "BudgetError",
    "THROUGHPUT_SHARE",
    "MIN_BUDGET_S",
    "format_target",
    "format_level",
]

THROUGHPUT_SHARE = 0.3
MIN_BUDGET_S = 3.0  # below this not even the calibration fits
SAFETY = 1.3  # estimates are multiplied by this: thread start-up, contention, a busy machine
MAX_RUN_S = 1.0  # one throughput measurement serves at most about this much serial work


class BudgetError(ConfigError):
    """The budget cannot fit even one candidate (one line); ``need_s`` is what one would take, if known."""

    def __init__(self, message: str = "", *, need_s: float | None = None, **named: Any) -> None:
        super().__init__(message, **named)
        self.need_s = need_s


def parse_budget(text: Any) -> float:
    """``"10m"``, ``"90s"``, ``"1h"``, ``"1m30s"`` or a number of seconds -> seconds, at least ``MIN_BUDGET_S``."""
    seconds = parse_duration(text, "budget")
    if seconds < MIN_BUDGET_S:
        raise BudgetError(
            param="budget",
            value=text,
            why=f"too small for even one configuration (need at least {MIN_BUDGET_S:g} s for the calibration alone)",
        )
    return seconds


def format_target(p: float) -> str:
    """``max_failure`` as a percentage, as given (``10%``, ``1.25%``, not ``1.2%``); never printed below its value.

    Exact up to six significant digits; beyond that rounded up at the sixth.
    """
    value = 100.0 * float(p)
    top = math.floor(math.log10(value))
    for decimals in range(0, max(0, 5 - top) + 1):
        text = f"{value:.{decimals}f}"
        if abs(float(text) - value) <= 1e-12 * value:
            return f"{text}%"
    decimals = max(0, 5 - top)
    return f"{math.ceil(value * 10**decimals - 1e-6) / 10**decimals:.{decimals}f}%"


def format_level(x: float) -> str:
    """A confidence level rounded down to 0.01%: the level printed is never above the one used."""
    return f"{math.floor(x * 10000 + 1e-6) / 100:.2f}%"


def speed_words(repeats: int, candidates: int) -> str:
    """What ``repeats`` in-process repeats can say about speed (the plan prints it before anything runs)."""
    if repeats < 2:
        return (
            f"speed: {repeats} repeat per configuration: no interval, and no configuration can be told apart "
            "from another; those not tested are called tied with the pick within noise"
        )
    name = interval_name(repeats, coverage(repeats, 1))
    m = max(candidates - 1, 1)
    can = smallest_p(repeats, repeats) <= SEPARATION_ALPHA / m
    sep = (
        f"{repeats} vs {repeats} repeats can separate a configuration from the pick (exact two-sided "
        f"Mann-Whitney, Holm over up to {m}, family {1 - SEPARATION_ALPHA:.0%}); those not separated are "
        "called tied with the pick within noise"
        if can
        else f"{repeats} vs {repeats} repeats cannot separate two configurations here (smallest exact "
        f"Mann-Whitney p {smallest_p(repeats, repeats):.2g}; Holm over up to {m} asks for "
        f"{SEPARATION_ALPHA / m:.2g}), so those not tested are called tied with the pick within noise"
    )
    more = f"; --repeats {repeats_for_confidence()} or more gives a 95% interval" if coverage(repeats, 1) < 0.95 else ""
    return (
        f"speed: median of {repeats} repeats, shown with its {name}{more}; {sep}; among tied speeds the "
        "advisor tests in order of median and recommends the first that qualifies (the best estimate, "
        "not a proven fastest)"
    )


def trials_needed(max_failure: float, confidence: float = 0.95) -> int:
    """Clean trials needed for a one-sided Clopper-Pearson bound strictly below ``max_failure``."""
    return zero_failure_trials(max_failure, confidence)


def bound_after(trials: int, confidence: float = 0.95) -> float:
    """The one-sided upper bound that ``trials`` clean trials give (Clopper-Pearson)."""
    return 1.0 - (1.0 - confidence) ** (1.0 / trials) if trials > 0 else 1.0


@dataclass(frozen=True)
class Calibration:
    """Seconds measured on this machine before planning."""

    per_request_s: float  # in process, one thread, per request (a workload step)
    run_overhead_s: float  # per in-process measurement: set-up, threads, warm-up
    trial_s: float  # one isolated trial of the calibration config, launcher included
    trial_requests: int  # requests that calibration trial served
    elapsed_s: float  # what calibration took, fork-server start-up included

    def run_s(self, requests: int) -> float:
        return SAFETY * (self.run_overhead_s + requests * self.per_request_s)

    def trial_cost_s(self, requests: int) -> float:
        """A trial runs the work, then the oracle replays it: twice the requests."""
        fixed = max(self.trial_s - 2 * self.trial_requests * self.per_request_s, 0.0)
        return SAFETY * (fixed + 2 * requests * self.per_request_s)


@dataclass
class Plan:
    """What the advisor will run, and why it fits the budget."""

    budget_s: float
    requests: int  # requests served by every measurement and every trial
    repeats: int
    candidates: list[Candidate]
    dropped: list[Candidate]
    tested: int  # k: candidates that get trials, fastest first (the Bonferroni m)
    trials_per: int  # trials each tested candidate gets
    feasible: bool  # whether trials_per clean trials can meet max_failure after Bonferroni over k
    max_failure: float
    alpha: float
    throughput_s: float  # estimated
    trials_s: float  # estimated (the most: trials stop early once a candidate qualifies)
    calibration: Calibration
    notes: list[str] = field(default_factory=list)

    @property
    def eta_s(self) -> float:
        return self.calibration.elapsed_s + self.throughput_s + self.trials_s

    @property
    def confidence(self) -> float:
        """Per-candidate confidence after Bonferroni over the ``tested`` candidates."""
        return 1.0 - self.alpha / max(self.tested, 1)

    def describe(self) -> str:
        c = self.calibration
        lines = [
            f"plan: {len(self.candidates)} configurations x {self.repeats} in-process repeats of "
            f"{self.requests} requests each, then up to {self.tested} x {self.trials_per} isolated trials "
            f"(highest median speed first); ETA {self.eta_s:.0f} s of the {self.budget_s:.0f} s budget",
            f"budget split: calibration {c.elapsed_s:.1f} s (done), throughput ~{self.throughput_s:.0f} s "
            f"({THROUGHPUT_SHARE:.0%} of the rest at most), trials ~{self.trials_s:.0f} s (the rest); "
            f"one trial ~{c.trial_cost_s(self.requests):.2f} s here",
            speed_words(self.repeats, len(self.candidates)),
            f"picking the best of several overstates confidence: Bonferroni over the {self.tested} "
            f"candidate(s) set aside for trials, by median speed (each bound at {format_level(self.confidence)} "
            f"one-sided, family {1 - self.alpha:.0%}); trials stop at the first that qualifies",
        ]
        target = format_target(self.max_failure)
        if self.feasible:
            lines.append(f"{self.trials_per} clean trials give a bound below {target} at that level")
        else:
            lines.append(
                f"this budget cannot show a bound below {target}: "
                f"{trials_needed(self.max_failure, 1 - self.alpha)} clean trials would take "
                f"~{trials_needed(self.max_failure, 1 - self.alpha) * c.trial_cost_s(self.requests):.0f} s; "
                f"all {self.trials_per} trials go to the configuration with the highest median speed"
            )
        if self.dropped:
            lines.append(
                f"dropped to fit the budget ({len(self.dropped)}): "
                + "; ".join(d.label for d in self.dropped[:6])
                + (" ..." if len(self.dropped) > 6 else "")
            )
        lines += self.notes
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidates"] = [x.to_dict() for x in self.candidates]
        d["dropped"] = [x.to_dict() for x in self.dropped]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        d = dict(d)
        d["candidates"] = [Candidate.from_dict(x) for x in d["candidates"]]
        d["dropped"] = [Candidate.from_dict(x) for x in d["dropped"]]
        d["calibration"] = Calibration(**d["calibration"])
        return cls(**d)


def priority(grid: Sequence[Candidate]) -> list[Candidate]:
    """The order candidates are kept in when the budget is short: batched, then simple controls first."""
    sync_rank = {0: 0, 1: 1}
    return sorted(
        grid,
        key=lambda c: (
            c.kind != "batched",
            c.batch,
            sync_rank.get(c.sync_every, 2),
            0 if c.throttle is None else (1 if c.throttle == 1 else 2),
            c.streams != "shared",
            c.threads,
        ),
    )


def make_plan(
    grid: Sequence[Candidate],
    unit: int,
    calibration: Calibration,
    *,
    budget_s: float,
    repeats: int,
    max_failure: float,
    alpha: float = 0.05,
) -> Plan:
    """The plan that fits ``budget_s`` (see the module docstring); ``BudgetError`` if nothing fits."""
    cal = calibration
    left = budget_s - cal.elapsed_s
    tp_budget = THROUGHPUT_SHARE * left
    kept = priority(grid)
    dropped: list[Candidate] = []

    def tp_cost(cands: Sequence[Candidate], requests: int) -> float:
        return repeats * sum(cal.run_s(requests) for _ in cands)

    while kept and tp_cost(kept, unit) > tp_budget:
        dropped.insert(0, kept.pop())
    if not kept or tp_cost(kept, unit) + cal.trial_cost_s(unit) > left:
        first = priority(grid)[0]
        need = cal.elapsed_s + tp_cost([first], unit) + cal.trial_cost_s(unit)
        raise BudgetError(
            param="budget",
            value=f"{budget_s:g}s",
            why=f"too small for even one configuration here "
            f"(calibration took {cal.elapsed_s:.1f} s; one configuration needs ~{need:.0f} s)",
            need_s=need,
        )
    # the largest request count (a multiple of the unit) whose measurements fit, within MAX_RUN_S
    steps = max(1, int(MAX_RUN_S / max(cal.per_request_s * unit, 1e-9)))
    j = 1
    lo, hi = 1, steps
    while lo <= hi:
        mid = (lo + hi) // 2
        if tp_cost(kept, unit * mid) <= tp_budget:
            j, lo = mid, mid + 1
        else:
            hi = mid - 1
    requests = unit * j
    throughput_s = tp_cost(kept, requests)
    order = [c for c in grid if c in kept]  # report in grid order
    trial_s = cal.trial_cost_s(requests)
    budget_trials = max(int((left - throughput_s) / trial_s), 1)
    tested, per, feasible = 0, 0, False
    for k in range(1, len(order) + 1):
        n = trials_needed(max_failure, 1 - alpha / k)
        if k * n <= budget_trials:
            tested, per, feasible = k, n, True
        else:
            break
    if not feasible:
        tested, per = 1, budget_trials
    return Plan(
        budget_s=budget_s,
        requests=requests,
        repeats=repeats,
        candidates=order,
        dropped=dropped,
        tested=tested,
        trials_per=per,
        feasible=feasible,
        max_failure=max_failure,
        alpha=alpha,
        throughput_s=throughput_s,
        trials_s=tested * per * trial_s,
        calibration=cal,
    )
