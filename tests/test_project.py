"""The project's own set-up files agree with each other."""

import os
import re

import tomllib
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_and_pyproject_declare_the_same_dependencies():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    declared = {_name(r): r.replace(" ", "") for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared.update({_name(r): r.replace(" ", "") for r in extra})
    with open(os.path.join(ROOT, "environment.yml")) as f:
        env = yaml.safe_load(f)
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = {d for d in env["dependencies"] if isinstance(d, str)}
    in_env = {_name(r): r.replace(" ", "") for r in pip_section if not r.startswith("-e")}
    assert in_env == declared
    assert any(d.startswith("python") for d in conda)


def test_lock_pins_every_declared_dependency_and_torch_exactly():
    with open(os.path.join(ROOT, "requirements.lock")) as f:
        pins = {_name(line): line.strip() for line in f if line.strip() and not line.startswith("#")}
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    for req in project["dependencies"] + extras:
        assert _name(req) in pins, req
        assert "==" in pins[_name(req)]
    assert pins["torch"] == "torch==2.13.0"  # the CPU wheel on disk; a newer pin pulls a CUDA build


def test_ci_runs_the_readme_test_command():
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = [line for line in f.read().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert ci[-1].strip() == "make test"
    assert "make test" in readme
