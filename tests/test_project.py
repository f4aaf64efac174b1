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


# --------------------------------------------------------------------------- every import is declared

# The distributions that provide an import name where the two differ; an extra in brackets provides
# its own name too (``dask[distributed]`` installs ``distributed``).
_PROVIDED_BY = {"PIL": "pillow", "yaml": "pyyaml"}


def _requirement(req: str) -> set[str]:
    """The import-side names a requirement string provides: its distribution and its extras."""
    name = _name(req)
    extras = re.search(r"\[([^\]]*)\]", req)
    return {name} | ({e.strip().lower() for e in extras.group(1).split(",")} if extras else set())


def _third_party_imports(path: str) -> list[tuple[str, int, bool]]:
    """(top-level name, line, hard) per import of a non-stdlib, non-mpslab module in ``path``.

    ``hard``: the import runs when the module is imported (module or class body, outside any
    ``try``); an import inside a function, or inside a ``try`` (a guard for its absence), is optional."""
    import ast
    import sys

    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found = []

    def visit(node, hard):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if isinstance(child, ast.ImportFrom) and (child.level or not child.module):
                    continue
                names = [a.name for a in child.names] if isinstance(child, ast.Import) else [child.module]
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ("mpslab", "__future__"):
                        found.append((top, child.lineno, hard))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.Try):
                visit(child, False)
            else:
                visit(child, hard)

    visit(tree, True)
    return found


def _undeclared(paths, runtime: set[str], extras: set[str]) -> list[str]:
    """One line per import that its declaration does not cover: a hard import needs a runtime dependency,
    an optional one a runtime dependency or an extra."""
    bad = []
    for path in paths:
        for top, line, hard in _third_party_imports(path):
            dist = _PROVIDED_BY.get(top, top).lower()
            if dist in runtime or (not hard and dist in extras):
                continue
            where = "only in an extra" if dist in extras else "nowhere"
            kind = "imported when the module loads" if hard else "imported where used"
            bad.append(f"{os.path.relpath(path, ROOT)}:{line}: {top} is {kind} but declared {where}")
    return bad


def _declared():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    runtime = set().union(*(_requirement(r) for r in project["dependencies"]))
    extras = set().union(*(_requirement(r) for group in project["optional-dependencies"].values() for r in group))
    return runtime, extras


def test_every_third_party_import_in_mpslab_is_declared():
    paths = [
        os.path.join(folder, name)
        for folder, _, files in os.walk(os.path.join(ROOT, "mpslab"))
        for name in files
        if name.endswith(".py")
    ]
    runtime, extras = _declared()
    assert _undeclared(sorted(paths), runtime, extras) == []


def test_optional_parts_are_extras_not_runtime_dependencies():
    """Dask and the notebook widgets are extras: a plain install stays small, and the import check above
    then holds the fleet code to importing dask only where it is used."""
    runtime, extras = _declared()
    assert {"distributed", "ipywidgets", "jupyterlab"} <= extras
    assert not {"dask", "distributed", "ipywidgets", "jupyterlab"} & runtime


def test_the_import_check_sees_an_undeclared_import(tmp_path):
    mod = tmp_path / "m.py"
    mod.write_text(
        "import numpy\nimport yaml\nimport leftpad\nimport distributed\n"
        "def f():\n    import distributed\n    from PIL import Image\n"
        "try:\n    import ipywidgets\nexcept ImportError:\n    pass\n"
    )
    bad = _undeclared([str(mod)], runtime={"numpy", "pyyaml", "pillow"}, extras={"distributed", "ipywidgets"})
    assert [line.split(": ", 1)[1] for line in bad] == [
        "leftpad is imported when the module loads but declared nowhere",
        "distributed is imported when the module loads but declared only in an extra",
    ]
