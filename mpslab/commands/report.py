"""The report subcommands: ``run`` (the notebook series) and ``merge`` (report folders into one)."""

from __future__ import annotations

import argparse

from mpslab.commands.base import EXIT_FAILED, EXIT_OK, BadInput
from mpslab.run.config import collect_params

__all__ = ["cmd_run", "cmd_merge"]


def cmd_run(args: argparse.Namespace) -> int:
    from mpslab.report.pipeline import PipelineError, run_series

    params = collect_params(args.params)
    try:
        result = run_series(profile=args.profile, device=args.device, out=args.out, only=args.only, params=params)
    except PipelineError as exc:
        raise BadInput(f"mpslab run: error: {exc}") from None
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_merge(args: argparse.Namespace) -> int:
    from mpslab.report.index import ReportError, merge_reports

    try:
        manifest = merge_reports(args.out, args.parts)
    except ReportError as exc:
        raise BadInput(f"mpslab merge: error: {exc}") from None
    for e in manifest["notebooks"]:
        print(f"  {e['name']:<28} {e.get('status')!s:<7} {e.get('profile') or '?':<6} {e.get('device') or '?'}")
    print(f"{manifest['summary']}; index: {args.out}/index.html")
    return EXIT_OK if all(e.get("status") == "ok" for e in manifest["notebooks"]) else EXIT_FAILED
