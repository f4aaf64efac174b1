"""The release matrix: casebook cases under several interpreters (torch builds), and where each turns.

``run_matrix(pythons, cases=..., trials=N)`` probes every interpreter first (each must
exist and import torch, with ``mpslab.studies.compare.probe_interpreter``; all must
mean the same device), checks the cases (known, applicable to that device), and only
then runs trials: interleaved in blocks (per round every case gets a block under every
build, the build order rotating each round, so drift in the machine falls on all of
them), into one JSON-lines store that a re-run resumes (each build is its own batch,
keyed by its interpreter's path).

Per (case, build): failures, trials, rate and its exact interval
(``mpslab.trials.stats.failure_rate``). Per case and pair of adjacent builds (in the
order given, oldest first): the two-sample test of ``compare.failure_test``; the p-values
of all cases x adjacent pairs are Holm-adjusted together (family-wise error rate at
``alpha``). A case's *first failing build* is the later build of the first adjacent pair
whose adjusted p is below ``alpha`` with a higher failure rate there.

Not here: trials (``mpslab.trials.isolate.run_trials``), the figure
(``mpslab.report.matrix_plots``), the cases (``mpslab.studies.casebook``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mpslab.run.config import ConfigError
from mpslab.studies.compare import Interpreter, failure_test, interleaved_trials, probe_interpreter
from mpslab.studies.summary import failure_kinds
from mpslab.trials.stats import failure_rate, format_percent

__all__ = ["MatrixResult", "check_pythons", "holm", "matrix_table", "transitions", "run_matrix", "matrix_report"]

ALPHA = 0.05


def _test_name() -> str:
    doc = (failure_test.__doc__ or "two-sample test of failure rates").strip().splitlines()[0]
    return doc.rstrip(".")


def check_pythons(pythons: Sequence[str], device: str = "auto") -> tuple[list[Interpreter], str]:
    """Every interpreter probed (``pythons='X': ...`` one line if one is bad) and the device they share."""
    if len(pythons) < 1:
        raise ConfigError(param="pythons", why="name at least one interpreter")
    with ThreadPoolExecutor(min(4, len(pythons))) as pool:
        futures = [pool.submit(probe_interpreter, p, "pythons", "pythons") for p in pythons]
        probed = [f.result() for f in futures]  # the first bad one, in the order given
    builds = [
        Interpreter(f"{i + 1}:{b.info['torch']}", b.python, {**b.info, "given": pythons[i]})
        for i, b in enumerate(probed)
    ]
    if device == "auto":
        seen = {b.info["auto_device"] for b in builds}
        if len(seen) > 1:
            raise ConfigError(
                param="device", value=device, why=f"means {' / '.join(sorted(seen))} under these interpreters: name one"
            )
        device = builds[0].info["auto_device"]
    return builds, device


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error rate), in the order given."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[k]))
        adjusted[k] = running
    return adjusted.tolist()


def matrix_table(rows: pd.DataFrame, builds: Sequence[str], cases: Sequence[str]) -> pd.DataFrame:
    """One row per (case, build): failures, trials, rate, interval, outcome kinds."""
    out = []
    for case in cases:
        for build in builds:
            g = rows[(rows["case"] == case) & (rows["build"] == build)]
            if g.empty:
                continue
            r = failure_rate(g, pool=True)
            out.append(
                {
                    "case": case,
                    "build": build,
                    "failures": r.failures,
                    "trials": r.trials,
                    "rate": r.rate,
                    "low": r.low,
                    "high": r.high,
                    "interval": r.interval_text(),
                    "outcomes": failure_kinds(r.outcomes),
                }
            )
    return pd.DataFrame(out)


def transitions(table: pd.DataFrame, builds: Sequence[str], alpha: float = ALPHA) -> pd.DataFrame:
    """One row per case and adjacent pair of builds: the test, its Holm-adjusted p, and the first failing build."""
    tests = []
    for case in dict.fromkeys(table["case"]) if len(table) else []:
        t = table[table["case"] == case].set_index("build")
        for a, b in zip(builds, builds[1:]):
            if a not in t.index or b not in t.index:
                continue
            fa, na = int(t.at[a, "failures"]), int(t.at[a, "trials"])
            fb, nb = int(t.at[b, "failures"]), int(t.at[b, "trials"])
            tests.append(
                {
                    "case": case,
                    "earlier": a,
                    "later": b,
                    "earlier_failed": f"{fa}/{na}",
                    "later_failed": f"{fb}/{nb}",
                    "p_value": failure_test(fa, na, fb, nb),
                    "worse": fb * na > fa * nb,
                }
            )
    df = pd.DataFrame(tests, columns=["case", "earlier", "later", "earlier_failed", "later_failed", "p_value", "worse"])
    df["p_holm"] = holm(df["p_value"].tolist()) if len(df) else []
    df["significant"] = df["p_holm"] < alpha
    first: dict[str, str] = {}
    for r in df.itertuples():
        if r.significant and r.worse and r.case not in first:
            first[r.case] = r.later
    df["first_failing_build"] = [first.get(c, "") for c in df["case"]]
    return df


@dataclass
class MatrixResult:
    builds: list[Interpreter]
    device: str
    rows: pd.DataFrame  # every trial: case, build, outcome, ...
    table: pd.DataFrame  # one row per (case, build)
    tests: pd.DataFrame  # one row per (case, adjacent pair)
    store: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    alpha: float = ALPHA
    test: str = field(default_factory=_test_name)

    def report(self) -> str:
        return matrix_report(self)


def run_matrix(
    pythons: Sequence[str],
    cases: Sequence[str] | None = None,
    *,
    trials: int = 10,
    block: int = 5,
    timeout_s: float | None = None,
    device: str = "auto",
    store: str | None = None,
    alpha: float = ALPHA,
    progress: Callable[[str], None] | None = None,
) -> MatrixResult:
    """Run ``cases`` (default: every case that applies) ``trials`` times under each interpreter, interleaved."""
    from mpslab.studies.casebook import case_plan, get_case

    for name, v in (("trials", trials), ("block", block)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name}={v!r}: must be an integer >= 1")
    if timeout_s is not None and not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
        raise ConfigError(f"timeout_s={timeout_s!r}: must be a number > 0")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha={alpha!r}: must be between 0 and 1")
    builds, dev = check_pythons(pythons, device)
    todo, skipped = case_plan(cases, dev)
    batches = interleaved_trials(
        todo,
        builds,
        trials=trials,
        block=block,
        store=store,
        trial_args=lambda name, b: {
            "timeout_s": timeout_s or get_case(name).timeout_s,
            "batch": f"matrix:{b.info['given']}",
        },
        progress=progress,
        tmp_prefix="mpslab-matrix-",
    )
    frames = {(name, label): df.assign(case=name, build=label) for (name, label), df in batches.items()}
    labels = [b.label for b in builds]
    rows = pd.concat(list(frames.values()), ignore_index=True) if frames else pd.DataFrame(columns=["case", "build"])
    table = matrix_table(rows, labels, [n for n, _ in todo]) if frames else pd.DataFrame()
    tests = transitions(table, labels, alpha) if len(table) else transitions(pd.DataFrame(columns=["case"]), labels)
    return MatrixResult(builds, dev, rows, table, tests, store, skipped, alpha)


def matrix_report(result: MatrixResult) -> str:
    """The text report: the builds, the (case x build) table, the transitions with the correction named."""
    lines = [
        f"mpslab matrix: {result.device}, {len(result.builds)} builds interleaved in blocks"
        + (f"; store {result.store}" if result.store else ""),
        "",
    ]
    for b in result.builds:
        i = b.info
        lines.append(
            f"{b.label}: {b.python} (torch {i['torch']}, git {str(i.get('torch_git'))[:12]}, "
            f"python {i.get('python_version')}, {i.get('device_name')})"
        )
    lines.append("")
    t = result.table
    if t.empty:
        lines.append("no case ran")
    else:
        w = max(len(c) for c in t["case"])
        for r in t.itertuples():
            lines.append(
                f"{r.case:<{w}}  {r.build:<14} {r.failures}/{r.trials} failed "
                f"({format_percent(r.rate)}, {r.interval})  {r.outcomes}"
            )
    m = len(result.tests)
    lines += [
        "",
        f"adjacent builds: {result.test}; Holm correction over {m} tests (cases x adjacent pairs), "
        f"family-wise alpha {result.alpha:g}",
    ]
    for r in result.tests.itertuples():
        verdict = (
            f"first failing build: {r.first_failing_build}"
            if r.first_failing_build == r.later
            else ("significant" if r.significant else "no significant change")
        )
        lines.append(
            f"  {r.case}: {r.earlier} {r.earlier_failed} -> {r.later} {r.later_failed}  "
            f"p = {r.p_value:.3g}, Holm p = {r.p_holm:.3g}: {verdict}"
        )
    if len(result.builds) < 2:
        lines.append("  (one build: nothing to compare)")
    for name, why in result.skipped.items():
        lines.append(f"{name}: not applicable: {why}")
    return "\n".join(lines)
