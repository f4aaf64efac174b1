"""Fixtures shared by several test modules."""

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
