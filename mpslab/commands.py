"""What each ``python -m mpslab`` subcommand does, once its arguments are parsed.

One function per subcommand: build what it needs from the parsed arguments, call one
study, print, and return the exit code (0 ok, 1 failures found, 2 bad input). Not here:
the parser, its argument groups and the error handling (``mpslab.cli``), which
imports this module (never the other way).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from mpslab.run.config import ConfigError, StressConfig

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    """Refused input: printed as one line, exit 2."""


def _config_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The StressConfig fields the stress arguments give (``add_stress_arguments``), unvalidated."""
    return dict(
        threads=args.threads,
        iterations=args.iterations,
        sync_every=args.sync_every,
        workload=args.workload,
        size=args.size,
        dtype=args.dtype,
        device=args.device,
        streams=args.streams,
        throttle=args.throttle,
        seed=args.seed,
        verify=args.verify,
        warmup=args.warmup,
        plugins=tuple(args.plugins),
        full_cap_mb=args.full_cap_mb,
        params=dict(_parse_param(p, "mpslab") for p in args.params),
    )


def config_from_args(args: argparse.Namespace) -> StressConfig:
    return StressConfig(**_config_fields(args))


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _parse_param(text: str, where: str = "mpslab run") -> tuple[str, Any]:
    import yaml

    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise BadInput(f"{where}: error: --param {text!r}: expected NAME=VALUE")
    try:
        return name.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise BadInput(f"{where}: error: --param {text!r}: VALUE is not a YAML scalar or list") from None


def _cmd_stress(args: argparse.Namespace) -> int:
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
        _print_json(result.to_dict())
    else:
        print(result.summary(header=False))
    return EXIT_OK if result.outcome == "ok" else EXIT_FAILED


def _cmd_workloads(args: argparse.Namespace) -> int:
    from mpslab.run.config import load_plugin
    from mpslab.run.params import describe
    from mpslab.run.workloads import list_workloads

    for spec in args.plugins:
        load_plugin(spec)
    items = list_workloads()
    if args.json:
        _print_json(
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


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from mpslab.studies.scenarios import scenario_listing

    df = scenario_listing()
    if args.json:
        _print_json(df.to_dict(orient="records"))
        return EXIT_OK
    for r in df.itertuples():
        cold = "; cold process (isolated trials, warmup=0)" if r.cold else ""
        launch = f"; {r.launch} children" if r.launch != "auto" else ""
        print(f"{r.name}: {r.does}")
        print(f"    source: {r.source}")
        print(f"    applies: {r.backends} with {r.dtypes}{cold}{launch}" + (f"; params {r.params}" if r.params else ""))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from mpslab.report.pipeline import PipelineError, run_series

    params = dict(_parse_param(p) for p in args.param)
    try:
        result = run_series(profile=args.profile, device=args.device, out=args.out, only=args.only, params=params)
    except PipelineError as exc:
        raise BadInput(f"mpslab run: error: {exc}") from None
    return EXIT_OK if result.ok else EXIT_FAILED


def _cmd_merge(args: argparse.Namespace) -> int:
    from mpslab.report.index import ReportError, merge_reports

    try:
        manifest = merge_reports(args.out, args.parts)
    except ReportError as exc:
        raise BadInput(f"mpslab merge: error: {exc}") from None
    for e in manifest["notebooks"]:
        print(f"  {e['name']:<28} {e.get('status')!s:<7} {e.get('profile') or '?':<6} {e.get('device') or '?'}")
    print(f"{manifest['summary']}; index: {args.out}/index.html")
    return EXIT_OK if all(e.get("status") == "ok" for e in manifest["notebooks"]) else EXIT_FAILED


def _how_it_ended(row: Any) -> str:
    """``SIGSEGV``, ``exit 3`` or ``timeout`` for a crash or hang row; ``-`` otherwise."""
    if row["outcome"] == "hang":
        return "timeout"
    if row["outcome"] == "crash":
        if isinstance(row["signal"], str):
            return row["signal"]
        return f"exit {row['exit_code']}"
    return "-"


def _cmd_until_bound(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from mpslab.trials.sequential import (
        ZeroFailurePlan,
        parse_duration,
        parse_target,
        run_until_bound,
        trials_chunk_runner,
    )

    try:
        target = parse_target(args.until_bound)
        max_time = parse_duration(args.max_time) if args.max_time is not None else None
    except ValueError as exc:
        raise BadInput(f"mpslab trials: error: {exc}") from None
    if args.max_trials is not None and args.max_trials < 1:
        raise BadInput(f"mpslab trials: error: --max-trials {args.max_trials}: must be >= 1")
    config = config_from_args(args)
    tmp = None
    store = args.store
    if store is None:
        fd, tmp = tempfile.mkstemp(prefix="mpslab-until-bound-", suffix=".jsonl")
        os.close(fd)
        store = tmp
    try:
        run_chunk, frames = trials_chunk_runner(
            config, store, timeout_s=args.timeout, python=args.python, mode=args.mode, batch=args.batch, progress=False
        )
        result = run_until_bound(
            run_chunk,
            ZeroFailurePlan(target),
            max_trials=args.max_trials,
            max_time_s=max_time,
            stop_on_failure=args.stop_on_failure,
            announce=lambda line: print(line, flush=True),
        )
    finally:
        if tmp is not None:
            os.unlink(tmp)
    df = frames[-1] if frames else None
    if df is not None:
        failed = df[df["outcome"] != "ok"]
        for _, r in failed.head(10).iterrows():
            print(f"  trial {int(r['trial']):>4}  {r['outcome']:<8}  {_how_it_ended(r):<8}  {r['first_error'] or ''}")
    print(
        f"until-bound: {result.trials} trials in {result.elapsed_s:.1f} s, stopped by {result.stopped_by}"
        + (f"; store: {args.store}" if args.store else "")
    )
    print(result.verdict())
    return EXIT_OK if result.met else EXIT_FAILED


def _cmd_trials(args: argparse.Namespace) -> int:
    from mpslab.trials.isolate import run_trials
    from mpslab.trials.stats import failure_rate, failure_rates

    if args.until_bound is not None:
        return _cmd_until_bound(args)
    client = None
    if args.scheduler:
        if args.python:
            raise ConfigError("--python: not with --scheduler (each worker uses its own interpreter)")
        from mpslab.trials.executors import connect

        config = _config_dict_from_args(args)  # validated by the workers (their devices, not ours)
        client = connect(args.scheduler)
    else:
        config = config_from_args(args)
    try:
        df = run_trials(
            config,
            trials=args.trials,
            timeout_s=args.timeout,
            python=args.python,
            store=args.store,
            mode=args.mode,
            batch=args.batch,
            progress=False if args.no_progress else None,
            client=client,
        )
    finally:
        if client is not None:
            client.close()
    per_env = failure_rates(df, pool=args.pool)
    rate = failure_rate(df, pool=True) if len(per_env) != 1 else per_env["result"].iloc[0]
    if args.json:
        _print_json(
            {
                "failure_rate": {
                    k: getattr(rate, k)
                    for k in (
                        "failures",
                        "trials",
                        "rate",
                        "low",
                        "high",
                        "confidence",
                        "method",
                        "sided",
                        "outcomes",
                        "verdict",
                    )
                },
                "per_environment": per_env.drop(columns=["result"]).to_dict(orient="records"),
                "trials": df.astype(object).where(df.notna(), None).to_dict(orient="records"),
            }
        )
        return EXIT_OK if rate.failures == 0 else EXIT_FAILED
    c = config if isinstance(config, StressConfig) else argparse.Namespace(**config)
    mode = df["launch"].dropna().iloc[0] if df["launch"].notna().any() else args.mode
    where = f"on {args.scheduler} ({df['worker'].nunique()} workers)" if args.scheduler else "here"
    print(
        f"mpslab trials: {args.trials} isolated trials of {c.workload!r} ({c.threads} threads x "
        f"{c.iterations} iterations, size {c.size}, {c.dtype}) on {c.device}, {where}; "
        f"{mode} mode, timeout {args.timeout:g} s"
    )
    counts = df["outcome"].value_counts()
    print("outcome   trials")
    for outcome in ("ok", "error", "mismatch", "crash", "hang", "lost"):
        if counts.get(outcome, 0):
            print(f"{outcome:<9} {int(counts[outcome]):>6}")
    failed = df[df["outcome"] != "ok"]
    if len(failed):
        print(f"failed trials{' (first 10)' if len(failed) > 10 else ''}:")
        for _, r in failed.head(10).iterrows():
            print(f"  trial {int(r['trial']):>4}  {r['outcome']:<8}  {_how_it_ended(r):<8}  {r['first_error'] or ''}")
    from mpslab.studies.summary import trial_notes

    for note in trial_notes(df):
        print(f"note: {note}")
    if args.store:
        print(
            f"store: {args.store} (batch {df.attrs.get('batch')}: {df.attrs.get('ran')} trials run now, "
            f"{df.attrs.get('resumed')} read back)"
        )
    if len(per_env) > 1 or args.scheduler:
        print("per environment (host, torch, build, device, interpreter):" if not args.pool else "pooled (--pool):")
        for _, r in per_env.iterrows():
            env = ", ".join(str(r[col]) for col in per_env.columns if col.startswith("env_"))
            print(f"  {env}: {r['verdict']}")
    if len(per_env) > 1:
        print(f"not pooled: {len(per_env)} environments differ (--pool pools them)")
        return EXIT_OK if rate.failures == 0 else EXIT_FAILED
    print(rate.verdict)
    return EXIT_OK if rate.failures == 0 else EXIT_FAILED


def _cmd_advise(args: argparse.Namespace) -> int:
    from mpslab.studies.advisor import advise

    params = dict(_parse_param(p, "mpslab advise") for p in args.params)
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
    from mpslab.studies.advisor.decide import format_table

    print()
    print(format_table(result.table))
    print()
    print(result.text)
    if args.out:
        print(f"records: {args.out} (the same command again resumes)")
    return EXIT_OK if result.recommended else EXIT_FAILED


def _config_dict_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The fields as a dict for workers to validate; plugin files by absolute path (sent by content)."""
    fields = _config_fields(args)
    fields["plugins"] = [os.path.abspath(p) if p.endswith(".py") else p for p in args.plugins]
    return fields


def _cmd_compare(args: argparse.Namespace) -> int:
    from mpslab.studies.compare import compare_builds

    configs = compare_configs(args)
    result = compare_builds(
        args.a,
        args.b,
        args.scenarios or None,
        configs=configs,
        trials=args.trials,
        block=args.block,
        timeout_s=args.timeout,
        device=args.device,
        store=args.store,
        same_build_ok=args.same_build_ok,
        threads=args.threads,
        iterations=args.iterations,
        progress=None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True)),
    )
    if args.json:
        _print_json(
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


def _cmd_shrink(args: argparse.Namespace) -> int:
    from mpslab.studies.shrink import Unsupported, shrink

    config = config_from_args(args)
    try:
        result = shrink(
            config,
            trials=args.trials,
            timeout_s=args.timeout,
            python=args.python,
            out_dir=args.out,
            name=args.name,
            keep_fraction=args.keep_fraction,
            repro_runs=args.repro_runs,
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


def _cmd_casebook(args: argparse.Namespace) -> int:
    from mpslab.studies.casebook import casebook_listing

    df = casebook_listing()
    if args.json:
        _print_json(df.to_dict(orient="records"))
        return EXIT_OK
    for r in df.itertuples():
        print(f"{r.name} [{r.kind}, {r.platform}, expected {r.expected}]: {r.title}")
        print(f"    symptom: {r.symptom}\n    versions: {r.versions}\n    links: {r.links}")
    return EXIT_OK


def _cmd_matrix(args: argparse.Namespace) -> int:
    from mpslab.report.matrix_plots import write_matrix
    from mpslab.studies.matrix import run_matrix

    if args.out:
        os.makedirs(args.out, exist_ok=True)
    store = os.path.join(args.out, "matrix.jsonl") if args.out else None
    result = run_matrix(
        args.pythons,
        args.cases or None,
        trials=args.trials,
        block=args.block,
        timeout_s=args.timeout,
        device=args.device,
        store=store,
        progress=None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True)),
    )
    print(result.report())
    if args.out:
        print(f"written: {', '.join(write_matrix(result, args.out))} (the same command resumes {store})")
    return EXIT_OK


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
        params=dict(_parse_param(p, "mpslab compare") for p in args.params),
    )
    return {args.workload: config}
