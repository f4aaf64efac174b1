"""pytest hooks of mpslab's ``concurrent`` marker (registered through the ``pytest11`` entry point).

pytest imports this module in every run of every project where mpslab is installed, so it
imports neither torch nor mpslab (whose package imports torch): ``mpslab.pytest_plugin``,
which does the work, is imported only once a test carrying the marker is collected. The
user guide is docs/pytest-plugin.md.
"""

from __future__ import annotations

import re

import pytest

MARKER = "concurrent"
_SPEC = pytest.StashKey[object]()  # the checked marker of an item


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mpslab", "mpslab concurrency tests (@pytest.mark.concurrent)")
    group.addoption(
        "--mpslab-trials",
        type=int,
        default=None,
        metavar="N",
        help="run every concurrent-marked test with N isolated trials (overrides the marker's trials=)",
    )
    group.addoption(
        "--mpslab-device",
        default="auto",
        metavar="DEVICE",
        help="device of concurrent-marked tests that name none: auto (mps, else cuda, else cpu), cpu, cuda, cuda:N, "
        "mps (default: auto)",
    )


def pytest_configure(config: pytest.Config) -> None:
    trials, device = config.option.mpslab_trials, config.option.mpslab_device
    if trials is not None and trials < 1:
        raise pytest.UsageError(f"--mpslab-trials={trials}: must be an integer >= 1")
    if not re.match(r"^(auto|cpu|mps|cuda(:\d+)?)$", device):
        raise pytest.UsageError(f"--mpslab-device={device!r}: must be one of auto, cpu, cuda, cuda:N, mps")
    config.addinivalue_line(
        "markers",
        "concurrent(step=fn, threads=8, iterations=20, trials=30, max_failure='10%', expect=None, fail_rate=0, ...): "
        "run step(ctx, i) from several threads in isolated trials, checked by a serial replay; pass on the "
        "failure rate's one-sided bound (mpslab, docs/pytest-plugin.md)",
    )


def _param_overrides(item: pytest.Item, options: dict) -> dict:
    callspec = getattr(item, "callspec", None)
    return {k: v for k, v in callspec.params.items() if k in options} if callspec is not None else {}


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector, name, obj):
    """Check each marked test as it is collected: a bad value is a collection error naming test and value."""
    result = yield
    items = result if isinstance(result, list) else [result]
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            continue
        from mpslab.pytest_plugin import OPTIONS, MarkerError, check_marker

        opts = item.config.option
        kwargs = {**marker.kwargs, **_param_overrides(item, OPTIONS)}
        try:
            item.stash[_SPEC] = check_marker(kwargs, marker.args, trials=opts.mpslab_trials, device=opts.mpslab_device)
        except MarkerError as exc:
            raise pytest.fail.Exception(f"{item.nodeid}: @pytest.mark.concurrent: {exc}", pytrace=False) from None
    return result


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """A test on a device this machine lacks is skipped with the reason; and a marked test runs its own
    threads, so pytest-run-parallel must not thread its body too (it leaves ``thread_unsafe`` tests alone)."""
    marked = [item for item in items if _SPEC in item.stash]
    if not marked:
        return
    from mpslab.pytest_plugin import skip_reason

    reasons: dict[str, str | None] = {}
    for item in marked:
        device = item.stash[_SPEC].device
        if device not in reasons:
            reasons[device] = skip_reason(device)
        if reasons[device]:
            item.add_marker(pytest.mark.skip(reason=reasons[device]))
    if config.pluginmanager.hasplugin("run-parallel"):
        for item in marked:
            item.add_marker(pytest.mark.thread_unsafe(reason="mpslab runs it in isolated trials with its own threads"))


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """The test's own body runs first (a serial check, or nothing); then the trials decide."""
    result = yield  # the body's failure propagates from here as it would without the marker
    spec = pyfuncitem.stash.get(_SPEC, None)
    if spec is not None:
        from mpslab.pytest_plugin import run_spec

        verdict = run_spec(spec)
        pyfuncitem.user_properties.extend(verdict.properties)
        if not verdict.passed:
            pytest.fail(f"mpslab: {verdict.line}" + (f"\n{verdict.details}" if verdict.details else ""), pytrace=False)
    return result


def _verdict_line(report) -> str | None:
    return next((v for k, v in getattr(report, "user_properties", ()) if k == "mpslab_verdict"), None)


def pytest_report_teststatus(report, config):
    """``-v`` shows a passed marked test's rate and bound beside PASSED (a failure's message already has them)."""
    line = _verdict_line(report) if report.when == "call" and report.passed else None
    if line is not None:
        return "passed", ".", f"PASSED [{line}]"
    return None


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One line per marked test: its outcome and the rate with its bound."""
    lines = [
        f"{report.outcome.upper()} {report.nodeid}: {line}"
        for key in ("passed", "failed")
        for report in terminalreporter.stats.get(key, [])
        if report.when == "call" and (line := _verdict_line(report)) is not None
    ]
    if lines:
        terminalreporter.section("mpslab concurrency tests")
        for line in lines:
            terminalreporter.line(line)
