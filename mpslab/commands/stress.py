"""The single-configuration subcommands: ``stress`` (one in-process run) and ``shrink`` (a minimal reproducer)."""

from __future__ import annotations

import argparse
import sys

from mpslab.commands.base import EXIT_FAILED, EXIT_OK, BadInput, args_named, config_from_args, print_json
from mpslab.trials.outcomes import Outcome

__all__ = ["cmd_stress", "cmd_shrink"]


def cmd_stress(args: argparse.Namespace) -> int:
    from mpslab.run.environment import environment
    from mpslab.run.result import run_header
    from mpslab.run.runner import run_stress

    config = config_from_args(args)
    # The header goes out before any work (to stderr under --json, whose stdout is the JSON alone): a long
    # run or replay never shows an empty screen. The replay's bar is drawn on a terminal only (a log file
    # would get a line per redraw).
    print(run_header(config, environment(config.device)), file=sys.stderr if args.json else sys.stdout, flush=True)
    result = run_stress(config, progress=sys.stderr.isatty())
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.summary(header=False))
    return EXIT_OK if result.outcome == Outcome.OK else EXIT_FAILED


def cmd_shrink(args: argparse.Namespace) -> int:
    from mpslab.studies.shrink import Unsupported, shrink

    config = config_from_args(args)
    try:
        result = shrink(
            config,
            **args_named(args, "trials", "timeout_s", "python", "name", "keep_fraction", "repro_runs"),
            out_dir=args.out,
            log=lambda line: print(line, flush=True),
        )
    except Unsupported as exc:
        raise BadInput(f"mpslab shrink: error: {exc}") from None
    s = result.search
    if not result.failed:
        print(
            f"mpslab shrink: the configuration did not fail in {s.original.trials} isolated trials "
            f"({s.original.outcomes}): nothing to shrink"
        )
        return EXIT_FAILED
    print("path taken:")
    for line in s.path:
        print(f"  {line}")
    print(f"wrote {result.script}\nwrote {result.report}")
    return EXIT_OK
