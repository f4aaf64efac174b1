"""Standalone source of a workload: its step and setup, and everything they reference, as torch-only code.

``standalone_source(workload)`` returns Python source defining ``step`` and
``setup`` (or ``setup = None``) that needs only torch and the standard library:
the functions' own source (through ``inspect``, decorators dropped), every module
they use imported under the same name (torch or the standard library only), every
plain function they call written out the same way, and simple constants by value.
Anything else (a closure, an mpslab object, a third-party module, a function
defined in a notebook cell without source) is refused with one ``Unsupported``
line. The built-ins and the scenario library pass; a user plugin passes when its
step and setup use only torch.

What it is not: the script around them (``script``) nor the search (``search``).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import sys
import textwrap
import types
from typing import Any

__all__ = ["Unsupported", "standalone_source"]

_CONSTANT_TYPES = (int, float, str, bool, type(None), bytes)


class Unsupported(ValueError):
    """The workload cannot be written out standalone (one line: why)."""


def _allowed_module(mod: types.ModuleType) -> bool:
    top = mod.__name__.split(".")[0]
    return top == "torch" or top in sys.stdlib_module_names


def _is_constant(v: Any) -> bool:
    if isinstance(v, _CONSTANT_TYPES):
        return True
    if isinstance(v, __import__("torch").dtype):
        return True  # its repr is torch.float32 ...: valid source once torch is imported
    if isinstance(v, (tuple, frozenset, list)):
        return all(_is_constant(x) for x in v)
    if isinstance(v, dict):
        return all(_is_constant(k) and _is_constant(x) for k, x in v.items())
    return False


# mpslab helpers a step may call that have a plain torch equivalent: written out instead of followed.
_SUBSTITUTES = {
    "sync_device": (
        "def sync_device(ctx):\n"
        "    kind = torch.device(ctx.device).type\n"
        "    if kind == 'cuda':\n"
        "        torch.cuda.synchronize(ctx.device)\n"
        "    elif kind == 'mps':\n"
        "        torch.mps.synchronize()"
    ),
}


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _function_source(fn: Any, as_name: str) -> str:
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        raise Unsupported(f"{fn.__qualname__}: no source available (defined interactively or built in)") from None
    tree = ast.parse(src)
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        raise Unsupported(f"{fn.__qualname__}: not a plain def (a lambda?)")
    node.decorator_list = []
    node.name = as_name
    node.returns = None  # annotations may name mpslab types: drop them
    for arg in node.args.args + node.args.kwonlyargs + node.args.posonlyargs:
        arg.annotation = None
    if node.args.vararg:
        node.args.vararg.annotation = None
    if node.args.kwarg:
        node.args.kwarg.annotation = None
    return ast.unparse(node)


class _Collector:
    def __init__(self) -> None:
        self.imports: dict[str, str] = {}
        self.constants: dict[str, str] = {}
        self.functions: dict[str, str] = {}  # name -> source, dependencies first
        self.seen: dict[int, str] = {}

    def add_function(self, fn: Any, as_name: str, owner: str) -> None:
        if not isinstance(fn, types.FunctionType):
            raise Unsupported(f"{owner}: {as_name} is a {type(fn).__name__}, not a plain function")
        if fn.__closure__:
            raise Unsupported(f"{owner}: {fn.__qualname__} is a closure (made by a factory): no standalone source")
        if id(fn) in self.seen:
            return
        self.seen[id(fn)] = as_name
        source = _function_source(fn, as_name)
        loaded = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
        for name in sorted(_global_names(fn.__code__) & loaded):  # co_names alone also holds attribute names
            if name in fn.__globals__:
                self.add_global(name, fn.__globals__[name], fn.__qualname__)
            elif not hasattr(builtins, name):
                raise Unsupported(f"{fn.__qualname__}: name {name!r} is not defined where it was written")
        self.functions[as_name] = source

    def add_global(self, name: str, value: Any, owner: str) -> None:
        if isinstance(value, types.ModuleType):
            if not _allowed_module(value):
                raise Unsupported(
                    f"{owner} uses module {value.__name__!r}: only torch and the standard library "
                    "can go into a standalone script"
                )
            stmt = f"import {value.__name__}" if value.__name__ == name else f"import {value.__name__} as {name}"
            self.imports[name] = stmt
        elif (
            name in _SUBSTITUTES and callable(value) and (getattr(value, "__module__", "") or "").startswith("mpslab.")
        ):
            self.imports["torch"] = "import torch"
            self.functions.setdefault(name, _SUBSTITUTES[name])
        elif not isinstance(value, types.FunctionType) and isinstance(
            getattr(value, "__wrapped__", None), types.FunctionType
        ):
            self.add_global(name, value.__wrapped__, owner)  # functools.lru_cache and friends: the plain function
        elif isinstance(value, types.FunctionType):
            mod = sys.modules.get(value.__module__ or "")
            if mod is not None and _allowed_module(mod) and value.__module__ != "__main__":
                self.imports[name] = f"from {value.__module__} import {value.__name__} as {name}"
            else:
                self.add_function(value, name, owner)
        elif isinstance(value, type) or callable(value):
            mod = getattr(value, "__module__", "") or ""
            top = mod.split(".")[0]
            if top == "torch" or top in sys.stdlib_module_names or top == "builtins":
                qual = getattr(value, "__qualname__", getattr(value, "__name__", None))
                if not qual or "." in qual:
                    raise Unsupported(f"{owner} uses {name!r}, which cannot be imported by name")
                self.imports[name] = f"from {mod} import {qual} as {name}"
            else:
                raise Unsupported(
                    f"{owner} uses {name!r} ({type(value).__name__} from {mod or 'unknown'}): not torch-only"
                )
        elif _is_constant(value):
            self.imports.setdefault("torch", "import torch")
            self.constants[name] = f"{name} = {value!r}"
        else:
            raise Unsupported(f"{owner} uses global {name!r} of type {type(value).__name__}: not torch-only")


def standalone_source(workload: Any) -> str:
    """Source defining ``step(ctx, i)`` and ``setup`` for ``workload``; ``Unsupported`` if it cannot."""
    c = _Collector()
    owner = f"workload {workload.name!r}"
    c.add_function(workload.step, "step", owner)
    if workload.setup_fn is not None:
        c.add_function(workload.setup_fn, "setup", owner)
    parts = sorted(set(c.imports.values()))
    parts += [c.constants[k] for k in sorted(c.constants)]
    body = "\n\n\n".join(c.functions.values())
    text = "\n".join(parts) + "\n\n\n" + body + "\n"
    if workload.setup_fn is None:
        text += "\n\nsetup = None\n"
    return text
