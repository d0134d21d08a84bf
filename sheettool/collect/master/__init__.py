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

The package's modules, one per thing written: ``model`` (sheet names, statuses, Col, Cell,
Table, the projects), ``spill`` (records on disk while the book is written; the ``_records``
JSON codec), ``gather`` (who counts), ``list_sheet`` 一覧, ``costs`` コスト推移, ``indicators``
指標, ``directions`` 方向性集計, ``department_costs`` 部別コスト, ``status`` 提出状況,
``findings_sheet`` 指摘一覧, ``history`` 履歴, ``records`` _records (and reading it back),
``tablewriter`` (Excel tables, cell by cell or as XML to splice), ``assemble`` (the final zip),
``printing`` (print setup), ``csvfiles`` (the CSV) and ``book`` (every sheet in order).
"""

from __future__ import annotations

import sys
import tempfile
import types
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ...spec import Template, load
from ..ledger import SubmissionInfo
from ..submission import (
    CHASED,
    CSV_NAMES,
    MISSING,
    REJECTED,
    UNREADABLE,
    Chase,
    InboxNote,
    Submission,
)
from . import assemble, records, tablewriter
from .assemble import _ZIP64_SAFE
from .book import _write_master_book
from .costs import _cost_table, cost_columns
from .csvfiles import _csv_line, _csv_value, _CsvColumn, _CsvFiles
from .directions import _direction_table
from .findings_sheet import _findings_table, foreign_finding
from .gather import _open_unreadable, _read, open_unreadable
from .history import _history_table
from .indicators import _indicator_table, indicator_columns
from .list_sheet import _list_table, list_columns
from .model import (
    CARRIED,
    COSTS,
    COUNTED,
    DEPARTMENT_COSTS,
    DIRECTION_SUMMARY,
    FINDINGS,
    FONT,
    FONT_SIZE,
    HISTORY,
    INDICATORS,
    LIST,
    RECORDS,
    STATUS,
    STATUS_ORDER,
    Cell,
    Col,
    Formula,
    Table,
    Written,
)
from .printing import PrintSetup, print_setup
from .records import _MASTER_LIMITS, _records_rows, read_master_records, read_master_rows
from .spill import CELL_LIMIT, RECORDS_HEADER, _Spill
from .status import STATUS_COLS, _status_table
from .tablewriter import _SPLICE_ROWS


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


class _Package(types.ModuleType):
    """Setting a knob on the package (the tests patch ``_SPLICE_ROWS``, ``_ZIP64_SAFE`` and
    ``_records_rows``) sets it in each submodule that holds it, where the code reads it."""

    def __setattr__(self, name: str, value: Any) -> None:
        for module in _KNOBS.get(name, ()):
            setattr(module, name, value)
        super().__setattr__(name, value)


_KNOBS = {"_SPLICE_ROWS": (tablewriter, records), "_ZIP64_SAFE": (assemble,), "_records_rows": (records,)}
sys.modules[__name__].__class__ = _Package

__all__ = [
    "CARRIED", "CELL_LIMIT", "CHASED", "COSTS", "COUNTED", "CSV_NAMES", "DEPARTMENT_COSTS",
    "DIRECTION_SUMMARY", "FINDINGS", "FONT", "FONT_SIZE", "HISTORY", "INDICATORS", "LIST", "RECORDS",
    "RECORDS_HEADER", "STATUS", "STATUS_COLS", "STATUS_ORDER", "Cell", "Chase", "Col", "Formula",
    "PrintSetup", "Table", "Written", "cost_columns", "foreign_finding", "indicator_columns",
    "list_columns", "open_unreadable", "print_setup", "read_master_records", "read_master_rows",
    "tables", "write_all", "write_csv", "write_master", "write_outputs",
    "_CsvColumn", "_MASTER_LIMITS", "_SPLICE_ROWS", "_ZIP64_SAFE", "_csv_line", "_csv_value",
    "_direction_table", "_findings_table", "_history_table", "_records_rows",
]
