"""Headless execution of the notebook series with papermill.

``run_series(profile="quick", device="cpu", out="reports")`` executes every
``notebooks/NN_*.ipynb`` with the parameters its profile gives it
(``notebooks/profiles.yml``) and leaves, under ``out``::

    notebooks/NN_topic.ipynb   executed copies (papermill records their parameters)
    html/NN_topic.html         HTML copies for reviews (nbconvert)
    data/                      tidy tables the notebooks wrote (CSV, JSON lines)
    figures/                   PNG and SVG figures
    logs/NN_topic.kernel.log   what the kernel process wrote to stderr
    index.html                 a page linking all of it
    manifest.json              profile, device, parameters, status and time per notebook

A later run into the same folder adds to its manifest and index (``report.index``).

Every parameter is checked against the notebook's ``parameters`` cell before
anything runs: an unknown name or a value of the wrong type is refused with one
line. Series notebooks declare ``progress: bool`` (progress bars: widgets in
JupyterLab); the pipeline passes ``progress=False`` wherever it is declared, so
executed copies and their HTML carry no bars. A failing notebook is saved with
papermill's error marker, the batch goes on, and the result says ``N/M notebooks
succeeded``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import glob
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from mpslab.run.config import ConfigError, StressConfig

__all__ = [
    "run_series",
    "SeriesResult",
    "NotebookRun",
    "load_profiles",
    "plan_series",
    "NOTEBOOKS_DIR",
    "PipelineError",
]

NOTEBOOKS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "notebooks")
PIPELINE_PARAMETERS = ("device", "data_dir", "figures_dir", "progress")  # progress: where declared


class PipelineError(ValueError):
    """Refused input to the pipeline; the message is one line."""


@dataclass
class NotebookRun:
    name: str
    source: str
    output: str
    parameters: dict[str, Any]
    status: str = "pending"  # pending | ok | failed
    seconds: float = 0.0
    error: str | None = None
    html: str | None = None
    verdict: str | None = None  # the executed copy's cell tagged "verdict" (``report.index.verdict_of``)
    files: list[str] = field(default_factory=list)  # figures/ and data/ files it wrote, relative to out


@dataclass
class SeriesResult:
    profile: str
    device: str
    out: str
    runs: list[NotebookRun] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        return sum(r.status == "ok" for r in self.runs)

    @property
    def ok(self) -> bool:
        return self.succeeded == len(self.runs)

    def summary_line(self) -> str:
        return f"{self.succeeded}/{len(self.runs)} notebooks succeeded"


# --------------------------------------------------------------------------- planning


def load_profiles(notebooks_dir: str = NOTEBOOKS_DIR) -> dict[str, dict[str, dict[str, Any]]]:
    path = os.path.join(notebooks_dir, "profiles.yml")
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise PipelineError(f"profiles: {path} not found") from None
    except yaml.YAMLError as exc:
        raise PipelineError(f"profiles: {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise PipelineError(f"profiles: {path} must map profile names to notebook parameter tables")
    return {name: {k: dict(v or {}) for k, v in table.items()} for name, table in data.items()}


def discover(notebooks_dir: str = NOTEBOOKS_DIR) -> list[str]:
    """The series: ``NN_*.ipynb`` in name order."""
    return sorted(p for p in glob.glob(os.path.join(notebooks_dir, "[0-9][0-9]_*.ipynb")))


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _select(paths: list[str], only: Iterable[str] | None) -> list[str]:
    if not only:
        return paths
    chosen = []
    for want in only:
        hits = [p for p in paths if _stem(p) == want or _stem(p).startswith(want + "_") or _stem(p)[:2] == want]
        if not hits:
            raise PipelineError(f"only={want!r}: no such notebook; have {', '.join(_stem(p) for p in paths)}")
        chosen += [h for h in hits if h not in chosen]
    return sorted(chosen)


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list, tuple), "dict": (dict,)}


def _check_type(nb: str, name: str, value: Any, declared: dict[str, Any]) -> None:
    type_name = str(declared.get("inferred_type_name") or "None")
    base = type_name.split("[")[0].strip().lower()
    allowed = _TYPES.get(base)
    if allowed is None:
        return  # no annotation we can check: papermill passes it through
    ok = isinstance(value, allowed) and not (base in ("int", "float") and isinstance(value, bool))
    if not ok:
        raise PipelineError(
            f"{nb}: parameter {name}={value!r} has type {type(value).__name__}, the notebook declares {type_name}"
        )


def plan_series(
    profile: str = "quick",
    device: str = "cpu",
    out: str = "reports",
    only: Sequence[str] | None = None,
    params: dict[str, Any] | None = None,
    notebooks_dir: str = NOTEBOOKS_DIR,
) -> SeriesResult:
    """Check every input and lay out the runs; nothing is executed."""
    import papermill

    profiles = load_profiles(notebooks_dir)
    if profile not in profiles:
        raise PipelineError(f"profile={profile!r}: unknown; profiles: {', '.join(profiles)}")
    try:
        StressConfig.check_device(device)
    except ConfigError as exc:
        raise PipelineError(str(exc)) from None
    paths = _select(discover(notebooks_dir), only)
    if not paths:
        raise PipelineError(f"no notebooks (NN_*.ipynb) in {notebooks_dir}")
    table = profiles[profile]
    unknown_keys = sorted(set(table) - {"_all"} - {_stem(p) for p in discover(notebooks_dir)})
    if unknown_keys:
        raise PipelineError(f"profile {profile!r} names a notebook that does not exist: {unknown_keys[0]}")

    out = os.path.abspath(out)
    result = SeriesResult(profile, device, out)
    extra = dict(params or {})
    claimed: set[str] = set()
    for path in paths:
        stem = _stem(path)
        declared = papermill.inspect_notebook(path)
        if not declared:
            raise PipelineError(f"{stem}: has no cell tagged 'parameters'")
        values: dict[str, Any] = {
            "device": device,
            "data_dir": os.path.join(out, "data"),
            "figures_dir": os.path.join(out, "figures"),
        }
        if "progress" in declared:
            values["progress"] = False  # headless: no bars (a widget's text would land in the copies)
        values.update(table.get("_all", {}))
        values.update(table.get(stem, {}))
        for name, value in extra.items():
            if name in declared:
                values[name] = value
                claimed.add(name)
        for name, value in values.items():
            if name not in declared:
                raise PipelineError(
                    f"{stem}: unknown parameter {name!r} (profile {profile!r}); declared: {', '.join(declared)}"
                )
            _check_type(stem, name, value, declared[name])
        result.runs.append(NotebookRun(stem, path, os.path.join(out, "notebooks", f"{stem}.ipynb"), values))
    unclaimed = sorted(set(extra) - claimed)
    if unclaimed:
        raise PipelineError(f"parameter {unclaimed[0]!r}: no selected notebook declares it")
    return result


# --------------------------------------------------------------------------- execution


@contextlib.contextmanager
def _stderr_to(path: str):
    """Send this process's stderr (fd 2), and so the kernel's, to ``path`` for the block.

    The kernel inherits fd 2: its start-up warnings and native libraries' chatter
    (profiler trace lines, for one) land in the log instead of between progress lines.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def _to_html(ipynb: str, target: str) -> None:
    import nbconvert
    import nbformat

    nb = nbformat.read(ipynb, as_version=4)
    body, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    with open(target, "w", encoding="utf-8") as f:
        f.write(body)


def _error_of(exc: BaseException) -> str:
    ename = getattr(exc, "ename", None) or type(exc).__name__
    evalue = getattr(exc, "evalue", None) or str(exc)
    first = str(evalue).strip().splitlines()[0] if str(evalue).strip() else ""
    return f"{ename}: {first}"


def _written(out: str) -> dict[str, tuple[float, int]]:
    """``figures/NAME`` and ``data/NAME`` -> (mtime, size): what a notebook wrote is what changed across it."""
    seen = {}
    for sub in ("figures", "data"):
        for path in glob.glob(os.path.join(out, sub, "*")):
            if os.path.isfile(path):
                st = os.stat(path)
                seen[f"{sub}/{os.path.basename(path)}"] = (st.st_mtime, st.st_size)
    return seen


def run_series(
    profile: str = "quick",
    device: str = "cpu",
    out: str = "reports",
    only: Sequence[str] | None = None,
    params: dict[str, Any] | None = None,
    notebooks_dir: str = NOTEBOOKS_DIR,
    kernel_name: str | None = None,
    log=print,
) -> SeriesResult:
    """Execute the series headlessly; see the module docstring for what it leaves."""
    import papermill

    result = plan_series(profile, device, out, only, params, notebooks_dir)
    for sub in ("notebooks", "html", "data", "figures", "logs"):
        os.makedirs(os.path.join(result.out, sub), exist_ok=True)
    total = len(result.runs)
    for k, run in enumerate(result.runs, 1):
        log(f"[{k}/{total}] {run.name} ({profile} profile, device {device}) ...")
        t0 = time.perf_counter()
        before = _written(result.out)
        try:
            with _stderr_to(os.path.join(result.out, "logs", f"{run.name}.kernel.log")):
                papermill.execute_notebook(
                    run.source,
                    run.output,
                    parameters=run.parameters,
                    cwd=os.path.dirname(run.source),
                    kernel_name=kernel_name,
                    progress_bar=False,
                    report_mode=False,
                )
            run.status = "ok"
        except Exception as exc:  # papermill saved the notebook with its error marker
            run.status = "failed"
            run.error = _error_of(exc)
        run.seconds = time.perf_counter() - t0
        from mpslab.report.index import is_sidecar, verdict_of

        after = _written(result.out)
        run.files = sorted(
            f for f, stamp in after.items() if before.get(f) != stamp and not is_sidecar(os.path.basename(f))
        )
        if os.path.exists(run.output):
            run.verdict = verdict_of(run.output)
            run.html = os.path.join(result.out, "html", f"{run.name}.html")
            try:
                _to_html(run.output, run.html)
            except Exception as exc:
                run.html = None
                run.error = (run.error + "; " if run.error else "") + f"HTML export failed: {_error_of(exc)}"
        log(f"      {run.status} in {run.seconds:.1f} s" + (f": {run.error}" if run.error else ""))
        if run.verdict:
            log(f"      {run.verdict}")
    _write_manifest(result)
    log(result.summary_line() + f"; index: {os.path.join(result.out, 'index.html')}")
    return result


def _write_manifest(result: SeriesResult) -> None:
    """List this run's notebooks in the folder's manifest and index (``report.index``: entries of
    notebooks run earlier into the same folder are kept)."""
    from mpslab.report.index import write_listing
    from mpslab.run.environment import environment

    written = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    entries = [
        {
            "name": r.name,
            "status": r.status,
            "seconds": round(r.seconds, 2),
            "error": r.error,
            "parameters": r.parameters,
            "output": os.path.relpath(r.output, result.out),
            "html": os.path.relpath(r.html, result.out) if r.html else None,
            "profile": result.profile,
            "device": result.device,
            "written": written,
            "verdict": r.verdict,
            "files": r.files,
        }
        for r in result.runs
    ]
    write_listing(result.out, entries, environment("cpu"))  # the parent never touches the device
