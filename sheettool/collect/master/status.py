"""提出状況: every expected or received project, the counts per 部 and the totals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from xlsxwriter.workbook import Workbook

from ...xlsx.styles import StyleBook
from ..submission import FOREIGN
from .model import (
    _OPTIONAL_STATUSES,
    STATUS,
    STATUS_ORDER,
    UNKNOWN_DEPARTMENT,
    Col,
    Table,
    _Book,
    _counts,
    _departments,
    _ident,
    _natural,
)
from .printing import _finish
from .tablewriter import _Formats, _highlight_status, _title, _write_table

STATUS_COLS = [Col("部"), Col("課"), Col("番号"), Col("事業名"), Col("提出状況"),
               Col("エラー数", "count"), Col("注意数", "count"), Col("提出ファイル"),
               Col("受付日時", "datetime")]


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
