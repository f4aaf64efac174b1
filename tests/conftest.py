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


# Property tests (hypothesis) run a fixed, derandomised set of examples: the same every run, so CI
# cannot flake on a rare draw; `HYPOTHESIS_PROFILE=explore` draws fresh examples for a local hunt.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, max_examples=60, deadline=None, print_blob=True)
settings.register_profile("explore", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
