"""The master book that ``collect`` writes, its tidy CSV, and the records read back.

Sheets of the master book (every visible sheet is an Excel table with filters,
a frozen header row and A4 landscape printing one page wide):

- 一覧, コスト推移, 指標: the data, one table each, starting at A1.
- 方向性集計 (with a stacked bar chart), 部別コスト: aggregates over the
  projects whose record counts (提出状況 受理 or 要修正; 対象外, 未提出 and
  読取不可 are left out).
- 提出状況, 指摘一覧, 履歴: what the office has to chase.
- ``_records`` (hidden): the full record JSON of every current project, which
  ``read_master_records`` returns unchanged.

Which submissions 指摘一覧 lists: those that count *now* — every current
submission (its errors and warnings), plus every unreadable file that no later
submission replaced (a later file with the same inbox path or for the same
project). Findings of superseded files are left out, since they were fixed or
replaced; 履歴 still shows those files with their counts.

The CSV (``write_csv``) follows 総務省「統計表における機械判読可能なデータの表記方法の
統一ルール」: one table per file, one header row, one value per cell, numbers
without separators or units (units in the header or in a 単位 column), years as
Western years with a separate 和暦 column, time series downwards, no notes or
blank rows, line breaks inside text replaced by a space. UTF-8 with BOM, CRLF.
A text cell that starts with ``= + - @`` (or a tab / CR) gets a leading ``'``
(OWASP's CSV-injection rule) so Excel does not run it as a formula; numbers are
never quoted, so a negative 千円 amount stays a number.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import math
import re
import unicodedata
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import openpyxl
from xlsxwriter.format import Format
from xlsxwriter.utility import (
    xl_col_to_name,
    xl_range,
    xl_rowcol_to_cell,
)
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from . import filesafety
from .fileio import atomic_write_bytes
from .formulas import achievement_rate, total_cost
from .records import RecordsError
from .rounding import excel_round
from .schema import field_label, property_schema
from .styles import LABEL_FILL, StyleBook
from .submission import ACCEPTED, MISSING, NEEDS_FIX, UNEXPECTED, UNREADABLE, Submission
from .wareki import fiscal_label, fiscal_label_with_western
from .xmltext import number_text, string_item

# Sheet names (the visible ones in book order, then the hidden one).
LIST = "一覧"
COSTS = "コスト推移"
INDICATORS = "指標"
DIRECTION_SUMMARY = "方向性集計"
DEPARTMENT_COSTS = "部別コスト"
STATUS = "提出状況"
FINDINGS = "指摘一覧"
HISTORY = "履歴"
RECORDS = "_records"

FONT = "ＭＳ Ｐゴシック"  # the font of the templates: one look across the toolkit
FONT_SIZE = 10
_WB_OPTIONS = {
    "strings_to_formulas": False,  # text starting with "=" stays text
    "strings_to_urls": False,
    "strings_to_numbers": False,
    "in_memory": True,  # built in memory, then written atomically
    "default_format_properties": {"font_name": FONT, "font_size": FONT_SIZE},
}

RECORDS_HEADER = ("project_no", "fiscal_year", "status", "sha256", "json_sha256", "parts")
CELL_LIMIT = 32_767  # Excel's characters per cell (counted in UTF-16 units)
_CHUNK_UNITS = 32_000  # a little under the limit, in UTF-16 units
# Characters XML or a spreadsheet may mangle; JSON \u escapes keep them out of the cell.
_JSON_RISKY = re.compile("[\u007f-\u009f\ud800-\udfff\ufffe\uffff]")

# A master book is our own output but may be large; these bound a hostile one all the same.
_MiB = filesafety.MiB
_MASTER_LIMITS = filesafety.Limits(max_file_bytes=200 * _MiB, max_part_bytes=400 * _MiB,
                                   max_total_bytes=1024 * _MiB)

COUNTED = (ACCEPTED, NEEDS_FIX)  # statuses whose figures enter the aggregates
STATUS_ORDER = (MISSING, NEEDS_FIX, UNREADABLE, UNEXPECTED, ACCEPTED)
SEVERITY_LABEL = {"error": "エラー", "warning": "注意"}
CURRENT_LABEL, SUPERSEDED_LABEL = "現行", "置換済み"
SHA_PREFIX = 12
NO_DIRECTION = "未記入"
OTHER_DIRECTION = "その他の値"  # a 要修正 record may hold a value outside the list
UNKNOWN_DEPARTMENT = "（不明）"
UNKNOWN_YEAR = "評価年度不明"

DIRECTIONS: tuple[str, ...] = tuple(d for d in property_schema("direction")["enum"] if d is not None)
DIRECTION_COLORS = {"拡大・拡充": "#70AD47", "継続": "#4472C4", "改善・見直し": "#FFC000",
                    "縮小": "#ED7D31", "統合": "#7030A0", "休止・廃止": "#C00000",
                    "完了": "#7F7F7F", NO_DIRECTION: "#D9D9D9", OTHER_DIRECTION: "#A5A5A5"}

# コスト推移: (項目, 単位, record key or None for トータルコスト, number format kind)
COST_ITEMS: tuple[tuple[str, str, str | None, str], ...] = (
    ("予算額", "千円", "budget", "money"),
    ("決算額", "千円", "settlement", "money"),
    ("一般財源", "千円", "general_fund", "money"),
    ("国庫・県支出金・地方債", "千円", "subsidies_bonds", "money"),
    ("その他", "千円", "other", "money"),
    ("人件費計", "千円", "personnel_cost", "money"),
    ("正職員従事割合", "人", "staff_fte", "fte"),
    ("時間外勤務", "時間", "overtime_hours", "hours"),
    ("トータルコスト", "千円", None, "money"),
)
SCORES = (("市民ニーズ", "citizen_needs"), ("進捗状況", "progress"),
          ("市の関与", "city_involvement"), ("優先度", "priority"))

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
_HEADER_WRAP = 18  # a longer header wraps rather than widening its column
_LINE_HEIGHT = 13  # points per line of 10 pt text
_STATUS_FILLS = {MISSING: "#F8CBAD", UNREADABLE: "#F8CBAD", NEEDS_FIX: "#FFE699",
                 UNEXPECTED: "#D9D9D9"}
_TABLE_STYLE = "Table Style Light 9"
_EXCEL_EPOCH = datetime(1899, 12, 30)  # serial day 0 for dates from 1900-03-01 on
_SPLICE_ROWS = 200  # from this many rows a table's data is written as XML (see _splice)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Col:
    """One table column: header, value kind (number format) and optional fixed width."""

    header: str
    kind: str = "text"
    width: float | None = None
    csv_header: str | None = None  # where the CSV says it differently (units, %)


@dataclass(frozen=True)
class Cell:
    """A value whose format differs from its column's (コスト推移's 値 by unit)."""

    value: Any
    kind: str


@dataclass(frozen=True)
class Formula:
    """A formula cell with its computed value cached (readers that do not recalculate see it)."""

    text: str
    value: Any


@dataclass
class Table:
    name: str  # the Excel table name
    cols: list[Col]
    rows: list[list[Any]]


@dataclass
class _Project:
    """One row of 一覧: a project received, expected, or both."""

    no: str
    ident: dict[str, Any]  # names come from here: the record, else the expected record
    record: dict[str, Any] | None
    sub: Submission | None
    status: str

    @property
    def counted(self) -> bool:
        return self.record is not None and self.status in COUNTED


@dataclass
class _Book:
    fiscal_year: int | None  # None: nothing readable and nothing expected says which year
    projects: list[_Project]
    loose: list[Submission]  # live unreadable files that do not stand for a project
    live: list[Submission]
    history: list[Submission]
    names: dict[str, dict[str, Any]] = field(default_factory=dict)  # project_no → identity
    given: dict[int, int] = field(default_factory=dict)  # id(submission) → its index in ``current``
    tables: dict[str, Table] = field(default_factory=dict)  # long tables, built once per book
    _by_sub: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_sub = {id(p.sub): p.status for p in self.projects if p.sub is not None}

    def status_of(self, sub: Submission) -> str:
        """提出状況 of one file: its project's, when it is the file that counts for it."""
        return self._by_sub.get(id(sub), sub.result.status)


# --------------------------------------------------------------------------- public API


def write_master(path: str | Path, current: list[Submission], expected: list[dict] | None,
                 history: list[Submission], fiscal_year: int | None) -> None:
    """Write the master book to ``path`` (atomically).

    ``fiscal_year`` is None when no file could be read and nothing is expected
    (an inbox of unreadable files): the book is still written, so the office
    sees what to chase, with the year shown as 評価年度不明.
    """
    _write_master_book(path, _collect(current, expected, history, fiscal_year))


def write_outputs(path: str | Path, csv_dir: str | Path, current: list[Submission],
                  expected: list[dict] | None, history: list[Submission],
                  fiscal_year: int | None) -> list[Path]:
    """The master book and the CSV files from one model (the long tables are built once)."""
    book = _collect(current, expected, history, fiscal_year)
    _write_master_book(path, book)
    return _write_csv_files(csv_dir, book)


def _write_master_book(path: str | Path, book: _Book) -> None:
    fiscal_year = book.fiscal_year
    buf = io.BytesIO()
    wb = Workbook(buf, copy.deepcopy(_WB_OPTIONS))  # xlsxwriter adds keys to the options it is given
    styles = StyleBook(wb, {})
    fmts = _Formats({kind: styles.plain(**props) for kind, props in _KIND_PROPS.items()})
    label = _year_label(fiscal_year)
    _list_sheet(wb, fmts, styles, book, label)
    _costs_sheet(wb, fmts, styles, book, label)
    _indicators_sheet(wb, fmts, styles, book, label)
    _direction_sheet(wb, fmts, styles, book, label)
    _department_costs_sheet(wb, fmts, styles, book, label)
    _status_sheet(wb, fmts, styles, book, label)
    _findings_sheet(wb, fmts, styles, book, label)
    _history_sheet(wb, fmts, styles, book, label)
    _records_sheet(wb, book)
    wb.set_properties({"title": f"事務事業評価 マスターブック {label}", "author": "sheettool",
                       "comments": "sheettool collect で作成"})
    wb.set_custom_property("sheettool_masterbook", "1")
    if fiscal_year is not None:
        wb.set_custom_property("sheettool_fiscal_year", str(fiscal_year))
    wb.close()
    atomic_write_bytes(path, _splice(buf.getvalue(), fmts.splices))


def read_master_records(path: str | Path) -> list[dict]:
    """The records stored by ``write_master``, in book order.

    Reads only the ``_records`` sheet's cell text (no cached formula values, no
    part names assumed), so a book opened and saved by Excel or LibreOffice
    reads the same. Anything else raises RecordsError with a Japanese message.
    """
    path = Path(path)
    try:
        data = filesafety.open_package(path, _MASTER_LIMITS).open_bytes()
    except filesafety.UnreadableFile as exc:
        raise RecordsError(f"{path.name} をマスターブックとして読み取れません: {exc.finding.message}") from None
    try:
        wb = openpyxl.load_workbook(data, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types on malformed parts
        raise RecordsError(f"{path.name} をマスターブックとして読み取れません（{type(exc).__name__}）。") from None
    try:
        if RECORDS not in wb.sheetnames:
            raise RecordsError(f"{path.name} はマスターブックではありません（{RECORDS} シートがありません）。"
                               "sheettool collect で作成したマスターブックを指定してください。")
        ws = wb[RECORDS]
        ws.reset_dimensions()  # a saved-again book may carry a wrong <dimension>
        rows = ws.iter_rows(values_only=True)
        header = next(rows, ())
        if tuple(header[:len(RECORDS_HEADER)]) != RECORDS_HEADER:
            raise RecordsError(f"{path.name} の {RECORDS} シートの見出しが想定と異なります。"
                               "sheettool collect で作成したマスターブックを指定してください。")
        return [_parse_record_row(path.name, n, row) for n, row in enumerate(rows, start=2)
                if any(v not in (None, "") for v in row)]
    finally:
        wb.close()


def write_csv(out_dir: str | Path, current: list[Submission], expected: list[dict] | None,
              fiscal_year: int | None) -> list[Path]:
    """一覧, コスト推移 and 指標 as tidy CSV files in ``out_dir``; returns their paths."""
    return _write_csv_files(out_dir, _collect(current, expected, [], fiscal_year))


def _write_csv_files(out_dir: str | Path, book: _Book) -> list[Path]:
    fiscal_year = book.fiscal_year
    out = Path(out_dir)
    written = []
    for name, table in ((LIST, _list_table(book, csv=True)), (COSTS, _cost_table(book)),
                        (INDICATORS, _indicator_table(book))):
        target = out / (f"{name}_{fiscal_year}.csv" if fiscal_year is not None else f"{name}.csv")
        atomic_write_bytes(target, _csv_bytes(table))
        written.append(target)
    return written


# --------------------------------------------------------------------------- who counts


def _collect(current: list[Submission], expected: list[dict] | None,
             history: list[Submission], fiscal_year: int | None) -> _Book:
    """Projects with their status, from the submissions and the expected list."""
    live = _live(current, history)
    exp = None if expected is None else {str(r.get("project_no")): r for r in expected}
    chosen: dict[str, Submission] = {}
    for sub in sorted(live, key=_received):
        if sub.project_no is None:
            continue
        no = str(sub.project_no)  # a broken record may hold a number here
        prev = chosen.get(no)
        # A readable record beats an unreadable file; otherwise the later one counts.
        if prev is None or (sub.result.record is not None) >= (prev.result.record is not None):
            chosen[no] = sub
    projects = []
    for no, sub in chosen.items():
        record = sub.result.record
        ident = record or (exp or {}).get(no) or {"project_no": no}
        status = sub.result.status
        if exp is not None and no not in exp:
            status = UNEXPECTED
        projects.append(_Project(no, ident, record, sub, status))
    for no, rec in (exp or {}).items():
        if no not in chosen:
            projects.append(_Project(no, rec, None, None, MISSING))
    projects.sort(key=lambda p: _natural(p.no))
    picked = {id(p.sub) for p in projects}
    loose = [s for s in live if id(s) not in picked and s.result.status == UNREADABLE]
    names = {str(r.get("project_no")): r for r in (expected or [])}
    names.update({p.no: p.ident for p in projects})
    given = {id(s): i for i, s in enumerate(current)}
    return _Book(fiscal_year, projects, sorted(loose, key=_received), live, history, names, given)


def open_unreadable(current: list[Submission], history: list[Submission]) -> list[Submission]:
    """Unreadable files nothing later replaced: the rows 提出状況 shows as 読取不可."""
    return sorted((s for s in _live(current, history) if s.result.status == UNREADABLE), key=_received)


def _live(current: list[Submission], history: list[Submission]) -> list[Submission]:
    """The submissions that count now: current ones, and unreadable files nothing replaced."""
    chosen = {_key(s): s for s in current}
    for sub in history:
        if _key(sub) in chosen:
            continue
        if sub.current or (sub.result.status == UNREADABLE and not _replaced(sub, history)):
            chosen[_key(sub)] = sub
    return list(chosen.values())


def _replaced(sub: Submission, history: Iterable[Submission]) -> bool:
    """A later file arrived under the same inbox path or for the same project."""
    when = _received(sub)
    return any(other is not sub and _received(other) > when
               and (other.file == sub.file or (sub.project_no is not None and other.project_no == sub.project_no))
               for other in history)


def _key(sub: Submission) -> tuple[str, str]:
    return sub.sha256, sub.file


def _received(sub: Submission) -> float:
    dt = _parse_time(sub.received_at)
    return dt.timestamp() if dt else 0.0


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None


def _natural(text: str) -> tuple:
    """'9' before '10'; '088' with '88'; letters after numbers."""
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", text) if part)


def _counts(sub: Submission | None) -> tuple[int | None, int | None]:
    if sub is None:
        return None, None
    errors = sum(1 for f in sub.result.findings if f.is_error)
    return errors, len(sub.result.findings) - errors


def _cost_entry(record: dict[str, Any] | None, year: int) -> dict[str, Any]:
    for entry in (record or {}).get("costs") or []:
        if entry.get("year") == year:
            return entry
    return {}


def _wareki(year: Any) -> str | None:
    try:
        return fiscal_label(int(year))
    except (TypeError, ValueError):
        return None


def _year_label(fiscal_year: int | None) -> str:
    return fiscal_label_with_western(fiscal_year) if fiscal_year is not None else UNKNOWN_YEAR


def _ident(book: _Book, no: str | None) -> list[Any]:
    """番号, 事業名, 部, 課 of a project (blank where unknown)."""
    ident = book.names.get(no or "", {})
    return [no, ident.get("project_name"), ident.get("department"), ident.get("division")]


IDENT_COLS = [Col("番号"), Col("事業名"), Col("部"), Col("課")]


# --------------------------------------------------------------------------- tables


def _once(build: Callable[[_Book], Table]) -> Callable[[_Book], Table]:
    """A table the book and the CSV files share, built once per book."""

    def table(book: _Book) -> Table:
        if build.__name__ not in book.tables:
            book.tables[build.__name__] = build(book)
        return book.tables[build.__name__]

    table.__doc__ = build.__doc__
    return table


def _list_table(book: _Book, *, csv: bool = False) -> Table:
    """一覧: one row per project. The xlsx headers carry the year; the CSV has 年度/和暦 columns."""
    fy = book.fiscal_year
    year = "" if csv or fy is None else fiscal_label_with_western(fy)
    cols = [
        Col("番号"), Col("事業名"), Col("部"), Col("課"), Col("係"), Col("事業分類"), Col("事業体制"),
        Col(f"{year}予算額（千円）", "money"), Col(f"{year}決算額（千円）", "money"),
        Col(f"{year}人件費計（千円）", "money"), Col(f"{year}トータルコスト（千円）", "money"),
        *(Col(name, "score") for name, _ in SCORES),
        Col("方向性"), Col("提出状況"), Col("エラー数", "count"), Col("注意数", "count"),
        Col("提出ファイル"), Col(f"SHA-256（先頭{SHA_PREFIX}桁）"), Col("受付日時", "datetime"),
    ]
    rows = []
    for p in book.projects:
        rec = p.record or {}
        cost = _cost_entry(p.record, fy)
        ev = rec.get("evaluation") or {}
        settlement, personnel = cost.get("settlement"), cost.get("personnel_cost")
        errors, warnings = _counts(p.sub)
        rows.append([
            p.no, p.ident.get("project_name"), p.ident.get("department"), p.ident.get("division"),
            p.ident.get("section"), p.ident.get("category"), p.ident.get("delivery"),
            cost.get("budget"), settlement, personnel, total_cost(settlement, personnel),
            *(ev.get(key) for _, key in SCORES),
            rec.get("direction"), p.status, errors, warnings,
            p.sub.file if p.sub else None, p.sub.sha256[:SHA_PREFIX] if p.sub else None,
            p.sub.received_at if p.sub else None,
        ])
    if csv:
        cols = [Col("年度", "int"), Col("和暦"), *cols]
        rows = [[fy, _wareki(fy), *row] for row in rows]
    return Table("T_List", cols, rows)


def _with_records(book: _Book) -> list[_Project]:
    return [p for p in book.projects if p.record is not None]


@_once
def _cost_table(book: _Book) -> Table:
    """コスト推移: project × year × item, the value's unit in its own column."""
    cols = [*IDENT_COLS, Col("年度", "int"), Col("和暦"), Col("項目"),
            Col("単位"), Col("値", "number"), Col("提出状況")]
    rows = []
    for p in _with_records(book):
        ident = _ident(book, p.no)
        for entry in sorted(p.record.get("costs") or [], key=lambda e: e.get("year") or 0):
            year = entry.get("year")
            total = total_cost(entry.get("settlement"), entry.get("personnel_cost"))
            for item, unit, key, kind in COST_ITEMS:
                value = total if key is None else entry.get(key)
                rows.append([*ident, year, _wareki(year), item, unit, Cell(value, kind), p.status])
    return Table("T_Costs", cols, rows)


@_once
def _indicator_table(book: _Book) -> Table:
    """指標: project × indicator × year with 達成率 (formulas.achievement_rate; ceilings such as 以内 inverted)."""
    cols = [*IDENT_COLS, Col("指標番号", "int"), Col("指標名"), Col("単位"),
            Col("種類"), Col("年度", "int"), Col("和暦"),
            Col("目標値", "number"), Col("実績", "number"),
            Col("達成率", "ratio", csv_header="達成率（％）"), Col("提出状況")]
    rows = []
    for p in _with_records(book):
        ident = _ident(book, p.no)
        for ind in sorted(p.record.get("indicators") or [], key=lambda i: i.get("no") or 0):
            head = [*ident, ind.get("no"), ind.get("name"), ind.get("unit"), ind.get("kind")]
            values = sorted(ind.get("values") or [], key=lambda v: v.get("year") or 0)
            for v in values or [{}]:  # an indicator without values still shows
                year, target, actual = v.get("year"), v.get("target"), v.get("actual")
                rows.append([*head, year, _wareki(year), target, actual,
                             achievement_rate(actual, target, ind.get("unit")), p.status])
    return Table("T_Indicators", cols, rows)


def _departments(projects: Iterable[_Project]) -> list[str]:
    """部 in order of first appearance (projects are in 番号 order, which follows the organisation)."""
    return list(dict.fromkeys(p.ident.get("department") or UNKNOWN_DEPARTMENT for p in projects))


def _direction_table(book: _Book, top: int) -> Table:
    """方向性集計: 部 × 方向性 counts, 合計, and each share as a formula over the counts."""
    counted = [p for p in book.projects if p.counted]
    depts = _departments(counted)
    tally: dict[str, Counter] = {d: Counter() for d in depts}
    for p in counted:
        tally[p.ident.get("department") or UNKNOWN_DEPARTMENT][_direction_kind(p.record.get("direction"))] += 1
    extra = [k for k in (NO_DIRECTION, OTHER_DIRECTION) if any(t[k] for t in tally.values())]
    kinds = [*DIRECTIONS, *extra]
    n = len(kinds)
    cols = [Col("部"), *(Col(k, "count") for k in kinds), Col("合計", "count"),
            *(Col(f"{k}（割合）", "ratio") for k in kinds)]
    rows = []
    for r, dept in enumerate(depts, start=top + 1):
        counts = [tally[dept][k] for k in kinds]
        total = sum(counts)
        total_cell = xl_rowcol_to_cell(r, n + 1, col_abs=True)
        shares = [Formula(f"=IF({total_cell}=0,0,{xl_rowcol_to_cell(r, 1 + i)}/{total_cell})",
                          c / total if total else 0) for i, c in enumerate(counts)]
        rows.append([dept, *counts, total, *shares])
    return Table("T_Directions", cols, rows)


def _direction_kind(value: Any) -> str:
    if value in DIRECTIONS:
        return value
    return NO_DIRECTION if value in (None, "") else OTHER_DIRECTION


def _department_cost_table(book: _Book) -> Table:
    """部別コスト: totals per 部 and per 課 for each year (集計単位 tells the level apart)."""
    counted = [p for p in book.projects if p.counted]
    years = sorted({e.get("year") for p in counted for e in p.record.get("costs") or []
                    if isinstance(e.get("year"), int)})
    sums: dict[tuple[str, str | None, int], list] = defaultdict(lambda: [0, None, None, None])
    for p in counted:
        dept = p.ident.get("department") or UNKNOWN_DEPARTMENT
        div = p.ident.get("division") or UNKNOWN_DEPARTMENT
        for e in p.record.get("costs") or []:
            values = (e.get("settlement"), e.get("personnel_cost"),
                      total_cost(e.get("settlement"), e.get("personnel_cost")))
            for key in ((dept, None, e.get("year")), (dept, div, e.get("year"))):
                acc = sums[key]
                acc[0] += 1
                for i, v in enumerate(values, start=1):
                    if v is not None:
                        acc[i] = (acc[i] or 0) + v
    cols = [Col("集計単位"), Col("部"), Col("課"), Col("年度", "int"), Col("和暦"),
            Col("事業数", "count"), Col("決算額（千円）", "money"), Col("人件費計（千円）", "money"),
            Col("トータルコスト（千円）", "money")]
    rows = []
    for dept in _departments(counted):
        divisions = list(dict.fromkeys(p.ident.get("division") or UNKNOWN_DEPARTMENT
                                       for p in counted if (p.ident.get("department") or UNKNOWN_DEPARTMENT) == dept))
        for level, div in (("部", None), *(("課", d) for d in divisions)):
            for year in years:
                if (dept, div, year) in sums:
                    rows.append([level, dept, div, year, _wareki(year), *sums[(dept, div, year)]])
    return Table("T_DepartmentCosts", cols, rows)


def _status_table(book: _Book) -> Table:
    """提出状況: every expected or received project, then unreadable files of no known project."""
    cols = [Col("部"), Col("課"), Col("番号"), Col("事業名"), Col("提出状況"),
            Col("エラー数", "count"), Col("注意数", "count"), Col("提出ファイル"),
            Col("受付日時", "datetime")]
    rows = []
    order = {d: i for i, d in enumerate(_departments(book.projects))}
    for p in sorted(book.projects, key=lambda p: (order[p.ident.get("department") or UNKNOWN_DEPARTMENT],
                                                 p.ident.get("division") or "", _natural(p.no))):
        rows.append([p.ident.get("department"), p.ident.get("division"), p.no, p.ident.get("project_name"),
                     p.status, *_counts(p.sub), p.sub.file if p.sub else None,
                     p.sub.received_at if p.sub else None])
    for sub in book.loose:
        no, name, dept, div = _ident(book, sub.project_no)
        rows.append([dept, div, no, name, UNREADABLE, *_counts(sub), sub.file, sub.received_at])
    return Table("T_Status", cols, rows)


def _status_by_department(status_rows: list[list[Any]]) -> Table:
    """Counts per 部 × 提出状況 (and 合計), from the rows of 提出状況."""
    tally: dict[str, Counter] = {}
    for row in status_rows:
        tally.setdefault(row[0] or UNKNOWN_DEPARTMENT, Counter())[row[4]] += 1
    cols = [Col("部（集計）"), *(Col(s, "count") for s in STATUS_ORDER), Col("合計", "count")]
    rows = [[d, *(t[s] for s in STATUS_ORDER), sum(t.values())] for d, t in tally.items()]
    return Table("T_StatusByDepartment", cols, rows)


def _findings_table(book: _Book) -> Table:
    """指摘一覧: every finding of the submissions that count now (see the module docstring)."""
    cols = [*IDENT_COLS, Col("提出ファイル"), Col("シート"), Col("セル"), Col("項目"),
            Col("フィールド"), Col("区分"), Col("コード"), Col("内容", "wrap", width=_WRAP_WIDTH),
            Col("提出状況")]
    rows = []
    for sub in sorted(book.live, key=lambda s: (_natural(s.project_no or "\uffff"), s.file)):
        status = book.status_of(sub)
        ident = _ident(book, sub.project_no)
        for f in sorted(sub.result.findings, key=lambda f: not f.is_error):  # errors first, stable
            rows.append([*ident, sub.file, f.sheet, f.cell, _field_label(f.field), f.field,
                         SEVERITY_LABEL.get(f.severity, f.severity), f.code, f.message, status])
    return Table("T_Findings", cols, rows)


def _field_label(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return field_label(path)
    except (KeyError, TypeError, ValueError):  # a path the schema does not know: show it as is
        return path


def _history_table(book: _Book) -> Table:
    """履歴: every file received, oldest first, current or superseded."""
    cols = [Col("受付日時", "datetime"), *IDENT_COLS, Col("提出ファイル"), Col("SHA-256", width=72),
            Col("ファイル更新日時", "datetime"), Col("判定"),
            Col("エラー数", "count"), Col("注意数", "count"), Col("区分")]
    live = {id(s) for s in book.live}
    rows = []
    for sub in sorted(book.history, key=_received):
        rows.append([sub.received_at, *_ident(book, sub.project_no), sub.file, sub.sha256, sub.modified_at,
                     sub.result.status, *_counts(sub),
                     CURRENT_LABEL if id(sub) in live or sub.current else SUPERSEDED_LABEL])
    return Table("T_History", cols, rows)


# --------------------------------------------------------------------------- sheets


def _list_sheet(wb: Workbook, fmts: dict, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(LIST)
    table = _list_table(book)
    _write_table(ws, fmts, styles, table, top=0, alone=True)
    _highlight_status(ws, styles, table, top=0)
    _finish(ws, header_row=0, label=label, freeze_cols=2)  # 番号 and 事業名 stay in view


def _costs_sheet(wb: Workbook, fmts: dict, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(COSTS)
    _write_table(ws, fmts, styles, _cost_table(book), top=0, alone=True)
    _finish(ws, header_row=0, label=label)


def _indicators_sheet(wb: Workbook, fmts: dict, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(INDICATORS)
    _write_table(ws, fmts, styles, _indicator_table(book), top=0, alone=True)
    _finish(ws, header_row=0, label=label)


def _direction_sheet(wb: Workbook, fmts: dict, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(DIRECTION_SUMMARY)
    top = 2
    _title(ws, styles, f"方向性集計 {label}（対象: 提出状況が受理・要修正の事業。件数と部内の割合）")
    table = _direction_table(book, top)
    n = (len(table.cols) - 2) // 2
    total_row = top + max(len(table.rows), 1) + 1
    grand = [sum(r[1 + i] for r in table.rows) for i in range(n + 1)]
    total_ref = xl_rowcol_to_cell(total_row, n + 1, col_abs=True)
    first, last = top + 1, total_row - 1
    # Plain ranges: LibreOffice reads structured references in a totals row as #NAME?.
    totals = [{"total_string": "全体"},
              *({"total_function": f"=SUBTOTAL(109,{xl_range(first, 1 + i, last, 1 + i)})", "total_value": v}
                for i, v in enumerate(grand)),
              *({"total_function": f"=IF({total_ref}=0,0,{xl_rowcol_to_cell(total_row, 1 + i)}/{total_ref})",
                 "total_value": grand[i] / grand[n] if grand[n] else 0} for i in range(n))]
    _write_table(ws, fmts, styles, table, top=top, totals=totals)
    _direction_chart(wb, ws, table, top, total_row + 2)
    _finish(ws, header_row=top, label=label)


def _direction_chart(wb: Workbook, ws: Worksheet, table: Table, top: int, at_row: int) -> None:
    """Stacked bars: one bar per 部, one segment per 方向性 (the count columns)."""
    chart = wb.add_chart({"type": "bar", "subtype": "stacked"})
    first, last = top + 1, top + max(len(table.rows), 1)
    n = (len(table.cols) - 2) // 2
    font = {"name": FONT, "size": 9}
    for i in range(n):
        kind = table.cols[1 + i].header
        chart.add_series({
            "name": [ws.name, top, 1 + i],
            "categories": [ws.name, first, 0, last, 0],
            "values": [ws.name, first, 1 + i, last, 1 + i],
            "fill": {"color": DIRECTION_COLORS.get(kind, "#A5A5A5")},
            "gap": 60,
        })
    chart.set_title({"name": "部別の方向性（事業数）", "name_font": {"name": FONT, "size": 12}})
    chart.set_x_axis({"name": "事業数", "num_font": font, "name_font": font, "major_gridlines": {"visible": True}})
    chart.set_y_axis({"reverse": True, "num_font": font})  # first 部 at the top, as in the table
    chart.set_legend({"position": "bottom", "font": font})
    chart.set_size({"width": 760, "height": max(300, 36 * len(table.rows) + 160)})
    ws.insert_chart(at_row, 0, chart)


def _department_costs_sheet(wb: Workbook, fmts: dict, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(DEPARTMENT_COSTS)
    top = 2
    _title(ws, styles, f"部別コスト {label}（対象: 提出状況が受理・要修正の事業。集計単位「部」は部の合計、「課」は課ごと）")
    _write_table(ws, fmts, styles, _department_cost_table(book), top=top)
    _finish(ws, header_row=top, label=label)


def _status_sheet(wb: Workbook, fmts: dict, styles: StyleBook, book: _Book, label: str) -> None:
    """Totals per status on top (frozen with the header), the list below, counts per 部 to its right."""
    ws = wb.add_worksheet(STATUS)
    _title(ws, styles, f"提出状況 {label}")
    table = _status_table(book)
    per_status = Counter(row[4] for row in table.rows)
    summary = Table("T_StatusSummary", [*(Col(s, "count") for s in STATUS_ORDER), Col("合計", "count")],
                    [[*(per_status[s] for s in STATUS_ORDER), len(table.rows)]])
    _write_table(ws, fmts, styles, summary, top=1, size=False)
    top = 4
    _write_table(ws, fmts, styles, table, top=top)
    _highlight_status(ws, styles, table, top=top)
    _write_table(ws, fmts, styles, _status_by_department(table.rows), top=top, left=len(table.cols) + 1)
    _finish(ws, header_row=top, label=label)


def _findings_sheet(wb: Workbook, fmts: dict, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(FINDINGS)
    _write_table(ws, fmts, styles, _findings_table(book), top=0, alone=True)
    _finish(ws, header_row=0, label=label)


def _history_sheet(wb: Workbook, fmts: dict, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(HISTORY)
    _write_table(ws, fmts, styles, _history_table(book), top=0, alone=True)
    _finish(ws, header_row=0, label=label)


def _records_sheet(wb: Workbook, book: _Book) -> None:
    """Hidden: one row per current project with its record as JSON, split to fit the cell limit."""
    ws = wb.add_worksheet(RECORDS)
    rows = []
    # In the order of ``current``, so the records read back come in the order they were given.
    for p in sorted(_with_records(book), key=lambda p: book.given.get(id(p.sub), len(book.given))):
        text = _dump_json(p.record)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        chunks = _chunks(text)
        rows.append([p.no, p.record.get("fiscal_year"), p.status, p.sub.sha256, digest, len(chunks), *chunks])
    width = max((len(r) for r in rows), default=len(RECORDS_HEADER) + 1) - len(RECORDS_HEADER)
    header = [*RECORDS_HEADER, *(f"json_{i}" for i in range(1, width + 1))]
    for c, name in enumerate(header):
        ws.write_string(0, c, name)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if isinstance(value, int | float) and not isinstance(value, bool):
                ws.write_number(r, c, value)
            elif value is not None:
                ws.write_string(r, c, str(value))
    ws.hide()
    ws.protect()  # read by tools; protection keeps an accidental edit out


# --------------------------------------------------------------------------- drawing helpers


def _title(ws: Worksheet, styles: StyleBook, text: str) -> None:
    ws.write_string(0, 0, text, styles.plain(bold=True, font_size=12))


class _Formats(dict):
    """Cell formats by kind, and the big tables whose rows are written after XlsxWriter closes."""

    def __init__(self, formats: dict[str, Format]) -> None:
        super().__init__(formats)
        self.splices: list[_Splice] = []


@dataclass
class _Splice:
    """Data rows of one big table, as sheet XML, for the sheet with this index."""

    sheet: int
    rows: list[str]
    last_row: int  # 0-based
    last_col: int


def _write_table(ws: Worksheet, fmts: _Formats, styles: StyleBook, table: Table, *, top: int, left: int = 0,
                 totals: list[dict] | None = None, size: bool = True, alone: bool = False) -> None:
    """``table`` as an Excel table (filter buttons on) with its header at row ``top``.

    ``alone``: nothing else on the sheet shares the table's rows, so a big table's
    data rows may be written as XML directly (``_splice``), ten times faster than
    cell by cell through XlsxWriter.
    """
    rows_xml = _rows_xml(table, top, left, fmts) if alone and len(table.rows) >= _SPLICE_ROWS else None
    if rows_xml is not None:
        fmts.splices.append(_Splice(ws.index, rows_xml, top + len(table.rows), left + len(table.cols) - 1))
    else:
        for r, row in enumerate(table.rows, start=top + 1):
            for c, value in enumerate(row):
                _write_cell(ws, r, left + c, value, table.cols[c].kind, fmts)
    last = top + max(len(table.rows), 1) + (1 if totals else 0)  # Excel needs one data row
    header_fmt = styles.plain(bold=True, bg_color=LABEL_FILL, text_wrap=True, align="center",
                              valign="vcenter", border=1)
    # "format" styles the totals row (the cells above carry their own formats).
    columns = [{"header": col.header, "header_format": header_fmt, "format": fmts[col.kind],
                **((totals or [])[i] if totals else {})} for i, col in enumerate(table.cols)]
    ws.add_table(top, left, last, left + len(table.cols) - 1,
                 {"name": table.name, "columns": columns, "style": _TABLE_STYLE, "total_row": bool(totals),
                  "autofilter": True})
    if size:
        _set_widths(ws, table, top, left)
        if rows_xml is None:
            for r, height in _wrapped_heights(table, top):
                ws.set_row(r, height)


def _wrapped_heights(table: Table, top: int) -> Iterator[tuple[int, float]]:
    """Row heights for wrapped text: LibreOffice keeps the default height of an imported row."""
    wrapped = [(c, col.width or _WRAP_WIDTH) for c, col in enumerate(table.cols) if col.kind == "wrap"]
    if not wrapped:
        return
    for r, row in enumerate(table.rows, start=top + 1):
        lines = max(sum(math.ceil((_text_width(part) + 1) / (width - 1)) or 1
                        for part in str(row[c] or "").split("\n")) for c, width in wrapped)
        if lines > 1:
            yield r, _LINE_HEIGHT * lines + 4


def _rows_xml(table: Table, top: int, left: int, fmts: _Formats) -> list[str] | None:
    """``<row>`` elements of the data rows, as _write_cell would store them; None if a cell is not plain."""
    xf = {kind: fmt._get_xf_index() for kind, fmt in fmts.items()}  # registers every format with the book
    letters = [xl_col_to_name(left + c) for c in range(len(table.cols))]
    heights = dict(_wrapped_heights(table, top))
    out = []
    for r, row in enumerate(table.rows, start=top + 1):
        cells = []
        for c, value in enumerate(row):
            kind = table.cols[c].kind
            if type(value) is Cell:
                value, kind = value.value, value.kind
            ref = f"{letters[c]}{r + 1}"
            if value is None or value == "":
                cells.append(f'<c r="{ref}" s="{xf[kind]}"/>')
            elif type(value) is str and kind != "datetime":
                text_kind = "text" if kind in _NUMERIC_KINDS else kind
                cells.append(f'<c r="{ref}" s="{xf[text_kind]}" t="inlineStr"><is>{string_item(value)}</is></c>')
            elif kind == "datetime" and (dt := _parse_time(value)) is not None:
                serial = (dt.replace(tzinfo=None) - _EXCEL_EPOCH).total_seconds() / 86400
                cells.append(f'<c r="{ref}" s="{xf[kind]}"><v>{number_text(serial)}</v></c>')
            elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                cells.append(f'<c r="{ref}" s="{xf[kind]}"><v>{number_text(float(value))}</v></c>')
            elif type(value) is Formula:
                return None  # XlsxWriter prepares formulas; rare in big tables
            else:
                cells.append(f'<c r="{ref}" s="{xf["text"]}" t="inlineStr"><is>{string_item(str(value))}</is></c>')
        # XlsxWriter stores a row height in whole pixels (0.75 pt each); so do we.
        height = f' ht="{number_text(round(heights[r] * 4 / 3) * 0.75)}" customHeight="1"' if r in heights else ""
        out.append(f'<row r="{r + 1}"{height}>{"".join(cells)}</row>')
    return out


_DIMENSION = re.compile(r'<dimension ref="[^"]*"/>')
_LAST_ROW = re.compile(r'<row r="(\d+)"')


def _splice(data: bytes, splices: list[_Splice]) -> bytes:
    """The book with each big table's rows put into its sheet's XML (inline strings)."""
    if not splices:
        return data
    by_part = {f"xl/worksheets/sheet{s.sheet + 1}.xml": s for s in splices}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            part = src.read(info.filename)
            splice = by_part.get(info.filename)
            if splice is not None:
                xml = part.decode("utf-8")
                written = [int(n) for n in _LAST_ROW.findall(xml)]
                first = int(splice.rows[0][8:splice.rows[0].index('"', 8)])
                if written and max(written) >= first:
                    raise AssertionError(f"{info.filename}: rows already written where the table goes")
                ref = f"A1:{xl_col_to_name(splice.last_col)}{splice.last_row + 1}"
                xml = _DIMENSION.sub(f'<dimension ref="{ref}"/>', xml, count=1)
                xml = xml.replace("</sheetData>", "".join(splice.rows) + "</sheetData>", 1)
                part = xml.encode("utf-8")
            dst.writestr(info, part, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    return out.getvalue()


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


@lru_cache(maxsize=1 << 14)
def _text_width(text: str) -> float:
    """Display width: a full-width (Japanese) character takes about two units."""
    return sum(2.0 if unicodedata.east_asian_width(ch) in "WFA" else 1.1 for ch in text)


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


def _set_widths(ws: Worksheet, table: Table, top: int, left: int) -> None:
    """Column widths from the content (first rows) and the header, which wraps when long."""
    lines = 1
    for c, col in enumerate(table.cols):
        head = _text_width(col.header)
        if col.width is not None:
            width = col.width
        else:
            content = max((_text_width(_shown(row[c], col.kind)) for row in table.rows[:_WIDTH_SAMPLE]),
                          default=0.0)
            width = max(_MIN_WIDTH, min(max(content, min(head, _HEADER_WRAP)) + 2, _MAX_WIDTH))
        lines = max(lines, math.ceil((head + 1) / (width - 1)))
        ws.set_column(left + c, left + c, width)
    if lines > 1:
        ws.set_row(top, _LINE_HEIGHT * lines + 4)  # room for the wrapped header


def _highlight_status(ws: Worksheet, styles: StyleBook, table: Table, top: int) -> None:
    """Colour the 提出状況 cells that need action."""
    col = next(i for i, c in enumerate(table.cols) if c.header == "提出状況")
    last = top + max(len(table.rows), 1)
    for status, color in _STATUS_FILLS.items():
        ws.conditional_format(top + 1, col, last, col, {
            "type": "cell", "criteria": "==", "value": f'"{status}"',
            "format": styles.plain(bg_color=color)})


def _finish(ws: Worksheet, *, header_row: int, label: str, freeze_cols: int = 0) -> None:
    """Frozen header, and A4 landscape printing one page wide with the header on every page."""
    ws.freeze_panes(header_row + 1, freeze_cols)
    ws.set_paper(9)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(header_row)
    ws.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.6)
    ws.set_header(f"&L&A&R{label}")
    ws.set_footer("&C&P / &N")


# --------------------------------------------------------------------------- _records codec


def _dump_json(record: dict[str, Any]) -> str:
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    # These code points occur only inside JSON strings, where a \u escape means the same.
    return _JSON_RISKY.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _chunks(text: str, units: int = _CHUNK_UNITS) -> list[str]:
    """Pieces of at most ``units`` UTF-16 code units, never starting or ending with a space
    (a space at a cell's edge is the one thing a spreadsheet might trim)."""
    if len(text) * 2 <= units:
        return [text]
    out: list[str] = []
    start = 0
    while start < len(text):
        end, used = start, 0
        while end < len(text) and used + (2 if ord(text[end]) > 0xFFFF else 1) <= units:
            used += 2 if ord(text[end]) > 0xFFFF else 1
            end += 1
        while start + 1 < end < len(text) and (text[end - 1].isspace() or text[end].isspace()):
            end -= 1
        out.append(text[start:end])
        start = end
    return out


def _parse_record_row(file: str, n: int, row: Sequence[Any]) -> dict:
    where = f"{file} の {RECORDS} シート {n}行目"
    fixed = len(RECORDS_HEADER)
    try:
        parts = int(row[5])
    except (TypeError, ValueError, IndexError):
        raise RecordsError(f"{where}: 分割数（parts）が読み取れません。") from None
    pieces = list(row[fixed:fixed + parts])
    if len(pieces) < parts or any(not isinstance(p, str) or not p for p in pieces):
        raise RecordsError(f"{where}: 記録のJSONが欠けています（{parts}個に分割されているはずです）。")
    text = "".join(pieces)
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != row[4]:
        raise RecordsError(f"{where}: 記録のJSONが保存時と一致しません（編集されたか壊れています）。")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordsError(f"{where}: 記録のJSONが不正です（{e.msg}）。") from None
    if not isinstance(record, dict):
        raise RecordsError(f"{where}: 記録がJSONオブジェクトではありません。")
    return record


# --------------------------------------------------------------------------- CSV


def _csv_bytes(table: Table) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([col.csv_header or col.header for col in table.cols])
    for row in table.rows:
        writer.writerow([_csv_value(value, col.kind) for value, col in zip(row, table.cols, strict=True)])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _csv_value(value: Any, kind: str) -> str:
    """Plain numbers (達成率 in %), ISO times as recorded, text on one line and formula-safe."""
    if isinstance(value, Cell):
        value, kind = value.value, value.kind
    if isinstance(value, Formula):
        value = value.value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "有" if value else "無"
    if kind == "ratio" and isinstance(value, int | float):
        return str(excel_round(value * 100, 1))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    return _csv_text(str(value))


@lru_cache(maxsize=1 << 14)
def _csv_text(text: str) -> str:
    text = re.sub(r"\s*[\r\n]+\s*", " ", text).strip()  # one line per cell, no layout spaces
    # OWASP: a leading = + - @ (or tab/CR) would make Excel read the cell as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
