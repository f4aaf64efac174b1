"""shrink: a planted threshold fault shrinks to its threshold; the written script reproduces it standalone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from mpslab.cli import main
from mpslab.run.config import StressConfig
from mpslab.run.workloads import get_workload, register_workload, unregister_workload
from mpslab.studies.shrink import Unsupported, shrink
from mpslab.studies.shrink.report import rate_sentence
from mpslab.studies.shrink.source import standalone_source
from mpslab.studies.summary import AFFINITY_NOTE
from mpslab.trials.faults import fault_names

PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins", "planted.py")


def test_planted_threshold_shrinks_to_it_and_the_script_reproduces_it(tmp_path):
    cfg = StressConfig(
        workload="planted-threshold",
        threads=6,
        iterations=9,
        size=16,
        warmup=0,
        sync_every=2,
        device="cpu",
        plugins=(PLUGIN,),
    )
    result = shrink(cfg, trials=2, timeout_s=60.0, out_dir=str(tmp_path), name="planted")
    final = result.search.final.config
    assert result.failed and result.search.outcome == "crash"
    assert (final.threads, final.iterations, final.size, final.sync_every) == (3, 4, 1, 0)
    assert any(line.startswith("threads") and "rejected" in line for line in result.search.path)
    assert not result.search.single_thread and not result.search.notes  # it needs 3 threads: no affinity claim
    script = tmp_path / "repro_planted.py"
    text = script.read_text()
    assert "import mpslab" not in text and "from mpslab" not in text
    # standalone: a clean environment, run from elsewhere, no mpslab on the path
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    out = subprocess.run(
        [sys.executable, str(script), "--runs", "2"], capture_output=True, text=True, timeout=300, cwd="/", env=env
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "failed 2 of 2 runs" in out.stdout and "SIGABRT" in out.stdout
    report = (tmp_path / "report_planted.md").read_text()
    for part in (
        "### 🐛 Describe the bug",
        "crashed in 2 of 2 runs",
        "SIGABRT",
        "```python",
        "### Versions",
        "PyTorch version",
    ):
        assert part in report
    assert AFFINITY_NOTE not in report and "Concurrent `planted-threshold` from 3 threads crashed" in report


def test_a_config_that_does_not_fail_says_so_exit_1(tmp_path, capsys):
    code = main(
        [
            "shrink",
            "--workload",
            "seed",
            "--threads",
            "2",
            "--iterations",
            "2",
            "--size",
            "8",
            "--trials",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 1
    assert "did not fail in 2 isolated trials" in capsys.readouterr().out
    assert not os.listdir(tmp_path)


@pytest.fixture
def closure_workload():
    """A workload whose step is made by a factory (a closure): it has no standalone source."""
    offset = 1.0

    def step(ctx, i):
        return torch.ones(2, device=ctx.device) + offset

    register_workload("test-shrink-closure", step, description="a closure, for the refusal test")
    yield "test-shrink-closure"
    unregister_workload("test-shrink-closure")


def test_a_workload_without_standalone_source_is_refused_in_one_line(capsys, closure_workload):
    assert main(["shrink", "--workload", closure_workload, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "closure" in err[0]


def test_builtins_scenarios_and_faults_give_standalone_source(closure_workload):
    import mpslab.studies.scenarios  # noqa: F401

    for name in ("seed", "mlp", "nonzero", "copy-sync", "unary-burst", *fault_names()):
        src = standalone_source(get_workload(name))
        compile(src, name, "exec")
        assert "mpslab" not in src.replace("mpslab fault:", ""), name  # the injected exception's text names it
    with pytest.raises(Unsupported, match="closure"):
        standalone_source(get_workload(closure_workload))


def test_cli_shrinks_a_fault_workload_to_one_thread_and_calls_it_thread_affinity(tmp_path, capsys):
    # the fault fires in worker thread 0 of every run: one worker thread is enough, no race is needed
    argv = ["shrink", "--workload", "fault-segfault", "--threads", "3", "--iterations", "2", "--size", "1"]
    code = main([*argv, "--trials", "2", "--device", "cpu", "--out", str(tmp_path), "--name", "seg"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{AFFINITY_NOTE} (2 of 2 one-thread trials crash)" in out
    report = (tmp_path / "report_seg.md").read_text()
    assert f"It {AFFINITY_NOTE}." in report and "in one worker thread crashed" in report
    assert f"the trials ran under `{sys.executable}` with torch {torch.__version__}" in report
    script = tmp_path / "repro_seg.py"
    text = script.read_text()
    head = text.split('"""')[1]
    # the header names the interpreter that ran the trials and its torch, not "needs only torch"
    assert sys.executable in head and f"torch {torch.__version__}" in head and "needs only torch" not in text
    assert [ln for ln in text.splitlines() if ln.strip().startswith("import torch")] == ["    import torch"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ran = subprocess.run(
        [sys.executable, str(script), "--runs", "1"], capture_output=True, text=True, timeout=300, cwd="/", env=env
    )
    assert ran.returncode == 1 and "failed 1 of 1 runs" in ran.stdout and "SIGSEGV" in ran.stdout, ran.stdout
    # a Python that cannot import torch (-S: no site-packages) is told which interpreter to use
    bare = subprocess.run(
        [sys.executable, "-I", "-S", str(script), "--runs", "1"], capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert bare.returncode == 1 and bare.stdout == ""
    assert f"needs a Python with torch, e.g. {sys.executable} (torch {torch.__version__})" in bare.stderr


def test_rate_sentence_has_the_interval():
    assert rate_sentence("crash", 17, 20) == "crashed in 17 of 20 runs, 95% CI 62%-97%"
