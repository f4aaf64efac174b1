"""Compare two torch builds: the same scenarios as isolated trials under interpreter a and b.

``compare_builds(python_a, python_b, scenarios=..., trials=N)`` checks both
interpreters first (each must exist and import torch; two that report the same
torch build are refused unless ``same_build_ok``), then runs every chosen scenario
under both, interleaved in blocks (a, b, then b, a, ...) so drift in the machine
falls on both sides, into one JSON-lines store (a re-run resumes it: each side is
its own batch, extended block by block). Each interpreter keeps its own fork server
(``mpslab.trials.forkserver`` serves one per interpreter, side by side).

Per scenario it reports failures of a and b with their rates and intervals
(``mpslab.trials.stats.failure_rate``) and **Barnard's exact test** of the
difference (``mpslab.trials.exact.failure_test``, two-sided): the design fixes the
number of trials per side (two independent binomials), Barnard's unconditional
model. Throughput: median ops/s of b over a, paired by interleaved round
(``mpslab.trials.paired.throughput_ratio``: Hodges-Lehmann ratio, exact
signed-rank interval, "too few rounds" below the rounds an exact interval needs),
worded like pyperf: "b is 1.18x faster [1.10x, 1.25x]", or "not significant".
The scenarios of one run are one family: Holm's rule over their failure p-values
and Bonferroni-level throughput intervals keep the family-wise error at 5%.

What it is not: a trial runner (``mpslab.trials.isolate.run_trials`` runs the
trials) nor a plot (``mpslab.report.plots.plot_compare``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mpslab.run.config import ConfigError
from mpslab.studies.compare_stats import ALPHA, FAMILY_RULE, compare_table, failure_verdict
from mpslab.trials.exact import failure_test
from mpslab.trials.paired import throughput_ratio
from mpslab.trials.stats import format_percent

__all__ = [
    "Interpreter",
    "CompareResult",
    "probe_interpreter",
    "check_interpreters",
    "compare_builds",
    "interleaved_trials",
    "failure_test",
    "throughput_ratio",
    "compare_table",
    "compare_report",
    "environment_lines",
    "failure_verdict",
    "ALPHA",
    "FAMILY_RULE",
]

PROBE_TIMEOUT_S = 180.0

# Runs under the interpreter being checked: what torch it has, how it was built, what "auto" means.
_PROBE = r"""
import hashlib, json, platform, sys
try:
    import torch
except Exception as exc:
    print(json.dumps({"error": f"cannot import torch: {type(exc).__name__}: {exc}"}))
    sys.exit(0)
show = torch.__config__.show()
flags = {}
for line in show.splitlines():
    line = line.strip().lstrip("- ")
    if line.startswith("Build settings:"):
        for part in line[len("Build settings:"):].split(", "):
            k, _, v = part.partition("=")
            if k.strip() in ("BUILD_TYPE", "CUDA_VERSION", "CUDNN_VERSION", "USE_CUDA", "USE_MPS", "USE_ROCM",
                             "USE_MKLDNN", "USE_OPENMP", "BLAS_INFO", "LAPACK_INFO", "CXX_COMPILER"):
                flags[k.strip()] = v.strip()
    elif line.startswith("CPU capability usage:"):
        flags["CPU_CAPABILITY"] = line.split(":", 1)[1].strip()
mps = getattr(torch.backends, "mps", None)
mps_ok = bool(mps is not None and mps.is_available())
cuda_ok = bool(torch.cuda.is_available())
print(json.dumps({
    "python": sys.executable, "python_version": platform.python_version(),
    "torch": torch.__version__, "torch_git": getattr(torch.version, "git_version", None),
    "torch_cuda": torch.version.cuda, "torch_hip": getattr(torch.version, "hip", None),
    "mps_built": bool(mps is not None and mps.is_built()), "build_flags": flags,
    "config_sha": hashlib.sha256(show.encode()).hexdigest()[:16],
    "auto_device": "mps" if mps_ok else ("cuda" if cuda_ok else "cpu"),
    "device_name": (torch.cuda.get_device_name(0) if cuda_ok
                    else "Apple MPS" if mps_ok else platform.processor() or platform.machine()),
}))
"""


@dataclass(frozen=True)
class Interpreter:
    """One side of the comparison: its label, interpreter path and what it reported."""

    label: str
    python: str
    info: dict[str, Any]

    @property
    def build(self) -> tuple[Any, ...]:
        """What identifies a torch build: version, source commit, CUDA, the full config text's hash."""
        i = self.info
        return (i.get("torch"), i.get("torch_git"), i.get("torch_cuda"), i.get("torch_hip"), i.get("config_sha"))


def probe_interpreter(python: str, label: str = "a", param: str = "python") -> Interpreter:
    """Check that ``python`` exists and imports torch; ``ConfigError`` (one line, naming ``param``) if not."""
    text = os.fspath(python) if python else ""
    found = text if os.sep in text else shutil.which(text or "")
    if not text or not found or not os.path.isfile(found):
        raise ConfigError(param=param, value=text, why="no such interpreter")
    if not os.access(found, os.X_OK):
        raise ConfigError(param=param, value=text, why="not executable")
    path = os.path.abspath(found)
    try:
        out = subprocess.run(
            [path, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(param=param, value=text, why=f"cannot run it: {exc}") from None
    last = (out.stdout.strip().splitlines() or [""])[-1]
    try:
        info = json.loads(last)
    except ValueError:
        err = (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]
        raise ConfigError(param=param, value=text, why=f"not a working Python interpreter ({err})") from None
    if "error" in info:
        raise ConfigError(param=param, value=text, why=info["error"])
    return Interpreter(label, path, info)


def check_interpreters(
    python_a: str, python_b: str, *, same_build_ok: bool = False, device: str = "auto"
) -> tuple[Interpreter, Interpreter, str]:
    """Both interpreters probed, the same-build refusal, and the device both will use."""
    with ThreadPoolExecutor(2) as pool:  # each probe starts an interpreter and imports torch: both at once
        probes = (
            pool.submit(probe_interpreter, python_a, "a", "python_a"),
            pool.submit(probe_interpreter, python_b, "b", "python_b"),
        )
        a, b = probes[0].result(), probes[1].result()  # a's error first when both are bad
    if a.build == b.build and not same_build_ok:
        raise ConfigError(
            param="same_build_ok",
            why=f"both interpreters report the same torch build ({a.info['torch']}, "
            f"git {str(a.info.get('torch_git'))[:12]}); set it for an A/A check",
        )
    if device == "auto":
        if a.info["auto_device"] != b.info["auto_device"]:
            raise ConfigError(
                param="device",
                value=device,
                why=f"means {a.info['auto_device']} under a but {b.info['auto_device']} under b: name one",
            )
        device = a.info["auto_device"]
    return a, b, device


def environment_lines(side: Interpreter) -> list[str]:
    """The environment block of one side, as report lines."""
    i, f = side.info, side.info.get("build_flags", {})
    build = ", ".join(
        f"{k}={v}"
        for k, v in f.items()
        if k in ("BUILD_TYPE", "USE_CUDA", "USE_MPS", "BLAS_INFO", "CPU_CAPABILITY", "CUDA_VERSION")
    )
    return [
        f"{side.label}: {side.python}",
        f"   torch {i['torch']} (git {str(i.get('torch_git'))[:12]}), cuda {i.get('torch_cuda')}, "
        f"mps built {i.get('mps_built')}, python {i.get('python_version')}",
        f"   build: {build or 'n/a'} (config sha {i.get('config_sha')})",
        f"   device: {i.get('auto_device')} ({i.get('device_name')})",
    ]


# --------------------------------------------------------------------------- the run


@dataclass
class CompareResult:
    a: Interpreter
    b: Interpreter
    device: str
    rows: pd.DataFrame  # every trial: scenario, side, outcome, ops_per_s, ...
    table: pd.DataFrame  # one row per scenario
    store: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    def report(self) -> str:
        return compare_report(self)


def compare_report(result: CompareResult) -> str:
    """The text report: both environment blocks, then one block per scenario."""
    lines = [
        f"mpslab compare: {result.device}, interleaved a/b in blocks"
        + (f"; store {result.store}" if result.store else ""),
        FAMILY_RULE,
        "",
    ]
    lines += environment_lines(result.a) + environment_lines(result.b) + [""]
    t = result.table
    if t.empty:
        lines.append("no scenario ran")
    width = max([len(s) for s in t["scenario"]] + [8]) if not t.empty else 8
    for r in t.itertuples():
        lines.append(
            f"{r.scenario:<{width}}  a {r.a_failures}/{r.a_trials} failed ({format_percent(r.a_rate)}, "
            f"{r.a_interval})  b {r.b_failures}/{r.b_trials} failed ({format_percent(r.b_rate)}, "
            f"{r.b_interval})"
        )
        lines.append(f"{'':<{width}}  failures: {r.verdict} [{r.test}]")
        lines.append(f"{'':<{width}}  throughput: {r.throughput}")
    for name, why in result.skipped.items():
        lines.append(f"{name:<{width}}  not applicable: {why}")
    return "\n".join(lines)


def interleaved_trials(
    todo: Sequence[tuple[str, Any]],
    interpreters: Sequence[Interpreter],
    *,
    trials: int,
    block: int,
    store: str | None,
    trial_args: Callable[[str, Interpreter], dict[str, Any]],
    progress: Callable[[str], None] | None = None,
    tmp_prefix: str = "mpslab-interleaved-",
) -> dict[tuple[str, str], pd.DataFrame]:
    """Every (name, config) of ``todo`` under every interpreter, in rounds of ``block`` trials each.

    Per round each name gets one block under each interpreter; the interpreters' order rotates by one each round
    (for two: a, b, then b, a), so drift on the machine falls on every build alike. A block runs the batch up to
    ``(round + 1) * block`` trials, so a re-run with the same ``store`` resumes (a temporary store if ``None``).
    ``trial_args(name, interpreter)`` gives the rest of ``run_trials``'s arguments (timeout, batch label, mode).
    Returns {(name, interpreter label): that batch's frame}.
    """
    from mpslab.trials.isolate import run_trials

    tmp = None
    if store is None:
        fd, tmp = tempfile.mkstemp(prefix=tmp_prefix, suffix=".jsonl")
        os.close(fd)
    path = store or tmp
    frames: dict[tuple[str, str], pd.DataFrame] = {}
    try:
        rounds = math.ceil(trials / block)
        for r in range(rounds):
            upto = min(trials, (r + 1) * block)
            shift = r % len(interpreters)
            order = [*interpreters[shift:], *interpreters[:shift]]
            for name, config in todo:
                for it in order:
                    if progress is not None:
                        progress(f"round {r + 1}/{rounds}: {name} under {it.label} (trials up to {upto})")
                    df = run_trials(config, trials=upto, python=it.python, store=path, progress=False,
                                    **trial_args(name, it))  # fmt: skip
                    frames[(name, it.label)] = df
    finally:
        if tmp is not None:
            os.unlink(tmp)
    return frames


def _launch(name: str, get_scenario: Callable[[str], Any]) -> str:
    try:
        return get_scenario(name).launch
    except KeyError:
        return "auto"


def compare_builds(
    python_a: str,
    python_b: str,
    scenarios: Sequence[str] | str | None = None,
    *,
    trials: int = 20,
    block: int = 2,
    timeout_s: float = 60.0,
    device: str = "auto",
    store: str | None = None,
    same_build_ok: bool = False,
    threads: int | None = None,
    iterations: int | None = None,
    configs: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> CompareResult:
    """Run ``scenarios`` (default: the whole library that applies) ``trials`` times under each interpreter.

    All checks (interpreters, same build, scenario names) come before any trial.
    Trials run interleaved in blocks of ``block``: per round, every scenario gets
    a block under a and one under b (the order swaps each round). Rounds are the unit of
    the throughput ratio: 20 trials in blocks of 2 give the 10 rounds that an exact
    interval needs over 13 scenarios. ``store``: a
    JSON-lines file that a re-run resumes (a temporary one if ``None``).
    ``configs`` (name -> ``StressConfig``) compares those instead of scenarios
    (any registered workload, e.g. a planted fault).
    """
    from mpslab.studies.scenarios import get_scenario, scenario_names
    from mpslab.studies.scenarios.run import plan_library

    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials={trials!r}: must be an integer >= 1")
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ConfigError(f"block={block!r}: must be an integer >= 1")
    if configs is None and scenarios is not None and scenarios != "all":  # names first: probing takes seconds
        known = scenario_names()
        unknown = [n for n in ([scenarios] if isinstance(scenarios, str) else scenarios) if n not in known]
        if unknown:
            raise ConfigError(f"scenario={unknown[0]!r}: unknown; known: {', '.join(known)}")
    a, b, dev = check_interpreters(python_a, python_b, same_build_ok=same_build_ok, device=device)
    if configs is not None:
        plan = [(n, c, "") for n, c in configs.items()]
    else:
        plan = plan_library(scenarios, dev, "float32", threads, iterations)
    skipped = {n: why for n, c, why in plan if c is None}
    todo = [(n, c) for n, c, _ in plan if c is not None]
    batches = interleaved_trials(
        todo,
        (a, b),
        trials=trials,
        block=block,
        store=store,
        trial_args=lambda name, side: {
            "timeout_s": timeout_s,
            "mode": _launch(name, get_scenario),
            "batch": f"compare-{side.label}",
        },
        progress=progress,
        tmp_prefix="mpslab-compare-",
    )
    frames = {
        (name, label): df.assign(scenario=name, side=label, round=pd.to_numeric(df["trial"]).astype(int) // block)
        for (name, label), df in batches.items()
    }
    rows = (
        pd.concat(list(frames.values()), ignore_index=True)
        if frames
        else pd.DataFrame(columns=["scenario", "side", "outcome", "ops_per_s"])
    )
    table = compare_table(rows, order=[n for n, _ in todo]) if frames else pd.DataFrame()
    return CompareResult(a, b, dev, rows, table, store, skipped)
