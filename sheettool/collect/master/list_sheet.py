"""一覧: one row per project."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xlsxwriter.workbook import Workbook

from ...spec.master import MasterSpec
from ...wareki import fiscal_label_with_western
from ...xlsx.styles import StyleBook
from .model import IDENT_COLS, LIST, SHA_PREFIX, Col, Table, _Book, _counts, _wareki
from .printing import _finish
from .tablewriter import _Formats, _highlight_status, _write_table


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


def _list_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(LIST)
    table = _list_table(book)
    count = _write_table(ws, fmts, styles, table, top=0, alone=True)
    _highlight_status(ws, styles, table, top=0, count=count)
    _finish(ws, fmts, header_row=0, label=label, freeze_cols=2)  # 番号 and 事業名 stay in view
