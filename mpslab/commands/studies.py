"""The studies' subcommands: ``compare`` (two builds), ``matrix`` (cases x builds), ``advise`` (a budgeted grid)."""

from __future__ import annotations

import argparse
import os
import sys

from mpslab.commands.base import EXIT_FAILED, EXIT_OK, BadInput, args_named, print_json
from mpslab.run.config import StressConfig, collect_params

__all__ = ["cmd_compare", "cmd_matrix", "cmd_advise", "compare_configs"]


def _progress(args: argparse.Namespace):
    """Progress lines on stderr, or None under ``--quiet``."""
    return None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))


def compare_configs(args: argparse.Namespace) -> dict[str, StressConfig] | None:
    """``compare --workload``: the one config to compare (None: the scenario library)."""
    if args.workload is None:
        if args.plugins or args.params:
            raise BadInput("mpslab compare: error: --plugin/--param need --workload")
        return None
    if args.scenarios:
        raise BadInput("mpslab compare: error: --workload and --scenarios exclude each other")
    from mpslab.run.config import load_plugin

    for spec in args.plugins:
        load_plugin(spec)
    plugins = tuple(os.path.abspath(p) if p.endswith(".py") else p for p in args.plugins)
    config = StressConfig(
        workload=args.workload,
        device=args.device,
        threads=args.threads or 4,
        iterations=args.iterations or 10,
        size=args.size,
        plugins=plugins,
        params=collect_params(args.params),
    )
    return {args.workload: config}


def cmd_compare(args: argparse.Namespace) -> int:
    from mpslab.studies.compare import compare_builds

    result = compare_builds(
        args.python_a,
        args.python_b,
        args.scenarios or None,
        configs=compare_configs(args),
        **args_named(args, "trials", "block", "timeout_s", "device", "store", "same_build_ok", "threads", "iterations"),
        progress=_progress(args),
    )
    if args.json:
        print_json(
            {
                "a": result.a.info,
                "b": result.b.info,
                "device": result.device,
                "scenarios": result.table.to_dict(orient="records"),
                "not_applicable": result.skipped,
            }
        )
    else:
        print(result.report())
    if args.csv:
        result.table.to_csv(args.csv, index=False)
    return EXIT_OK


def cmd_matrix(args: argparse.Namespace) -> int:
    from mpslab.report.matrix_plots import write_matrix
    from mpslab.studies.matrix import run_matrix

    if args.out:
        os.makedirs(args.out, exist_ok=True)
    store = os.path.join(args.out, "matrix.jsonl") if args.out else None
    result = run_matrix(
        args.pythons,
        args.cases or None,
        **args_named(args, "trials", "block", "timeout_s", "device"),
        store=store,
        progress=_progress(args),
    )
    print(result.report())
    if args.out:
        print(f"written: {', '.join(write_matrix(result, args.out))} (the same command resumes {store})")
    return EXIT_OK


def cmd_advise(args: argparse.Namespace) -> int:
    from mpslab.studies.advisor import advise
    from mpslab.studies.advisor.decide import format_table

    params = collect_params(args.params)
    result = advise(
        args.workload,
        args.device,
        args.budget,
        args.max_failure,
        threads=args.threads,
        throttle=args.throttle,
        sync=args.sync,
        streams=args.streams,
        batch_sizes=args.batch_sizes,
        size=args.size,
        dtype=args.dtype,
        repeats=args.repeats,
        out=args.out,
        progress=not args.no_progress,
        params=params or None,
        plugins=tuple(args.plugins),
    )
    print()
    print(format_table(result.table))
    print()
    print(result.text)
    if args.out:
        print(f"records: {args.out} (the same command again resumes)")
    return EXIT_OK if result.recommended else EXIT_FAILED
