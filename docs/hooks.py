"""mkdocs hook: a page line ``<!-- mpslab-help: SUBCOMMAND -->`` becomes that subcommand's ``--help`` text.

The command reference is read from the parser at build time, so it cannot drift from the code.
"""

from __future__ import annotations

import re

_MARK = re.compile(r"^<!-- mpslab-help: ?(\S*) -->$", re.M)


def _help(command: str) -> str:
    from mpslab.cli import build_parser

    parser = build_parser()
    if not command:
        return parser.format_help()
    if command in parser.commands:
        return parser.commands[command].format_help()
    raise KeyError(f"docs: no subcommand {command!r} for an mpslab-help marker")


def on_page_markdown(markdown: str, **kwargs) -> str:
    return _MARK.sub(lambda m: "```text\n" + _help(m.group(1)).rstrip() + "\n```", markdown)


_HREF = re.compile(r'href="#([^"]+)"')
_ID = re.compile(r'id="([^"]+)"')


def on_post_page(output: str, page, **kwargs) -> str:
    """Notebook pages: mkdocs-jupyter's table of contents slugs a heading with code in it differently from the
    heading's own id (``#the-known-failure`` for ``the-known-failure-exit_while_threads_in_ops``); point each
    such entry at the one id it is the start of."""
    if not page.file.src_uri.endswith(".ipynb"):
        return output
    ids = set(_ID.findall(output))

    def repair(m: re.Match) -> str:
        target = m.group(1)
        if target in ids:
            return m.group(0)
        candidates = [i for i in ids if i.startswith(target + "-")]
        return f'href="#{candidates[0]}"' if len(candidates) == 1 else m.group(0)

    return _HREF.sub(repair, output)
