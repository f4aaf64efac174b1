"""The listing subcommands: ``workloads``, ``scenarios``, ``casebook`` (exit 0; ``--json`` for records)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from mpslab.commands.base import EXIT_OK, print_json, print_listing

__all__ = ["cmd_workloads", "cmd_scenarios", "cmd_casebook"]


def cmd_workloads(args: argparse.Namespace) -> int:
    from mpslab.run.config import load_plugin
    from mpslab.run.params import describe
    from mpslab.run.workloads import list_workloads

    for spec in args.plugins:
        load_plugin(spec)
    items = list_workloads()
    if args.json:
        print_json(
            [
                {
                    "name": w.name,
                    "kind": w.kind,
                    "description": w.description,
                    "setup": w.setup_fn is not None,
                    "params": {
                        k: {"type": p.type.__name__, "default": p.default, "help": p.help}
                        for k, p in sorted(w.params.items())
                    },
                }
                for w in items
            ]
        )
        return EXIT_OK
    width = max(len(w.name) for w in items)
    for w in items:
        tag = " [self-test]" if w.kind == "fault" else ""
        print(f"{w.name:<{width}}  {w.description}{tag}")
        if w.params:
            print(f"{'':<{width}}  params: {describe(w.params)}")
    return EXIT_OK


def _scenario_lines(r: Any) -> Iterator[str]:
    cold = "; cold process (isolated trials, warmup=0)" if r.cold else ""
    launch = f"; {r.launch} children" if r.launch != "auto" else ""
    yield f"{r.name}: {r.does}"
    yield f"    source: {r.source}"
    yield f"    applies: {r.backends} with {r.dtypes}{cold}{launch}" + (f"; params {r.params}" if r.params else "")


def cmd_scenarios(args: argparse.Namespace) -> int:
    from mpslab.studies.scenarios import scenario_listing

    return print_listing(scenario_listing(), args.json, _scenario_lines)


def _case_lines(r: Any) -> Iterator[str]:
    yield f"{r.name} [{r.kind}, {r.platform}, expected {r.expected}]: {r.title}"
    yield f"    symptom: {r.symptom}\n    versions: {r.versions}\n    links: {r.links}"


def cmd_casebook(args: argparse.Namespace) -> int:
    from mpslab.studies.casebook import casebook_listing

    return print_listing(casebook_listing(), args.json, _case_lines)
