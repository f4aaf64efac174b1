"""The coverage walkthrough: backend paths, each driven by a probe, with evidence.

Reading code "verifies" a list of MPSStream and MPSAllocator functions without
running any. Here every path in that list (and its CUDA and CPU counterpart, where one
exists) is a ``Probe``: a Python action that drives the path through torch's
public API, run once alone and once from T threads at once, whose results are
checked, and around which evidence is collected that the path was really taken.

Statuses (``STATUSES``; ``STATUS_MEANING`` says the same in words):

covered         ran alone and from T threads, results right, and the evidence
                this backend can give (``Need``) was collected in this run
exercised       ran alone and from T threads, results right, but no evidence is
                available on this backend, or the evidence named was not seen
                (the ``evidence`` column says which)
not applicable  the concept does not exist on this backend; nothing ran
not run         the backend is not on this machine (or was not asked for)
failed          the probe raised, hung, or a result was wrong (``error`` column)

Evidence comes from three places, all read during the probe: ``torch.profiler``
(op names on CPU and MPS; CUDA runtime calls such as ``cudaStreamWaitEvent``),
allocator counters (``torch.cuda.memory_stats`` deltas; ``torch.mps`` memory
counters sampled by the probe) and the probe's own observations (an event that
was pending before ``synchronize`` and complete after it; a child process that
exited with device work still queued).

The package, module by module: ``status`` (statuses, ``Evidence``, ``Need``), ``probe``
(``Probe``, ``Plan``, ``ProbeContext``), ``evidence`` (the profiler / counter collector; ``quiet``
keeps kineto's chatter off stderr), ``paths`` and ``memory_paths`` (the probe actions: streams and
events, the allocator), ``catalogue`` (the data: one
declaration per path and backend) and ``runner`` (``run_probe`` ... ``coverage_table``).
This module only re-exports their public names; it holds no code of its own.
"""

from mpslab.studies.child import CRASH_MARKERS, ChildResult, run_child, run_script
from mpslab.studies.probes import status
from mpslab.studies.probes.catalogue import PROBES, get_probe, list_probes, probe_catalogue
from mpslab.studies.probes.paths import SHUTDOWN_SCRIPT
from mpslab.studies.probes.probe import Plan, Probe, ProbeContext, ProbeOutcome
from mpslab.studies.probes.runner import coverage_matrix, coverage_table, run_probe, run_probes
from mpslab.studies.probes.status import *  # noqa: F403  (the statuses, Evidence, Need, ProbeFailure: its __all__)

__all__ = [
    *status.__all__,
    "Plan",
    "Probe",
    "ProbeContext",
    "ProbeOutcome",
    "PROBES",
    "list_probes",
    "get_probe",
    "probe_catalogue",
    "run_probe",
    "run_probes",
    "coverage_matrix",
    "coverage_table",
    "ChildResult",
    "run_child",
    "run_script",
    "SHUTDOWN_SCRIPT",
    "CRASH_MARKERS",
]
