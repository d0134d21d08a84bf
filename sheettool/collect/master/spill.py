"""The records kept on disk while the book is written, and their JSON as ``_records`` holds it."""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import jsontext
from ...spec.master import MasterSpec
from ...xlsx.text import STRMAX

RECORDS_HEADER = ("project_no", "fiscal_year", "status", "sha256", "json_sha256", "parts")
CELL_LIMIT = STRMAX  # Excel's characters per cell (counted in UTF-16 units)
_CHUNK_UNITS = 32_000  # a little under the limit, in UTF-16 units
# Characters XML or a spreadsheet may mangle; JSON \u escapes keep them out of the cell.
_JSON_RISKY = re.compile("[\u007f-\u009f\ud800-\udfff\ufffe\uffff]")
# "_x0041_" in a cell is Excel's escape of a character; readers differ in undoing it (openpyxl
# only for shared strings), so the "_" that starts one is written as \u005f (only inside strings).
_JSON_EXCEL_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")


@dataclass(frozen=True)
class _Spilled:
    """Where one record's data went in the spill file, and how many rows it makes."""

    offset: int
    tables: int  # bytes of the pickled (costs, indicators)
    json: int | Exception  # bytes of its JSON text, or why it could not be written as JSON
    cost_rows: int  # in コスト推移 (see _cost_table)
    indicator_rows: int  # in 指標 (see _indicator_table)
    parts: int  # cells its JSON takes in _records (see _chunks)


class _Spill:
    """What the long tables and ``_records`` need of each record, kept on disk until they are written.

    Our own temp file in our own temp folder, read back by this process only.
    """

    def __init__(self, path: Path, spec: MasterSpec) -> None:
        self._file = open(path, "w+b")  # noqa: SIM115 -- closed by __exit__
        self._end = 0
        self.spec = spec

    def __enter__(self) -> _Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def put(self, record: dict[str, Any], *, json: bool) -> _Spilled:
        spec = self.spec
        costs = record.get(spec.cost_series) if spec.cost_series else None
        indicators = record.get(spec.indicator_repeat) if spec.indicator_repeat else None
        tables = pickle.dumps((costs, indicators), protocol=pickle.HIGHEST_PROTOCOL)
        text: bytes | Exception = b""
        parts = 0
        if json:
            try:
                dumped = _dump_json(record)
                text, parts = dumped.encode("utf-8"), len(_chunks(dumped))
            except (TypeError, ValueError) as exc:  # raised if this record gets to _records
                text = exc
        self._file.seek(self._end)
        self._file.write(tables)
        if isinstance(text, bytes):
            self._file.write(text)
        # The rows the long tables make of it, counted as they iterate (see there).
        cost_rows = sum(1 for _ in costs or []) * len(spec.cost_items)
        series = spec.indicator_series or ""
        indicator_rows = sum(max(1, len(ind.get(series) or [])) for ind in indicators or [])
        where = _Spilled(self._end, len(tables), text if isinstance(text, Exception) else len(text),
                         cost_rows, indicator_rows, parts)
        self._end += len(tables) + (len(text) if isinstance(text, bytes) else 0)
        return where

    def tables(self, where: _Spilled) -> tuple[Any, Any]:
        """(costs, indicators) of the record, as they were."""
        self._file.seek(where.offset)
        return pickle.loads(self._file.read(where.tables))  # our own temp file

    def json(self, where: _Spilled) -> bytes:
        """The record as ``_dump_json`` writes it, UTF-8."""
        if isinstance(where.json, Exception):
            raise where.json
        self._file.seek(where.offset + where.tables)
        return self._file.read(where.json)


def _dump_json(record: dict[str, Any]) -> str:
    text = jsontext.dumps(record, ensure_ascii=False, separators=(",", ":"))
    # These code points occur only inside JSON strings, where a \u escape means the same.
    text = _JSON_RISKY.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return _JSON_EXCEL_ESCAPE.sub(r"\\u005f", text) if "_x" in text else text


def _chunks(text: str, units: int = _CHUNK_UNITS) -> list[str]:
    """Pieces of at most ``units`` UTF-16 code units, never starting or ending with a space
    (a space at a cell's edge is the one thing a spreadsheet might trim)."""
    if len(text) * 2 <= units or _utf16_units(text) <= units:
        return [text]
    out: list[str] = []
    start = 0
    while start < len(text):
        end = start + units
        if end >= len(text) or _utf16_units(text[start:end]) > units:  # the end, or characters beyond the BMP
            end, used = start, 0
            while end < len(text) and used + (2 if ord(text[end]) > 0xFFFF else 1) <= units:
                used += 2 if ord(text[end]) > 0xFFFF else 1
                end += 1
        while start + 1 < end < len(text) and (text[end - 1].isspace() or text[end].isspace()):
            end -= 1
        out.append(text[start:end])
        start = end
    return out


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2
