"""A stored advice read again: the table and the recommendation rebuilt from an ``out`` folder, nothing run.

``reread(folder)`` reads ``plan.json``, ``throughput.jsonl`` and ``trials.jsonl`` (what
``advise(out=folder)`` wrote, on any machine and build) and decides again with this
mpslab's ``decide``: so results measured elsewhere (an H100's committed stores) are
reported in the words of the current code. Trials are matched to candidates by their
configuration fields; the pick is found the way ``advise`` finds it (in order of median
speed, the first whose trials all ended ok with a bound below ``max_failure``).
Not here: measuring (``measure``), the orchestration (``advise``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd

from mpslab.run.config import ConfigError
from mpslab.studies.advisor import budget as _budget
from mpslab.studies.advisor import decide as _decide
from mpslab.studies.advisor.batching import batched_name
from mpslab.studies.advisor.grid import Candidate
from mpslab.studies.advisor.measure import read_throughput
from mpslab.trials.records import read_records

__all__ = ["reread"]


def _matches(c: Candidate, cfg: dict[str, Any], workload: str, requests: int) -> bool:
    if c.kind == "batched":
        return cfg.get("workload") == batched_name(workload, c.batch) and cfg.get("iterations") == c.iterations(
            requests
        )
    return (
        cfg.get("workload") == workload
        and cfg.get("threads") == c.threads
        and cfg.get("throttle") == c.throttle
        and cfg.get("sync_every") == c.sync_every
        and cfg.get("streams") == c.streams
        and cfg.get("iterations") == c.iterations(requests)
    )


def reread(folder: str) -> tuple[_budget.Plan, pd.DataFrame, bool, str]:
    """(plan, table, recommended?, recommendation text) of the advice stored in ``folder``."""
    try:
        with open(os.path.join(folder, "plan.json")) as f:
            saved = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{folder!r}: no readable plan.json ({exc})") from None
    plan = _budget.Plan.from_dict(saved["plan"])
    workload = saved["request"]["workload"]
    labels = {c.label for c in plan.candidates}
    measured = read_throughput(os.path.join(folder, "throughput.jsonl"))
    rows = pd.DataFrame.from_records(
        [r for r in measured.values() if r.get("label") in labels and int(r["repeat"]) < plan.repeats]
    )
    trials: dict[str, list[str]] = {}
    path = os.path.join(folder, "trials.jsonl")
    for rec in read_records(path) if os.path.exists(path) else []:
        cfg = rec.get("config") or {}
        for c in plan.candidates:
            if _matches(c, cfg, workload, plan.requests):
                trials.setdefault(c.label, []).append(rec["result"]["outcome"])
                break
    frames = {k: pd.DataFrame({"outcome": v}) for k, v in trials.items()}
    picked = None
    for c in _decide.speed_order(rows, plan.candidates):
        outcomes = trials.get(c.label)
        if outcomes:
            _, _, bound = _decide.candidate_bound(outcomes, plan.alpha, plan.tested)
            if all(o == "ok" for o in outcomes) and bound < plan.max_failure:
                picked = c.label
                break
    table = _decide.build_table(plan, rows, frames, picked)
    trial_s = plan.calibration.trial_cost_s(plan.requests) / _budget.SAFETY
    recommended, text = _decide.recommendation(plan, table, trial_s)
    return plan, table, recommended, text
