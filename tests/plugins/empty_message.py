"""An exception without a message, raised a few calls deep (loaded with ``plugins=(path,)``).

``empty-message``: thread 0 raises a bare ``AssertionError()`` from ``_check``, called by
``_inner``: the trials table must say where it was raised, since its text says nothing.
"""

import torch

from mpslab.run.workloads import register_workload


def _check(x):
    raise AssertionError()


def _inner(ctx, x):
    if ctx.thread == 0:
        _check(x)
    return x


def empty_message(ctx, i):
    a = torch.randn(4, 4, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
    return _inner(ctx, a).sum()


register_workload(
    "empty-message",
    empty_message,
    kind="fault",
    description="thread 0 raises AssertionError() with no message, two calls deep",
)
