"""From measurements to a verdict: Bonferroni bounds, the table and the recommendation text.

Picking the best of several configurations and then quoting its failure bound at
95% overstates confidence. The advisor corrects with **Bonferroni across the
candidates that get trials**: with k of them, each bound is one-sided at
1 - 0.05/k, so all k bounds hold together at 95% whichever one is picked. Trials go
to candidates in order of median speed, and stop at the first one whose bound is below
``max_failure``: every candidate with a higher median was tested and did not qualify, so
the pick has the highest median among those that qualify (a best estimate, not a
ranking the repeats prove).

The plan fixes k before any trial runs, and trials stop at the first candidate that
qualifies, so fewer than k may get trials: the words say both numbers (the k of the
correction, and how many rows of the table got trials). Correcting over only those
that got trials would not hold: each further candidate tried adds its own chance of a
bound that is wrong.

Speeds are medians of a few repeats: their intervals and the "tied" / "slower" words
come from ``speed`` (exact levels, exact tests). Every sentence of the recommendation
is built from the table's numbers, so it cannot contradict them. Not here: running anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from mpslab.studies.advisor.budget import Plan, bound_after, format_level, format_target, trials_needed
from mpslab.studies.advisor.grid import Candidate
from mpslab.studies.advisor.speed import (
    SEPARATION_ALPHA,
    SLOWER,
    TIED,
    holm_separated,
    median_interval,
    round_outward,
    smallest_p,
)
from mpslab.trials.outcomes import Outcome
from mpslab.trials.stats import failure_rate, format_percent

__all__ = [
    "bonferroni_confidence",
    "candidate_bound",
    "build_table",
    "recommendation",
    "format_table",
    "format_target",
    "bonferroni_words",
    "RECOMMENDED",
]

RECOMMENDED = "recommended"


def bonferroni_confidence(alpha: float, m: int) -> float:
    """Per-candidate confidence so that m one-sided bounds hold together at 1 - alpha."""
    if m < 1:
        raise ValueError(f"m={m!r}: needs at least one candidate")
    return 1.0 - alpha / m


def candidate_bound(outcomes: Sequence[str], alpha: float, m: int) -> tuple[int, int, float]:
    """(failures, trials, upper bound) of one candidate's trials, Bonferroni over m (Clopper-Pearson)."""
    rate = failure_rate(list(outcomes), confidence=bonferroni_confidence(alpha, m))
    return rate.failures, rate.trials, (rate.high if rate.sided != "lower" else 1.0)


def speed_order(rows: pd.DataFrame, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Candidates by median requests/s, fastest first (in-process errors last)."""

    def key(c: Candidate) -> tuple:
        sub = rows[rows["label"] == c.label] if len(rows) else rows
        errors = int((sub["outcome"] != Outcome.OK).sum()) if len(sub) else 0
        med = float(sub["requests_per_s"].median()) if len(sub) else math.nan
        return (errors > 0, -(med if math.isfinite(med) else -1.0))

    return sorted(candidates, key=key)


def _speeds(rows: pd.DataFrame, label: str) -> pd.Series:
    sub = rows[rows["label"] == label] if len(rows) else rows
    return pd.to_numeric(sub.get("requests_per_s", pd.Series(dtype=float)), errors="coerce")


def build_table(
    plan: Plan, rows: pd.DataFrame, trials: dict[str, pd.DataFrame], recommended: str | None
) -> pd.DataFrame:
    """One row per candidate: speed with its interval (and the level it has), latency, trials, bound, verdict.

    A configuration that got no trials because the pick qualified first is "slower than the
    pick" only where its repeats separate from the pick's (``speed.holm_separated``), else
    "tied with the pick within noise"; ``speed_p`` holds that comparison's exact p-value.
    """
    out = []
    for c in plan.candidates:
        sub = rows[rows["label"] == c.label] if len(rows) else rows
        speeds = _speeds(rows, c.label)
        ci = median_interval(speeds)
        errors = int((sub["outcome"] != Outcome.OK).sum()) if len(sub) else 0
        t = trials.get(c.label)
        n = int(len(t)) if t is not None else 0
        fails, bound = 0, math.nan
        if n:
            fails, n, bound = candidate_bound(t["outcome"].tolist(), plan.alpha, plan.tested)
        if c.label == recommended:
            verdict = RECOMMENDED
        elif errors:
            verdict = "errors in process"
        elif fails:
            verdict = "failed in trials"
        elif n:
            verdict = "bound too high"
        elif recommended is not None:
            verdict = TIED  # until the comparison below separates it
        else:
            verdict = "not tested: budget"
        out.append(
            {
                "configuration": c.label,
                "kind": c.kind,
                "threads": c.threads,
                "control": c.control,
                "sync": c.sync_label,
                "streams": c.streams,
                "batch": c.batch if c.kind == "batched" else None,
                "repeats": int(speeds.notna().sum()),
                "requests_per_s": float(speeds.median()) if speeds.notna().any() else math.nan,
                "ci_low": ci.low,
                "ci_high": ci.high,
                "ci_level": ci.level,
                "ci_name": ci.name,
                "latency_p50_ms": float(pd.to_numeric(sub.get("latency_p50_ms"), errors="coerce").median())
                if len(sub)
                else math.nan,
                "latency_p99_ms": float(pd.to_numeric(sub.get("latency_p99_ms"), errors="coerce").median())
                if len(sub)
                else math.nan,
                "inprocess_errors": errors,
                "trials": n,
                "failures": fails,
                "upper_bound": bound,
                "verdict": verdict,
                "speed_p": math.nan,
            }
        )
    if recommended is not None:
        untested = [r["configuration"] for r in out if r["verdict"] == TIED]
        separated = holm_separated(
            _speeds(rows, recommended).dropna().tolist(), {k: _speeds(rows, k).dropna().tolist() for k in untested}
        )
        for r in out:
            if r["configuration"] in separated:
                sep, p = separated[r["configuration"]]
                r["speed_p"] = p
                r["verdict"] = SLOWER if sep else TIED
    table = pd.DataFrame(out)
    return table.sort_values("requests_per_s", ascending=False, na_position="last", kind="stable").reset_index(
        drop=True
    )


def _pct(x: float) -> str:
    return format_percent(x, "up") if math.isfinite(x) else "-"


def _low(x: float) -> str:
    return f"{round_outward(x, 'down'):,.0f}"


def _high(x: float) -> str:
    return f"{round_outward(x, 'up'):,.0f}"


def _speed_header(table: pd.DataFrame) -> tuple[str, int]:
    """The speed column's name, from the number of repeats most rows have (rows with another count say theirs)."""
    counts = table["repeats"][table["repeats"] >= 2] if len(table) else pd.Series(dtype=int)
    if not len(counts):
        return "requests/s median", 0
    k = int(counts.mode().iloc[0])
    row = table[table["repeats"] == k].iloc[0]
    return f"requests/s median [{row['ci_name']}]", k


def format_table(table: pd.DataFrame) -> str:
    """The table as aligned text (the CLI's output)."""
    speed_head, k = _speed_header(table)
    head = [
        "configuration",
        speed_head,
        "p50 ms",
        "p99 ms",
        "trials",
        "failures",
        "upper bound",
        "verdict",
    ]
    lines = []
    for r in table.itertuples():
        if math.isfinite(r.ci_low):
            speed = f"{r.requests_per_s:,.0f} [{_low(r.ci_low)}-{_high(r.ci_high)}]"
            if r.repeats != k:
                speed += f" ({r.ci_name})"
        else:
            speed = f"{r.requests_per_s:,.0f} [n={r.repeats}]" if math.isfinite(r.requests_per_s) else "-"
        lines.append(
            [
                r.configuration,
                speed,
                f"{r.latency_p50_ms:.3f}",
                f"{r.latency_p99_ms:.3f}",
                str(r.trials),
                str(r.failures),
                _pct(r.upper_bound) if r.trials else "-",
                r.verdict,
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(
        c.ljust(w) if i in (0, 7) else c.rjust(w)  # noqa: E731
        for i, (c, w) in enumerate(zip(cells, widths))
    )
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(row) for row in lines])


def bonferroni_words(plan: Plan, table: pd.DataFrame) -> str:
    """The correction in words that match the table: the k of the plan and the rows that got trials."""
    got = int((table["trials"] > 0).sum()) if len(table) else 0
    if plan.tested == 1:
        return (
            f"the plan set aside trials for one configuration, so no correction was needed ({got} got trials)"
            if got != 1
            else "one configuration got trials, as planned, so no correction was needed"
        )
    picked = bool(len(table)) and bool((table["verdict"] == RECOMMENDED).any())
    why = ", since trials stop at the first that qualifies" if got < plan.tested and picked else ""
    return (
        f"Bonferroni over the {plan.tested} configurations the plan set aside trials for, in order of median speed, "
        f"each bound at {format_level(plan.confidence)} one-sided; {got} of them got trials{why}"
    )


def _tie_sentences(table: pd.DataFrame, pick: pd.Series) -> list[str]:
    tied = table[table["verdict"] == TIED]
    slower = table[table["verdict"] == SLOWER]
    m = len(tied) + len(slower)
    if not m:
        return []
    test = (
        f"exact two-sided Mann-Whitney on the repeats, Holm over the {m} not tested, family {1 - SEPARATION_ALPHA:.0%}"
    )
    out = []
    if len(slower):
        out.append(f"Slower than the pick: {len(slower)} configuration(s) not tested ({test}).")
    if len(tied):
        best = tied.iloc[0]
        k = int(min(pick.repeats, tied["repeats"].max()))
        limit = (
            f"; with {k} vs {k} repeats no comparison can separate: the smallest p possible is {smallest_p(k, k):.2g}"
            if smallest_p(k, k) > SEPARATION_ALPHA / m
            else ""
        )
        out.append(
            f"Tied with the pick within noise: {len(tied)} configuration(s) not tested, the fastest of them by "
            f"median {best.configuration} ({best.requests_per_s:,.0f} requests/s): their speeds are not separated "
            f"from the pick's ({test}{limit}). Among speeds the data cannot tell apart, the advisor tests in order "
            f"of median and recommends the first that qualifies: the pick is the best estimate, not a proven "
            f"fastest."
        )
    return out


def recommendation(plan: Plan, table: pd.DataFrame, trial_s: float) -> tuple[bool, str]:
    """(recommended?, a paragraph written from the table's numbers)."""
    level = f"{1 - plan.alpha:.0%}"
    bonf = bonferroni_words(plan, table)
    target = format_target(plan.max_failure)
    pick = table[table["verdict"] == RECOMMENDED]
    sentences = []
    fastest = table.iloc[0] if len(table) else None
    if len(pick):
        r = pick.iloc[0]
        speed = (
            f"median of {r.repeats} repeats; {r.ci_name} {_low(r.ci_low)}-{_high(r.ci_high)}"
            if math.isfinite(r.ci_low)
            else f"{r.repeats} repeat(s), no interval"
        )
        sentences.append(
            f"Recommended: {r.configuration}: {r.requests_per_s:,.0f} requests/s ({speed}), "
            f"p99 latency {r.latency_p99_ms:.3f} ms; "
            f"{r.failures} of {r.trials} isolated trials failed, failure rate below {_pct(r.upper_bound)} "
            f"({bonf}; family {level}), under the {target} asked for."
        )
        if fastest is not None and fastest.configuration != r.configuration:
            sentences.append(
                f"Faster by median but not qualified: {fastest.configuration} "
                f"({fastest.requests_per_s:,.0f} requests/s, {fastest.verdict})."
            )
        sentences += _tie_sentences(table, r)
    else:
        tested = table[table["trials"] > 0]
        failed = tested[tested["failures"] > 0]
        need = trials_needed(plan.max_failure, 1 - plan.alpha)
        need_b = trials_needed(plan.max_failure, plan.confidence)
        sentences.append(f"Nothing qualified: no configuration showed a failure rate below {target} ({bonf}).")
        if len(failed):
            sentences.append(
                "Failures in isolated trials: "
                + "; ".join(f"{r.configuration} {r.failures} of {r.trials}" for r in failed.itertuples())
                + "."
            )
        extra = f" ({need_b} with the Bonferroni correction over {plan.tested})" if need_b != need else ""
        sentences.append(
            f"Showing below {target} at {level} takes {need} clean trials per "
            f"configuration{extra}; at ~{trial_s:.2f} s a trial here that is "
            f"~{need * trial_s / 60:.1f} min per configuration."
        )
        if len(tested):
            best = tested.sort_values("upper_bound").iloc[0]
            sentences.append(
                f"The tightest bound this budget supported: below {_pct(best.upper_bound)} "
                f"({best.configuration}, {best.failures} of {best.trials} trials failed)."
            )
        else:
            sentences.append(
                f"No trial ran; {plan.trials_per} clean trials would have given a bound of "
                f"{_pct(bound_after(plan.trials_per, plan.confidence))}."
            )
    threaded = table[table["kind"] == "threaded"]
    batched = table[table["kind"] == "batched"]
    if (
        len(threaded)
        and len(batched)
        and threaded["requests_per_s"].notna().any()
        and batched["requests_per_s"].notna().any()
    ):
        t, b = threaded.iloc[0], batched.iloc[0]
        ratio = b.requests_per_s / t.requests_per_s
        sentences.append(
            f"Batching versus threads: the best batched configuration ({b.configuration}, "
            f"{b.requests_per_s:,.0f} requests/s) is {ratio:.2f}x the best threaded one "
            f"({t.configuration}, {t.requests_per_s:,.0f} requests/s), by median."
        )
    return bool(len(pick)), " ".join(sentences)


def as_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")
