"""What each ``python -m mpslab`` subcommand does, once its arguments are parsed.

One function per subcommand (``cmd_<name>``), grouped by what they serve: ``listings``
(workloads, scenarios, casebook), ``stress`` (stress, shrink), ``trials`` (trials,
--until-bound), ``studies`` (compare, matrix, advise), ``report`` (run, merge). Each builds
what it needs from the parsed arguments, calls one study, prints, and returns the exit
code. ``base`` holds the exit codes and the arguments -> ``StressConfig`` mapping, made
from the config's own field list. Not here: the parser and the error handling
(``mpslab.cli``), which imports this package (never the other way).
"""

from mpslab.commands.base import EXIT_BAD_INPUT, BadInput, config_fields, config_from_args

__all__ = ["EXIT_BAD_INPUT", "BadInput", "config_fields", "config_from_args"]
