"""``advise()``: validate, calibrate, plan, measure, decide; the whole advisor in one call.

Every input is checked before any work (one ``ConfigError`` line: unknown workload,
a control the backend cannot do, a budget too small, ``max_failure`` outside (0, 1)).
Then one short calibration, the plan and its ETA (printed before anything else
runs), the throughput phase, the trials phase, the table and the recommendation.
Everything lands in ``out``: ``plan.json`` (the plan, reused when the same request
comes again), ``throughput.jsonl`` (one row per measurement), ``trials.jsonl``
(``run_trials``' store), ``table.csv`` and ``result.json``. Running the same
request again continues where it stopped.
Not here: the pieces themselves (``grid``, ``budget``, ``measure``, ``decide``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mpslab.run.config import ConfigError, StressConfig, load_plugin
from mpslab.run.environment import environment
from mpslab.run.runner import run_stress
from mpslab.run.values import parse_proportion
from mpslab.studies.advisor import budget as _budget
from mpslab.studies.advisor import decide as _decide
from mpslab.studies.advisor import grid as _grid
from mpslab.studies.advisor import measure as _measure
from mpslab.trials.outcomes import Outcome

__all__ = ["advise", "AdvisorResult", "parse_max_failure"]


@dataclass
class AdvisorResult:
    plan: _budget.Plan
    table: pd.DataFrame
    recommended: bool
    text: str
    rows: pd.DataFrame  # every throughput measurement
    trials: pd.DataFrame  # every isolated trial of the candidates
    out: str | None
    resumed: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.recommended else 1


def parse_max_failure(value: Any) -> float:
    """``0.05``, ``"0.05"`` or ``"5%"`` -> 0.05; refused outside (0, 1)."""
    return parse_proportion(value, "max_failure")


def _axis(name: str, given: Any, default: list, kind: str) -> list:
    """The axis the user gave (parsed, checked), else the backend's default."""
    return list(default) if given is None else _grid.parse_axis(name, given, kind)


def advise(
    workload: str = "mlp",
    device: str = "auto",
    budget: Any = "10m",
    max_failure: Any = 0.05,
    *,
    threads: Any = None,
    throttle: Any = None,
    sync: Any = None,
    streams: Any = None,
    batch_sizes: Any = None,
    size: int = 256,
    dtype: str = "float32",
    repeats: int = 3,
    out: str | None = None,
    progress: bool = True,
    params: dict[str, Any] | None = None,
    plugins: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> AdvisorResult:
    """Which way of serving ``workload`` concurrently is safe and fastest here (see the package docstring).

    Grid options take a list or a comma-separated string (``threads="1,2,4,8"``,
    ``throttle="none,1,2"``, ``sync="every,20,end"``, ``streams="shared,per-thread"``,
    ``batch_sizes="8,32"``); left out, they take per-backend defaults. ``out`` is the
    folder of stores (None: nothing stored, nothing resumed).
    """
    # every input checked before any work
    p = parse_max_failure(max_failure)
    budget_s = _budget.parse_budget(budget)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(param="repeats", value=repeats, why="must be an integer >= 1")
    for spec in plugins:
        load_plugin(spec)
    _grid.check_workload(workload)
    base = _grid.base_config(device, workload, size, dtype, params, plugins)
    defaults = _grid.default_axes(base.device, workload)
    asked = {  # the grid's axis -> (the parameter that sets it, its value)
        "threads": ("threads", threads),
        "throttle": ("throttle", throttle),
        "sync": ("sync", sync),
        "streams": ("streams", streams),
        "batch": ("batch_sizes", batch_sizes),
    }
    axes = {kind: _axis(name, given, defaults[kind], kind) for kind, (name, given) in asked.items()}
    if throttle is None:
        axes["throttle"] = [k for k in axes["throttle"] if k is None or k < max(axes["threads"])]
    cands = _grid.build_grid(base.device, workload, **axes, batch_given=batch_sizes is not None)
    unit = _grid.request_unit(cands)
    folder = os.path.abspath(out) if out else None
    if folder:
        os.makedirs(folder, exist_ok=True)
    work = folder or _tmp_folder()
    try:
        for c in cands:  # every configuration validated now (batched plugins written, nothing run)
            _measure.config_for(c, base, unit, work, verify=True)

        env = environment(base.device)
        request = {
            "workload": workload,
            "device": base.device,
            "size": size,
            "dtype": dtype,
            "budget_s": budget_s,
            "max_failure": p,
            "repeats": repeats,
            "grid": [c.to_dict() for c in cands],
            "params": params or {},
            "plugins": list(plugins),
            "build": {k: env.get(k) for k in ("torch", "torch_build", "device_name")},
        }
        start = time.monotonic()
        plan, resumed = _load_plan(folder, request)
        if plan is None:
            log(
                f"advisor: {workload!r} on {base.device} [{env.get('device_name')}], torch {env.get('torch')}; "
                f"{len(cands)} configurations; calibrating ..."
            )
            cal = _calibrate(base, work, folder)
            plan = _budget.make_plan(cands, unit, cal, budget_s=budget_s, repeats=repeats, max_failure=p)
            _save_plan(folder, request, plan)
        else:
            log(f"advisor: resuming the plan in {folder}")
        log(plan.describe())
        log(
            "a request is one workload step (for mlp: one forward pass of its input rows); a batched call of "
            "size B serves B requests; every measurement serves the same number of requests"
        )

        bar = _bar(plan, progress)
        trial_store = os.path.join(folder, "trials.jsonl") if folder else None
        tp_store = _measure.ThroughputStore(os.path.join(folder, "throughput.jsonl") if folder else None)
        rows: list[dict[str, Any]] = []
        try:
            for r in range(plan.repeats):  # interleaved: drift spreads over every configuration
                for c in plan.candidates:
                    cfg = _measure.config_for(c, base, plan.requests, work, verify=False)
                    bar.set_postfix_str(c.label, refresh=False)
                    row, _ = _measure.measure_throughput(c, cfg, r, tp_store)
                    rows.append(row)
                    bar.update(1)
            rows_df = pd.DataFrame.from_records(rows)
            trials, picked, notes = _trials_phase(
                plan, base, rows_df, work, trial_store, bar, deadline=start + 1.1 * budget_s
            )
        finally:
            bar.close()
        table = _decide.build_table(plan, rows_df, trials, picked)
        trial_s = plan.calibration.trial_cost_s(plan.requests) / _budget.SAFETY
        recommended, text = _decide.recommendation(plan, table, trial_s)
        all_trials = (
            pd.concat([t.assign(configuration=k) for k, t in trials.items()], ignore_index=True)
            if trials
            else pd.DataFrame()
        )
        if folder:
            table.to_csv(os.path.join(folder, "table.csv"), index=False)
            with open(os.path.join(folder, "result.json"), "w") as f:
                json.dump(
                    {
                        "recommended": recommended,
                        "text": text,
                        "plan": plan.to_dict(),
                        "notes": notes,
                        "table": _decide.as_records(table),
                        "environment": env,
                    },
                    f,
                    indent=2,
                    default=str,
                )
        return AdvisorResult(plan, table, recommended, text, rows_df, all_trials, folder, resumed, notes)
    finally:
        if folder is None:  # nothing stored: the batched plugins written for this call go with it
            shutil.rmtree(work, ignore_errors=True)


def _trials_phase(
    plan: _budget.Plan, base: StressConfig, rows: pd.DataFrame, work: str, store: str | None, bar: Any, deadline: float
) -> tuple[dict[str, pd.DataFrame], str | None, list[str]]:
    """Trials fastest first; each in chunks, stopped at its first failure; the first that qualifies is the pick."""
    trials: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    order = [
        c
        for c in _decide.speed_order(rows, plan.candidates)
        if not (rows[rows["label"] == c.label]["outcome"] != Outcome.OK).any()
    ][: plan.tested]
    chunk = max(5, plan.trials_per // 5)
    timeout = _measure.trial_timeout(plan.calibration.trial_cost_s(plan.requests))
    for c in order:
        cfg = _measure.config_for(c, base, plan.requests, work, verify=True)
        bar.set_postfix_str(f"trials: {c.label}", refresh=False)
        n = 0
        while n < plan.trials_per:
            if time.monotonic() > deadline:
                notes.append(f"trials stopped at the budget's end ({c.label}: {n} trials)")
                break
            n = min(plan.trials_per, n + chunk)
            df = _measure.run_candidate_trials(cfg, n, store=store, timeout_s=timeout)
            bar.update(len(df) - (len(trials[c.label]) if c.label in trials else 0))
            trials[c.label] = df
            if (df["outcome"] != Outcome.OK).any():
                break
        if notes:
            break
        df = trials.get(c.label)
        if df is not None and len(df):
            _, _, bound = _decide.candidate_bound(df["outcome"].tolist(), plan.alpha, plan.tested)
            if (df["outcome"] == Outcome.OK).all() and bound < plan.max_failure:
                return trials, c.label, notes
    return trials, None, notes


def _calibrate(base: StressConfig, work: str, folder: str | None) -> _budget.Calibration:
    """One short in-process measurement and a few trials of one thread serving requests."""
    t0 = time.monotonic()
    c0 = _grid.Candidate("threaded", 1, None, 0, "shared")
    probe = _measure.config_for(c0, base, 8, work, verify=False)
    run_stress(probe)  # first run: one-time costs (allocator, kernels) not counted
    walls, per = [], []
    for _ in range(2):
        w0 = time.perf_counter()
        res = run_stress(probe)
        walls.append(time.perf_counter() - w0 - res.seconds)
        per.append(res.seconds / 8)
    n1 = int(min(max(16, 0.05 / max(min(per), 1e-7)), 100_000))
    for _ in range(2):  # the minimum: a busy machine makes runs slower, never faster
        per.append(run_stress(probe.replace(iterations=n1)).seconds / n1)
    per_s, overhead = max(min(per[2:]), 1e-7), max(min(walls), 0.0)
    trial_cfg = probe.replace(iterations=16, verify=True)
    store = os.path.join(folder, "trials.jsonl") if folder else None
    label = f"calibration {time.time():.0f}"  # timed, so never read back from the store
    _measure.run_candidate_trials(trial_cfg, 1, store=store, timeout_s=120.0, label=label)  # starts the launcher
    w1 = time.perf_counter()
    _measure.run_candidate_trials(trial_cfg, 3, store=store, timeout_s=120.0, label=label)
    trial_s = (time.perf_counter() - w1) / 2
    return _budget.Calibration(
        per_request_s=per_s,
        run_overhead_s=overhead,
        trial_s=trial_s,
        trial_requests=16,
        elapsed_s=time.monotonic() - t0,
    )


def _load_plan(folder: str | None, request: dict[str, Any]) -> tuple[_budget.Plan | None, bool]:
    if not folder:
        return None, False
    path = os.path.join(folder, "plan.json")
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None, False
    if json.dumps(saved.get("request"), sort_keys=True, default=str) != json.dumps(
        request, sort_keys=True, default=str
    ):
        return None, False
    return _budget.Plan.from_dict(saved["plan"]), True


def _save_plan(folder: str | None, request: dict[str, Any], plan: _budget.Plan) -> None:
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, "plan.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"request": request, "plan": plan.to_dict()}, f, indent=2, default=str)
    os.replace(tmp, os.path.join(folder, "plan.json"))


def _tmp_folder() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="mpslab-advisor-")


def _bar(plan: _budget.Plan, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    total = plan.repeats * len(plan.candidates) + plan.tested * plan.trials_per
    return tqdm(total=total, desc="advise", unit="step", disable=not enabled, leave=False)
