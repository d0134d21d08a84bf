"""指摘一覧: every finding of the submissions that count now."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xlsxwriter.workbook import Workbook

from ... import findings
from ...spec import Template, load
from ...spec.master import MasterSpec
from ...xlsx.styles import StyleBook
from ..submission import FOREIGN
from .model import FINDINGS, IDENT_COLS, SEVERITY_LABEL, Col, Table, _Book, _ident, _natural
from .printing import _finish
from .tablewriter import _WRAP_WIDTH, _Formats, _write_table


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


def _findings_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(FINDINGS)
    _write_table(ws, fmts, styles, _findings_table(book), top=0, alone=True)
    _finish(ws, fmts, header_row=0, label=label)
