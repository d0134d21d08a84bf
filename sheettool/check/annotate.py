"""``check --annotate OUT.xlsx``: a copy of the returned workbook with every finding marked.

The copy is made from the bytes the checker verified (never the path again),
so the original is untouched. Cells with a finding get a fill (red for errors,
yellow for warnings) and a comment holding the message; a 指摘一覧 sheet lists
them all. openpyxl drops cached formula values on save, so the copy asks Excel
to recalculate on open.
"""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from .. import findings
from ..fileio import atomic_write_bytes
from ..findings import Finding
from ..xlsx.safety import UnreadableFile, open_package
from .result import CheckResult

SHEET = "指摘一覧"
_FILL = {"error": PatternFill("solid", fgColor="FFC7CE"), "warning": PatternFill("solid", fgColor="FFEB9C")}
_HEADERS = ("重要度", "コード", "シート", "セル", "項目", "内容")


class AnnotateError(Exception):
    """The annotated copy could not be written; ``finding`` says why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


def annotate(source: Path, result: CheckResult, out: Path) -> None:
    """Write ``out``: ``source`` with each finding's cell highlighted and commented."""
    if out.resolve() == source.resolve():
        raise AnnotateError(findings.make("A701", file=str(out)))
    try:
        data = open_package(source).open_bytes()
        wb = openpyxl.load_workbook(data, keep_vba=False, keep_links=False)
    except UnreadableFile:
        raise AnnotateError(findings.make("A702", file=source.name)) from None
    except Exception as e:  # openpyxl on a damaged but zip-valid file
        raise AnnotateError(findings.make("A702", file=source.name, detail=type(e).__name__)) from None
    _mark_cells(wb, result.findings)
    _findings_sheet(wb, result)
    if wb.calculation is not None:
        wb.calculation.fullCalcOnLoad = True
    buf = io.BytesIO()
    wb.save(buf)
    try:
        atomic_write_bytes(out, buf.getvalue())
    except OSError as e:
        raise AnnotateError(findings.make("A703", file=str(out), detail=e.strerror or str(e))) from None


def _mark_cells(wb: openpyxl.Workbook, found: list[Finding]) -> None:
    by_cell: dict[tuple[str, str], list[Finding]] = {}
    for f in found:
        if f.sheet in wb.sheetnames and f.cell:
            by_cell.setdefault((f.sheet, f.cell), []).append(f)
    for (sheet, ref), items in by_cell.items():
        cell = wb[sheet][ref]
        worst = "error" if any(f.is_error for f in items) else "warning"
        cell.fill = _FILL[worst]
        text = "\n".join(f"【{'エラー' if f.is_error else '注意'}】{f.message}" for f in items)
        comment = Comment(text, "sheettool")
        comment.width, comment.height = 320, min(60 + 40 * len(items), 400)
        cell.comment = comment


def _findings_sheet(wb: openpyxl.Workbook, result: CheckResult) -> None:
    if SHEET in wb.sheetnames:
        del wb[SHEET]
    ws = wb.create_sheet(SHEET, 0)
    ws.append(_HEADERS)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for f in result.findings:
        row = ("エラー" if f.is_error else "注意", f.code, f.sheet or "", f.cell or "", f.field or "", f.message)
        ws.append(row)
        for cell in ws[ws.max_row]:
            cell.data_type = "s"  # text starting with "=" stays text
    for i, width in enumerate((8, 8, 18, 8, 28, 100), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:F{max(ws.max_row, 1)}"
    wb.active = 0
