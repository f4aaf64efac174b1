"""Shrink a failing configuration to a minimal standalone reproducer and a ready bug report.

``shrink(config, ...)`` refuses a workload that cannot be written out standalone
(one ``Unsupported`` line, before any trial), then runs the search
(``search.shrink_config``: each candidate judged by isolated trials), and writes
``repro_<name>.py`` (``script``) and ``report_<name>.md`` (``report``) into
``out_dir``. A configuration that does not fail is reported as such after the
trials that show it (``ShrinkResult.failed`` is False, nothing is written).
Modules: ``source`` (torch-only source of a workload), ``search``, ``script``, ``report``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mpslab.studies.shrink.search import ShrinkSearch, shrink_config
from mpslab.studies.shrink.source import Unsupported, standalone_source

__all__ = ["shrink", "ShrinkResult", "Unsupported"]


@dataclass
class ShrinkResult:
    search: ShrinkSearch
    failed: bool
    script: str | None = None
    report: str | None = None


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
    if search.outcome == "ok":
        return ShrinkResult(search, False)
    os.makedirs(out_dir, exist_ok=True)
    script_name = f"repro_{label}.py"
    script = write_script(
        os.path.join(out_dir, script_name), search.final.config, workload, runs=repro_runs, timeout_s=timeout_s
    )
    text = script_text(search.final.config, workload, runs=repro_runs, timeout_s=timeout_s)
    report = os.path.join(out_dir, f"report_{label}.md")
    with open(report, "w", encoding="utf-8") as fh:
        fh.write(report_text(search, workload, script_name, text, collect_env(python)))
    return ShrinkResult(search, True, script, report)
