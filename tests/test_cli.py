"""The command line's output and exit codes (0 ok, 1 failures found, 2 bad input)."""

import json
import os
import subprocess
import sys

import pytest

from mpslab.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_stress_ok_exits_0_and_prints_seed_block(capsys):
    assert main(["stress", "--threads", "4", "--iterations", "10", "--size", "8", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Total operations: 40 tensor ops" in out and "Total errors: 0" in out


def test_stress_mismatch_exits_1_and_json_parses(capsys):
    code = main(
        [
            "stress",
            "--threads",
            "8",
            "--iterations",
            "30",
            "--sync-every",
            "0",
            "--size",
            "32",
            "--workload",
            "racy",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["outcome"] == "mismatch" and data["mismatch_count"] > 0
    assert data["config"]["workload"] == "racy"


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["stress", "--threads", "0"], "threads=0: must be an integer >= 1"),
        (["stress", "--threads", "x"], "invalid int value: 'x'"),
        (["stress", "--device", "tpu"], "device='tpu'"),
        (["stress", "--workload", "nope"], "workload='nope': unknown"),
        (["stress", "--bogus"], "unrecognized arguments: --bogus"),
        (["nope"], "invalid choice: 'nope'"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_workloads_lists_each_with_a_line(capsys):
    assert main(["workloads"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("seed ") and "matmul" in line for line in lines)
    assert any("racy" in line and "[self-test]" in line for line in lines)


def test_python_dash_m_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "mpslab", "stress", "--threads", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "mpslab: error: --threads=0: must be an integer >= 1"  # worded as the flag typed


PLANTED = os.path.join(ROOT, "tests", "plugins", "planted.py")


def test_every_config_field_has_a_flag_and_the_flags_round_trip():
    import dataclasses

    from mpslab.cli import Parser, add_stress_arguments
    from mpslab.commands import config_from_args
    from mpslab.run.config import StressConfig

    parser = Parser(prog="t")
    add_stress_arguments(parser)
    fields = [f.name for f in dataclasses.fields(StressConfig)]
    assert set(fields) <= set(parser.flags), set(fields) - set(parser.flags)
    assert all(f"\n    {name} " in StressConfig.__doc__ for name in fields)  # the docstring lists each, from its help
    flags = "threads iterations sync-every workload size dtype device streams throttle seed verify warmup plugin param"
    assert {f"--{flag}" for flag in flags.split()} | {"--full-cap-mb", "--help"} == set(parser.flags.values())
    # every field away from its default, given as flags, gives the config of the same values
    values = dict(
        threads=3,
        iterations=5,
        sync_every=2,
        workload="mlp-origin",
        size=16,
        dtype="float64",
        device="cpu",
        streams="shared",
        throttle=2,
        seed=7,
        verify="full",
        warmup=0,
        plugins=(PLANTED,),
        params={"batch": 4},
        full_cap_mb=64.0,
    )
    assert set(values) == set(fields)
    argv = []
    for name, value in values.items():
        if name == "plugins":
            argv += [parser.flags[name], PLANTED]
        elif name == "params":
            argv += [parser.flags[name], "batch=4"]
        else:
            argv += [parser.flags[name], str(value)]
    assert config_from_args(parser.parse_args(argv)) == StressConfig(**values)
    # and no flag at all gives the defaults
    defaults = parser.parse_args([])
    assert config_from_args(defaults).to_dict() == StressConfig().to_dict()
    assert (
        parser.parse_args(["--no-verify"]).verify == "off"
        and parser.parse_args(["--throttle", "none"]).throttle is None
    )


def _advise(**kwargs):
    from mpslab.studies.advisor import advise

    return advise("mlp", "cpu", **{"budget": "10m", **kwargs}, progress=False, log=lambda line: None)


def _sequential(name, text):
    from mpslab.trials import sequential

    return getattr(sequential, name)(text)


def _config(**kwargs):
    from mpslab.run.config import collect_params

    return collect_params(kwargs["params"])


@pytest.mark.parametrize(
    "argv, call, python_words, cli_words",
    [
        (
            ["advise", "--max-failure", "150%"],
            lambda: _advise(max_failure="150%"),
            "max_failure='150%': must be a rate",
            "--max-failure='150%': must be a rate",
        ),
        (["advise", "--budget", "1s"], lambda: _advise(budget="1s"), "budget='1s': too", "--budget='1s': too"),
        (["advise", "--threads", "1,x"], lambda: _advise(threads="1,x"), "threads='x': must", "--threads='x': must"),
        (["advise", "--repeats", "0"], lambda: _advise(repeats=0), "repeats=0: must be", "--repeats=0: must be"),
        (
            ["trials", "--until-bound", "0%"],
            lambda: _sequential("parse_target", "0%"),
            "until_bound='0%': must be a rate",
            "--until-bound='0%': must be a rate",
        ),
        (
            ["trials", "--until-bound", "1%", "--max-time", "soon"],
            lambda: _sequential("parse_duration", "soon"),
            "max_time='soon': give a duration",
            "--max-time='soon': give a duration",
        ),
        (
            ["stress", "--param", "batch"],
            lambda: _config(params=["batch"]),
            "params='batch': expected NAME=VALUE",
            "--param='batch': expected NAME=VALUE",
        ),
    ],
)
def test_lower_layers_name_the_parameter_and_the_cli_the_flag(argv, call, python_words, cli_words, capsys):
    from mpslab.run.config import ConfigError

    with pytest.raises(ConfigError) as info:
        call()
    assert str(info.value).startswith(python_words), str(info.value)
    assert main([*argv, "--device", "cpu", *(["--no-progress"] if argv[0] == "advise" else [])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mpslab: error: " + cli_words) and err.count("\n") == 1, err
