"""Running the scenario library: the listing, the isolated-trial runs, and the one summary table.

``scenario_listing()``  one row per scenario: name, what it does, source, the backends and
                        dtypes where it applies, whether it needs a cold process;
``scenario_config(name, device, ...)``  the scenario's ``StressConfig`` (``ConfigError`` where
                        it does not apply);
``run_library(...)``    every chosen scenario as isolated trials; returns (trial rows, table);
``library_table(...)``  scenario, citation, trials, outcomes by class, failure rate and its
                        interval, ops/s; scenarios that cannot run there say why.

Bad input (an unknown scenario, a named scenario that does not apply to the
device or dtype) is refused with one ``ConfigError`` line before any trial runs.
The figure is ``mpslab.report.plots.plot_scenario_rates``. Not the catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from mpslab.run.backends import CpuBackend, CudaBackend, MpsBackend
from mpslab.run.config import ConfigError, StressConfig
from mpslab.run.workloads import get_workload
from mpslab.studies.scenarios.catalogue import SCENARIOS, get_scenario, scenario_names
from mpslab.trials.isolate import OUTCOMES, run_trials
from mpslab.trials.stats import failure_rate

__all__ = ["scenario_listing", "scenario_config", "run_library", "library_table", "TABLE_COLUMNS"]

_BACKENDS = (("cpu", CpuBackend.dtypes), ("cuda", CudaBackend.dtypes), ("mps", MpsBackend.dtypes))

TABLE_COLUMNS = [
    "scenario",
    "citation",
    "status",
    "trials",
    *OUTCOMES,
    "failures",
    "failure_rate",
    "rate_low",
    "rate_high",
    "ops_per_s",
]


def _applies_where(name: str) -> tuple[str, str]:
    wl = get_workload(name)
    kinds, dtypes = [], []
    for kind, offered in _BACKENDS:
        ok = [d for d in offered if wl.not_applicable(kind, d) is None]
        if ok:
            kinds.append(kind)
            dtypes.extend(d for d in ok if d not in dtypes)
    return ",".join(kinds) or "none", ",".join(dtypes) or "none"


def scenario_listing() -> pd.DataFrame:
    """name, does, source, backends, dtypes, cold (needs a fresh process), params (declared, defaults)."""
    rows = []
    for s in SCENARIOS:
        backends, dtypes = _applies_where(s.name)
        wl = get_workload(s.name)
        rows.append(
            {
                "name": s.name,
                "does": s.does,
                "source": s.source,
                "backends": backends,
                "dtypes": dtypes,
                "cold": s.cold,
                "launch": s.launch,
                "params": ",".join(f"{k}={p.default}" for k, p in sorted(wl.params.items())),
            }
        )
    return pd.DataFrame(rows)


def scenario_config(
    name: str,
    device: str = "auto",
    *,
    dtype: str = "float32",
    threads: int | None = None,
    iterations: int | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
) -> StressConfig:
    """The library's config for scenario ``name``; ``ConfigError`` (one line) if unknown or not applicable."""
    try:
        s = get_scenario(name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    merged = dict(s.params)
    merged.update(params or {})
    return StressConfig(
        workload=s.name,
        device=device,
        dtype=dtype,
        threads=threads or s.threads,
        iterations=iterations or s.iterations,
        size=s.size,
        warmup=s.warmup,
        sync_every=s.sync_every,
        params=merged,
        seed=seed,
    )


def plan_library(
    scenarios: Sequence[str] | str | None, device: str, dtype: str, threads: int | None, iterations: int | None
) -> list[tuple[str, StressConfig | None, str]]:
    """(name, config or None, why not applicable) per scenario, every input checked before a trial runs.

    Names given explicitly must apply to ``device``/``dtype`` (a ``ConfigError`` says why not); with ``None``
    or ``"all"`` the library's scenarios that do not apply come back with ``None`` and the reason, so a
    table can list them as not applicable."""
    if isinstance(scenarios, str):
        scenarios = [scenarios] if scenarios != "all" else None
    explicit = scenarios is not None
    names = list(scenarios) if explicit else scenario_names()
    unknown = [n for n in names if n not in scenario_names()]
    if unknown:
        raise ConfigError(f"scenario={unknown[0]!r}: unknown; known: {', '.join(scenario_names())}")
    plan = []
    for n in names:
        try:
            plan.append((n, scenario_config(n, device, dtype=dtype, threads=threads, iterations=iterations), ""))
        except ConfigError as exc:
            if explicit or "not applicable" not in str(exc):
                raise
            plan.append((n, None, str(exc).split(": not applicable ", 1)[-1]))
    return plan


def run_library(
    scenarios: Sequence[str] | str | None = None,
    device: str = "auto",
    *,
    trials: int = 5,
    timeout_s: float = 120.0,
    dtype: str = "float32",
    threads: int | None = None,
    iterations: int | None = None,
    store: str | None = None,
    progress: bool | None = None,
    client: Any = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each scenario as ``trials`` isolated trials; returns (every trial's row, ``library_table``).

    ``scenarios``: names, or ``None`` / ``"all"`` for the whole library (then the ones that
    do not apply to ``device``/``dtype`` appear in the table as not applicable, with why).
    ``threads`` / ``iterations`` override the catalogue's (smaller runs); cold scenarios keep
    ``warmup=0``; ``exit-after-work`` runs in ``spawn`` children. ``store``: a JSON-lines
    file that a re-run resumes; ``client``: run the trials on a Dask client's workers.
    """
    plan = plan_library(scenarios, device, dtype, threads, iterations)  # all checks before any trial
    frames, skipped = [], {}
    for name, config, why in plan:
        if config is None:
            skipped[name] = why
            continue
        mode = get_scenario(name).launch
        df = run_trials(
            config, trials=trials, timeout_s=timeout_s, store=store, mode=mode, progress=progress, client=client
        )
        frames.append(df.assign(scenario=name))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["scenario", "outcome"])
    return rows, library_table(rows, skipped, order=[n for n, _, _ in plan])


def library_table(
    rows: pd.DataFrame, not_applicable: dict[str, str] | None = None, order: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per scenario: citation, status, trials, outcome counts, failure rate [low, high], median ops/s."""
    not_applicable = not_applicable or {}
    names = list(order) if order is not None else list(dict.fromkeys(rows["scenario"]))
    out = []
    for name in names:
        entry: dict[str, Any] = {"scenario": name, "citation": get_scenario(name).source}
        if name in not_applicable:
            entry.update(status=f"not applicable: {not_applicable[name]}", trials=0)
            out.append(entry)
            continue
        sub = rows[rows["scenario"] == name]
        rate = failure_rate(sub["outcome"].tolist())
        counts = sub["outcome"].value_counts()
        entry.update(
            status="ran",
            trials=len(sub),
            **{o: int(counts.get(o, 0)) for o in OUTCOMES},
            failures=rate.failures,
            failure_rate=rate.rate,
            rate_low=rate.low,
            rate_high=rate.high,
            ops_per_s=float(pd.to_numeric(sub["ops_per_s"], errors="coerce").median()),
        )
        out.append(entry)
    table = pd.DataFrame(out, columns=TABLE_COLUMNS)
    for col in ("trials", *OUTCOMES, "failures"):
        table[col] = table[col].astype("Int64")
    return table
