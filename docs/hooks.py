"""mkdocs hook: a page line ``<!-- mpslab-help: SUBCOMMAND -->`` becomes that subcommand's ``--help`` text.

The command reference is read from the parser at build time, so it cannot drift from the code.
"""

from __future__ import annotations

import argparse
import re

_MARK = re.compile(r"^<!-- mpslab-help: ?(\S*) -->$", re.M)


def _help(command: str) -> str:
    from mpslab.cli import build_parser

    parser = build_parser()
    if not command:
        return parser.format_help()
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command].format_help()
    raise KeyError(f"docs: no subcommand {command!r} for an mpslab-help marker")


def on_page_markdown(markdown: str, **kwargs) -> str:
    return _MARK.sub(lambda m: "```text\n" + _help(m.group(1)).rstrip() + "\n```", markdown)
