"""The trials layer: one configuration run many times, each in its own child process.

Lives here: the child-process runner and its fork server, outcome classes, the fault self-test
workloads, the append-only record store and failure-rate statistics. Imports ``mpslab.run`` only.
"""
