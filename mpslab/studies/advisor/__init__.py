"""The advisor: which way of running concurrent inference is safe and fastest on this machine.

``advise(workload="mlp", device="cpu", budget="2m", max_failure=0.05)`` plans a grid of
ways to serve one workload (threads x concurrency control x sync pattern x streams, plus
one thread doing batched calls), fits it to a time budget, measures throughput in process
and failure rates in isolated trials, and recommends the configuration with the highest
median speed whose failure bound (Bonferroni-corrected) is below ``max_failure``, or says
why none qualified. Speeds come from a few repeats: their intervals are named by the level
they have, and a configuration is called slower than the pick only where an exact test
separates it (``speed``); otherwise the words are "tied with the pick within noise".

One concept per module:

    grid       the candidate configurations and the controls a backend can do
    batching   a workload's batched form as a workload of its own (so trials can run it)
    budget     time-budget parsing, calibration numbers and the plan that fits the budget
    measure    throughput rows and isolated trials, stored as they go (resumable)
    speed      the median's interval at its exact level; which speeds an exact test separates
    decide     Bonferroni bounds, verdicts, the table and the recommendation text
    advise     the orchestration: validate, calibrate, plan, measure, decide
    reread     a stored advice decided again from its folder, nothing run

Not here: plots (``mpslab.report.plots``) and the command line (``mpslab.cli``).
"""

from mpslab.studies.advisor.advise import AdvisorResult, advise
from mpslab.studies.advisor.budget import parse_budget, trials_needed
from mpslab.studies.advisor.grid import Candidate, build_grid

__all__ = ["advise", "AdvisorResult", "Candidate", "build_grid", "parse_budget", "trials_needed"]
