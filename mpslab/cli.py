"""The command line: ``python -m mpslab <command> ...``.

Exit codes: 0 the outcome was ok, 1 errors or mismatches (or failed trials /
notebooks) were found, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from mpslab.commands import EXIT_BAD_INPUT, BadInput, config_from_args
from mpslab.run.config import ConfigError, StressConfig
from mpslab.trials.records import TornRecordWarning

__all__ = [
    "main",
    "build_parser",
    "Parser",
    "add_stress_arguments",
    "add_field_argument",
    "add_timeout_argument",
    "config_from_args",
    "BadInput",
]


class Parser(argparse.ArgumentParser):
    """argparse that reports bad input in one line (no usage block), exits 2, and knows its flags.

    ``flags`` maps each destination to the option that sets it (``max_failure`` ->
    ``--max-failure``; the first option added for it), so a ``ConfigError`` naming a
    Python parameter can be worded as the flag the user typed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.flags: dict[str, str] = {}  # before argparse's own --help arrives through add_argument
        self.commands: dict[str, Parser] = {}  # a subcommand's name -> its parser (the top parser's)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"{self.prog}: error: {message}")

    def note(self, action: argparse.Action) -> argparse.Action:
        longest = max(action.option_strings, key=len, default=None)
        if longest is not None:
            self.flags.setdefault(action.dest, longest)
        return action

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:  # type: ignore[override]
        return self.note(super().add_argument(*args, **kwargs))

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument
        group.add_argument = lambda *a, **k: self.note(add(*a, **k))  # type: ignore[method-assign]
        return group


def add_field_argument(p: Any, name: str, **overrides: Any) -> None:
    """The flag of one ``StressConfig`` field, from its metadata; ``overrides`` (e.g. another default) win."""
    f = StressConfig.__dataclass_fields__[name]
    meta = f.metadata
    kwargs: dict[str, Any] = {"dest": f.name, "help": meta["help"]}
    if meta.get("repeat"):
        kwargs.update(action="append", default=[])
    else:
        kwargs["default"] = f.default
    kwargs.update({key: meta[key] for key in ("type", "metavar") if key in meta})
    kwargs.update(overrides)
    p.add_argument(meta.get("flag", "--" + f.name.replace("_", "-")), **kwargs)
    if "off" in meta:
        flag, value, words = meta["off"]
        p.add_argument(flag, dest=f.name, action="store_const", const=value, help=words)


def add_stress_arguments(p: argparse.ArgumentParser) -> None:
    """The StressConfig flags, shared by every command that runs a config: one per field, from its metadata."""
    g = p.add_argument_group("stress configuration")
    for f in dataclasses.fields(StressConfig):
        add_field_argument(g, f.name)


def add_timeout_argument(p: Any, default: float | None = 60.0) -> None:
    """``--timeout`` of every command that runs isolated trials; ``default=None`` leaves each case its own."""
    said = "(default: the case's)" if default is None else "(default %(default)s)"
    p.add_argument(
        "--timeout",
        dest="timeout_s",
        metavar="SECONDS",
        type=float,
        default=default,
        help=f"seconds before a trial is a hang {said}",
    )


def build_parser() -> Parser:
    from mpslab.commands import listings, report, stress, studies, trials  # the subcommands' bodies

    parser = Parser(prog="mpslab", description="Thread-stress and honest statistics for concurrent PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    parser.commands = sub.choices  # type: ignore[assignment]

    p = sub.add_parser("stress", help="one in-process stress run, checked by the serial-replay oracle")
    add_stress_arguments(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=stress.cmd_stress)

    p = sub.add_parser("run", help="execute the notebook series headlessly (papermill) and write the report")
    p.add_argument(
        "--profile", default="quick", help="quick | seed | full, from notebooks/profiles.yml (default %(default)s)"
    )
    add_field_argument(p, "device", default="cpu")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this notebook (stem or its NN number; repeatable)",
    )
    p.add_argument("--out", default="reports", help="output folder (default %(default)s)")
    p.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter in every selected notebook that declares it (repeatable)",
    )
    p.set_defaults(func=report.cmd_run)

    p = sub.add_parser("merge", help="merge report folders written separately (e.g. one per machine) into one")
    p.add_argument("out", help="the report folder to fill (created if missing; what it lists is kept)")
    p.add_argument("parts", nargs="+", metavar="PART", help="report folders of `mpslab run --out`; a later one wins")
    p.set_defaults(func=report.cmd_merge)

    p = sub.add_parser(
        "trials",
        help="isolated trials: each run in its own child process, outcomes classified, failure rate with its interval",
    )
    add_stress_arguments(p)
    t = p.add_argument_group("trials")
    t.add_argument("--trials", type=int, default=20, help="number of trials (default %(default)s)")
    add_timeout_argument(t)
    t.add_argument(
        "--python",
        default=None,
        metavar="PATH",
        help="run the trials under this interpreter (another venv / torch build)",
    )
    t.add_argument(
        "--store",
        default=None,
        metavar="FILE",
        help="append each trial to this JSON-lines file; re-running resumes the batch",
    )
    t.add_argument(
        "--mode",
        default="auto",
        choices=("auto", "spawn", "forkserver"),
        help="how children start: auto = forkserver on Linux, else spawn (default %(default)s)",
    )
    t.add_argument(
        "--batch",
        default=None,
        metavar="LABEL",
        help="label a new batch of an otherwise identical run in the same store",
    )
    t.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:8786",
        help="run the trials on this Dask scheduler's workers (each trial still in its own child process)",
    )
    t.add_argument(
        "--pool",
        action="store_true",
        help="pool trials of different environments (host, torch build, device) into one rate",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    u = p.add_argument_group("run until the claim is supported (planned zero-failure test)")
    u.add_argument(
        "--until-bound",
        default=None,
        metavar="RATE",
        help="run until 'failure rate below RATE' (e.g. 1%%) is shown at 95%%, or a limit; replaces --trials",
    )
    u.add_argument("--max-trials", type=int, default=None, metavar="N", help="stop after N trials at most")
    u.add_argument("--max-time", default=None, metavar="DURATION", help="stop after this long, e.g. 10m, 90s")
    u.add_argument("--stop-on-failure", action="store_true", help="stop at the first failed trial")
    p.add_argument("--json", action="store_true", help="print the failure rate and every trial as JSON")
    p.set_defaults(func=trials.cmd_trials)

    p = sub.add_parser(
        "compare",
        help="two torch builds (interpreters) on the same scenarios: failure "
        "rates with Barnard's exact test, throughput ratio with a bootstrap interval",
    )
    p.add_argument(
        "--a", dest="python_a", required=True, metavar="PYTHON", help="interpreter a (e.g. the release's venv python)"
    )
    p.add_argument(
        "--b", dest="python_b", required=True, metavar="PYTHON", help="interpreter b (e.g. the patched build's)"
    )
    p.add_argument(
        "--scenarios",
        nargs="+",
        default=[],
        metavar="NAME",
        help="scenario names (default: the whole library that applies to the device)",
    )
    p.add_argument("--trials", type=int, default=20, help="trials per scenario and side (default %(default)s)")
    p.add_argument(
        "--block",
        type=int,
        default=2,
        help="trials per interleaved block (default %(default)s); the throughput ratio's unit is the round "
        "(an interval needs 6 or more rounds at 95%%)",
    )
    add_timeout_argument(p)
    add_field_argument(p, "device")
    p.add_argument("--threads", type=int, default=None, help="override every scenario's thread count")
    p.add_argument("--iterations", type=int, default=None, help="override every scenario's iterations")
    p.add_argument("--store", default=None, metavar="FILE", help="JSON-lines store; a re-run resumes it")
    p.add_argument(
        "--same-build-ok",
        action="store_true",
        help="allow two interpreters reporting the same torch build (an A/A check of the method)",
    )
    p.add_argument("--csv", default=None, metavar="FILE", help="also write the per-scenario table as CSV")
    p.add_argument("--workload", default=None, help="compare this registered workload instead of scenarios")
    add_field_argument(p, "plugins")
    add_field_argument(p, "params", help="a workload parameter for --workload (repeatable)")
    p.add_argument("--size", type=int, default=64, help="--workload's size (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=studies.cmd_compare)

    p = sub.add_parser("casebook", help="list the casebook: cited concurrency bugs of released torch, and controls")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=listings.cmd_casebook)

    p = sub.add_parser(
        "matrix", help="casebook cases under several interpreters (torch builds): failure rates, first failing build"
    )
    p.add_argument("--pythons", nargs="+", required=True, metavar="PYTHON", help="interpreters, oldest build first")
    p.add_argument("--cases", nargs="+", default=[], metavar="NAME", help="case names (default: all that apply)")
    p.add_argument("--trials", type=int, default=10, help="trials per case and build (default %(default)s)")
    p.add_argument("--block", type=int, default=5, help="trials per interleaved block (default %(default)s)")
    add_timeout_argument(p, default=None)
    add_field_argument(p, "device")
    p.add_argument("--out", default=None, metavar="DIR", help="store, tables and figure here; a re-run resumes")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=studies.cmd_matrix)

    p = sub.add_parser(
        "shrink",
        help="shrink a failing configuration to a minimal standalone reproducer "
        "(repro_<name>.py) and a bug report (report_<name>.md)",
    )
    add_stress_arguments(p)
    p.add_argument("--trials", type=int, default=10, help="isolated trials per candidate (default %(default)s)")
    add_timeout_argument(p)
    p.add_argument("--python", default=None, metavar="PATH", help="run the trials under this interpreter")
    p.add_argument(
        "--keep-fraction",
        type=float,
        default=0.5,
        help="keep a candidate if it fails at least this fraction of the original's rate (default %(default)s)",
    )
    p.add_argument(
        "--repro-runs", type=int, default=10, help="runs the written script does by default (default %(default)s)"
    )
    p.add_argument("--out", default=".", help="folder for repro_<name>.py and report_<name>.md (default %(default)s)")
    p.add_argument("--name", default=None, help="<name> in the file names (default: the workload's)")
    p.set_defaults(func=stress.cmd_shrink)

    p = sub.add_parser(
        "scenarios",
        help="list the scenario library: what each does, its source, where it applies, whether it needs a cold process",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=listings.cmd_scenarios)

    p = sub.add_parser(
        "advise",
        help="which way of running a workload concurrently is safe and fastest here: "
        "a budgeted grid, throughput in process, failure bounds in isolated trials",
    )
    add_field_argument(p, "workload", default="mlp")
    add_field_argument(p, "device")
    p.add_argument("--budget", default="10m", help="time budget, e.g. 90s, 10m, 1h (default %(default)s)")
    p.add_argument(
        "--max-failure",
        default="5%",
        help="the failure-rate bound a recommendation must show, e.g. 5%% or 0.05 (default %(default)s)",
    )
    p.add_argument("--threads", default=None, help="threads axis, e.g. 1,2,4,8 (default: per backend)")
    p.add_argument("--throttle", default=None, help="controls: none (no limit), 1 (global lock), k (semaphore of k)")
    p.add_argument("--sync", default=None, help="sync patterns: every, K (every K iterations), end")
    p.add_argument("--streams", default=None, help="shared, per-thread (where the backend has streams)")
    p.add_argument(
        "--batch-sizes", default=None, help="batched baseline sizes, e.g. 8,32 (workloads with a batched form)"
    )
    add_field_argument(p, "size")
    add_field_argument(p, "dtype")
    p.add_argument("--repeats", type=int, default=3, help="in-process throughput repeats (default %(default)s)")
    add_field_argument(p, "plugins")
    add_field_argument(p, "params")
    p.add_argument("--out", default=None, metavar="FOLDER", help="store every record here; the same command resumes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=studies.cmd_advise)

    p = sub.add_parser("workloads", help="list the registered workloads")
    add_field_argument(p, "plugins")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=listings.cmd_workloads)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        other = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            # A store's skipped lines in one line each (the message names file, count and lines): the
            # default display adds the mpslab source line that noticed them, which tells a user nothing.
            if issubclass(category, TornRecordWarning):
                print(f"mpslab: warning: {message}", file=sys.stderr if file is None else file)
            else:
                other(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    flags: dict[str, str] = {}
    try:
        args = parser.parse_args(argv)
        flags = parser.commands[args.command].flags
        return int(args.func(args))
    except BadInput as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConfigError as exc:
        print(f"mpslab: error: {exc.worded(flags)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("mpslab: interrupted", file=sys.stderr)
        return 130
