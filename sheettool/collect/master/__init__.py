"""The master book that ``collect`` writes, its tidy CSV, and the records read back.

Sheets of the master book (every visible sheet is an Excel table with filters,
a frozen header row and landscape printing with text at 8.5 pt or more: one page wide
on A4 or A3, or across A3 pages with the first columns repeated; see ``print_setup``):

- 一覧, コスト推移, 指標: the data, one table each, starting at A1.
- 方向性集計 (with a stacked bar chart), 部別コスト: aggregates over the
  projects whose record counts (提出状況 受理 or 要修正; 対象外, 未提出 and
  読取不可 are left out).
- 提出状況, 指摘一覧, 履歴: what the office has to chase. 提出状況 and 指摘一覧 also list
  what is in the inbox but is not a submission (``notes``: symlinks, FIFOs, lock files,
  leftover temp files); 履歴 says which time (the workbook's own save time or the file's
  modification time) decided which file is newer.
- ``_records`` (hidden): the full record JSON of every current project, which
  ``read_master_records`` returns unchanged, and of every expected project whose return
  does not count (未提出, 読取不可, 受付不可) the expected record, so that ``rollforward``
  loses no project (``read_master_rows`` tells them apart by their status).

Which submissions 指摘一覧 lists: those that count *now* — every current
submission (its errors and warnings), plus every unreadable file that no later
submission replaced (a later file with the same inbox path or for the same project)
and every 受付不可 file (forged, never issued, another year) no later file replaced
under its own inbox path. Findings of superseded files are left out, since they were fixed or
replaced; 履歴 still shows those files with their counts.

The CSV (``write_csv``) follows 総務省「統計表における機械判読可能なデータの表記方法の
統一ルール」: one table per file, one header row, one value per cell, numbers
without separators or units (units in the header or in a 単位 column), years as
Western years with a separate 和暦 column, time series downwards, no notes or
blank rows, line breaks inside text replaced by a space. UTF-8 with BOM, CRLF.
A text cell that starts with ``= + - @`` (or a tab / CR) gets a leading ``'``
(OWASP's CSV-injection rule) so Excel does not run it as a formula; numbers are
never quoted, so a negative 千円 amount stays a number.

How it is written (memory flat in the number of projects): one pass over the
current submissions keeps a small summary of each (identity, figures by year,
status, findings: what 一覧, 提出状況 and the aggregates need) and puts the rest
of each record (costs and indicators for the long tables, its JSON for
``_records``) into a spill file in a temporary folder next to the output.
XlsxWriter then writes the book without the data rows of its big tables (from
``_SPLICE_ROWS`` rows; their column widths come from the first
``_WIDTH_SAMPLE`` rows), and the final zip is assembled by streaming: XlsxWriter's
parts are copied, and each big sheet's rows are made as sheet XML while they are
written into its part (a second thread compresses), the CSV rows of コスト推移
and 指標 going into their CSV files on the way. Every file is put in place with
``os.replace`` once complete: the master book first, then the CSV files.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import pickle
import re
import tempfile
import zipfile
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from itertools import chain, islice
from pathlib import Path
from typing import Any

import openpyxl
from xlsxwriter.exceptions import FileCreateError
from xlsxwriter.format import Format
from xlsxwriter.utility import (
    xl_col_to_name,
    xl_range,
    xl_rowcol_to_cell,
)
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from ... import findings, jsontext
from ...fileio import TempOutput, atomic_output
from ...records import RecordsError
from ...rounding import excel_round
from ...spec import Template, load
from ...spec.master import MasterSpec, achievement_rate
from ...wareki import fiscal_label, fiscal_label_with_western
from ...xlsx import safety as filesafety
from ...xlsx.render import TEXT_STAYS_TEXT
from ...xlsx.styles import DEFAULT_FONT, JAPANESE_CHARSET, LABEL_FILL, StyleBook
from ...xlsx.text import STRMAX, display_width, number_text, string_item, text_item
from .. import office
from ..ledger import SubmissionInfo
from ..submission import (
    ACCEPTED,
    EXCLUDED,
    FOREIGN,
    MISSING,
    NEEDS_FIX,
    NEVER_CURRENT,
    REJECTED,
    UNEXPECTED,
    UNREADABLE,
    InboxNote,
    Submission,
)

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

FONT = DEFAULT_FONT  # the font of the templates: one look across the toolkit
FONT_SIZE = 10
_WB_OPTIONS = {
    **TEXT_STAYS_TEXT,
    "in_memory": True,  # only the small sheets go through XlsxWriter (see the module docstring)
    "default_format_properties": {"font_name": FONT, "font_size": FONT_SIZE, "font_charset": JAPANESE_CHARSET},
}

RECORDS_HEADER = ("project_no", "fiscal_year", "status", "sha256", "json_sha256", "parts")
CELL_LIMIT = STRMAX  # Excel's characters per cell (counted in UTF-16 units)
_CHUNK_UNITS = 32_000  # a little under the limit, in UTF-16 units
# Characters XML or a spreadsheet may mangle; JSON \u escapes keep them out of the cell.
_JSON_RISKY = re.compile("[\u007f-\u009f\ud800-\udfff\ufffe\uffff]")
# "_x0041_" in a cell is Excel's escape of a character; readers differ in undoing it (openpyxl
# only for shared strings), so the "_" that starts one is written as \u005f (only inside strings).
_JSON_EXCEL_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")

# A master book is our own output but may be large; these bound a hostile one all the same.
_MiB = filesafety.MiB
_MASTER_LIMITS = filesafety.Limits(max_file_bytes=200 * _MiB, max_part_bytes=400 * _MiB,
                                   max_xml_part_bytes=400 * _MiB, max_total_bytes=1024 * _MiB)

COUNTED = (ACCEPTED, NEEDS_FIX)  # statuses whose figures enter the aggregates
CARRIED = (MISSING, *NEVER_CURRENT)  # _records rows holding the expected record, no return counting
STATUS_ORDER = (MISSING, NEEDS_FIX, UNREADABLE, REJECTED, UNEXPECTED, FOREIGN, EXCLUDED, ACCEPTED)
# 受付不可 and 除外 are counted only when there is one (as 様式違い): most books have none
_OPTIONAL_STATUSES = (REJECTED, FOREIGN, EXCLUDED)
# 履歴: which time decided a file's age (ledger.SAVED / ledger.MTIME)
ORDER_LABEL = {"saved": "ブックの保存日時", "mtime": "ファイル更新日時"}
# The master book's files: what must never be an input file (cli: outputs.guard)
CSV_NAMES = re.compile(r"(一覧|コスト推移|指標)(_\d+)?\.csv")
SEVERITY_LABEL = {"error": "エラー", "warning": "注意"}
CURRENT_LABEL, SUPERSEDED_LABEL = "現行", "置換済み"
SHA_PREFIX = 12
NO_DIRECTION = "未記入"
OTHER_DIRECTION = "その他の値"  # a 要修正 record may hold a value outside the list
UNKNOWN_DEPARTMENT = "（不明）"
UNKNOWN_YEAR = "評価年度不明"

EXTRA_COLORS = {NO_DIRECTION: "#D9D9D9", OTHER_DIRECTION: "#A5A5A5"}

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
_CHART_WIDTH = 760  # pixels, 方向性集計's chart
_SPLICE_ROWS = 200  # from this many rows a table's data is written as XML (see _write_table)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Col:
    """One table column: header, value kind (number format) and optional fixed width."""

    header: str
    kind: str = "text"
    width: float | None = None
    csv_header: str | None = None  # where the CSV says it differently (units, %)
    path: str | None = None  # the record field it shows, where it is one (sheettool.frames: choices)


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
    rows: Iterable[list[Any]]  # a list, or for the long tables an iterator read once …
    count: int | None = None  # … with its number of rows (the sheet's dimension precedes its rows)


class _Entry:
    """One submission as the book keeps it: light, with the summary fields of its record.

    Reads like a Submission where ``_live`` and ``_collect`` look (sha256, file,
    received_at, current, project_no, result); ``record`` holds only the fields
    of ``MasterSpec.summary``, and ``spilled`` says where the rest is.
    """

    __slots__ = ("sub", "record", "truthy", "given", "spilled")

    def __init__(self, sub: SubmissionInfo, record: dict[str, Any] | None = None, truthy: bool = False,
                 given: int | None = None, spilled: _Spilled | None = None) -> None:
        self.sub = sub
        self.record = record  # None: no record (or none kept: a file that cannot count now)
        self.truthy = truthy  # the full record was not empty (``record or …`` picks the names)
        self.given = given  # index in ``current``; None for a submission only in ``history``
        self.spilled = spilled

    sha256 = property(lambda self: self.sub.sha256)
    file = property(lambda self: self.sub.file)
    received_at = property(lambda self: self.sub.received_at)
    current = property(lambda self: self.sub.current)
    project_no = property(lambda self: self.sub.project_no)
    result = property(lambda self: self.sub.result)


@dataclass
class _Project:
    """One row of 一覧: a project received, expected, or both."""

    no: str
    ident: dict[str, Any]  # names come from here: the record, else the expected record
    record: dict[str, Any] | None  # its summary fields (``MasterSpec.summary``)
    entry: _Entry | None
    status: str
    carried: _Spilled | None = None  # no record counts: the expected record, kept for _records
    carried_year: Any = None

    @property
    def sub(self) -> SubmissionInfo | None:
        return self.entry.sub if self.entry is not None else None

    @property
    def counted(self) -> bool:
        return self.record is not None and self.status in COUNTED

    @property
    def department(self) -> str:
        """部 for grouping (the aggregates name a missing one)."""
        return self.ident.get("department") or UNKNOWN_DEPARTMENT

    @property
    def division(self) -> str:
        return self.ident.get("division") or UNKNOWN_DEPARTMENT


@dataclass
class _Book:
    fiscal_year: int | None  # None: nothing readable and nothing expected says which year
    projects: list[_Project]
    loose: list[_Entry]  # live unreadable files that do not stand for a project
    live: list[_Entry]
    history: list[SubmissionInfo]
    current: list[SubmissionInfo]  # what ``current`` held, in its order
    spill: _Spill
    names: dict[str, dict[str, Any]] = field(default_factory=dict)  # project_no → identity
    foreign: list[_Entry] = field(default_factory=list)  # current returns of another template (C801)
    notes: list[InboxNote] = field(default_factory=list)  # what is in the inbox but not a submission
    _by_sub: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_sub = {id(p.entry): p.status for p in self.projects if p.entry is not None}

    @property
    def spec(self) -> MasterSpec:
        return self.spill.spec

    def status_of(self, entry: _Entry) -> str:
        """提出状況 of one file: its project's, when it is the file that counts for it."""
        return self._by_sub.get(id(entry), entry.result.status)


@dataclass
class Written:
    """What ``write_all`` wrote, and what it saw of the submissions on the way."""

    csv_paths: list[Path]
    fiscal_year: int | None
    current: list[SubmissionInfo]  # the current submissions without their records, in the order given
    unreadable: list[SubmissionInfo]  # as ``open_unreadable``: the rows 提出状況 shows as 読取不可
    rejected: list[SubmissionInfo] = field(default_factory=list)  # … and as 受付不可
    missing: int = 0  # expected projects 提出状況 shows as 未提出
    # The rows of 提出状況 the office has to chase (要修正, 受付不可, 読取不可, 未提出), in its order.
    to_chase: list[Chase] = field(default_factory=list)


CHASED = (NEEDS_FIX, REJECTED, UNREADABLE, MISSING)


@dataclass(frozen=True)
class Chase:
    """One row of 提出状況 that needs action: its status, and what names it."""

    status: str
    project_no: str | None
    project_name: str | None
    department: str | None
    division: str | None
    file: str | None


# --------------------------------------------------------------------------- public API


def write_master(path: str | Path, current: Iterable[Submission], expected: list[dict] | None,
                 history: Iterable[Submission | SubmissionInfo], fiscal_year: int | None, *,
                 tpl: Template | None = None) -> None:
    """Write the master book to ``path`` (atomically).

    ``fiscal_year`` is None when no file could be read and nothing is expected
    (an inbox of unreadable files): the book is still written, so the office
    sees what to chase, with the year shown as 評価年度不明.
    """
    write_all(path, None, current, expected, history, fiscal_year, tpl=tpl)


def write_outputs(path: str | Path, csv_dir: str | Path, current: Iterable[Submission],
                  expected: list[dict] | None, history: Iterable[Submission | SubmissionInfo],
                  fiscal_year: int | None, *, tpl: Template | None = None) -> list[Path]:
    """The master book and the CSV files from one pass over ``current``; returns the CSV paths."""
    return write_all(path, csv_dir, current, expected, history, fiscal_year, tpl=tpl).csv_paths


def write_csv(out_dir: str | Path, current: Iterable[Submission], expected: list[dict] | None,
              fiscal_year: int | None, *, tpl: Template | None = None) -> list[Path]:
    """一覧, コスト推移 and 指標 as tidy CSV files in ``out_dir``; returns their paths."""
    return write_all(None, out_dir, current, expected, [], fiscal_year, tpl=tpl).csv_paths


def write_all(path: str | Path | None, csv_dir: str | Path | None, current: Iterable[Submission],
              expected: list[dict] | None, history: Iterable[Submission | SubmissionInfo],
              fiscal_year: int | None | Callable[[], int | None], *,
              tpl: Template | None = None, notes: Sequence[InboxNote] = ()) -> Written:
    """The master book (unless ``path`` is None) and the CSV files (unless ``csv_dir`` is None).

    ``current`` is read once, one submission at a time (an iterator such as
    ``Ledger.iter_current()`` keeps memory flat); ``history`` may hold
    SubmissionInfo (``Ledger.history_info()``), since only ``current`` needs
    records. ``fiscal_year`` may be a callable, called once ``current`` was read. ``tpl`` is
    the template of the submissions (default: the default template); its master.json says
    what the template's columns are. ``notes``: what the inbox holds that is not a submission.
    """
    spec = (tpl or load()).master_spec
    if path is None and csv_dir is None:
        raise ValueError("nothing to write: give a master book path or a CSV folder")
    folder = Path(path).parent if path is not None else Path(csv_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sheettool-", dir=folder) as tmp, \
            _Spill(Path(tmp) / "records.bin", spec) as spill:
        book = _read(current, expected, history, fiscal_year, spill, json=path is not None)
        book.notes = sorted(notes, key=lambda n: n.file)
        csvs = _CsvFiles(csv_dir, book.fiscal_year) if csv_dir is not None else None
        try:
            if path is not None:
                _write_master_book(Path(path), book, csvs, Path(tmp))
            csv_paths = []
            if csvs is not None:
                csvs.write(LIST, _list_table(book, csv=True))
                csvs.write(COSTS, _cost_table(book))  # unless the book already wrote them
                csvs.write(INDICATORS, _indicator_table(book))
                csv_paths = csvs.commit()
        finally:
            if csvs is not None:
                csvs.discard()
    chase = [Chase(row[4], row[2], row[3], row[0], row[1], row[7]) for row in _status_table(book).rows
             if row[4] in CHASED]
    never = _open_unreadable(book.live)
    return Written(csv_paths, book.fiscal_year, book.current,
                   [e.sub for e in never if e.result.status == UNREADABLE],
                   [e.sub for e in never if e.result.status == REJECTED],
                   sum(p.status == MISSING for p in book.projects), chase)


def read_master_records(path: str | Path) -> list[dict]:
    """The records of the current submissions stored by ``write_master``, in book order
    (``read_master_rows`` also gives the expected records of projects that sent nothing that counts)."""
    return [record for status, record in read_master_rows(path) if status not in CARRIED]


def read_master_rows(path: str | Path) -> list[tuple[str, dict]]:
    """(提出状況, record) of every project ``_records`` holds, in book order: the current
    projects' records, then the expected records of projects whose return does not count
    (未提出, 読取不可, 受付不可).

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
        return [(str(row[2] or ""), _parse_record_row(path.name, n, row)) for n, row in enumerate(rows, start=2)
                if any(v not in (None, "") for v in row)]
    finally:
        wb.close()


# --------------------------------------------------------------------------- reading the submissions


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


def _entry(sub: Submission, given: int | None, spill: _Spill, *, json: bool) -> _Entry:
    record = sub.result.record
    if record is None:
        return _Entry(SubmissionInfo.of(sub), given=given)
    return _Entry(SubmissionInfo.of(sub), spill.spec.summary(record), bool(record), given,
                  spill.put(record, json=json))


def _read(current: Iterable[Submission], expected: list[dict] | None,
          history: Iterable[Submission | SubmissionInfo], fiscal_year: int | None | Callable[[], int | None],
          spill: _Spill, *, json: bool) -> _Book:
    """One pass over ``current`` (records spilled as they come), then ``history`` (kept light)."""
    given = [_entry(sub, i, spill, json=json) for i, sub in enumerate(current)]
    keys = {_key(e) for e in given}
    seen = []
    for sub in history:
        record = getattr(sub.result, "record", None)
        # A Submission only in history counts if it is current (see _live): keep its record then.
        # A SubmissionInfo has none to keep; a file that never counts keeps none.
        if record is not None and _key(sub) not in keys and sub.current:
            seen.append(_entry(sub, None, spill, json=json))
        else:
            seen.append(_Entry(SubmissionInfo.of(sub)))
    year = fiscal_year() if callable(fiscal_year) else fiscal_year
    return _collect(given, expected, seen, year, spill)


# --------------------------------------------------------------------------- who counts


def _collect(current: list[_Entry], expected: list[dict] | None,
             history: list[_Entry], fiscal_year: int | None, spill: _Spill) -> _Book:
    """Projects with their status, from the submissions and the expected list."""
    template = spill.spec.tpl.id
    ours = [e for e in history if e.sub.template in (None, template) or e.result.status in NEVER_CURRENT]
    foreign = [e for e in history if e.sub.current and e.sub.template not in (None, template)]
    live = _live(current, ours)
    for entry in live:
        if entry.record is None and entry.result.has_record and entry.result.status not in NEVER_CURRENT:
            raise ValueError(f"{entry.file}: a submission that counts now must come with its record "
                             "(in ``current``, or as a Submission in ``history``)")
    exp = None if expected is None else {str(r.get("project_no")): r for r in expected}
    chosen: dict[str, _Entry] = {}
    for sub in sorted(live, key=_received):
        no = _hinted(sub, exp) if sub.project_no is None else str(sub.project_no)  # a broken record may hold a number
        if no is None:
            continue
        prev = chosen.get(no)
        # A record that counts beats a file that never does; otherwise the later one counts.
        if prev is None or _counts_now(sub) >= _counts_now(prev):
            chosen[no] = sub
    projects = []
    for no, sub in chosen.items():
        record = sub.record
        ident = record if sub.truthy else (exp or {}).get(no) or {"project_no": no}
        status = sub.result.status
        if exp is not None and no not in exp and status not in NEVER_CURRENT:
            status = UNEXPECTED
        projects.append(_Project(no, ident, record, sub, status))
        if record is None and exp is not None and no in exp:
            _carry(projects[-1], exp[no], spill)
    for no, rec in (exp or {}).items():
        if no not in chosen:
            projects.append(_Project(no, rec, None, None, MISSING))
            _carry(projects[-1], rec, spill)
    projects.sort(key=lambda p: _natural(p.no))
    picked = {id(p.entry) for p in projects}
    loose = [s for s in live if id(s) not in picked and s.result.status in NEVER_CURRENT]
    names = dict(exp or {})
    names.update({p.no: p.ident for p in projects})
    return _Book(fiscal_year, projects, sorted(loose, key=_received), live, [e.sub for e in history],
                 [e.sub for e in current], spill, names, sorted(foreign, key=_received))


_NAME_NO = re.compile(r"([0-9A-Za-z]+)_")


def _hinted(entry: _Entry, expected: dict[str, dict] | None) -> str | None:
    """The expected project a file that names none stands for, by its name as generate wrote it
    ("088_事業名.xls": a template saved in another format), else None."""
    if expected is None or entry.result.status != UNREADABLE:
        return None
    m = _NAME_NO.match(entry.file.rsplit("/", 1)[-1])
    return m.group(1) if m and m.group(1) in expected else None


def _carry(project: _Project, expected: dict[str, Any], spill: _Spill) -> None:
    """Keep the expected record of a project whose return does not count (rollforward carries it)."""
    if isinstance(expected, dict):
        project.carried = spill.put(expected, json=True)
        project.carried_year = expected.get("fiscal_year")


def _counts_now(entry: _Entry) -> bool:
    return entry.record is not None and entry.result.status not in NEVER_CURRENT


def open_unreadable(current: list[Submission], history: list[Submission]) -> list[Submission]:
    """Unreadable and 受付不可 files nothing later replaced: the rows 提出状況 shows as such."""
    return _open_unreadable(_live(current, history))


def _open_unreadable(live: list[Any]) -> list[Any]:
    return sorted((s for s in live if s.result.status in NEVER_CURRENT), key=_received)


def _live(current: Sequence[Any], history: Sequence[Any]) -> list[Any]:
    """The submissions that count now: current ones, and unreadable files nothing replaced.

    Works on Submissions, SubmissionInfos and book entries alike (same attributes).
    """
    chosen = {_key(s): s for s in current}
    latest_file: dict[str, float] = {}  # the last arrival under each inbox path …
    latest_no: dict[Any, float] = {}  # … and for each project
    for sub in history:
        when = _received(sub)
        if when > latest_file.get(sub.file, -math.inf):
            latest_file[sub.file] = when
        if sub.project_no is not None and when > latest_no.get(_hashable(sub.project_no), -math.inf):
            latest_no[_hashable(sub.project_no)] = when
    for sub in history:
        if _key(sub) in chosen:
            continue
        if sub.current or (sub.result.status in NEVER_CURRENT and not _replaced(sub, latest_file, latest_no)):
            chosen[_key(sub)] = sub
    return list(chosen.values())


def _replaced(sub: Any, latest_file: dict[str, float], latest_no: dict[Any, float]) -> bool:
    """A later file arrived under the same inbox path, or (for an unreadable file) for the same
    project. A 受付不可 file (forged, another year) stays listed until its own path is replaced:
    a genuine file of the project it claims does not make the attempt go away."""
    when = _received(sub)
    if latest_file.get(sub.file, -math.inf) > when:
        return True
    return (sub.result.status == UNREADABLE and sub.project_no is not None
            and latest_no.get(_hashable(sub.project_no), -math.inf) > when)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:  # a broken record may hold a list here
        return ("\0unhashable", repr(value))
    return value


def _key(sub: Any) -> tuple[str, str]:
    return sub.sha256, sub.file


def _received(sub: Any) -> float:
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


def _counts(sub: Submission | SubmissionInfo | None) -> tuple[int | None, int | None]:
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
        return _wareki_of(year)
    except TypeError:  # unhashable: not a year anyway
        return None


@lru_cache(maxsize=256)
def _wareki_of(year: Any) -> str | None:
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


def list_columns(spec: MasterSpec, fiscal_year: int | None, *, csv: bool = False) -> list[Col]:
    """The columns of 一覧: the xlsx headers carry the year; the CSV has 年度/和暦 columns instead."""
    year = "" if csv or fiscal_year is None else fiscal_label_with_western(fiscal_year)
    cols = [
        *IDENT_COLS,
        *(Col(c.header.replace("{year}", year), c.kind, path=c.path) for c in spec.list),
        Col("提出状況"), Col("エラー数", "count"), Col("注意数", "count"),
        Col("提出ファイル"), Col(f"SHA-256（先頭{SHA_PREFIX}桁）"), Col("受付日時", "datetime"),
    ]
    return [Col("年度", "int"), Col("和暦"), *cols] if csv else cols


def cost_columns(spec: MasterSpec) -> list[Col]:
    """The columns of コスト推移 (project × year × item; 値 in the item's unit)."""
    return [*IDENT_COLS, Col("年度", "int"), Col("和暦"), Col("項目"), Col("単位"), Col("値", "number"),
            Col("提出状況")]


def indicator_columns(spec: MasterSpec) -> list[Col]:
    """The columns of 指標 (project × indicator × year, with 達成率 where the template has one)."""
    rate = spec.rate
    item_path = f"{spec.indicator_repeat}.1" if spec.indicator_repeat else None
    return [*IDENT_COLS, Col("指標番号", "int"),
            *(Col(c.header, c.kind, path=item_path and f"{item_path}.{c.key}") for c in spec.indicator_item_columns),
            Col("年度", "int"), Col("和暦"), *(Col(c.header, c.kind) for c in spec.indicator_value_columns),
            *([Col(rate["header"], "ratio", csv_header=f"{rate['header']}（％）")] if rate else []),
            Col("提出状況")]


STATUS_COLS = [Col("部"), Col("課"), Col("番号"), Col("事業名"), Col("提出状況"),
               Col("エラー数", "count"), Col("注意数", "count"), Col("提出ファイル"),
               Col("受付日時", "datetime")]


def tables(current: Iterable[Submission], expected: list[dict] | None,
           history: Iterable[Submission | SubmissionInfo], fiscal_year: int | None | Callable[[], int | None], *,
           tpl: Template | None = None) -> tuple[int | None, dict[str, tuple[list[Col], list[list[Any]]]]]:
    """The book's fiscal year, and 一覧 (shaped as its CSV), コスト推移, 指標 and 提出状況 in memory.

    The rows ``write_all`` would write from the same arguments (for ``sheettool.frames``):
    cell values as the book holds them (コスト推移's 値 wrapped in ``Cell``).
    """
    spec = (tpl or load()).master_spec
    with tempfile.TemporaryDirectory(prefix="sheettool-") as tmp, \
            _Spill(Path(tmp) / "records.bin", spec) as spill:
        book = _read(current, expected, history, fiscal_year, spill, json=False)
        made = {LIST: _list_table(book, csv=True), COSTS: _cost_table(book),
                INDICATORS: _indicator_table(book), STATUS: _status_table(book)}
        return book.fiscal_year, {name: (table.cols, list(table.rows)) for name, table in made.items()}


def _list_table(book: _Book, *, csv: bool = False) -> Table:
    """一覧: one row per project. The xlsx headers carry the year; the CSV has 年度/和暦 columns."""
    fy = book.fiscal_year
    spec = book.spec
    cols = list_columns(spec, fy, csv=csv)

    def rows() -> Iterator[list[Any]]:
        for p in book.projects:
            errors, warnings = _counts(p.sub)
            row = [
                p.no, p.ident.get("project_name"), p.ident.get("department"), p.ident.get("division"),
                *(spec.value(p.ident if c.basic else p.record, c.path, fy) for c in spec.list),
                p.status, errors, warnings,
                p.sub.file if p.sub else None, p.sub.sha256[:SHA_PREFIX] if p.sub else None,
                p.sub.received_at if p.sub else None,
            ]
            yield [fy, _wareki(fy), *row] if csv else row

    return Table("T_List", cols, rows(), len(book.projects))


def _with_records(book: _Book) -> list[_Project]:
    return [p for p in book.projects if p.record is not None]


def _cost_table(book: _Book) -> Table:
    """コスト推移: project × year × item, the value's unit in its own column."""
    spec = book.spec
    cols = cost_columns(spec)

    def rows() -> Iterator[list[Any]]:
        for p in _with_records(book):
            ident = _ident(book, p.no)
            costs, _ = book.spill.tables(p.entry.spilled)
            for entry in sorted(costs or [], key=lambda e: e.get("year") or 0):
                year = entry.get("year")
                for item in spec.cost_items:
                    value = spec.entry_value(entry, item.key)
                    yield [*ident, year, _wareki(year), item.item, item.unit, Cell(value, item.kind), p.status]

    return Table("T_Costs", cols, rows(), sum(p.entry.spilled.cost_rows for p in _with_records(book)))


def _indicator_table(book: _Book) -> Table:
    """指標: project × indicator × year with 達成率 (ceilings such as 以内 inverted, see achievement_rate)."""
    spec = book.spec
    rate = spec.rate
    cols = indicator_columns(spec)
    series = spec.indicator_series or ""

    def rows() -> Iterator[list[Any]]:
        for p in _with_records(book):
            ident = _ident(book, p.no)
            _, indicators = book.spill.tables(p.entry.spilled)
            for ind in sorted(indicators or [], key=lambda i: i.get("no") or 0):
                head = [*ident, ind.get("no"), *(ind.get(c.key) for c in spec.indicator_item_columns)]
                values = sorted(ind.get(series) or [], key=lambda v: v.get("year") or 0)
                for v in values or [{}]:  # an indicator without values still shows
                    year = v.get("year")
                    shown = [v.get(c.key) for c in spec.indicator_value_columns]
                    ratio = ([achievement_rate(v.get(rate["actual"]), v.get(rate["target"]),
                                               ind.get(rate.get("unit", "unit")))] if rate else [])
                    yield [*head, year, _wareki(year), *shown, *ratio, p.status]

    return Table("T_Indicators", cols, rows(), sum(p.entry.spilled.indicator_rows for p in _with_records(book)))


def _departments(projects: Iterable[_Project]) -> list[str]:
    """部 in order of first appearance (projects are in 番号 order, which follows the organisation)."""
    return list(dict.fromkeys(p.department for p in projects))


def _direction_table(book: _Book, top: int) -> Table:
    """方向性集計: 部 × 方向性 counts, 合計, and each share as a formula over the counts."""
    spec = book.spec
    counted = [p for p in book.projects if p.counted]
    depts = _departments(counted)
    tally: dict[str, Counter] = {d: Counter() for d in depts}
    for p in counted:
        tally[p.department][_direction_kind(spec, p.record)] += 1
    extra = [k for k in (NO_DIRECTION, OTHER_DIRECTION) if any(t[k] for t in tally.values())]
    kinds = [*spec.directions, *extra]
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


def _direction_kind(spec: MasterSpec, record: dict[str, Any] | None) -> str:
    value = spec.value(record, spec.direction_path, None) if spec.direction_path else None
    if value in spec.directions:
        return value
    return NO_DIRECTION if value in (None, "") else OTHER_DIRECTION


def _department_cost_table(book: _Book) -> Table:
    """部別コスト: totals per 部 and per 課 for each year (集計単位 tells the level apart)."""
    spec = book.spec
    counted = [p for p in book.projects if p.counted]
    series = spec.cost_series or ""
    entries_of = {id(p): [e for e in p.record.get(series) or [] if isinstance(e, dict)] for p in counted}
    years = sorted({e.get("year") for p in counted for e in entries_of[id(p)] if isinstance(e.get("year"), int)})
    width = len(spec.department_costs)
    sums: dict[tuple[str, str | None, int], list] = defaultdict(lambda: [0, *([None] * width)])
    divisions: dict[str, dict[str, None]] = {}  # 課 of each 部, in order of appearance
    for p in counted:
        dept, div = p.department, p.division
        divisions.setdefault(dept, {})[div] = None
        for e in entries_of[id(p)]:
            values = [spec.entry_value(e, c.key) for c in spec.department_costs]
            for key in ((dept, None, e.get("year")), (dept, div, e.get("year"))):
                acc = sums[key]
                acc[0] += 1
                for i, v in enumerate(values, start=1):
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        acc[i] = (acc[i] or 0) + v
    cols = [Col("集計単位"), Col("部"), Col("課"), Col("年度", "int"), Col("和暦"),
            Col("事業数", "count"), *(Col(c.header, c.kind) for c in spec.department_costs)]
    rows = []
    for dept, divs in divisions.items():  # 部 in order of first appearance, as _departments
        for level, div in (("部", None), *(("課", d) for d in divs)):
            for year in years:
                if (dept, div, year) in sums:
                    rows.append([level, dept, div, year, _wareki(year), *sums[(dept, div, year)]])
    return Table("T_DepartmentCosts", cols, rows)


def _status_table(book: _Book) -> Table:
    """提出状況: every expected or received project, then unreadable files of no known project."""
    cols = STATUS_COLS
    order = {d: i for i, d in enumerate(_departments(book.projects))}
    projects = sorted(book.projects, key=lambda p: (order[p.department],
                                                    p.ident.get("division") or "", _natural(p.no)))

    def rows() -> Iterator[list[Any]]:
        for p in projects:
            yield [p.ident.get("department"), p.ident.get("division"), p.no, p.ident.get("project_name"),
                   p.status, *_counts(p.sub), p.sub.file if p.sub else None,
                   p.sub.received_at if p.sub else None]
        for entry in book.loose:
            no, name, dept, div = _ident(book, entry.project_no)
            yield [dept, div, no, name, entry.result.status, *_counts(entry.sub), entry.file, entry.received_at]
        for entry in book.foreign:
            yield [None, None, entry.project_no, None, FOREIGN, 1, 0, entry.file, entry.received_at]
        for note in book.notes:
            error = note.finding.is_error
            yield [None, None, None, None, note.status, int(error), int(not error), note.file, None]

    return Table("T_Status", cols, rows(),
                 len(projects) + len(book.loose) + len(book.foreign) + len(book.notes))


def _statuses(book: _Book) -> list[str]:
    """The statuses 提出状況 counts (受付不可, 様式違い and 除外 only when there is one)."""
    present = {s.result.status for s in book.loose} | {n.status for n in book.notes}
    if book.foreign:
        present.add(FOREIGN)
    present |= {p.status for p in book.projects}
    return [s for s in STATUS_ORDER if s not in _OPTIONAL_STATUSES or s in present]


def _status_by_department(status_rows: Iterable[list[Any]], order: list[str]) -> Table:
    """Counts per 部 × 提出状況 (and 合計), from the rows of 提出状況."""
    tally: dict[str, Counter] = {}
    for row in status_rows:
        tally.setdefault(row[0] or UNKNOWN_DEPARTMENT, Counter())[row[4]] += 1
    cols = [Col("部（集計）"), *(Col(s, "count") for s in order), Col("合計", "count")]
    rows = [[d, *(t[s] for s in order), sum(t.values())] for d, t in tally.items()]
    return Table("T_StatusByDepartment", cols, rows)


def _findings_table(book: _Book) -> Table:
    """指摘一覧: every finding of the submissions that count now (see the module docstring)."""
    cols = [*IDENT_COLS, Col("提出ファイル"), Col("シート"), Col("セル"), Col("項目"),
            Col("フィールド"), Col("区分"), Col("コード"), Col("内容", "wrap", width=_WRAP_WIDTH),
            Col("提出状況")]

    def rows() -> Iterator[list[Any]]:
        for entry in sorted(book.live, key=lambda s: (_natural(s.project_no or "\uffff"), s.file)):
            status = book.status_of(entry)
            ident = _ident(book, entry.project_no)
            for f in sorted(entry.result.findings, key=lambda f: not f.is_error):  # errors first, stable
                yield [*ident, entry.file, f.sheet, f.cell, _field_label(book.spec, f.field), f.field,
                       SEVERITY_LABEL.get(f.severity, f.severity), f.code, f.message, status]
        for entry in book.foreign:
            f = foreign_finding(entry.sub, book.spec.tpl)
            yield [entry.project_no, None, None, None, entry.file, None, None, None, None,
                   SEVERITY_LABEL[f.severity], f.code, f.message, FOREIGN]
        for note in book.notes:
            f = note.finding
            yield [None, None, None, None, note.file, None, None, None, None,
                   SEVERITY_LABEL[f.severity], f.code, f.message, note.status]

    count = sum(len(entry.result.findings) for entry in book.live) + len(book.foreign) + len(book.notes)
    return Table("T_Findings", cols, rows(), count)


def foreign_finding(sub: Any, master: Template) -> findings.Finding:
    """C801 for a return of another template than the master book's."""
    try:
        name = load(sub.template).name
    except Exception:  # noqa: BLE001 -- a template that no longer loads is still named by its id
        name = sub.template
    return findings.make("C801", file=sub.file, name=name, template=sub.template, master=master.name)


def _field_label(spec: MasterSpec, path: str | None) -> str | None:
    if not path:
        return None
    try:
        return spec.tpl.label(path)
    except (KeyError, TypeError, ValueError):  # a path the template does not know: show it as is
        return path


def _history_table(book: _Book) -> Table:
    """履歴: every file received, oldest first, current or superseded."""
    cols = [Col("受付日時", "datetime"), *IDENT_COLS, Col("提出ファイル"), Col("SHA-256", width=72),
            Col("ファイル更新日時", "datetime"), Col("ブック保存日時", "datetime"), Col("新旧の判定基準"),
            Col("判定"), Col("エラー数", "count"), Col("注意数", "count"), Col("区分")]
    live = {_key(s) for s in book.live}

    def rows() -> Iterator[list[Any]]:
        for sub in sorted(book.history, key=_received):
            source = getattr(sub, "order_source", "mtime")
            yield [sub.received_at, *_ident(book, sub.project_no), sub.file, sub.sha256, sub.modified_at,
                   getattr(sub, "saved_at", None), ORDER_LABEL.get(source, source),
                   sub.result.status, *_counts(sub),
                   CURRENT_LABEL if _key(sub) in live or sub.current else SUPERSEDED_LABEL]

    return Table("T_History", cols, rows(), len(book.history))


def _stored(book: _Book) -> list[tuple[_Project, _Spilled]]:
    """The projects _records holds, with where their JSON is: current ones in the order of
    ``current`` (so the records read back come in the order they were given), then those
    carried from the expected records."""
    after = len(book.current)
    current = sorted(_with_records(book), key=lambda p: after if p.entry.given is None else p.entry.given)
    return [*((p, p.entry.spilled) for p in current),
            *((p, p.carried) for p in book.projects if p.record is None and p.carried is not None)]


def _records_rows(book: _Book) -> Iterator[list[Any]]:
    """_records: one row per stored project with its record as JSON, split to fit the cell limit."""
    for p, spilled in _stored(book):
        data = book.spill.json(spilled)
        chunks = _chunks(data.decode("utf-8"))
        year = p.record.get("fiscal_year") if p.record is not None else p.carried_year
        yield [p.no, year, p.status, p.sub.sha256 if p.sub and p.record is not None else "",
               hashlib.sha256(data).hexdigest(), len(chunks), *chunks]


# --------------------------------------------------------------------------- the book


def _write_master_book(path: Path, book: _Book, csvs: _CsvFiles | None, tmp: Path) -> None:
    """XlsxWriter writes the book without the rows of its big tables; ``_assemble`` streams them in."""
    fiscal_year = book.fiscal_year
    parts = tmp / "xlsxwriter.zip"
    wb = Workbook(str(parts), copy.deepcopy(_WB_OPTIONS))  # xlsxwriter adds keys to the options it is given
    styles = StyleBook(wb, {})
    fmts = _Formats({kind: styles.plain(**props) for kind, props in _KIND_PROPS.items()})
    label = _year_label(fiscal_year)
    _list_sheet(wb, fmts, styles, book, label)
    office.write_sheet(wb, styles, book.spec.tpl, book.projects, label)
    _long_sheet(wb, fmts, styles, COSTS, _cost_table(book), label, csvs)
    _long_sheet(wb, fmts, styles, INDICATORS, _indicator_table(book), label, csvs)
    _direction_sheet(wb, fmts, styles, book, label)
    _department_costs_sheet(wb, fmts, styles, book, label)
    _status_sheet(wb, fmts, styles, book, label)
    _findings_sheet(wb, fmts, styles, book, label)
    _history_sheet(wb, fmts, styles, book, label)
    _records_sheet(wb, fmts, book)
    wb.set_properties({"title": f"事務事業評価 マスターブック {label}", "author": "sheettool",
                       "comments": "sheettool collect で作成"})
    wb.set_custom_property("sheettool_masterbook", "1")
    wb.set_custom_property("sheettool_template", book.spec.tpl.id)  # read by sheettool.frames
    if fiscal_year is not None:
        wb.set_custom_property("sheettool_fiscal_year", str(fiscal_year))
    try:
        wb.close()
    except FileCreateError as e:  # XlsxWriter's wrapper of the OSError (a full disk): the OSError says it
        raise (e.args[0] if e.args and isinstance(e.args[0], OSError) else OSError(str(e))) from None
    _assemble(parts, fmts.splices, path)


# --------------------------------------------------------------------------- sheets


def _list_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(LIST)
    table = _list_table(book)
    count = _write_table(ws, fmts, styles, table, top=0, alone=True)
    _highlight_status(ws, styles, table, top=0, count=count)
    _finish(ws, fmts, header_row=0, label=label, freeze_cols=2)  # 番号 and 事業名 stay in view


def _long_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, name: str, table: Table, label: str,
                csvs: _CsvFiles | None) -> None:
    """コスト推移 or 指標: one long table alone on its sheet, also written as CSV."""
    ws = wb.add_worksheet(name)
    _write_table(ws, fmts, styles, csvs.tee(name, table) if csvs else table, top=0, alone=True)
    _finish(ws, fmts, header_row=0, label=label)  # 番号 and 事業名 on every page


def _direction_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(DIRECTION_SUMMARY)
    top = 2
    _title(ws, styles, f"方向性集計 {label}（対象: 提出状況が受理・要修正の事業。件数と部内の割合）")
    table = _direction_table(book, top)
    rows = list(table.rows)
    n = (len(table.cols) - 2) // 2
    total_row = top + max(len(rows), 1) + 1
    grand = [sum(r[1 + i] for r in rows) for i in range(n + 1)]
    total_ref = xl_rowcol_to_cell(total_row, n + 1, col_abs=True)
    first, last = top + 1, total_row - 1
    # Plain ranges: LibreOffice reads structured references in a totals row as #NAME?.
    totals = [{"total_string": "全体"},
              *({"total_function": f"=SUBTOTAL(109,{xl_range(first, 1 + i, last, 1 + i)})", "total_value": v}
                for i, v in enumerate(grand)),
              *({"total_function": f"=IF({total_ref}=0,0,{xl_rowcol_to_cell(total_row, 1 + i)}/{total_ref})",
                 "total_value": grand[i] / grand[n] if grand[n] else 0} for i in range(n))]
    _write_table(ws, fmts, styles, table, top=top, totals=totals)
    _direction_chart(wb, ws, table, top, total_row + 2, book.spec.direction_colors)
    _finish(ws, fmts, header_row=top, label=label, title_cols=1, at_least_pt=_CHART_WIDTH * 0.75)


def _direction_chart(wb: Workbook, ws: Worksheet, table: Table, top: int, at_row: int,
                     colors: dict[str, str]) -> None:
    """Stacked bars: one bar per 部, one segment per 方向性 (the count columns)."""
    colors = {**colors, **EXTRA_COLORS}
    chart = wb.add_chart({"type": "bar", "subtype": "stacked"})
    count = len(list(table.rows))
    first, last = top + 1, top + max(count, 1)
    n = (len(table.cols) - 2) // 2
    font = {"name": FONT, "size": FONT_SIZE}  # 8.5 pt or more on paper (see print_setup)
    for i in range(n):
        kind = table.cols[1 + i].header
        chart.add_series({
            "name": [ws.name, top, 1 + i],
            "categories": [ws.name, first, 0, last, 0],
            "values": [ws.name, first, 1 + i, last, 1 + i],
            "fill": {"color": colors.get(kind, "#A5A5A5")},
            "gap": 60,
        })
    chart.set_title({"name": "部別の方向性（事業数）", "name_font": {"name": FONT, "size": 12}})
    chart.set_x_axis({"name": "事業数", "num_font": font, "name_font": font, "major_gridlines": {"visible": True}})
    chart.set_y_axis({"reverse": True, "num_font": font})  # first 部 at the top, as in the table
    chart.set_legend({"position": "bottom", "font": font})
    chart.set_size({"width": _CHART_WIDTH, "height": max(300, 36 * count + 160)})
    ws.insert_chart(at_row, 0, chart)


def _department_costs_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(DEPARTMENT_COSTS)
    top = 2
    _title(ws, styles, f"部別コスト {label}（対象: 提出状況が受理・要修正の事業。集計単位「部」は部の合計、「課」は課ごと）")
    _write_table(ws, fmts, styles, _department_cost_table(book), top=top)
    _finish(ws, fmts, header_row=top, label=label, title_cols=3)  # 集計単位, 部, 課


def _status_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, book: _Book, label: str) -> None:
    """The list, with the counts per 部 to its right and the totals over those (frozen with the header):
    the totals' columns are the counts' columns, so their headers line up."""
    ws = wb.add_worksheet(STATUS)
    _title(ws, styles, f"提出状況 {label}")
    per_status: Counter = Counter()

    def counting(rows: Iterable[list[Any]]) -> Iterator[list[Any]]:
        for row in rows:
            per_status[row[4]] += 1
            yield row

    # one pass over the rows for both tallies; the list itself is made again as it is written
    order = _statuses(book)
    by_department = _status_by_department(counting(_status_table(book).rows), order)
    summary = Table("T_StatusSummary", [Col("集計"), *(Col(s, "count") for s in order), Col("合計", "count")],
                    [["全体", *(per_status[s] for s in order), per_status.total()]])
    top = 4
    table = _status_table(book)
    _write_table(ws, fmts, styles, summary, top=1, left=len(table.cols) + 1, size=False)  # over the counts
    # The counts per 部 share the list's rows, so they are written with them (see _write_table).
    count = _write_table(ws, fmts, styles, table, top=top, alone=True, beside=by_department)
    _highlight_status(ws, styles, table, top=top, count=count)
    # across pages: the list, then the totals and counts on a page of their own
    _finish(ws, fmts, header_row=top, label=label, title_cols=4, split=len(table.cols) + 1)


def _findings_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(FINDINGS)
    _write_table(ws, fmts, styles, _findings_table(book), top=0, alone=True)
    _finish(ws, fmts, header_row=0, label=label)


def _history_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(HISTORY)
    _write_table(ws, fmts, styles, _history_table(book), top=0, alone=True)
    _finish(ws, fmts, header_row=0, label=label, title_cols=3)  # 受付日時, 番号, 事業名


def _records_sheet(wb: Workbook, fmts: _Formats, book: _Book) -> None:
    """Hidden: one row per current project with its record as JSON, split to fit the cell limit."""
    ws = wb.add_worksheet(RECORDS)
    rows = _records_rows(book)
    head = list(islice(rows, _SPLICE_ROWS))
    if head and len(head) >= _SPLICE_ROWS:
        stored = [spilled for _, spilled in _stored(book)]
        longest = max(len(RECORDS_HEADER) + spilled.parts for spilled in stored)
        # Rows differ in length, so a bound rather than an estimate: XML escaping ("&" → "&amp;")
        # at most 5 times a record's JSON, and the other cells.
        bound = sum(1024 + 5 * spilled.json for spilled in stored if isinstance(spilled.json, int))
        fmts.splices.append(_Splice(ws.index, _records_xml(chain(head, rows), len(stored)), 1,
                                    len(stored), longest - 1, bound=bound))
        width, head = longest - len(RECORDS_HEADER), []
    else:
        width = max((len(r) for r in head), default=len(RECORDS_HEADER) + 1) - len(RECORDS_HEADER)
    header = [*RECORDS_HEADER, *(f"json_{i}" for i in range(1, width + 1))]
    for c, name in enumerate(header):
        ws.write_string(0, c, name)
    for r, row in enumerate(head, start=1):
        for c, value in enumerate(row):
            if isinstance(value, int | float) and not isinstance(value, bool):
                ws.write_number(r, c, value)
            elif value is not None:
                ws.write_string(r, c, str(value))
    ws.hide()
    ws.protect()  # read by tools; protection keeps an accidental edit out


def _records_xml(rows: Iterator[list[Any]], count: int) -> Iterator[str]:
    """The ``<row>`` elements of _records from row 2, as the cells above are written (no format)."""
    r = 1
    for r, row in enumerate(rows, start=2):
        num = str(r)
        cells = []
        for c, value in enumerate(row):
            if isinstance(value, int | float) and not isinstance(value, bool):
                cells.append(f'<c r="{_letter(c)}{num}"><v>{number_text(value)}</v></c>')
            elif value is not None:
                # text_item, not the cached string_item: a record's JSON is seen once
                cells.append(f'<c r="{_letter(c)}{num}" t="inlineStr"><is>{text_item(str(value))}</is></c>')
        yield f'<row r="{num}">{"".join(cells)}</row>'
    if r - 1 != count:
        raise AssertionError(f"{RECORDS}: {r - 1} rows written, {count} counted")


@lru_cache(maxsize=1024)
def _letter(col: int) -> str:
    return xl_col_to_name(col)


# --------------------------------------------------------------------------- drawing helpers


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


_TEXT_MEMORY = 4096  # texts remembered per column (names repeat on every row of a project)
_NOTHING = object()


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


_DIMENSION = re.compile(r'<dimension ref="[^"]*"/>')
_ROW_NUMBER = re.compile(r'<row r="(\d+)"')
_TABLE_NAME = re.compile(rb'displayName="([^"]*)"')
_BATCH_CHARS = 1 << 18  # XML handed to the compressing thread at a time


def _assemble(parts: Path, splices: list[_Splice], path: Path) -> None:
    """The final book at ``path`` (atomically): XlsxWriter's parts, each spliced sheet with its rows.

    Streamed: a big sheet's rows are made and compressed into the zip batch by batch.
    """
    by_part = {f"xl/worksheets/sheet{s.sheet + 1}.xml": s for s in splices}
    ranges = {name.encode("utf-8"): refs for s in splices for name, refs in s.tables.items()}
    with atomic_output(path) as raw, zipfile.ZipFile(parts) as src, \
            zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            part = src.read(info.filename)
            splice = by_part.get(info.filename)
            if splice is not None:
                _write_spliced(dst, info, part.decode("utf-8"), splice)
                continue
            if info.filename.startswith("xl/tables/"):
                part = _table_range(part, ranges)
            dst.writestr(info, part, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)


def _write_spliced(dst: zipfile.ZipFile, info: zipfile.ZipInfo, xml: str, splice: _Splice) -> None:
    """XlsxWriter's sheet part with the rows of its big table(s) at the end of ``<sheetData>``."""
    written = [int(n) for n in _ROW_NUMBER.findall(xml)]
    if written and max(written) > splice.first_row:
        raise AssertionError(f"{info.filename}: rows already written where the table goes")
    ref = f"A1:{xl_col_to_name(splice.last_col)}{splice.last_row + 1}"
    xml = _DIMENSION.sub(f'<dimension ref="{ref}"/>', xml, count=1)
    if "</sheetData>" in xml:
        before, after = xml.split("</sheetData>", 1)
    else:  # no row written by XlsxWriter at all
        before, after = xml.split("<sheetData/>", 1)
        before += "<sheetData>"
    zinfo = zipfile.ZipInfo(info.filename, info.date_time)
    zinfo.external_attr = info.external_attr
    zinfo.compress_type = zipfile.ZIP_DEFLATED  # at zlib's default level, 6
    batches = _batches(splice.rows)
    first = next(batches, (b"", 0))
    # The size is known only at the end: zip64 headers (which not every reader takes) only
    # where the part might pass zipfile's limit, as the first rows (or the bound) tell.
    rows = splice.last_row - splice.first_row + 1
    estimate = max(splice.bound, 2 * len(first[0]) * rows // max(first[1], 1))
    with dst.open(zinfo, "w", force_zip64=len(xml) + estimate > _ZIP64_SAFE) as out:
        out.write(before.encode("utf-8"))
        with _Behind(out.write) as write:
            for data, _ in chain([first], batches):
                write(data)
        out.write(("</sheetData>" + after).encode("utf-8"))


_ZIP64_SAFE = zipfile.ZIP64_LIMIT // 2


def _batches(rows: Iterator[str]) -> Iterator[tuple[bytes, int]]:
    """The rows as UTF-8 in batches of about ``_BATCH_CHARS`` characters, with their number of rows."""
    batch: list[str] = []
    chars = 0
    for row in rows:
        batch.append(row)
        chars += len(row)
        if chars >= _BATCH_CHARS:
            yield "".join(batch).encode("utf-8"), len(batch)
            batch, chars = [], 0
    if batch:
        yield "".join(batch).encode("utf-8"), len(batch)


class _Behind:
    """Calls ``write`` in a second thread, in order and a few batches behind.

    zlib and the disk release the GIL, so a batch is compressed and written
    while this thread makes the next one: on two cores most of the compressing
    leaves the critical path (at 5,000 projects about an eighth of the time).
    """

    _AHEAD = 4  # batches waiting at most (memory stays a few batches)

    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sheettool-zip")
        self._pending: deque[Future] = deque()

    def __call__(self, data: bytes) -> None:
        self._pending.append(self._pool.submit(self._write, data))
        while len(self._pending) > self._AHEAD:
            self._pending.popleft().result()

    def __enter__(self) -> _Behind:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            while self._pending:  # in order: the first failure is the one raised
                future = self._pending.popleft()
                if exc_type is None:
                    future.result()
                else:
                    future.cancel()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _table_range(part: bytes, ranges: dict[bytes, tuple[str, str]]) -> bytes:
    """A spliced table's part with its real range (table and filter), see _frame."""
    match = _TABLE_NAME.search(part)
    refs = ranges.get(match.group(1)) if match else None
    if refs is None:
        return part
    given, real = (f'ref="{r}"'.encode() for r in refs)
    if given not in part:
        raise AssertionError(f"table {match.group(1).decode()}: range {refs[0]} not found")
    return part.replace(given, real)


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


# Printing: text at least 8 pt on paper. A sheet prints one page wide on A4 landscape when that
# keeps it at ``_MIN_SCALE`` or more, else one page wide on A3 landscape, else at ``_MIN_SCALE``
# on A3 landscape across pages (left to right, then down) with its header row and first columns
# on every page. A sheet with a table beside its list (提出状況) breaks the page before that
# table instead, at one scale for both parts. The width is estimated from the column widths as
# LibreOffice draws them with the book's font (measured: 5.55 pt per width unit and 3.9 pt per
# column with Noto Sans CJK JP 10 pt; rounded up here, so the estimate errs on the wide side).
_PAPERS = ((9, 841.89), (8, 1190.55))  # (XlsxWriter paper index, landscape width in pt): A4, A3
_MARGIN_IN = 0.4  # left and right, inches
_MIN_SCALE = 0.85  # 10 pt text prints at 8.5 pt or more
_PT_PER_UNIT, _PT_PER_COLUMN = 5.6, 4.0
_DEFAULT_WIDTH = 8.43


@dataclass(frozen=True)
class PrintSetup:
    """How a sheet prints: the paper (XlsxWriter index) and either fit to one page wide, or
    ``percent`` across pages (``split``: a page break before that column, else title columns)."""

    paper: int
    fit_width: bool
    width_pt: float  # the estimated width of the widest page's part, at 100%
    percent: int = 100
    split: int | None = None

    @property
    def scale(self) -> float:
        """The print scale as estimated."""
        if not self.fit_width:
            return self.percent / 100
        return min(1.0, _printable(self.paper) / self.width_pt)


def _printable(paper: int) -> float:
    return dict(_PAPERS)[paper] - 2 * 72 * _MARGIN_IN


def _width_pt(widths: Iterable[float]) -> float:
    return sum(_PT_PER_UNIT * w + _PT_PER_COLUMN for w in widths)


def print_setup(widths: Sequence[float], *, at_least_pt: float = 0.0, split: int | None = None) -> PrintSetup:
    """The paper and scale for a sheet whose columns (from A) have ``widths`` (Excel units).

    ``split``: the sheet's second table starts at that column; if the whole does not fit one page
    wide, each part gets its own page (the same scale for both, fixed: fitting would ignore the break).
    """
    width = max(at_least_pt, _width_pt(widths))
    for paper, _ in _PAPERS:
        if _printable(paper) / width >= _MIN_SCALE:
            return PrintSetup(paper, True, width)
    if split is not None:
        part = max(_width_pt(widths[:split]), _width_pt(widths[split:]), at_least_pt)
        for paper, _ in _PAPERS:
            fits = _printable(paper) / part
            if fits >= _MIN_SCALE:
                return PrintSetup(paper, False, part, math.floor(min(1.0, fits) * 100), split)
    return PrintSetup(_PAPERS[-1][0], False, width, round(_MIN_SCALE * 100))


def _finish(ws: Worksheet, fmts: _Formats, *, header_row: int, label: str, freeze_cols: int = 0,
            title_cols: int = 2, at_least_pt: float = 0.0, split: int | None = None) -> PrintSetup:
    """Frozen header, and landscape printing (see ``print_setup``) with the header on every page.

    ``title_cols`` are the first columns printed on every page when the sheet goes across pages;
    ``split`` is where a table beside the list starts (see ``print_setup``).
    """
    ws.freeze_panes(header_row + 1, freeze_cols)
    widths = fmts.widths.get(ws.index, {})
    setup = print_setup([widths.get(c, _DEFAULT_WIDTH) for c in range(max(widths, default=-1) + 1)],
                        at_least_pt=at_least_pt, split=split)
    ws.set_paper(setup.paper)
    ws.set_landscape()
    if setup.fit_width:
        ws.fit_to_pages(1, 0)
    elif setup.split is not None:
        ws.set_print_scale(setup.percent)
        ws.set_v_pagebreaks([setup.split])  # the list's pages first, then the table beside it
    else:
        ws.set_print_scale(setup.percent)
        ws.print_across()  # a row's continuation on the next page, not after all the rows
        if title_cols:
            ws.repeat_columns(0, title_cols - 1)
    ws.repeat_rows(header_row)
    ws.set_margins(left=_MARGIN_IN, right=_MARGIN_IN, top=0.7, bottom=0.6)
    ws.set_header(f"&L&A&R{label}")
    ws.set_footer("&C&P / &N")
    return setup


# --------------------------------------------------------------------------- _records codec


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
        record = jsontext.loads(text)
    except json.JSONDecodeError as e:
        raise RecordsError(f"{where}: 記録のJSONが不正です（{e.msg}）。") from None
    except jsontext.JSONTextError as e:
        raise RecordsError(f"{where}: 記録のJSONが不正です（{e}）。") from None
    if not isinstance(record, dict):
        raise RecordsError(f"{where}: 記録がJSONオブジェクトではありません。")
    return record


# --------------------------------------------------------------------------- CSV


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
