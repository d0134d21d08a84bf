"""JSON text as RFC 8259 has it, both ways: no NaN or Infinity, no nesting that exhausts the stack.

Python's json module reads and writes ``NaN`` and ``Infinity``, which are not JSON: SQLite's
JSON functions, jq and every browser refuse them. Everything sheettool writes as JSON (check
--json, JSON Lines, records files, the ledger) goes through ``dumps``; JSON from a file a
department or anyone else made goes through ``loads``.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["JSONTextError", "dumps", "finite", "loads"]


class JSONTextError(ValueError):
    """Not JSON that sheettool accepts; the message is Japanese."""


def _refuse_constant(name: str) -> Any:
    raise JSONTextError(f"JSON にない値「{name}」があります")


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN/Infinity and turns deep nesting into ``JSONTextError``.

    ``json.JSONDecodeError`` (a ValueError) still says where the text is broken.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONTextError("入れ子（[ や {）が深すぎます") from None


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (lists and dicts copied as needed)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` whose text is always JSON: a non-finite float (a bug upstream) becomes null."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        return json.dumps(finite(value), allow_nan=False, **kwargs)
