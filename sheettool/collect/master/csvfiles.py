"""The tidy CSV files (一覧, コスト推移, 指標)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...fileio import TempOutput
from ...rounding import excel_round
from .model import _NOTHING, _TEXT_MEMORY, COSTS, INDICATORS, LIST, Cell, Formula, Table


class _CsvFiles:
    """The three CSV files, written into temp files in their folder and put in place by ``commit``."""

    def __init__(self, out_dir: str | Path, fiscal_year: int | None) -> None:
        out = Path(out_dir)
        self.targets = {name: out / (f"{name}_{fiscal_year}.csv" if fiscal_year is not None else f"{name}.csv")
                        for name in (LIST, COSTS, INDICATORS)}
        self._files: dict[str, TempOutput] = {}
        self._done: set[str] = set()

    def tee(self, name: str, table: Table) -> Table:
        """``table`` with rows that are written to the CSV file as they are read."""
        out = self._files[name] = TempOutput(self.targets[name], text=True)
        write = out.file.write
        write("\ufeff" + ",".join(_csv_quote(col.csv_header or col.header) for col in table.cols) + "\r\n")
        columns = [_CsvColumn(col.kind) for col in table.cols]

        def rows() -> Iterator[list[Any]]:
            for row in table.rows:
                write(_csv_line(row, columns))
                yield row
            self._done.add(name)

        return Table(table.name, table.cols, rows(), table.count)

    def write(self, name: str, table: Table) -> None:
        """The whole table, unless its rows went through ``tee`` already."""
        if name in self._done:
            return
        if name in self._files:
            raise AssertionError(f"{name}: the rows given to the master book were not all read")
        for _ in self.tee(name, table).rows:
            pass

    def commit(self) -> list[Path]:
        for name in self.targets:
            self._files[name].commit()
        return list(self.targets.values())

    def discard(self) -> None:
        for out in self._files.values():
            out.discard()


class _CsvColumn:
    """One CSV column: its kind, and the fields of values seen (as _Column for the XML)."""

    __slots__ = ("kind", "texts", "last", "field")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.texts: dict[str, str] = {}
        self.last: Any = _NOTHING
        self.field = ""


def _csv_line(row: Sequence[Any], columns: Sequence[_CsvColumn]) -> str:
    """One CSV line (CRLF) as ``csv.writer`` writes ``_csv_value`` of each value (minimal quoting)."""
    if len(row) != len(columns):
        raise ValueError(f"a row of {len(row)} values for {len(columns)} columns")
    fields = []
    append = fields.append
    for col, value in zip(columns, row):  # noqa: B905 (lengths checked above)
        if value is col.last:
            append(col.field)
            continue
        t = type(value)
        if t is str:
            field = col.texts.get(value)
            if field is None:
                if len(col.texts) >= _TEXT_MEMORY:
                    col.texts.clear()
                field = col.texts[value] = _csv_quote(_csv_text(value))
        elif t is int and col.kind != "ratio":
            field = str(value)
        elif value is None:
            field = ""
        elif t is float and col.kind != "ratio":  # as _csv_value
            field = str(int(value)) if value.is_integer() else repr(value)
        elif t is Cell and type(value.value) is int and value.kind != "ratio":
            field = str(value.value)
        else:
            field = _csv_quote(_csv_value(value, col.kind))
        col.last, col.field = value, field
        append(field)
    if fields == [""]:
        return '""\r\n'  # csv.writer quotes a lone empty field (else the line would read as no field)
    return ",".join(fields) + "\r\n"


def _csv_quote(field: str) -> str:
    """A field as csv.writer writes it (excel dialect, QUOTE_MINIMAL, CRLF line ends)."""
    if "," in field or '"' in field or "\r" in field or "\n" in field:
        return '"' + field.replace('"', '""') + '"'
    return field


def _csv_value(value: Any, kind: str) -> str:
    """Plain numbers (達成率 in %), ISO times as recorded, text on one line and formula-safe."""
    if isinstance(value, Cell):
        value, kind = value.value, value.kind
    t = type(value)
    if t is float and kind != "ratio":  # the common cases first, as below
        return str(int(value)) if value.is_integer() else repr(value)
    if t is int and kind != "ratio":
        return str(value)
    if isinstance(value, Formula):
        value = value.value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "有" if value else "無"
    if kind == "ratio" and isinstance(value, int | float):
        return _percent(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    return _csv_text(str(value))


def _percent(value: int | float) -> str:
    """達成率 in % with one decimal, rounded as Excel's ROUND."""
    return str(excel_round(value * 100, 1))


@lru_cache(maxsize=1 << 14)
def _csv_text(text: str) -> str:
    text = re.sub(r"\s*[\r\n]+\s*", " ", text).strip()  # one line per cell, no layout spaces
    # OWASP: a leading = + - @ (or tab/CR) would make Excel read the cell as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
