"""Excel tables on a sheet: cells through XlsxWriter, or (big tables) rows made as XML to splice in."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from itertools import chain, islice
from typing import Any

from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name, xl_range
from xlsxwriter.worksheet import Worksheet

from ...xlsx.styles import LABEL_FILL, StyleBook
from ...xlsx.text import display_width, number_text, string_item
from ..submission import EXCLUDED, FOREIGN, MISSING, NEEDS_FIX, REJECTED, UNEXPECTED, UNREADABLE
from .model import _NOTHING, _TEXT_MEMORY, Cell, Col, Formula, Table, _parse_time

# Cell formats by kind; "text" cells are formatted as text so a later edit stays text too.
_KIND_PROPS: dict[str, dict[str, Any]] = {
    "text": {"num_format": "@", "valign": "top"},
    "wrap": {"num_format": "@", "valign": "top", "text_wrap": True},
    "money": {"num_format": "#,##0", "valign": "top"},  # 千円
    "count": {"num_format": "#,##0", "valign": "top"},
    "int": {"num_format": "0", "valign": "top"},
    "score": {"num_format": "0", "valign": "top", "align": "center"},
    "ratio": {"num_format": "0.0%", "valign": "top"},
    "number": {"valign": "top"},
    "fte": {"num_format": "0.00", "valign": "top"},
    "hours": {"num_format": "#,##0.00", "valign": "top"},
    "datetime": {"num_format": "yyyy/mm/dd hh:mm", "valign": "top", "align": "left"},
}
_NUMERIC_KINDS = {"money", "count", "int", "score", "ratio", "number", "fte", "hours"}
_WIDTH_SAMPLE = 2_000  # rows looked at to size a column; enough to see the long values
_MAX_WIDTH, _MIN_WIDTH, _WRAP_WIDTH = 48, 6, 60
_WRAPPED_WIDTH = 40  # a text column wider than _MAX_WIDTH wraps at this width (see _fitted)
_HEADER_WRAP = 18  # a longer header wraps rather than widening its column
_LINE_HEIGHT = 13  # points per line of 10 pt text
_STATUS_FILLS = {MISSING: "#F8CBAD", UNREADABLE: "#F8CBAD", NEEDS_FIX: "#FFE699", FOREIGN: "#F8CBAD",
                 UNEXPECTED: "#D9D9D9", REJECTED: "#F8CBAD", EXCLUDED: "#D9D9D9"}
_TABLE_STYLE = "Table Style Light 9"
_EXCEL_EPOCH = datetime(1899, 12, 30)  # serial day 0 for dates from 1900-03-01 on
_SPLICE_ROWS = 200  # from this many rows a table's data is written as XML (see _write_table)


@lru_cache(maxsize=1024)
def _letter(col: int) -> str:
    return xl_col_to_name(col)


def _title(ws: Worksheet, styles: StyleBook, text: str) -> None:
    ws.write_string(0, 0, text, styles.plain(bold=True, font_size=12))


class _Formats(dict):
    """Cell formats by kind, and the big tables whose rows are written after XlsxWriter closes."""

    def __init__(self, formats: dict[str, Format]) -> None:
        super().__init__(formats)
        self.splices: list[_Splice] = []
        self._xf: dict[str, int] | None = None
        self.widths: dict[int, dict[int, float]] = defaultdict(dict)  # sheet index → column → width set

    def xf(self) -> dict[str, int]:
        """The style index of each kind; registers every format with the book on first use."""
        if self._xf is None:
            self._xf = {kind: fmt._get_xf_index() for kind, fmt in self.items()}
        return self._xf


@dataclass
class _Splice:
    """The data rows of one sheet's big table(s), made as ``_assemble`` writes them into its part."""

    sheet: int  # the sheet's index
    rows: Iterator[str]  # its <row> elements
    first_row: int  # 0-based
    last_row: int
    last_col: int
    # table name → (the range XlsxWriter was given, the table's real range); see _frame
    tables: dict[str, tuple[str, str]] = field(default_factory=dict)
    bound: int = 0  # bytes the rows take at most, if known (else estimated from the first rows)


def _write_table(ws: Worksheet, fmts: _Formats, styles: StyleBook, table: Table, *, top: int, left: int = 0,
                 totals: list[dict] | None = None, size: bool = True, alone: bool = False,
                 beside: Table | None = None) -> int:
    """``table`` as an Excel table (filter buttons on) with its header at row ``top``; returns its row count.

    ``alone``: nothing else on the sheet shares the table's rows (but ``beside``,
    a small table one column to its right with its header on the same row), so
    a big table's data rows may be written as XML directly (``_rows_xml``),
    ten times faster than cell by cell through XlsxWriter and without holding
    them: the first ``_WIDTH_SAMPLE`` rows size the columns now, and all rows
    are made as ``_assemble`` writes the sheet (``table.count`` says how many).
    """
    rows = iter(table.rows)
    head = list(islice(rows, max(_SPLICE_ROWS, _WIDTH_SAMPLE)))
    table = replace(table, cols=_fitted(table.cols, head))
    side_left = left + len(table.cols) + 1
    if alone and head and len(head) >= _SPLICE_ROWS:
        assert not totals, "a totals row is written by XlsxWriter"
        assert table.count is not None, f"{table.name}: a big table needs its row count"
        side = list(beside.rows) if beside is not None else []
        parts = [(table.cols, left, chain(head, rows)), *([(beside.cols, side_left, iter(side))] if beside else [])]
        last_col = max(start + len(cols) - 1 for cols, start, _ in parts)
        fmts.splices.append(_Splice(ws.index, _rows_xml(parts, top, fmts.xf(), table.count), top + 1,
                                    top + max(table.count, len(side)), last_col))
        _frame(ws, fmts, styles, table, table.count, head, [], top=top, left=left, totals=None, size=size,
               spliced=True)
        if beside is not None:
            _frame(ws, fmts, styles, beside, len(side), side, [], top=top, left=side_left, totals=None,
                   size=True, spliced=True)
        return table.count
    count, heights = _write_cells(ws, fmts, table.cols, chain(head, rows), top, left)
    _frame(ws, fmts, styles, table, count, head, heights, top=top, left=left, totals=totals, size=size,
           spliced=False)
    if beside is not None:
        _write_table(ws, fmts, styles, beside, top=top, left=side_left)
    return count


def _fitted(cols: list[Col], sample: Sequence[Sequence[Any]]) -> list[Col]:
    """Text columns too wide for ``_MAX_WIDTH`` wrap at ``_WRAPPED_WIDTH`` rather than being cut
    off by the next cell (file paths, long project names)."""
    out = []
    for c, col in enumerate(cols):
        if col.kind == "text" and col.width is None and any(
                _text_width(str(row[c])) + 2 > _MAX_WIDTH for row in sample[:_WIDTH_SAMPLE] if isinstance(row[c], str)):
            col = replace(col, kind="wrap", width=_WRAPPED_WIDTH)
        out.append(col)
    return out


def _frame(ws: Worksheet, fmts: _Formats, styles: StyleBook, table: Table, count: int, sample: list[list[Any]],
           heights: list[tuple[int, float]], *, top: int, left: int, totals: list[dict] | None, size: bool,
           spliced: bool) -> None:
    """The Excel table over its rows, its column widths and row heights."""
    last = top + max(count, 1) + (1 if totals else 0)  # Excel needs one data row
    right = left + len(table.cols) - 1
    header_fmt = styles.plain(bold=True, bg_color=LABEL_FILL, text_wrap=True, align="center",
                              valign="vcenter", border=1)
    # "format" styles the totals row (the cells above carry their own formats).
    columns = [{"header": col.header, "header_format": header_fmt, "format": fmts[col.kind],
                **((totals or [])[i] if totals else {})} for i, col in enumerate(table.cols)]
    options = {"name": table.name, "columns": columns, "style": _TABLE_STYLE, "total_row": bool(totals),
               "autofilter": True}
    if spliced:
        # XlsxWriter checks every cell of a table's range for overlaps (a dict entry per cell):
        # it gets the header and one row, and _assemble puts the real range into the table part.
        ws.add_table(top, left, top + 1, right, options)
        splice = next(s for s in fmts.splices if s.sheet == ws.index)
        splice.tables[table.name] = (xl_range(top, left, top + 1, right), xl_range(top, left, last, right))
    else:
        ws.add_table(top, left, last, right, options)
    if size:
        _set_widths(ws, fmts, table.cols, sample, top, left)
        for r, height in heights:
            ws.set_row(r, height)


def _write_cells(ws: Worksheet, fmts: _Formats, cols: list[Col], rows: Iterable[list[Any]], top: int,
                 left: int) -> tuple[int, list[tuple[int, float]]]:
    """Rows cell by cell through XlsxWriter; returns their count and the heights of wrapped rows."""
    kinds = [col.kind for col in cols]
    wrapped = _wrapped(cols)
    count, heights = 0, []
    for r, row in enumerate(rows, start=top + 1):
        for c, value in enumerate(row):
            _write_cell(ws, r, left + c, value, kinds[c], fmts)
        if wrapped and (height := _row_height(row, wrapped)) is not None:
            heights.append((r, height))
        count += 1
    return count, heights


def _wrapped(cols: Sequence[Col]) -> list[tuple[int, float]]:
    return [(c, col.width or _WRAP_WIDTH) for c, col in enumerate(cols) if col.kind == "wrap"]


def _row_height(row: Sequence[Any], wrapped: list[tuple[int, float]]) -> float | None:
    """Height for wrapped text: LibreOffice keeps the default height of an imported row."""
    lines = max(sum(math.ceil((_text_width(part) + 1) / (width - 1)) or 1
                    for part in str(row[c] or "").split("\n")) for c, width in wrapped)
    return _LINE_HEIGHT * lines + 4 if lines > 1 else None


def _rows_xml(parts: list[tuple[list[Col], int, Iterator[list[Any]]]], top: int, xf: dict[str, int],
              count: int) -> Iterator[str]:
    """``<row>`` elements from row ``top + 1`` of tables side by side (columns, left, rows).

    Cells as ``_write_cell`` would store them; the first table has ``count``
    rows, and the ones beside it no more than that.
    """
    writers = [(_columns(cols, left, xf), _wrapped(cols), rows) for cols, left, rows in parts]
    (main_columns, main_wrapped, main_rows), beside = writers[0], writers[1:]
    start = main_columns[0].prefix
    num = top + 1
    for row in main_rows:
        num += 1  # 1-based row number of this row
        height = _row_height(row, main_wrapped) if main_wrapped else None
        pieces = ['<row r="', ""]
        _row_pieces(pieces, row, main_columns, xf)
        for columns, wrapped, rows in beside:
            other = next(rows, None)
            if other is not None:
                pieces[-1] += columns[0].prefix
                _row_pieces(pieces, other, columns, xf)
                if wrapped and (h := _row_height(other, wrapped)) is not None:
                    height = h
        # XlsxWriter stores a row height in whole pixels (0.75 pt each); so do we.
        attrs = f' ht="{number_text(round(height * 4 / 3) * 0.75)}" customHeight="1"' if height else ""
        pieces[1] = f'"{attrs}>{start}'
        pieces[-1] += "</row>"
        yield str(num).join(pieces)
    if num - top - 1 != count or any(next(rows, None) is not None for _, _, rows in beside):
        raise AssertionError(f"rows from row {top + 2}: {num - top - 1} written, {count} counted")


class _Column:
    """How one column's cells are written as XML; remembers the XML of the texts it has seen.

    A row is made as ``num.join(pieces)`` (see ``_row_pieces``): each piece is a
    cell after its row number (``rest``) followed by the start of the next cell
    (``after``), so the row number is the only thing joined in per cell.
    """

    __slots__ = ("prefix", "after", "kind", "style", "text_style", "plain", "texts", "styles", "last", "piece")

    def __init__(self, col: int, kind: str, xf: dict[str, int], after: str) -> None:
        self.prefix = f'<c r="{_letter(col)}'  # then the row number, then the rest of the cell
        self.after = after
        self.kind = kind
        self.styles = {k: f' s="{index}"' for k, index in xf.items()}  # for a Cell's own kind
        self.style = self.styles[kind]
        self.text_style = self.styles["text" if kind in _NUMERIC_KINDS else kind]
        self.plain = kind != "datetime"  # a datetime column turns text into dates where it can
        self.texts: dict[str, str] = {}
        # The value of the previous row and its piece: the same object makes the same piece
        # (a project's names on each of its rows, the year on the rows of that year).
        self.last: Any = _NOTHING
        self.piece = ""

    def text(self, value: str) -> str:
        """The piece of a (non-empty) text."""
        if len(self.texts) >= _TEXT_MEMORY:
            self.texts.clear()
        piece = self.texts[value] = f'"{self.text_style} t="inlineStr"><is>{string_item(value)}</is></c>{self.after}'
        return piece


def _columns(cols: Sequence[Col], left: int, xf: dict[str, int]) -> list[_Column]:
    letters = [f'<c r="{_letter(left + c)}' for c in range(len(cols))]
    return [_Column(left + c, col.kind, xf, letters[c + 1] if c + 1 < len(cols) else "")
            for c, col in enumerate(cols)]


def _row_pieces(pieces: list[str], row: Sequence[Any], columns: list[_Column], xf: dict[str, int]) -> None:
    """Append the pieces of one row's cells (see _Column), as _write_cell would store them (strings inline).

    The common types first; anything else takes ``_cell_rest``, the rule itself.
    """
    if len(row) != len(columns):
        raise ValueError(f"a row of {len(row)} values for {len(columns)} columns")
    append = pieces.append
    for col, value in zip(columns, row):  # noqa: B905 (lengths checked above)
        if value is col.last:
            append(col.piece)
            continue
        t = type(value)
        if t is str and value and col.plain:
            piece = col.texts.get(value) or col.text(value)
        elif (t is int or (t is float and math.isfinite(value))) and col.plain:
            piece = f'"{col.style}><v>{value:.16G}</v></c>{col.after}'  # as number_text
        elif value is None:
            piece = f'"{col.style}/>{col.after}'
        elif t is Cell and (type(value.value) is int or (type(value.value) is float and math.isfinite(value.value))) \
                and value.kind != "datetime":
            piece = f'"{col.styles[value.kind]}><v>{value.value:.16G}</v></c>{col.after}'
        else:
            piece = _cell_rest(value, col.kind, xf) + col.after
        col.last, col.piece = value, piece
        append(piece)


def _cell_rest(value: Any, kind: str, xf: dict[str, int]) -> str:
    """A ``<c>`` element after ``<c r="A5``, as _write_cell would store the value (the string inline)."""
    if type(value) is Cell:
        value, kind = value.value, value.kind
    if value is None or value == "":
        return f'" s="{xf[kind]}"/>'
    if type(value) is str and kind != "datetime":
        return f'" s="{xf["text" if kind in _NUMERIC_KINDS else kind]}" t="inlineStr"><is>{string_item(value)}</is></c>'
    if kind == "datetime" and (dt := _parse_time(value)) is not None:
        serial = (dt.replace(tzinfo=None) - _EXCEL_EPOCH).total_seconds() / 86400
        return f'" s="{xf[kind]}"><v>{number_text(serial)}</v></c>'
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return f'" s="{xf[kind]}"><v>{number_text(float(value))}</v></c>'
    if type(value) is Formula:
        raise TypeError("a formula in a spliced table: XlsxWriter prepares formulas, write it cell by cell")
    return f'" s="{xf["text"]}" t="inlineStr"><is>{string_item(str(value))}</is></c>'


def _write_cell(ws: Worksheet, row: int, col: int, value: Any, kind: str, fmts: dict) -> None:
    """One value, typed explicitly: text is always written as text, never as a formula."""
    if type(value) is Cell:
        value, kind = value.value, value.kind
    if value is None or value == "":
        ws.write_blank(row, col, None, fmts[kind])
    elif type(value) is str and kind != "datetime":  # the common case first
        ws.write_string(row, col, value, fmts["text" if kind in _NUMERIC_KINDS else kind])
    elif type(value) is Formula:
        ws.write_formula(row, col, value.text, fmts[kind], value.value)
    elif kind == "datetime" and (dt := _parse_time(value)) is not None:
        ws.write_datetime(row, col, dt.replace(tzinfo=None), fmts[kind])  # the wall-clock time as recorded
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        ws.write_number(row, col, float(value) if isinstance(value, Decimal) else value, fmts[kind])
    else:
        ws.write_string(row, col, str(value), fmts["text"])


_text_width = display_width  # a full-width (Japanese) character takes about two units


def _shown(value: Any, kind: str) -> str:
    if isinstance(value, Cell):
        value, kind = value.value, value.kind
    if isinstance(value, Formula):
        value = value.value
    if value is None:
        return ""
    if kind == "datetime":
        return "0000/00/00 00:00"
    if kind == "ratio" and isinstance(value, int | float):
        return f"{value * 100:,.1f}%"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.2f}" if kind in ("fte", "hours") else f"{value:,}"
    return str(value)


def _set_widths(ws: Worksheet, fmts: _Formats, cols: Sequence[Col], sample: Sequence[Sequence[Any]], top: int,
                left: int) -> None:
    """Column widths from the content (first rows) and the header, which wraps when long."""
    lines = 1
    sample = sample[:_WIDTH_SAMPLE]
    for c, col in enumerate(cols):
        head = _text_width(col.header)
        if col.width is not None:
            width = col.width
        else:
            try:  # each value once: a column repeats its names and years
                values: Iterable[Any] = [v for _, v in {(type(row[c]), row[c]) for row in sample}]
            except TypeError:  # an unhashable value
                values = [row[c] for row in sample]
            content = max((_text_width(_shown(v, col.kind)) for v in values), default=0.0)
            width = max(_MIN_WIDTH, min(max(content, min(head, _HEADER_WRAP)) + 2, _MAX_WIDTH))
        lines = max(lines, math.ceil((head + 1) / (width - 1)))
        ws.set_column(left + c, left + c, width)
        fmts.widths[ws.index][left + c] = width
    if lines > 1:
        ws.set_row(top, _LINE_HEIGHT * lines + 4)  # room for the wrapped header


def _highlight_status(ws: Worksheet, styles: StyleBook, table: Table, top: int, count: int) -> None:
    """Colour the 提出状況 cells that need action."""
    col = next(i for i, c in enumerate(table.cols) if c.header == "提出状況")
    last = top + max(count, 1)
    for status, color in _STATUS_FILLS.items():
        ws.conditional_format(top + 1, col, last, col, {
            "type": "cell", "criteria": "==", "value": f'"{status}"',
            "format": styles.plain(bg_color=color)})
