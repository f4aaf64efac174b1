"""shrink: a planted threshold fault shrinks to its threshold; the written script reproduces it standalone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mpslab.cli import main
from mpslab.run.config import StressConfig
from mpslab.run.workloads import get_workload
from mpslab.studies.shrink import Unsupported, shrink
from mpslab.studies.shrink.report import rate_sentence
from mpslab.studies.shrink.source import standalone_source

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


def test_a_workload_without_standalone_source_is_refused_in_one_line(capsys):
    assert main(["shrink", "--workload", "fault-abort", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "closure" in err[0]


def test_builtins_and_scenarios_give_standalone_source():
    import mpslab.studies.scenarios  # noqa: F401

    for name in ("seed", "mlp", "nonzero", "copy-sync", "unary-burst"):
        src = standalone_source(get_workload(name))
        compile(src, name, "exec")
        assert "mpslab" not in src
    with pytest.raises(Unsupported):
        standalone_source(get_workload("fault-segfault"))


def test_rate_sentence_has_the_interval():
    assert rate_sentence("crash", 17, 20) == "crashed in 17 of 20 runs, 95% CI 62%-97%"
