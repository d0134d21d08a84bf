"""Excel's ROUND in Python: half away from zero, exact on decimal halves."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from sheettool.rounding import excel_round, to_decimal


def test_known_excel_results():
    # Values Excel and LibreOffice round up, where binary doubles sit just below the half.
    assert excel_round(2.675, 2) == Decimal("2.68")
    assert excel_round(1.005, 2) == Decimal("1.01")
    assert excel_round(0.285, 2) == Decimal("0.29")
    assert excel_round(6900.5) == 6901
    assert excel_round(-2.5) == -3
    assert excel_round(2.5) == 3
    assert excel_round(-0.4) == 0


@given(st.integers(min_value=-10**9, max_value=10**9))
def test_exact_halves_go_away_from_zero(k):
    half = Decimal(k) + Decimal("0.5") if k >= 0 else Decimal(k) - Decimal("0.5")
    assert excel_round(half) == (k + 1 if k >= 0 else k - 1)


@given(st.integers(min_value=-10**9, max_value=10**9), st.integers(min_value=0, max_value=4))
def test_float_halves_round_like_their_decimal_text(k, digits):
    # 123.45 typed into a cell is the decimal 123.45, not the double nearest to it.
    text = f"{k}.{'4' * digits}5" if digits else f"{k}.5"
    value = float(text)
    expected = Decimal(text).quantize(Decimal(1).scaleb(-digits), rounding="ROUND_HALF_UP")
    if repr(value) == text:  # only where the float prints back as the typed text
        assert excel_round(value, digits) == expected


@given(st.decimals(min_value=-10**12, max_value=10**12, places=3, allow_nan=False))
def test_symmetric(x):
    assert excel_round(-x, 2) == -excel_round(x, 2)


@given(st.decimals(min_value=-10**12, max_value=10**12, places=4, allow_nan=False))
def test_within_half_unit(x):
    assert abs(excel_round(x, 0) - x) <= Decimal("0.5")


def test_to_decimal_uses_the_shortest_repr():
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal(1.5) == Decimal("1.5")
    assert to_decimal(7) == Decimal(7)
