"""The ``trials`` subcommand: isolated trials and their failure rate, or ``--until-bound`` (planned zero-failure)."""

from __future__ import annotations

import argparse
import os
import tempfile

from mpslab.commands.base import (
    EXIT_FAILED,
    EXIT_OK,
    args_named,
    config_dict_from_args,
    config_from_args,
    print_failed,
    print_json,
)
from mpslab.run.config import ConfigError, StressConfig
from mpslab.trials.outcomes import Outcome

__all__ = ["cmd_trials", "cmd_until_bound"]

_RATE_FIELDS = ("failures", "trials", "rate", "low", "high", "confidence", "method", "sided", "outcomes", "verdict")


def cmd_until_bound(args: argparse.Namespace) -> int:
    from mpslab.trials.sequential import (
        ZeroFailurePlan,
        parse_duration,
        parse_target,
        run_until_bound,
        trials_chunk_runner,
    )

    target = parse_target(args.until_bound)
    max_time = parse_duration(args.max_time) if args.max_time is not None else None
    if args.max_trials is not None and args.max_trials < 1:
        raise ConfigError(param="max_trials", value=args.max_trials, why="must be >= 1")
    config = config_from_args(args)
    tmp = None
    store = args.store
    if store is None:
        fd, tmp = tempfile.mkstemp(prefix="mpslab-until-bound-", suffix=".jsonl")
        os.close(fd)
        store = tmp
    try:
        run_chunk, frames = trials_chunk_runner(
            config,
            store,
            **args_named(args, "timeout_s", "python", "mode", "batch"),
            progress=False,
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
    if frames:
        print_failed(frames[-1])
    print(
        f"until-bound: {result.trials} trials in {result.elapsed_s:.1f} s, stopped by {result.stopped_by}"
        + (f"; store: {args.store}" if args.store else "")
    )
    print(result.verdict())
    return EXIT_OK if result.met else EXIT_FAILED


def cmd_trials(args: argparse.Namespace) -> int:
    from mpslab.trials.isolate import run_trials
    from mpslab.trials.stats import failure_rate, failure_rates

    if args.until_bound is not None:
        return cmd_until_bound(args)
    client = None
    if args.scheduler:
        if args.python:
            raise ConfigError(param="python", why="not with --scheduler (each worker uses its own interpreter)")
        from mpslab.trials.executors import connect

        config = config_dict_from_args(args)  # validated by the workers (their devices, not ours)
        client = connect(args.scheduler)
    else:
        config = config_from_args(args)
    try:
        df = run_trials(
            config,
            **args_named(args, "trials", "timeout_s", "python", "store", "mode", "batch"),
            progress=False if args.no_progress else None,
            client=client,
        )
    finally:
        if client is not None:
            client.close()
    per_env = failure_rates(df, pool=args.pool)
    rate = failure_rate(df, pool=True) if len(per_env) != 1 else per_env["result"].iloc[0]
    exit_code = EXIT_OK if rate.failures == 0 else EXIT_FAILED
    if args.json:
        print_json(
            {
                "failure_rate": {k: getattr(rate, k) for k in _RATE_FIELDS},
                "per_environment": per_env.drop(columns=["result"]).to_dict(orient="records"),
                "trials": df.astype(object).where(df.notna(), None).to_dict(orient="records"),
            }
        )
        return exit_code
    c = config if isinstance(config, StressConfig) else argparse.Namespace(**config)
    mode = df["launch"].dropna().iloc[0] if df["launch"].notna().any() else args.mode
    where = f"on {args.scheduler} ({df['worker'].nunique()} workers)" if args.scheduler else "here"
    print(
        f"mpslab trials: {args.trials} isolated trials of {c.workload!r} ({c.threads} threads x "
        f"{c.iterations} iterations, size {c.size}, {c.dtype}) on {c.device}, {where}; "
        f"{mode} mode, timeout {args.timeout_s:g} s"
    )
    counts = df["outcome"].value_counts()
    print("outcome   trials")
    for outcome in Outcome:
        if counts.get(outcome.value, 0):
            print(f"{outcome.value:<9} {int(counts[outcome.value]):>6}")
    print_failed(df, heading=True)
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
        return exit_code
    print(rate.verdict)
    return exit_code
