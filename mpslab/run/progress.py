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


def progress_bar(total: int, *, desc: str, unit: str, enabled: bool, initial: int = 0, delay: float = 0.0) -> Any:
    """A tqdm bar over ``total`` steps, or a no-op bar when ``enabled`` is false."""
    if not enabled:
        from tqdm.std import tqdm as text_tqdm

        return text_tqdm(total=total, disable=True)
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)  # "IProgress not found": ipywidgets absent, text bar instead
        from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, delay=delay, leave=False)
