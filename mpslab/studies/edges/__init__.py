"""The edge-case catalogue: what should happen, what did, and whether the rest survived.

A table of error-handling patterns read in code says what should happen, not what does. Here
each edge case is an action with an expected outcome per backend (an exception type
and message fragment, or "completes with the right result", or "not applicable"
with the reason). Every case runs twice: alone, and while other threads keep
computing checked matmuls. After each run a canary computation must give the
right answer (``healthy``), and the other threads must have finished with right
results (``isolated``).

Statuses: ``pass`` (the expected outcome in both runs, isolated and healthy),
``fail`` (anything else; the ``traceback`` column says what), ``not applicable``
(the case does not exist on that backend), ``not run`` (backend not present).

The package, module by module: ``expect`` (statuses, ``Expect``, ``EdgeCase``), ``cases``
(in-process actions), ``process`` (actions that start a child from ``mpslab.studies.scripts``),
``harness`` (mpslab's own refused inputs), ``catalogue`` (the data: every case and its
expectation per backend), ``health`` (canary and background threads) and ``runner``
(``run_case``, ``run_edges``, ``edge_failures``). This module only re-exports their public names.
"""

from mpslab.studies.edges import expect
from mpslab.studies.edges.catalogue import CASES, edge_catalogue, get_case, list_cases
from mpslab.studies.edges.expect import *  # noqa: F403  (statuses, Expect, EdgeCase, CaseContext ...: its __all__)
from mpslab.studies.edges.health import canary
from mpslab.studies.edges.runner import edge_failures, run_case, run_edges

__all__ = [
    *expect.__all__,
    "CASES",
    "list_cases",
    "get_case",
    "edge_catalogue",
    "canary",
    "run_case",
    "run_edges",
    "edge_failures",
]
