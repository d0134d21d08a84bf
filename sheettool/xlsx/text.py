"""XML text of cell values, written exactly as XlsxWriter writes it.

Shared by the renderers that write sheet XML themselves (stamp.py for the
templates, masterbook.py for its long tables), so their cells read back the
same as XlsxWriter's.
"""

from __future__ import annotations

import math
import re
import unicodedata
from fractions import Fraction
from functools import lru_cache

STRMAX = 32767  # Excel's cell text limit, in UTF-16 code units

# XlsxWriter's escaping of text: "_xHHHH_" written literally gets its "_" escaped, then
# control characters (other than tab and newline) become "_xHHHH_"; U+FFFE/U+FFFF too.
_LITERAL_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_EDGE_SPACE = re.compile(r"^\s|\s$")  # str regex: \s includes the full-width space U+3000
# Excel's escape as a reader undoes it: one left-to-right pass, so "_x005F_x0041_" is "_x0041_".
_ESCAPED = re.compile(r"_x([0-9a-fA-F]{4})_")
_SURROGATE = re.compile("[\ud800-\udfff]")


def number_text(value: float | int | Fraction) -> str:
    """A number as XlsxWriter writes it: 16 significant digits. NaN and infinity raise TypeError."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise TypeError("NAN/INF not supported in write_number()")  # XlsxWriter's own refusal
    if isinstance(value, Fraction):
        value = float(value)
    return f"{value:.16G}"


def text_item(text: str) -> str:
    """``<t>`` of a string item: truncated, escaped and space-preserved as XlsxWriter does."""
    text = escape_control(truncate(text))
    space = ' xml:space="preserve"' if preserve_space(text) else ""
    return f"<t{space}>{escape_text(text)}</t>"


# Cached for tables, which repeat the same names thousands of times.
string_item = lru_cache(maxsize=1 << 16)(text_item)


def preserve_space(text: str) -> bool:
    """Does ``text`` need xml:space="preserve"? (XlsxWriter's test: whitespace at either end.)"""
    return _EDGE_SPACE.search(text) is not None


def truncate(text: str, limit: int = STRMAX) -> str:
    """``text`` cut to ``limit`` UTF-16 code units without splitting a surrogate pair (XlsxWriter's rule)."""
    if len(text) <= limit // 2:
        return text
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return text[:i]
    return text


def escape_control(text: str) -> str:
    """Control characters as Excel's ``_xHHHH_``; a literal ``_xHHHH_`` keeps its meaning."""
    if "_x" in text:
        text = _LITERAL_ESCAPE.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", text)
    return text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")


def unescape(text: str) -> str:
    """Stored text as Excel shows it: each ``_xHHHH_`` is the character U+HHHH (``escape_control`` undone).

    Excel writes a typed "_x0041_" as "_x005F_x0041_", so decoding once gives back what was typed.
    """
    if "_x" not in text:
        return text
    text = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
    if _SURROGATE.search(text):  # an escaped UTF-16 pair is one character; a lone half is none
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def escape_text(text: str) -> str:
    """XML character data: &, < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@lru_cache(maxsize=1 << 14)
def display_width(text: str) -> float:
    """Width in Excel column units: a full-width (Japanese) character takes about two, others 1.1."""
    return sum(2.0 if unicodedata.east_asian_width(ch) in "WFA" else 1.1 for ch in text)
