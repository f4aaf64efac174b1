"""The first code of every trial child and fork server: load mpslab by path, then hand over.

Run as a script, never imported::

    python /abs/path/mpslab/trials/boot.py child  <stacks file> <request JSON>
    python /abs/path/mpslab/trials/boot.py server

``faulthandler`` is armed before anything else, so a hang or crash during start-up still
leaves its stacks. The mpslab package is then loaded from the folder this file sits in,
by path: the interpreter (another venv, another torch build) needs no mpslab installed,
and nothing but the working directory is put on ``sys.path`` (as ``python -c`` would),
so that interpreter's own torch is the one imported. Standard library only, until the
package is loaded. Not here: what the child or the server does (``child``, ``forkserver``).
"""

import faulthandler
import importlib.util
import os
import signal
import sys


def _load_mpslab(pkg: str) -> None:
    spec = importlib.util.spec_from_file_location(
        "mpslab", os.path.join(pkg, "__init__.py"), submodule_search_locations=[pkg]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["mpslab"] = module
    spec.loader.exec_module(module)


def main(argv: list[str]) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        sys.path[0] = ""  # as ``python -c``: the working directory, not this folder
    pkg = os.path.dirname(here)
    role = argv[1] if len(argv) > 1 else ""
    if role == "child":
        faulthandler.enable(file=sys.stderr, all_threads=False)
        stacks = open(argv[2], "w")  # noqa: SIM115 (open for the process's lifetime)
        faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
        _load_mpslab(pkg)
        from mpslab.trials.child import spawned_child_main

        return spawned_child_main(argv[3])
    if role == "server":
        faulthandler.enable(file=sys.stderr, all_threads=False)
        _load_mpslab(pkg)
        from mpslab.trials.forkserver import serve

        return serve()
    sys.stderr.write(f"boot.py: unknown role {role!r} (child | server)\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
