"""The table of a build comparison: one row per scenario, its failure test and throughput ratio, one family.

``compare_table(rows)`` reads the trial rows of ``mpslab.studies.compare.compare_builds``
(``scenario``, ``side``, ``outcome``, ``ops_per_s``, ``round``) and gives, per scenario, each
side's failure rate with its interval (``mpslab.trials.stats.failure_rate``), Barnard's
exact test of the difference (``mpslab.trials.exact.failure_test``) and the throughput
ratio paired by interleaved round (``mpslab.trials.paired.throughput_ratio``). The
scenarios of a run are one family at 5%: Holm's rule decides the failure verdicts,
and the throughput intervals are at 1 - 0.05 / m (Bonferroni). Runs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from mpslab.studies.summary import failure_kinds
from mpslab.trials.exact import failure_test
from mpslab.trials.outcomes import Outcome
from mpslab.trials.paired import throughput_ratio
from mpslab.trials.stats import failure_rate, holm

__all__ = ["ALPHA", "FAMILY_RULE", "compare_table", "failure_verdict"]

ALPHA = 0.05
FAMILY_RULE = (
    "the scenarios are one family at 5%: failure verdicts by Holm's rule, throughput intervals at 1 - 0.05/m "
    "(Bonferroni); where the builds do not differ, a run shows any significant verdict of either kind "
    "at most 5% of the time"
)


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def failure_verdict(
    fa: int, na: int, fb: int, nb: int, p: float, alpha: float = ALPHA, p_holm: float | None = None, family: int = 1
) -> str:
    """The failure verdict of one scenario; with ``family`` > 1 the decision uses Holm's adjusted ``p_holm``."""
    holm_used = p_holm is not None and family > 1
    decide = p_holm if holm_used else p
    ps = _p_text(p) + (f", Holm-adjusted over {family} scenarios {_p_text(p_holm)}" if holm_used else "")
    if decide >= alpha:
        return f"no significant difference ({ps})"
    if fb / nb < fa / na:
        return f"b fails less: {fb}/{nb} vs {fa}/{na}, {ps}"
    return f"b fails more: {fb}/{nb} vs {fa}/{na}, {ps}"


def compare_table(
    rows: pd.DataFrame, alpha: float = ALPHA, order: Sequence[str] | None = None, block: int | None = None
) -> pd.DataFrame:
    """One row per scenario: each side's failures, rate and interval; the test; the throughput ratio.

    The scenarios are one family: failure verdicts use Holm's rule over them (family-wise
    ``alpha``), throughput intervals Bonferroni's (confidence 1 - ``alpha`` / m each), so an
    A/A run says "significant" anywhere in the table with probability at most ``alpha``
    for each of the two kinds of verdict. Throughput pairs the sides by interleaved round:
    ``rows`` has a ``round`` column, or ``block`` gives it as ``trial // block``.
    """
    if "round" not in rows.columns:
        if block is None:
            raise ValueError("compare_table: rows have no 'round' column; pass block= (trials per interleaved block)")
        rows = rows.assign(round=pd.to_numeric(rows["trial"]).astype(int) // block)
    names = list(order) if order is not None else list(dict.fromkeys(rows["scenario"]))
    groups = []
    for name in names:
        g = rows[rows["scenario"] == name]
        ga, gb = g[g["side"] == "a"], g[g["side"] == "b"]
        if not ga.empty and not gb.empty:
            groups.append((name, ga, gb))
    m = len(groups)
    confidence = 1.0 - alpha / max(m, 1)
    rates = [(failure_rate(ga, pool=True), failure_rate(gb, pool=True)) for _, ga, gb in groups]
    ps = [failure_test(ra.failures, ra.trials, rb.failures, rb.trials) for ra, rb in rates]
    adjusted, significant = holm(ps, alpha)
    out = []
    for (name, ga, gb), (ra, rb), p, p_adj, sig in zip(groups, rates, ps, adjusted, significant):
        speed = {}
        for side, frame in (("a", ga), ("b", gb)):
            ops = pd.to_numeric(frame["ops_per_s"], errors="coerce").where(frame["outcome"] == Outcome.OK)
            speed[side] = (ops.tolist(), frame["round"].astype(int).tolist())
        ratio, lo, hi, words = throughput_ratio(
            speed["a"][0], speed["b"][0], speed["a"][1], speed["b"][1], confidence=confidence
        )
        row: dict[str, Any] = {"scenario": name}
        for side, r in (("a", ra), ("b", rb)):
            row.update(
                {
                    f"{side}_failures": r.failures,
                    f"{side}_trials": r.trials,
                    f"{side}_rate": r.rate,
                    f"{side}_low": r.low,
                    f"{side}_high": r.high,
                    f"{side}_interval": r.interval_text(),
                    f"{side}_outcomes": failure_kinds(r.outcomes),
                }
            )
        row.update(
            {
                "p_value": p,
                "p_holm": p_adj,
                "family": m,
                "test": f"Barnard exact, two-sided; Holm over {m} scenarios",
                "significant": sig,
                "verdict": failure_verdict(ra.failures, ra.trials, rb.failures, rb.trials, p, alpha, p_adj, m),
                "speed_ratio": ratio,
                "speed_low": lo,
                "speed_high": hi,
                "speed_confidence": confidence,
                "throughput": words,
            }
        )
        out.append(row)
    return pd.DataFrame(out)
