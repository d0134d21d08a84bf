"""Excel's ROUND, exactly: half away from zero, on decimal values.

Excel and LibreOffice round the decimal value a user typed, not the nearest
binary double (``ROUND(2.675, 2)`` is 2.68 there, 2.67 with Python's ``round``).
So numbers enter as ``Decimal(str(x))`` (the shortest repr, which is what the
cell shows) and all arithmetic stays decimal.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache

Number = int | float | Decimal


def to_decimal(x: Number) -> Decimal:
    """The decimal a spreadsheet user sees for ``x`` (floats via their repr)."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, bool):
        raise TypeError("bool is not a number here")
    if isinstance(x, int):
        return Decimal(x)
    return Decimal(repr(float(x)))


def excel_round(x: Number, digits: int = 0) -> Decimal:
    """``ROUND(x, digits)`` as Excel computes it: half away from zero.

    ``Decimal``'s ROUND_HALF_UP rounds ties away from zero for negatives too.
    """
    return to_decimal(x).quantize(_quantum(digits), rounding=ROUND_HALF_UP, context=_CONTEXT)


_CONTEXT = Context(prec=40)  # one shared context: a new one per call cost more than the rounding


@lru_cache(maxsize=32)
def _quantum(digits: int) -> Decimal:
    return Decimal(1).scaleb(-digits)
