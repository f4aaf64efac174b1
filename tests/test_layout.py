"""The house rules of the layout (README, "Layout"), read from the source with ``ast``: imports run one way.

Every ``import`` counts, at module level or inside a function (a deferred import is still a dependency).
"""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "mpslab")

# lowest first; a module may import its own layer and the ones below, never one above
LAYERS = {"version": 0, "run": 1, "trials": 2, "studies": 3, "report": 4, "commands": 5, "pytest_plugin": 5, "cli": 6}
TOP = {"mpslab", "mpslab.__main__"}  # the package's face: re-exports and the entry point


def _modules():
    """Dotted name -> path of every module of mpslab (child scripts included)."""
    out = {}
    for folder, dirs, files in os.walk(PKG):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                out[".".join(rel)] = os.path.join(folder, name)
    return out


def _imports(path, modname, is_package):
    """The mpslab modules that ``path`` imports, resolved to module names (``from a import b`` -> a.b if a
    module, else a)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mpslab")
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = modname.split(".") if is_package else modname.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "mpslab":
                continue
            found.update(f"{mod}.{a.name}" for a in node.names)  # _graph maps a non-module name to mod
    return found


def _resolve(target, mods):
    """The module a dotted import name lands in: `from pkg import function` -> pkg."""
    while target and target not in mods:
        target = target.rpartition(".")[0]
    return target


def _graph():
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        for target in _imports(path, name, path.endswith("__init__.py")):
            target = _resolve(target, mods)
            if target and target != name:
                deps.add(target)
        graph[name] = deps
    return graph


def _layer(name):
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_module_belongs_to_a_layer():
    assert {n for n in _graph() if n not in TOP and _layer(n) is None} == set()


def test_no_layer_imports_a_higher_one_nor_the_package_init():
    bad = []
    for name, deps in _graph().items():
        if name in TOP:
            continue
        for dep in deps:
            if dep in TOP:
                bad.append(f"{name} imports the package's __init__ ({dep})")
            elif _layer(dep) > _layer(name):
                bad.append(f"{name} (layer {_layer(name)}) imports {dep} (layer {_layer(dep)})")
    assert bad == []


def _cycles(edges):
    """Every cycle a depth-first walk of ``edges`` (name -> names) closes, as 'a -> b -> a' strings."""
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return cycles


def test_no_import_cycles_between_modules():
    # a module importing its own package (which Python runs first anyway) is how packages load, not a cycle
    edges = {n: {d for d in deps if not n.startswith(d + ".")} for n, deps in _graph().items()}
    assert _cycles(edges) == []


def test_the_checks_see_a_planted_violation(tmp_path):
    """The resolver finds an upward import and a cycle when they are there (so the tests above can fail)."""
    low = tmp_path / "low.py"
    low.write_text("def f():\n    from mpslab.report.pipeline import run_series\n")
    (found,) = _imports(str(low), "mpslab.run.low", False)
    assert _resolve(found, _modules()) == "mpslab.report.pipeline"
    rel = tmp_path / "rel.py"
    rel.write_text("from ..trials import isolate\nfrom . import config\n")
    found = _imports(str(rel), "mpslab.run.rel", False)
    assert {"mpslab.trials.isolate", "mpslab.run.config"} <= found
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


# --------------------------------------------------------------------------- the layout map (docs/development.md)


def _layout_section():
    text = open(os.path.join(ROOT, "docs", "development.md"), encoding="utf-8").read()
    start = text.index("## Layout")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _map_rows(section):
    """Layer folder (``run``, ``trials`` ...) -> the text of its row in the layout table."""
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`mpslab/(\w+)/`", cells[0]) if len(cells) > 2 else None
        if m:
            rows[m.group(1)] = " ".join(cells[1:])
    return rows


def _map_misses(section, pkg):
    """What the layout map leaves out or names wrongly: every module of a layer folder and every sub-package
    (``name/``; a sub-package's own docstring maps its modules) is named in its folder's row, every ``x.py``
    the row names exists under that folder, and every top-level module is named in the section."""
    rows, misses = _map_rows(section), []
    for layer in sorted(n for n in os.listdir(pkg) if os.path.isdir(os.path.join(pkg, n)) and n != "__pycache__"):
        row, folder = rows.get(layer), os.path.join(pkg, layer)
        if row is None:
            misses.append(f"mpslab/{layer}/: no row in the layout table")
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.endswith(".py") and name != "__init__.py" and f"`{name}`" not in row:
                misses.append(f"mpslab/{layer}/{name}: not in its row")
            elif os.path.isfile(os.path.join(path, "__init__.py")) and f"`{name}/`" not in row:
                misses.append(f"mpslab/{layer}/{name}/: not in its row")
        present = {n for _, _, files in os.walk(folder) for n in files}
        misses += [
            f"mpslab/{layer}/: names {n}, which is not there"
            for n in re.findall(r"`(\w+\.py)`", row)
            if n not in present
        ]
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py") and name != "__init__.py" and name not in section:
            misses.append(f"mpslab/{name}: not named in the Layout section")
    return misses


def test_the_layout_map_names_every_module_and_nothing_that_is_gone():
    assert _map_misses(_layout_section(), PKG) == []


def test_the_layout_map_check_sees_a_missing_and_a_stale_module(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "__init__.py").write_text("")
    (tmp_path / "run" / "kept.py").write_text("")
    (tmp_path / "run" / "new.py").write_text("")
    (tmp_path / "run" / "sub").mkdir()
    (tmp_path / "run" / "sub" / "__init__.py").write_text("")
    (tmp_path / "top.py").write_text("")
    section = "## Layout\n| folder | what | add |\n| --- | --- | --- |\n| `mpslab/run/` | `kept.py`, `gone.py` | |\n"
    assert _map_misses(section, str(tmp_path)) == [
        "mpslab/run/new.py: not in its row",
        "mpslab/run/sub/: not in its row",
        "mpslab/run/: names gone.py, which is not there",
        "mpslab/top.py: not named in the Layout section",
    ]


# --------------------------------------------------------------------------- private names stay in their module


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(path, modname, is_package):
    """Every place ``path`` reaches into another mpslab module's ``_private`` name: ``from mpslab.x import _y``
    (relative imports included) and ``alias._y`` where ``alias`` is an imported mpslab module or name (a
    class's ``_method`` counts). Dunders (``__version__``) are public by convention."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found, aliases = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update((a.asname or a.name.split(".")[0]) for a in node.names if a.name.split(".")[0] == "mpslab")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = modname.split(".") if is_package else modname.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "mpslab":
                continue
            for a in node.names:
                if _private(a.name):
                    found.append((node.lineno, f"from {mod} import {a.name}"))
                else:
                    aliases.add(a.asname or a.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in aliases:
                found.append((node.lineno, ast.unparse(node)))
    return [f"{line}: {what}" for line, what in sorted(found)]


def _all_private_uses():
    return [
        f"{os.path.relpath(path, ROOT)}:{use}"
        for name, path in sorted(_modules().items())
        for use in _private_uses(path, name, path.endswith("__init__.py"))
    ]


def test_no_module_uses_another_modules_private_names():
    """A name with a leading underscore is its module's own: what another module needs is public, with a
    docstring, so a rename inside one module cannot break another unseen."""
    assert _all_private_uses() == []


def test_the_private_check_sees_each_kind_of_reach(tmp_path):
    mod = tmp_path / "m.py"
    mod.write_text(
        "from mpslab.run.config import StressConfig, _hidden\n"
        "from .sibling import _helper, public\n"
        "import mpslab.run.config as cfg\n"
        "from mpslab.version import __version__\n"
        "import os\n"
        "StressConfig._check_device('cpu')\n"
        "cfg._TABLE\n"
        "public.inner._deep\n"
        "os._exit\n"
        "self_like = object()\n"
        "self_like._fine\n"
    )
    assert _private_uses(str(mod), "mpslab.run.m", False) == [
        "1: from mpslab.run.config import _hidden",
        "2: from mpslab.run.sibling import _helper",
        "6: StressConfig._check_device",
        "7: cfg._TABLE",
        "8: public.inner._deep",
    ]
