"""The casebook: real, public, cited concurrency bugs of released PyTorch, each a workload.

Importing this package registers every case as a workload (``cpu_cases``,
``device_cases``); ``catalogue`` holds the citations. ``casebook_listing()`` is the
table ``python -m mpslab casebook`` prints; ``case_config(name, device)`` is a case's
``StressConfig`` (its ``plugins`` name this package, so a trial child under any
interpreter registers the cases too); ``case_plan(names, device)`` checks a selection
before any trial. The matrix over torch builds is ``mpslab.studies.matrix``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mpslab.run.config import ConfigError, StressConfig
from mpslab.run.workloads import get_workload
from mpslab.studies.casebook import cpu_cases, device_cases  # noqa: F401  (registration)
from mpslab.studies.casebook.catalogue import CASES, PLUGIN, Case, case_names, get_case

__all__ = ["CASES", "Case", "PLUGIN", "get_case", "case_names", "casebook_listing", "case_config", "case_plan"]


def casebook_listing() -> pd.DataFrame:
    """One row per case: name, kind (case or control), platform, expected outcome, versions, symptom, links."""
    return pd.DataFrame(
        [
            {
                "name": c.name,
                "kind": "control" if c.control else "case",
                "platform": c.platform,
                "expected": c.expected,
                "threads": c.threads,
                "iterations": c.iterations,
                "title": c.title,
                "symptom": c.symptom,
                "versions": c.versions,
                "links": " ".join(c.links),
            }
            for c in CASES
        ]
    )


def case_config(name: str, device: str = "cpu", *, seed: int = 0) -> StressConfig:
    """The case's ``StressConfig`` on ``device``; ``ConfigError`` (one line) if unknown or not applicable."""
    try:
        c = get_case(name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    return StressConfig(
        workload=c.name,
        device=device,
        threads=c.threads,
        iterations=c.iterations,
        size=c.size,
        warmup=c.warmup,
        params=dict(c.params),
        plugins=(PLUGIN,),
        seed=seed,
        streams=c.streams,
    )


def case_plan(names: Sequence[str] | None, device: str) -> tuple[list[tuple[str, StressConfig]], dict[str, str]]:
    """(name, config) for each case to run on ``device`` and {name: why not} for the rest.

    ``names`` None: every case, those that do not apply skipped with their reason. Named
    cases must exist and apply to ``device`` (one ``ConfigError`` line otherwise).
    """
    explicit = names is not None and len(names) > 0
    chosen = list(names) if explicit else case_names()
    unknown = [n for n in chosen if n not in case_names()]
    if unknown:
        raise ConfigError(f"case={unknown[0]!r}: unknown; known: {', '.join(case_names())}")
    kind = device.split(":")[0]
    todo, skipped = [], {}
    for n in dict.fromkeys(chosen):
        why = get_workload(n).not_applicable(kind, "float32")
        if why is not None:
            if explicit:
                raise ConfigError(f"case={n!r}: not applicable on {kind}: {why}")
            skipped[n] = why
            continue
        todo.append((n, case_config(n, device)))
    return todo, skipped
