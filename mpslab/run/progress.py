"""The progress bar of mpslab's long calls (sweeps, isolated trials).

``progress_bar(total, desc=..., unit=..., enabled=...)`` returns a tqdm bar:
tqdm's notebook widget inside a Jupyter kernel where ipywidgets is installed,
text on a terminal, and tqdm's own no-op bar when ``enabled`` is false (nothing
drawn, nothing imported from ``tqdm.auto``). Where ipywidgets is missing in a
kernel, tqdm falls back to a text bar; its ``TqdmWarning`` about it is not
shown, since the reader can do nothing with it mid-run.

It is not a scheduler or a logger: callers drive it with ``update``,
``set_postfix``/``set_postfix_str`` and ``close`` as with any tqdm bar.
Headless runs (the papermill pipeline) pass ``enabled=False``.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["progress_bar"]


class _NoBar:
    """What a disabled bar needs to answer, without importing tqdm: a trial's child (another venv's torch
    build, run by path) has torch, numpy, pandas and pyyaml, and nothing more is asked of it."""

    def __init__(self, total: int, initial: int = 0) -> None:
        self.total, self.n = total, initial

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(total: int, *, desc: str, unit: str, enabled: bool, initial: int = 0, delay: float = 0.0) -> Any:
    """A tqdm bar over ``total`` steps, or a no-op bar (tqdm not imported) when ``enabled`` is false."""
    if not enabled:
        return _NoBar(total, initial)
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)  # "IProgress not found": ipywidgets absent, text bar instead
        from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, delay=delay, leave=False)
