"""The studies layer: the questions a notebook asks, built on runs and trials.

Lives here: the coverage probes, the edge-case catalogue and sweeps (catalogues are data, their
runners small). Imports ``mpslab.run`` and ``mpslab.trials``; never the report layer.
"""
