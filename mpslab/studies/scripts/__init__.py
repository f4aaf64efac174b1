"""Child programs the coverage probes and the edge cases start (one module per program).

What lives here: small torch-only scripts run as ``python <file> args...`` through
``mpslab.studies.child.run_script``; each reads its arguments from ``sys.argv``, prints what it
saw on stdout and exits with a code the caller checks. They import torch and the standard
library only, so they run wherever torch does, with or without mpslab installed.

What does not: the code that starts them and judges their output (``mpslab.studies.child``,
the probes and the edge cases), and the isolated-trial children (``mpslab.trials``).
"""
