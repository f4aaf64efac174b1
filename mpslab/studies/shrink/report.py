"""The bug report: ``report_<name>.md`` in the shape PyTorch's bug template asks for.

Sections: the bug (what happens, in one sentence, with the observed rate and its
interval, e.g. "crashed in 17 of 20 runs, 95% CI 62%-97%"), the reproducer
(the standalone script inline and how to run it), what was observed (outcome
class with exit signal, the stderr tail, hang stacks when it hung, how the
configuration was shrunk), and the environment exactly as
``python -m torch.utils.collect_env`` prints it under the interpreter that ran
the trials. What it is not: the search or the script writer.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from typing import Any

from mpslab.studies.summary import AFFINITY_NOTE
from mpslab.trials.outcomes import Outcome
from mpslab.trials.stats import failure_rate, format_percent

__all__ = ["collect_env", "rate_sentence", "report_text"]

_VERB = {
    Outcome.CRASH: "crashed",
    Outcome.HANG: "hung",
    Outcome.ERROR: "raised an error",
    Outcome.MISMATCH: "returned wrong results",
}


def collect_env(python: str | None = None, timeout_s: float = 120.0) -> str:
    """``python -m torch.utils.collect_env`` under ``python`` (default: this interpreter)."""
    try:
        out = subprocess.run(
            [python or sys.executable, "-m", "torch.utils.collect_env"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"(collect_env failed: {exc})"


def rate_sentence(outcome: str, failures: int, trials: int) -> str:
    """``crashed in 17 of 20 runs, 95% CI 62%-97%`` (one-sided bound when all or none failed)."""
    r = failure_rate((failures, trials))
    if r.sided == "two-sided":
        ci = f"95% CI {format_percent(r.low, 'down')}-{format_percent(r.high, 'up')}"
    else:
        ci = f"95% one-sided bound: {r.interval_text()}"
    return f"{_VERB.get(outcome, outcome)} in {failures} of {trials} runs, {ci}"


def _first_failure(rows: Any, outcome: str) -> dict[str, Any]:
    if rows is None:
        return {}
    hit = rows[rows["outcome"] == outcome]
    return hit.iloc[0].to_dict() if len(hit) else {}


def report_text(
    search: Any,
    workload: Any,
    script_name: str,
    script_source: str,
    env_text: str,
    python: str | None = None,
    torch_version: str | None = None,
) -> str:
    """The report's Markdown; ``python`` and ``torch_version``: the interpreter that ran the trials."""
    c, f = search.final.config, search.final
    needs = "needs a Python with torch" + (
        f": the trials ran under `{python}` with torch {torch_version or '?'}" if python else ""
    )
    row = _first_failure(f.rows, search.outcome)
    how = row.get("signal") or (f"exit {row.get('exit_code')}" if row.get("exit_code") not in (None, 0) else "")
    sentence = rate_sentence(search.outcome, f.failures, f.trials)
    o = search.original
    verb = _VERB.get(search.outcome, search.outcome)
    single = c.threads == 1
    title = (
        f"# `{workload.name}` in one worker thread {verb} ({c.device}, torch)"
        if single
        else f"# Concurrent `{workload.name}` from {c.threads} threads {verb} ({c.device}, torch)"
    )
    who = "from one Python worker thread (not the main thread)" if single else f"from {c.threads} threads at once"
    lines = [
        title,
        "",
        "### 🐛 Describe the bug",
        "",
        f"Running `{workload.name}` ({workload.description}) {who}, "
        f"{c.iterations} iteration(s) each, size {c.size}, {c.dtype} on `{c.device}`, the process "
        f"{sentence} (each run a fresh process; isolated trials by mpslab).",
        "",
    ]
    if single:
        lines += [
            f"It {AFFINITY_NOTE}. No second thread is needed: the work fails when it runs off the main thread.",
            "",
        ]
    lines += [
        f"Outcome class: **{search.outcome}**"
        + (f", exit signal **{how}**" if how else "")
        + (f" — {row.get('first_error')}" if row.get("first_error") else ""),
        "",
        f"Reproducer (standalone, torch and the standard library only; runs the pattern in fresh processes and "
        f"counts failures); it {needs}:",
        "",
        f"```python\n{script_source.rstrip()}\n```",
        "",
        f"Run it as `{shlex.quote(python) if python else 'python'} {shlex.quote(script_name)} --runs 20`.",
        "",
        "stderr of a failing run (tail):",
        "",
        f"```\n{(row.get('stderr_tail') or '(empty)').rstrip()}\n```",
    ]
    if row.get("hang_stacks"):
        lines += ["", "Thread stacks of the hung run (faulthandler):", "", f"```\n{row['hang_stacks'].rstrip()}\n```"]
    lines += [
        "",
        "How the configuration was shrunk (each step judged by isolated trials):",
        "",
        f"- original: {o.config.threads} threads x {o.config.iterations} iterations, size {o.config.size}: "
        f"{o.failures}/{o.trials} {search.outcome}",
        *[f"- {p}" for p in search.path],
        *[f"- {n}" for n in search.notes],
        "",
        "### Versions",
        "",
        f"```\n{env_text.rstrip()}\n```",
        "",
    ]
    return "\n".join(lines)
