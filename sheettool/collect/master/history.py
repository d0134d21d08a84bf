"""履歴: every file received, oldest first."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xlsxwriter.workbook import Workbook

from ...xlsx.styles import StyleBook
from .model import (
    CURRENT_LABEL,
    HISTORY,
    IDENT_COLS,
    ORDER_LABEL,
    SUPERSEDED_LABEL,
    Col,
    Table,
    _Book,
    _counts,
    _ident,
    _key,
    _received,
)
from .printing import _finish
from .tablewriter import _Formats, _write_table


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


def _history_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(HISTORY)
    _write_table(ws, fmts, styles, _history_table(book), top=0, alone=True)
    _finish(ws, fmts, header_row=0, label=label, title_cols=3)  # 受付日時, 番号, 事業名
