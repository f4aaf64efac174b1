"""From measurements to a verdict: Bonferroni bounds, the table and the recommendation text.

Picking the fastest of several configurations and then quoting its failure bound at
95% overstates confidence. The advisor corrects with **Bonferroni across the
candidates that get trials**: with k of them, each bound is one-sided at
1 - 0.05/k, so all k bounds hold together at 95% whichever one is picked. Trials go
to candidates fastest first, and stop at the first one whose bound is below
``max_failure``: every faster candidate was tested and did not qualify, so the pick
is the fastest qualifying one.

Every sentence of the recommendation is built from the table's numbers, so it
cannot contradict them. Not here: running anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from mpslab.studies.advisor.budget import Plan, bound_after, trials_needed
from mpslab.studies.advisor.grid import Candidate
from mpslab.studies.sweep import median_ci
from mpslab.trials.stats import failure_rate, format_percent

__all__ = ["bonferroni_confidence", "candidate_bound", "build_table", "recommendation", "format_table", "RECOMMENDED"]

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
        errors = int((sub["outcome"] != "ok").sum()) if len(sub) else 0
        med = float(sub["requests_per_s"].median()) if len(sub) else math.nan
        return (errors > 0, -(med if math.isfinite(med) else -1.0))

    return sorted(candidates, key=key)


def build_table(
    plan: Plan, rows: pd.DataFrame, trials: dict[str, pd.DataFrame], recommended: str | None
) -> pd.DataFrame:
    """One row per candidate: speed with its interval, latency, trials, bound and verdict."""
    out = []
    for c in plan.candidates:
        sub = rows[rows["label"] == c.label] if len(rows) else rows
        speeds = pd.to_numeric(sub.get("requests_per_s", pd.Series(dtype=float)), errors="coerce")
        low, high = median_ci(speeds)
        errors = int((sub["outcome"] != "ok").sum()) if len(sub) else 0
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
            verdict = "not tested: slower than the pick"
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
                "ci_low": low,
                "ci_high": high,
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
            }
        )
    table = pd.DataFrame(out)
    return table.sort_values("requests_per_s", ascending=False, na_position="last", kind="stable").reset_index(
        drop=True
    )


def _pct(x: float) -> str:
    return format_percent(x, "up") if math.isfinite(x) else "-"


def format_table(table: pd.DataFrame) -> str:
    """The table as aligned text (the CLI's output)."""
    head = [
        "configuration",
        "requests/s median [95% CI]",
        "p50 ms",
        "p99 ms",
        "trials",
        "failures",
        "upper bound",
        "verdict",
    ]
    lines = []
    for r in table.itertuples():
        speed = (
            f"{r.requests_per_s:,.0f} [{r.ci_low:,.0f}-{r.ci_high:,.0f}]"
            if math.isfinite(r.ci_low)
            else (f"{r.requests_per_s:,.0f} [n={r.repeats}]" if math.isfinite(r.requests_per_s) else "-")
        )
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


def recommendation(plan: Plan, table: pd.DataFrame, trial_s: float) -> tuple[bool, str]:
    """(recommended?, a paragraph written from the table's numbers)."""
    level = f"{1 - plan.alpha:.0%}"
    bonf = (
        f"Bonferroni over the {plan.tested} configurations that got trials, each bound at "
        f"{plan.confidence:.2%} one-sided"
        if plan.tested > 1
        else "one configuration got trials, so no correction was needed"
    )
    pick = table[table["verdict"] == RECOMMENDED]
    sentences = []
    fastest = table.iloc[0] if len(table) else None
    if len(pick):
        r = pick.iloc[0]
        sentences.append(
            f"Recommended: {r.configuration}: {r.requests_per_s:,.0f} requests/s "
            f"(95% CI {r.ci_low:,.0f}-{r.ci_high:,.0f}), p99 latency {r.latency_p99_ms:.3f} ms; "
            f"{r.failures} of {r.trials} isolated trials failed, failure rate below {_pct(r.upper_bound)} "
            f"({bonf}; family {level}), under the {plan.max_failure:.2%} asked for."
        )
        if fastest is not None and fastest.configuration != r.configuration:
            sentences.append(
                f"Faster by median but not qualified: {fastest.configuration} "
                f"({fastest.requests_per_s:,.0f} requests/s, {fastest.verdict})."
            )
    else:
        tested = table[table["trials"] > 0]
        failed = tested[tested["failures"] > 0]
        need = trials_needed(plan.max_failure, 1 - plan.alpha)
        need_b = trials_needed(plan.max_failure, plan.confidence)
        sentences.append(
            f"Nothing qualified: no configuration showed a failure rate below {plan.max_failure:.2%} ({bonf})."
        )
        if len(failed):
            sentences.append(
                "Failures in isolated trials: "
                + "; ".join(f"{r.configuration} {r.failures} of {r.trials}" for r in failed.itertuples())
                + "."
            )
        extra = f" ({need_b} with the Bonferroni correction over {plan.tested})" if need_b != need else ""
        sentences.append(
            f"Showing below {plan.max_failure:.2%} at {level} takes {need} clean trials per "
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
