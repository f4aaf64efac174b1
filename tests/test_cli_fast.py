"""The command line answers before it loads torch: ``import mpslab``, ``--help`` and argument errors stay
torch-free, and cheap checks come before expensive ones.

Each check runs in a fresh interpreter, since the test session itself has torch loaded. Nothing here
asserts a time (the machine may be loaded); ``benchmarks/cli_startup.py`` measures it.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("torch", "numpy", "pandas", "matplotlib", "scipy")


def _loaded_after(code: str) -> tuple[set[str], subprocess.CompletedProcess]:
    """Run ``code`` in a fresh interpreter; return which of HEAVY it left in ``sys.modules``."""
    report = f"print('LOADED', *[m for m in {HEAVY!r} if m in sys.modules])"
    probe = f"import sys\ntry:\n{_indent(code)}\nfinally:\n    {report}\n"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("LOADED")][-1]
    return set(line.split()[1:]), proc


def _indent(code: str) -> str:
    return "\n".join("    " + ln for ln in code.splitlines())


def test_import_mpslab_loads_no_torch():
    loaded, proc = _loaded_after("import mpslab\nmpslab.__version__\ndir(mpslab)")
    assert proc.returncode == 0, proc.stderr
    assert loaded == set()


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["stress", "--help"], ["trials", "--help"], ["stres"], ["stress", "--threads", "many"]],
    ids=["help", "stress-help", "trials-help", "typo", "bad-int"],
)
def test_help_and_argument_errors_load_no_torch(argv):
    loaded, proc = _loaded_after(f"from mpslab.cli import main\nsys.exit(main({argv!r}))")
    assert loaded == set(), proc.stderr
    if "--help" in argv:
        assert proc.returncode == 0 and "usage: mpslab" in proc.stdout
    else:
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_python_dash_m_help_loads_no_torch():
    # the whole entry point, as a user types it: python -m mpslab --help
    probe = (
        "import runpy, sys\nsys.argv = ['mpslab', '--help']\n"
        "try:\n    runpy.run_module('mpslab', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', *[m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage: mpslab" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "LOADED"


def test_lazy_names_resolve_and_unknown_names_refused():
    import mpslab

    assert set(mpslab.__all__) <= set(dir(mpslab))
    for name in mpslab.__all__:
        assert getattr(mpslab, name) is not None
    with pytest.raises(AttributeError, match="no_such_name"):
        mpslab.no_such_name  # noqa: B018


def test_config_module_and_defaults_load_no_torch():
    loaded, proc = _loaded_after(
        "from mpslab.run.config import StressConfig\nassert StressConfig.__dataclass_fields__['threads'].default == 64"
    )
    assert proc.returncode == 0, proc.stderr
    assert loaded == set()


def test_registry_loads_builtins_on_first_use():
    # a fresh process: the first read of the registry registers the built-ins and the higher layers' workloads
    loaded, proc = _loaded_after(
        "from mpslab.run.workloads import list_workloads\n"
        "names = {w.name for w in list_workloads()}\n"
        "assert {'seed', 'mlp', 'racy', 'transformer'} <= names, names\n"
        "assert any(w.kind == 'fault' for w in list_workloads())"
    )
    assert proc.returncode == 0, proc.stderr
    assert "torch" in loaded


def test_user_registration_before_first_use_is_not_replaced_by_a_builtin():
    _, proc = _loaded_after(
        "from mpslab import register_workload, get_workload\n"
        "register_workload('mlp', lambda ctx, i: None, description='mine')\n"
        "assert get_workload('mlp').description == 'mine', get_workload('mlp').description"
    )
    assert proc.returncode == 0, proc.stderr


def test_compare_refuses_an_unknown_scenario_before_probing_the_interpreters():
    # interpreters that do not exist: probing them would fail with another message; the name is refused first
    proc = subprocess.run(
        [sys.executable, "-m", "mpslab", "compare", "--a", "/no/such/python-a", "--b", "/no/such/python-b"]
        + ["--scenarios", "no-such-scenario"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "scenario='no-such-scenario': unknown" in proc.stderr


def test_startup_benchmark_runs_at_its_tiny_size():
    # the measurement in docs/review.md; only that it runs and prints its rows is checked, never a time
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "cli_startup.py"), "--tiny"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "python -m mpslab --help" in proc.stdout and "slowest CLI median" in proc.stdout
    bad = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "cli_startup.py"), "--repeats", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--repeats=0" in bad.stderr
