"""Where a config may change form on the trials floor, and that no ``_private`` name crosses a trials module.

A config crosses the floor as a ``StressConfig`` or inside a ``TrialRecord``; it becomes a dict
(``to_dict``) or is built from one (``from_dict``) only at the door (a dict config validated
here), on the wire to a child process or a fleet worker, and where a stored record is read.
"""

from __future__ import annotations

import ast
import pathlib

TRIALS = pathlib.Path(__file__).resolve().parents[1] / "mpslab" / "trials"

# (module, enclosing function, method called): each place a config changes form, and why it may.
ALLOWED = {
    ("child", "_handle_request", "from_dict"),  # the child reads its request (the wire)
    ("child", "_handle_request", "to_dict"),  # a probe answers the normalised config (the wire)
    ("plan", "plan_batch", "from_dict"),  # the door: a dict config validated under this interpreter
    ("plan", "plan_batch", "to_dict"),  # the config sent to each child (the wire)
    ("fleet", "FleetTarget.__init__", "to_dict"),  # the config sent to the workers (the wire)
    ("trial", "TrialRecord.stress_config", "from_dict"),  # a stored record's config, on demand
}


def _calls(tree: ast.AST, names: tuple[str, ...]):
    """(qualified enclosing function, method) of each ``x.<name>(...)`` call."""

    def walk(node: ast.AST, where: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from walk(child, f"{where}.{child.name}" if where else child.name)
                continue
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr in names:
                yield where, child.func.attr
            yield from walk(child, where)

    yield from walk(tree, "")


def test_a_config_changes_form_only_at_the_door_on_the_wire_and_where_a_store_is_read():
    found = set()
    for path in sorted(TRIALS.glob("*.py")):
        for where, name in _calls(ast.parse(path.read_text()), ("from_dict", "to_dict")):
            found.add((path.stem, where, name))
    assert found == ALLOWED


def private_crossings(source: str) -> list[str]:
    """``_private`` names of mpslab modules that ``source`` imports or reads (``__dunders__`` aside)."""
    tree = ast.parse(source)
    modules: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mpslab"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"from {node.module} import {alias.name}")
                else:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("mpslab"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            if node.attr.startswith("_") and not node.attr.startswith("__"):
                found.append(f"{node.value.id}.{node.attr}")
    return found


def test_the_scan_sees_a_private_name_imported_or_read():
    source = "from mpslab.trials.plan import _x, ok\nfrom mpslab.trials import plan as p\np._y()\nok._z\n"
    assert sorted(private_crossings(source)) == ["from mpslab.trials.plan import _x", "ok._z", "p._y"]


def test_no_private_name_crosses_a_driver_module():
    # store.py and records.py are the store's part, with their own seams; every other trials module is here
    crossing = {
        path.name: private_crossings(path.read_text())
        for path in sorted(TRIALS.glob("*.py"))
        if path.stem not in ("store", "records")
    }
    assert {name: found for name, found in crossing.items() if found} == {}
