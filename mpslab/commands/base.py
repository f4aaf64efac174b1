"""The subcommands' shared ground: exit codes, refused input, and parsed arguments -> ``StressConfig``.

The mapping is read from ``StressConfig``'s fields (their ``option`` metadata), the same
list the parser's flags are made from (``mpslab.cli.add_stress_arguments``), so a field
added to the config reaches both without a hand-written list here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from mpslab.run.config import StressConfig
from mpslab.trials.outcomes import Outcome

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_BAD_INPUT",
    "BadInput",
    "config_fields",
    "config_from_args",
    "config_dict_from_args",
    "args_named",
    "print_json",
    "print_listing",
    "print_failed",
]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    """Refused input: printed as one line, exit 2."""


def config_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The StressConfig fields the stress arguments give, unvalidated (repeated flags collected)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(StressConfig):
        value = getattr(args, f.name)
        collect = f.metadata.get("collect")
        out[f.name] = collect(value) if collect is not None else value
    return out


def config_from_args(args: argparse.Namespace) -> StressConfig:
    return StressConfig(**config_fields(args))


def config_dict_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The fields as a dict for workers to validate; plugin files by absolute path (sent by content)."""
    fields = config_fields(args)
    fields["plugins"] = [os.path.abspath(p) if p.endswith(".py") else p for p in args.plugins]
    return fields


def args_named(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The parsed arguments ``names`` as keywords, for a study whose parameters bear the same names."""
    return {name: getattr(args, name) for name in names}


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_listing(rows: Any, as_json: bool, lines: Callable[[Any], Iterable[str]]) -> int:
    """A listing command's output: the table as JSON records, or ``lines(row)`` for each row."""
    if as_json:
        print_json(rows.to_dict(orient="records"))
        return EXIT_OK
    for row in rows.itertuples():
        for line in lines(row):
            print(line)
    return EXIT_OK


def how_it_ended(row: Any) -> str:
    """``SIGSEGV``, ``exit 3`` or ``timeout`` for a crash or hang row; ``-`` otherwise."""
    if row["outcome"] == Outcome.HANG:
        return "timeout"
    if row["outcome"] == Outcome.CRASH:
        if isinstance(row["signal"], str):
            return row["signal"]
        return f"exit {row['exit_code']}"
    return "-"


def print_failed(df: Any, most: int = 10, heading: bool = False) -> None:
    """The first ``most`` failed trials of a frame, one line each (outcome, how it ended, first error)."""
    failed = df[df["outcome"] != Outcome.OK]
    if heading and len(failed):
        print(f"failed trials{f' (first {most})' if len(failed) > most else ''}:")
    for _, r in failed.head(most).iterrows():
        print(f"  trial {int(r['trial']):>4}  {r['outcome']:<8}  {how_it_ended(r):<8}  {r['first_error'] or ''}")
