"""One parser per kind of value a user types, and the one zero-failure sample size.

Each parser takes what a Python caller or the command line gives (a number or its
text) and the name of the parameter it is for, and refuses bad input with a
``ConfigError`` naming that parameter (the CLI rewords it as its flag). Every
layer that reads a duration, a rate or a workload parameter calls these, so the
same text means the same value everywhere.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from mpslab.run.errors import ConfigError

__all__ = ["check_int", "parse_duration", "parse_proportion", "parse_assignment", "zero_failure_trials"]

_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?|\.\d+)h)?(?:(\d+(?:\.\d*)?|\.\d+)m)?(?:(\d+(?:\.\d*)?|\.\d+)s?)?")
_EXACT_UP_TO = 100_000  # near a tie, the sample size is settled in rationals up to this many trials


def check_int(value: Any, param: str, minimum: int) -> int:
    """``value`` itself when it is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(param=param, value=value, why=f"must be an integer >= {minimum}")
    return value


def parse_duration(value: Any, param: str) -> float:
    """``"90s"``, ``"10m"``, ``"1h"``, ``"1m30s"``, ``"30"`` or a number (seconds) -> seconds, finite and > 0."""
    if isinstance(value, bool):
        raise ConfigError(param=param, value=value, why="give a duration such as 90s, 10m or 1h")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        parts = _DURATION.fullmatch(text)
        if not text or parts is None or not any(parts.groups()):
            raise ConfigError(param=param, value=value, why="give a duration such as 90s, 10m or 1h")
        h, m, s = (float(g) if g else 0.0 for g in parts.groups())
        seconds = 3600.0 * h + 60.0 * m + s
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(param=param, value=value, why="must be a positive duration")
    return seconds


def parse_proportion(value: Any, param: str, *, zero_ok: bool = False) -> float:
    """``"5%"``, ``"0.05"`` or ``0.05`` -> 0.05: a rate in (0, 1), or [0, 1) with ``zero_ok``.

    A percentage is divided in decimal, so ``"33.3%"`` is the float nearest 0.333
    (33.3 / 100 in floats is not).
    """
    if zero_ok:
        allowed = "must be a rate in [0, 1) (from 0, below 1) or a percentage such as 5%"
    else:
        allowed = "must be a rate in (0, 1) (between 0 and 1, exclusive) or a percentage such as 5%"
    if isinstance(value, bool):
        raise ConfigError(param=param, value=value, why=allowed)
    try:
        if isinstance(value, (int, float)):
            x = float(value)
        else:
            text = str(value).strip()
            x = float(Decimal(text[:-1].strip()) / 100) if text.endswith("%") else float(text)
    except (ValueError, ArithmeticError, InvalidOperation):
        raise ConfigError(param=param, value=value, why=f"not a number or a percentage; {allowed}") from None
    if not math.isfinite(x) or not (0.0 <= x < 1.0) or (x == 0.0 and not zero_ok):
        raise ConfigError(param=param, value=value, why=allowed)
    return x


def parse_assignment(text: str, param: str) -> tuple[str, Any]:
    """``"batch=16"`` -> ``("batch", 16)``: a name and a YAML scalar or list (``[1, 2]``, ``true``, ``0.5``)."""
    import yaml  # only where a NAME=VALUE is read: the command line's --help never pays for it

    name, sep, raw = str(text).partition("=")
    if not sep or not name.strip():
        raise ConfigError(param=param, value=text, why="expected NAME=VALUE")
    try:
        return name.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(param=param, value=text, why="VALUE is not a YAML scalar or list") from None


def zero_failure_trials(rate: float | Fraction, confidence: float | Fraction = 0.95) -> int:
    """The fewest trials which, all clean, show a failure rate below ``rate`` at ``confidence``.

    The smallest n with ``(1 - rate)**n < 1 - confidence``: after 0 failures in n trials the
    one-sided Clopper-Pearson upper bound, ``1 - (1 - confidence)**(1/n)``, is then strictly
    below ``rate`` (299 for 1% at 95%, 59 for 5%). A true rate of exactly ``rate`` passes
    all n with probability below ``1 - confidence``. Exact for the values as given (near a
    tie the powers are compared as fractions). The all-failing test of a known bug is the
    same count for the complementary event: ``zero_failure_trials(1 - Fraction(f), c)``.
    """
    for name, x in (("rate", rate), ("confidence", confidence)):
        if isinstance(x, bool) or not isinstance(x, (int, float, Fraction)) or not 0 < x < 1:
            raise ConfigError(param=name, value=x, why="must lie strictly between 0 and 1")
    q, alpha = 1 - Fraction(rate), 1 - Fraction(confidence)
    x = math.log(alpha) / math.log1p(-float(rate))  # n > x exactly when q**n < alpha
    n = max(1, math.floor(x) + 1)
    if abs(x - round(x)) <= 1e-9 * max(1.0, x) and n <= _EXACT_UP_TO:
        while n > 1 and q ** (n - 1) < alpha:
            n -= 1
        while q**n >= alpha:
            n += 1
    return n
