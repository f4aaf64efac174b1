"""The pytest plugin (``@pytest.mark.concurrent``), driven through ``pytester`` on planted steps.

Each planted file runs in a pytest of its own; the trials are tiny (1-2 threads, a few
iterations, 1-3 trials) so the file stays quick on a 2-core CI machine.
"""

import re
import xml.etree.ElementTree as ET

import pytest
import scipy.stats  # noqa: F401

import mpslab.pytest_plugin  # noqa: F401
import mpslab.trials.isolate  # noqa: F401

# pytester's in-process runs put sys.modules back afterwards, and a module with a C extension cannot be
# imported twice in a process: what the plugin imports lazily is imported here first, once.
pytest_plugins = ["pytester"]

STEPS = """
import os
import threading
import time

import pytest
import torch


def good(ctx, i):
    a = torch.randn(8, 8, generator=ctx.generator)
    return a @ a


def raises(ctx, i):
    if ctx.thread == 0:
        raise RuntimeError("planted error")
    return good(ctx, i)


def crashes(ctx, i):
    if ctx.thread == 0:
        os.abort()
    return good(ctx, i)


def hangs(ctx, i):
    if ctx.thread == 0:
        time.sleep(600)
    return good(ctx, i)


def differs(ctx, i):
    # a worker thread's answer differs from the serial replay's (which runs on the main thread)
    out = good(ctx, i)
    return out + 1 if threading.current_thread() is not threading.main_thread() else out
"""

QUICK = "threads=2, iterations=3, trials=2, max_failure='80%', timeout=120"


def _write(pytester, name, body):
    pytester.makepyfile(**{name: STEPS + body})


def _props(path):
    """JUnit XML: testcase name -> {property: value}."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        out[case.get("name")] = {p.get("name"): p.get("value") for p in case.iter("property")}
    return out


def test_planted_pass_crash_hang_mismatch_error_and_the_run_goes_on(pytester):
    _write(
        pytester,
        "test_planted",
        f"""
@pytest.mark.concurrent(step=good, {QUICK})
def test_pass():
    pass

@pytest.mark.concurrent(step=crashes, {QUICK})
def test_crash():
    pass

@pytest.mark.concurrent(step=hangs, threads=2, iterations=3, trials=2, max_failure="80%", timeout=10)
def test_hang():
    pass

@pytest.mark.concurrent(step=differs, {QUICK})
def test_mismatch():
    pass

@pytest.mark.concurrent(step=raises, {QUICK})
def test_error():
    pass

@pytest.mark.concurrent(step=raises, threads=2, iterations=3, trials=2, expect="fail", timeout=120)
def test_known_bug():
    pass

def test_after():
    pass
""",
    )
    result = pytester.runpytest("-v", "-p", "no:cacheprovider", "--junitxml=out.xml")
    result.assert_outcomes(passed=3, failed=4)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*test_pass PASSED ?0 of 2 trials failed: rate 0%, 95% upper bound 78% < max_failure 80%?*",
            "*test_known_bug PASSED ?expected to fail, 2 of 2 trials failed (error 2): rate 100%, 95% lower bound 22%"
            " > fail_rate 0%?*",
            "*test_after PASSED*",
        ]
    )
    # the crash: class, signal, stderr tail; stopped at its first trial
    result.stdout.fnmatch_lines(
        [
            "*mpslab: 1 of 1 trials failed (crash 1)*stopped at trial 1 of 2, a crash",
            "trial 0: crash, killed by SIGABRT (signal 6)",
            "  stderr tail:",
            "*Fatal Python error: Aborted*",
        ]
    )
    # the hang: the hung thread's stack names the planted step
    result.stdout.fnmatch_lines(["trial 0: hang, no exit within 10 s", "  stacks of every thread:"])
    assert re.search(r'test_planted.py", line \d+ in hangs', out)
    result.stdout.fnmatch_lines(["trial 0: mismatch, 6 output(s) differ from the serial replay"])
    result.stdout.fnmatch_lines(["trial 0: error, * step(s) raised; first: RuntimeError: planted error"])
    props = _props(pytester.path / "out.xml")
    assert props["test_pass"]["mpslab_failures"] == "0"
    assert props["test_pass"]["mpslab_trials"] == "2"
    assert float(props["test_pass"]["mpslab_upper_bound"]) == pytest.approx(1 - 0.05**0.5, rel=1e-5)
    assert float(props["test_known_bug"]["mpslab_lower_bound"]) == pytest.approx(0.05**0.5, rel=1e-5)
    assert props["test_mismatch"]["mpslab_outcomes"] == "mismatch 2"
    assert props["test_crash"]["mpslab_outcomes"] == "crash 1"


def test_bad_marker_values_are_collection_errors_naming_test_and_value(pytester):
    pytester.makepyfile(
        test_threads=STEPS + "@pytest.mark.concurrent(step=good, threads=0)\ndef test_zero():\n    pass\n",
        test_maxfail=STEPS + "@pytest.mark.concurrent(step=good, max_failure=2)\ndef test_two():\n    pass\n",
        test_unknown=STEPS + "@pytest.mark.concurrent(step=good, colour='red')\ndef test_colour():\n    pass\n",
        test_reach=STEPS + "@pytest.mark.concurrent(step=good, max_failure='5%')\ndef test_reach():\n    pass\n",
        test_closure=STEPS
        + "def make():\n    def inner(ctx, i):\n        return good(ctx, i)\n    return inner\n\n"
        + "@pytest.mark.concurrent(step=make())\ndef test_closure():\n    pass\n",
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--mpslab-trials", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mpslab-trials=0: must be an integer >= 1"])
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=5)
    result.stdout.fnmatch_lines_random(
        [
            "test_threads.py::test_zero: @pytest.mark.concurrent: threads=0: must be an integer >= 1",
            "test_maxfail.py::test_two: @pytest.mark.concurrent: max_failure=2: must be a rate in (0, 1)*",
            "test_unknown.py::test_colour: @pytest.mark.concurrent: colour='red': unknown option*",
            "test_reach.py::test_reach: @pytest.mark.concurrent: max_failure='5%' with trials=30: unreachable, 30 clean"
            " trials give a 95% upper bound of 9.6%; it needs trials >= 59",
            "test_closure.py::test_closure: @pytest.mark.concurrent: step=make.<locals>.inner: must be a module-level*",
        ]
    )


def test_k_x_parametrize_and_the_options(pytester):
    _write(
        pytester,
        "test_habits",
        f"""
@pytest.mark.concurrent(step=good, {QUICK})
def test_a():
    pass

@pytest.mark.concurrent(step=raises, {QUICK})
def test_b():
    pass

@pytest.mark.concurrent(step=good, {QUICK})
def test_c():
    pass

@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.concurrent(step=good, iterations=2, trials=30, max_failure="80%", timeout=120)
def test_p(threads):
    pass

@pytest.mark.concurrent(step=good, device="cuda", {QUICK})
def test_on_cuda():
    pass

@pytest.mark.concurrent(step=good, device="cpu", {QUICK})
def test_on_cpu():
    pass
""",
    )
    # -x stops at the first failure; -k picks; --lf runs the failed one again
    result = pytester.runpytest("-x", "-k", "test_a or test_b or test_c")
    result.assert_outcomes(passed=1, failed=1)
    result = pytester.runpytest("--lf", "-k", "test_a or test_b or test_c", "--junitxml=lf.xml")
    result.assert_outcomes(failed=1)
    assert list(_props(pytester.path / "lf.xml")) == ["test_b"]
    # parametrize overrides the marker's option of the same name; --mpslab-trials overrides trials
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "test_p", "--mpslab-trials", "2", "--junitxml=p.xml")
    result.assert_outcomes(passed=2)
    props = _props(pytester.path / "p.xml")
    assert {k: (v["mpslab_threads"], v["mpslab_trials"]) for k, v in props.items()} == {
        "test_p[1]": ("1", "2"),
        "test_p[3]": ("3", "2"),
    }
    # --mpslab-device is the device of markers that name none; an absent device is a skip with the reason
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-rs", "-k", "test_a or on_", "--mpslab-device", "cuda", "--junitxml=d.xml"
    )
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED * device='cuda': not available on this machine (available: *cpu*)"])
    assert _props(pytester.path / "d.xml")["test_on_cpu"]["mpslab_device"] == "cpu"


def test_pytest_run_parallel_does_not_thread_a_marked_test(pytester):
    pytest.importorskip("pytest_run_parallel")
    _write(
        pytester,
        "test_threads_body",
        f"""
import threading
calls = {{"plain": set(), "marked": set()}}

def test_plain():
    calls["plain"].add(threading.get_ident())

@pytest.mark.concurrent(step=good, {QUICK})
def test_marked():
    calls["marked"].add(threading.get_ident())

def test_report():
    assert len(calls["marked"]) == 1
    assert len(calls["plain"]) == 3
""",
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--parallel-threads", "3", "-k", "plain or marked")
    result.assert_outcomes(passed=2)
    result = pytester.runpytest("-p", "no:cacheprovider", "--parallel-threads", "3")
    result.assert_outcomes(passed=3)


def test_loading_the_plugin_imports_neither_torch_nor_mpslab(pytester):
    pytester.makepyfile(
        test_light="""
import sys

def test_light(request):
    assert request.config.pluginmanager.hasplugin("mpslab")
    assert "torch" not in sys.modules
    assert "mpslab" not in sys.modules
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
