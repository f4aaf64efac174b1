"""Shrink a failing configuration to a minimal standalone reproducer and a ready bug report.

``shrink(config, ...)`` refuses a workload that cannot be written out standalone
(one ``Unsupported`` line, before any trial), then runs the search
(``search.shrink_config``: each candidate judged by isolated trials), and writes
``repro_<name>.py`` (``script``) and ``report_<name>.md`` (``report``) into
``out_dir``; the script's header names the interpreter (and torch) that ran the
trials, the one it needs. A failure that survives with a single worker thread is
called thread affinity, not a race (``ShrinkSearch.notes``). A configuration that
does not fail is reported as such after the trials that show it
(``ShrinkResult.failed`` is False, nothing is written).
Modules: ``source`` (torch-only source of a workload), ``search``, ``script``, ``report``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mpslab.studies.shrink.search import ShrinkSearch, shrink_config
from mpslab.studies.shrink.source import Unsupported, standalone_source
from mpslab.trials.outcomes import Outcome

__all__ = ["shrink", "ShrinkResult", "Unsupported"]


@dataclass
class ShrinkResult:
    search: ShrinkSearch
    failed: bool
    script: str | None = None
    report: str | None = None


def _trial_interpreter(search: ShrinkSearch, python: str | None) -> tuple[str, str | None]:
    """The interpreter that ran the trials and its torch version, as the trials recorded them."""
    rows = search.final.rows
    found: dict[str, str | None] = {}
    for col in ("env_executable", "env_torch"):
        values = rows[col].dropna() if rows is not None and col in rows.columns else ()
        found[col] = str(values.iloc[0]) if len(values) else None
    if found["env_executable"]:
        return found["env_executable"], found["env_torch"]
    if python is None:
        import torch

        return sys.executable, torch.__version__
    return python, found["env_torch"]


def shrink(
    config: Any,
    *,
    trials: int = 10,
    timeout_s: float = 60.0,
    python: str | None = None,
    out_dir: str = ".",
    name: str | None = None,
    keep_fraction: float = 0.5,
    repro_runs: int = 10,
    log: Callable[[str], None] | None = None,
) -> ShrinkResult:
    import mpslab.studies.scenarios  # noqa: F401  (registers the scenario workloads)
    from mpslab.run.backends import resolve_device
    from mpslab.run.config import ConfigError, load_plugin
    from mpslab.run.workloads import get_workload
    from mpslab.studies.shrink.report import collect_env, report_text
    from mpslab.studies.shrink.script import script_text, write_script

    for spec in config.plugins:
        load_plugin(spec)
    workload = get_workload(config.workload)
    standalone_source(workload)  # refuse before any trial
    if not (0.0 < keep_fraction <= 1.0):
        raise ConfigError(f"keep_fraction={keep_fraction!r}: must be in (0, 1]")
    if config.device == "auto":
        from dataclasses import replace

        config = replace(config, device=resolve_device("auto"))
    label = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", config.workload)
    search = shrink_config(
        config, trials=trials, timeout_s=timeout_s, python=python, keep_fraction=keep_fraction, log=log
    )
    if search.outcome == Outcome.OK:
        return ShrinkResult(search, False)
    os.makedirs(out_dir, exist_ok=True)
    script_name = f"repro_{label}.py"
    runner, torch_version = _trial_interpreter(search, python)
    kw = dict(runs=repro_runs, timeout_s=timeout_s, python=runner, torch_version=torch_version, script_name=script_name)
    script = write_script(os.path.join(out_dir, script_name), search.final.config, workload, **kw)
    text = script_text(search.final.config, workload, **kw)
    report = os.path.join(out_dir, f"report_{label}.md")
    with open(report, "w", encoding="utf-8") as fh:
        fh.write(report_text(search, workload, script_name, text, collect_env(python), runner, torch_version))
    return ShrinkResult(search, True, script, report)
