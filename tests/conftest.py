"""Fixtures shared by several test modules."""

import os

import pytest

from mpslab import register_workload
from mpslab.run.workloads import unregister_workload


@pytest.fixture
def workload():
    """``workload(name, step, **kw) -> Workload``: register a temporary workload, removed after the test."""
    names = []

    def add(name, step, **kw):
        wl = register_workload(name, step, description=kw.pop("description", name), **kw)
        names.append(name)
        return wl

    yield add
    for n in names:
        unregister_workload(n)


@pytest.fixture(scope="session")
def quick_series(tmp_path_factory):
    """The whole notebook series in the quick profile on the CPU, run once per session:
    ``(SeriesResult, out folder, log lines)``. test_pipeline checks the series; test_edges and
    test_probes read notebooks 02's and 01's tables and figures from ``out/data`` and ``out/figures``."""
    pytest.importorskip("papermill")
    from mpslab.report.pipeline import run_series

    out = tmp_path_factory.mktemp("report")
    lines = []
    with pytest.MonkeyPatch.context() as mp:
        # ipykernel stops forwarding what native code writes to fd 1/2 when it sees this variable
        # (pytest's own capture); without it the kernels behave as under `mpslab run`, and the
        # no-stderr test sees what a reader of the executed copies sees.
        mp.delenv("PYTEST_CURRENT_TEST", raising=False)
        result = run_series(profile="quick", device="cpu", out=str(out), log=lines.append)
    return result, out, lines


# Property tests (hypothesis) run a fixed, derandomised set of examples: the same every run, so CI
# cannot flake on a rare draw; `HYPOTHESIS_PROFILE=explore` draws fresh examples for a local hunt.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, max_examples=60, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
