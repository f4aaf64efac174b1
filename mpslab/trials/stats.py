"""Honest statistics for trial outcomes: failure rates with their intervals, and comparisons.

scipy does the maths: ``scipy.stats.binomtest(...).proportion_ci`` for the
interval (Clopper-Pearson ``exact`` by default, or ``wilson``), and Barnard's
exact test (``mpslab.trials.exact.failure_test``) for the comparison of two sets
of trials, the same test ``mpslab compare`` uses.

Every verdict carries its interval, and is rounded so that it never claims more
than the data allow: upper bounds are rounded up, lower bounds down. A run with
no failure gets a one-sided upper bound ("0 of 200 trials failed: failure rate
below 1.5%"); a run where every trial failed gets a one-sided lower bound. No
number of clean trials makes a failure rate zero, and nothing here says otherwise.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from mpslab.trials.outcomes import Outcome

__all__ = [
    "FailureRate",
    "RateComparison",
    "failure_rate",
    "failure_rates",
    "compare_rates",
    "format_percent",
    "holm",
    "ENVIRONMENT_COLUMNS",
    "MixedEnvironmentsError",
]

# What makes two sets of trials comparable: the same host, torch build and device.
ENVIRONMENT_COLUMNS = ("env_host", "env_torch", "env_torch_build", "env_device", "env_interpreter")
NOT_EVIDENCE = tuple(o for o in Outcome if not o.is_evidence)  # ran nowhere to the end: says nothing of the code


class MixedEnvironmentsError(ValueError):
    """A frame holds trials of several environments and pooling them was not asked for."""


_ROUNDING = {"up": ROUND_CEILING, "down": ROUND_FLOOR, "nearest": ROUND_HALF_EVEN}

METHODS = {"exact": "Clopper-Pearson", "wilson": "Wilson"}


@dataclass(frozen=True)
class FailureRate:
    """``failures`` of ``trials`` failed; ``[low, high]`` is the interval at ``confidence``.

    ``sided`` says which interval it is: ``two-sided``, ``upper`` (no failure:
    ``low`` is 0 and ``high`` the one-sided upper bound) or ``lower`` (every
    trial failed: ``high`` is 1 and ``low`` the one-sided lower bound).
    """

    failures: int
    trials: int
    rate: float
    low: float
    high: float
    confidence: float
    method: str
    sided: str
    outcomes: dict[str, int] = field(default_factory=dict)
    verdict: str = ""

    def interval_text(self) -> str:
        """The interval alone, e.g. ``below 1.5%`` or ``0.31%-4.3%``."""
        if self.sided == "upper":
            return f"below {format_percent(self.high, 'up')}"
        if self.sided == "lower":
            return f"above {format_percent(self.low, 'down')}"
        return f"{format_percent(self.low, 'down')}-{format_percent(self.high, 'up')}"

    def __str__(self) -> str:
        return self.verdict


@dataclass(frozen=True)
class RateComparison:
    """Two sets of trials side by side, and Barnard's exact test of the difference (``p_value``)."""

    before: FailureRate
    after: FailureRate
    p_value: float
    odds_ratio: float
    alpha: float
    significant: bool
    labels: tuple[str, str]
    verdict: str = ""

    def __str__(self) -> str:
        return self.verdict


def format_percent(x: float, direction: str = "nearest", digits: int = 2) -> str:
    """``x`` (a proportion) as a percentage with ``digits`` significant digits (more only near 100%).

    ``direction`` is ``up`` for an upper bound (the text is never below the exact
    value of ``x``), ``down`` for a lower bound (never above it) or ``nearest`` for
    an estimate. The rounding is done in decimal arithmetic on the shortest decimal
    that reads back as the same float (``repr``), with no tolerance, so 5.8000000001%
    prints as "5.9%" upwards. 0 and 1 print as ``0%`` and ``100%``.
    """
    if direction not in _ROUNDING:
        raise ValueError(f"direction={direction!r}: must be one of {', '.join(_ROUNDING)}")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits={digits!r}: must be an integer >= 1")
    if not math.isfinite(float(x)):
        return "nan%"
    value = Decimal(repr(float(x))) * 100  # the shortest decimal that reads back as this float; exact from here
    if value <= 0:
        return "0%"
    if value >= 100:
        return "100%"
    for d in range(digits, digits + 5):  # more digits only to keep 99.96% from reading 100%
        rounded = value.quantize(Decimal(1).scaleb(value.adjusted() - (d - 1)), rounding=_ROUNDING[direction])
        if rounded < 100:
            break
    if rounded >= 100:
        return "100%"
    if rounded <= 0:
        return "0%"
    decimals = max(0, d - 1 - rounded.adjusted())
    return f"{rounded:.{decimals}f}%"


def _counts(data: Any) -> tuple[int, int, dict[str, int]]:
    """(failures, trials, outcome counts) from a frame, a series/list of outcomes or a FailureRate."""
    if isinstance(data, FailureRate):
        return data.failures, data.trials, dict(data.outcomes)
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(v, int) for v in data):
        failures, trials = data
        return failures, trials, {}
    outcomes: Iterable[Any]
    if hasattr(data, "columns"):  # a DataFrame
        if "outcome" not in data.columns:
            raise ValueError("failure_rate: the frame has no 'outcome' column")
        outcomes = [o for o in data["outcome"].tolist() if o not in NOT_EVIDENCE]
    elif isinstance(data, (str, bytes)):
        raise TypeError("failure_rate needs a DataFrame, a sequence of outcomes or (failures, trials)")
    else:
        outcomes = list(data.tolist() if hasattr(data, "tolist") else data)
    counts = Counter("missing" if o is None or (isinstance(o, float) and math.isnan(o)) else str(o) for o in outcomes)
    trials = sum(counts.values())
    failures = trials - counts.get(Outcome.OK, 0)
    return failures, trials, {k: counts[k] for k in sorted(counts)}


def _env_columns(frame: Any) -> list[str]:
    return [c for c in ENVIRONMENT_COLUMNS if c in frame.columns]


def failure_rates(data: Any, *, confidence: float = 0.95, method: str = "exact", pool: bool = False):
    """One ``FailureRate`` per environment (host, torch build, device) of a trials frame.

    Returns a DataFrame: the environment columns, ``failures``, ``trials``,
    ``rate``, ``low``, ``high``, ``verdict`` and the ``FailureRate`` itself
    (``result``); ``pool=True`` gives one row for all trials (environment cells ``*``).
    """
    import pandas as pd

    cols = _env_columns(data)
    rows = []
    if pool or not cols:
        groups = [(("*",) * len(cols), data)]
    else:
        groups = list(data.fillna({c: "?" for c in cols}).groupby(cols, sort=True, dropna=False))
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        if not len(part[~part["outcome"].isin(NOT_EVIDENCE)]):
            continue
        r = failure_rate(part, confidence=confidence, method=method, pool=True)
        rows.append(
            {
                **dict(zip(cols, key)),
                "failures": r.failures,
                "trials": r.trials,
                "rate": r.rate,
                "low": r.low,
                "high": r.high,
                "verdict": r.verdict,
                "result": r,
            }
        )
    return pd.DataFrame(rows, columns=cols + ["failures", "trials", "rate", "low", "high", "verdict", "result"])


def failure_rate(data: Any, *, confidence: float = 0.95, method: str = "exact", pool: bool = False) -> FailureRate:
    """The failure rate of a set of trials and its interval at ``confidence``.

    ``data`` is a DataFrame with an ``outcome`` column (``run_trials``,
    ``load_records`` or ``StressResult.to_row()`` rows), a sequence of outcome
    strings, or a ``(failures, trials)`` pair. Every outcome other than ``ok``
    is a failure; ``lost`` trials (their worker died) are no evidence and left out.
    ``method`` is ``exact`` (Clopper-Pearson) or ``wilson``.

    A frame whose trials come from several environments (host, torch build,
    device: ``ENVIRONMENT_COLUMNS``) is refused with ``MixedEnvironmentsError``
    unless ``pool=True``: use ``failure_rates`` for one rate per environment.
    """
    from scipy.stats import binomtest

    if not pool and hasattr(data, "columns"):
        cols = _env_columns(data)
        envs = (
            len(data.loc[~data["outcome"].isin(NOT_EVIDENCE), cols].astype(str).drop_duplicates())
            if (cols and "outcome" in data.columns)
            else 0
        )
        if envs > 1:
            raise MixedEnvironmentsError(
                f"failure_rate: the trials come from {envs} environments "
                f"({', '.join(cols)}); use failure_rates() for one each, or pool=True to pool them"
            )

    if method not in METHODS:
        raise ValueError(f"method={method!r}: must be one of {', '.join(METHODS)}")
    if not (isinstance(confidence, float) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence={confidence!r}: must be a float between 0 and 1")
    failures, trials, outcomes = _counts(data)
    if trials < 1:
        raise ValueError("failure_rate: no trials")
    if not 0 <= failures <= trials:
        raise ValueError(f"failure_rate: failures={failures} must be between 0 and trials={trials}")

    if failures == 0:
        sided, alternative = "upper", "less"
    elif failures == trials:
        sided, alternative = "lower", "greater"
    else:
        sided, alternative = "two-sided", "two-sided"
    ci = binomtest(failures, trials, alternative=alternative).proportion_ci(confidence_level=confidence, method=method)
    low, high = float(ci.low), float(ci.high)
    rate = failures / trials

    level = f"{confidence * 100:g}%"
    name = METHODS[method]
    kinds = {k: v for k, v in outcomes.items() if k != Outcome.OK}
    detail = f" ({', '.join(f'{k} {v}' for k, v in kinds.items())})" if len(kinds) > 1 else ""
    head = f"{failures} of {trials} trials failed{detail}"
    if sided == "upper":
        verdict = f"{head}: failure rate below {format_percent(high, 'up')} ({level} one-sided upper bound, {name})"
    elif sided == "lower":
        verdict = f"{head}: failure rate above {format_percent(low, 'down')} ({level} one-sided lower bound, {name})"
    else:
        verdict = (
            f"{head}: failure rate {format_percent(rate)} "
            f"({level} CI {format_percent(low, 'down')}-{format_percent(high, 'up')}, {name})"
        )
    return FailureRate(failures, trials, rate, low, high, confidence, method, sided, outcomes, verdict)


def compare_rates(
    before: Any,
    after: Any,
    *,
    labels: tuple[str, str] = ("before", "after"),
    alpha: float = 0.05,
    confidence: float = 0.95,
    method: str = "exact",
) -> RateComparison:
    """Two sets of trials (e.g. two builds) side by side, with Barnard's exact test.

    ``before`` and ``after`` take whatever ``failure_rate`` takes (or a
    ``FailureRate``). The test is ``mpslab.trials.exact.failure_test``, the one
    ``mpslab compare`` uses: the trial counts are fixed, so the model is two
    independent binomials, Barnard's unconditional one. The difference is called
    significant when the two-sided p-value is below ``alpha``. The verdict reads like
    ``before 5/5 failed (above 54%) -> after 0/200 failed (below 1.5%): significant, ...``.
    """
    from mpslab.trials.exact import failure_test

    if not (isinstance(alpha, float) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha={alpha!r}: must be a float between 0 and 1")
    a = before if isinstance(before, FailureRate) else failure_rate(before, confidence=confidence, method=method)
    b = after if isinstance(after, FailureRate) else failure_rate(after, confidence=confidence, method=method)
    p = failure_test(a.failures, a.trials, b.failures, b.trials)
    significant = p < alpha
    la, lb = labels

    def side(label: str, r: FailureRate) -> str:
        return f"{label} {r.failures}/{r.trials} failed ({r.interval_text()})"

    if significant:
        direction = f"{lb} fails less often" if b.rate < a.rate else f"{lb} fails more often"
        judgement = f"significant, {direction}"
    else:
        judgement = "difference not significant"
    verdict = (
        f"{side(la, a)} -> {side(lb, b)}: {judgement} "
        f"(Barnard exact p={p:.2g}, two-sided, alpha {alpha:g}; "
        f"intervals {a.confidence * 100:g}%, {METHODS[a.method]})"
    )
    odds = _odds_ratio(a.failures, a.trials - a.failures, b.failures, b.trials - b.failures)
    return RateComparison(a, b, p, odds, alpha, significant, (la, lb), verdict)


def _odds_ratio(fa: int, oka: int, fb: int, okb: int) -> float:
    """The sample odds ratio (fa * okb) / (oka * fb): inf when only the denominator is 0, nan when both are."""
    num, den = fa * okb, oka * fb
    if den == 0:
        return math.nan if num == 0 else math.inf
    return num / den


def holm(pvalues: Iterable[float], alpha: float = 0.05) -> tuple[list[float], list[bool]]:
    """Holm's step-down rule over a family of tests: (adjusted p-values, significant at family-wise ``alpha``).

    The chance of at least one false "significant" in the family is at most ``alpha``
    whatever the tests' dependence, when each p-value is valid on its own. The
    adjusted p of the i-th smallest is max over j <= i of min(1, (m - j + 1) p_(j));
    a test is significant when its adjusted p is below ``alpha``.
    """
    p = [float(v) for v in pvalues]
    m = len(p)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: p[i])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted, [a < alpha for a in adjusted]
