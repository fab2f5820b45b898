"""Numbers as a person reads them, in Spanish, on every surface (CLI, menu, report).

The rule (README, «Cómo se escriben los números»):

- decimal comma: ``0,1``, ``82,5×``;
- thousands grouped by a no-break space from five digits up: ``1000``, ``10 000``,
  ``11 799 222`` (a four-digit number is not split, as the RAE recommends, and the
  space never breaks a number across two lines);
- durations in the unit that fits: ``2,35 s``, ``12,4 ms``, ``85 µs``;
- an input that takes one number accepts a decimal comma or point (``--dt 0,05`` and
  ``--dt 0.05``); in a list the comma separates the items (``--particles 100,1000``).

JSON and CSV are for programs and keep the machine form (``0.05``, ``11799222``).
The dashboard (dashboard.js) writes numbers by the same rule.
"""

from __future__ import annotations

import math

__all__ = ["NBSP", "count", "decimal", "duration", "integer", "parse_number", "ratio", "significant"]

NBSP = "\u00a0"


def integer(n: int) -> str:
    """``950``, ``1000``, ``10 000``: grouped from five digits up."""
    text = str(abs(n))
    if len(text) > 4:
        text = f"{abs(n):,}".replace(",", NBSP)
    return ("-" if n < 0 else "") + text


def decimal(x: float, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, a decimal comma and grouped thousands."""
    if not math.isfinite(x):
        return "—"
    text = f"{x:.{digits}f}"
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    grouped = integer(int(whole))
    return sign + grouped + ("," + fraction if fraction else "")


def significant(x: float, digits: int = 4) -> str:
    """``x`` to ``digits`` significant digits with a decimal comma and grouped thousands,
    without trailing zeros: ``0,03272``, ``133,3``, ``12 104,5`` (a quantity whose
    scale is not known in advance). Only far from 1 (below 10⁻⁴, from 10¹⁵) it takes an
    exponent: ``1,2e-07``."""
    if not math.isfinite(x):
        return "—"
    if x == 0:
        return "0"
    if not 1e-4 <= abs(x) < 1e15:
        return f"{x:.{digits}g}".replace(".", ",")
    places = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = decimal(x, places)
    return text.rstrip("0").rstrip(",") if "," in text else text


def duration(seconds: float | None) -> str:
    """A time in the unit that keeps three significant digits: ``1,23 s``, ``12,4 ms``,
    ``85,0 µs`` (never ``0,0000``)."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds == 0:
        return "0 s"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")):
        value = seconds / scale
        if abs(value) >= 1 or unit == "ns":
            digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
            return f"{decimal(value, digits)} {unit}"
    raise AssertionError("unreachable")


def ratio(value: float) -> str:
    """A speedup: ``1300×``, ``56,7×``, ``3,21×`` (as many digits as it needs)."""
    return f"{decimal(value, 0 if value >= 100 else 1 if value >= 10 else 2)}×"


def count(n: int, one: str, many: str) -> str:
    """``1 tarea``, ``2 tareas``, ``10 000 tareas``: the noun agrees with the number."""
    return f"{integer(n)} {one if n == 1 else many}"


def parse_number(text: str) -> float:
    """A number a person typed: a decimal comma or point (``0,05``, ``0.05``); raises
    ValueError when it is not one number (``1,000.5`` is ambiguous and refused)."""
    cleaned = text.strip()
    if "," in cleaned:
        if "." in cleaned or cleaned.count(",") > 1:
            raise ValueError(text)
        cleaned = cleaned.replace(",", ".")
    return float(cleaned)
