"""What the evaluation office enters after collect: the master book's sheet 評価担当課入力.

A template's office fields (``entered_by: office`` in fields.json: 二次評価, 段階, the office's
comments) are locked in the departments' workbooks. The master book lists every project
on 評価担当課入力 with those fields as input cells (dropdowns where the field has choices),
prefilled with what the office entered before. The next ``collect`` reads the sheet back
*before* it rewrites the book: each value is read like a department's input (normalised,
never silently), kept in the ledger (``office_entries``: every change, the latest counts),
and merged into the project's record — so it appears in the master book, the CSV and the
JSON Lines, and roll-forward carries it (as 前年度の二次評価（参考） and the like) into next
year's sheet. Deleting the master book loses nothing: the ledger keeps the entries.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from xlsxwriter.utility import xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from .. import findings
from ..check.normalize import read_value
from ..findings import Finding
from ..spec import Template
from ..xlsx import safety
from ..xlsx.styles import INPUT_FILL, LABEL_FILL, LOCKED_FILL, StyleBook
from ..xlsx.text import display_width

SHEET = "評価担当課入力"
IDENT = ("番号", "事業名", "部", "課", "提出状況")
_NAME_WIDTH = 36  # 事業名's column; a longer name wraps
_LINE_HEIGHT = 13  # points per line of 10 pt text
_PATH_ROW, _HEADER_ROW = 0, 1  # row 1 (hidden) names each column's field; row 2 is for people
# the master book's own bounds (master/records.py): its big sheets pass the 8 MiB of a return's XML part
# from about 300 projects, which made a city's book unreadable here (C805 on every run)
_LIMITS = safety.Limits(max_file_bytes=200 * safety.MiB, max_part_bytes=400 * safety.MiB,
                        max_xml_part_bytes=400 * safety.MiB, max_total_bytes=1024 * safety.MiB)


def merged(record: dict[str, Any], values: dict[str, Any] | None, tpl: Template) -> dict[str, Any]:
    """``record`` with the office's values laid over it (a copy; the department's record is kept)."""
    if not values:
        return record
    out = copy.deepcopy(record)
    for path, value in values.items():
        if path in tpl.office_paths:
            tpl.set_(out, path, value)
    _recompute(tpl, out)
    return tpl.canonical(out)


def _recompute(tpl: Template, record: dict[str, Any]) -> None:
    """Formula fields that read an office field (評価結果 = 二次評価結果) take its new value."""
    fy = record.get("fiscal_year")
    if not isinstance(fy, int):
        return
    office = set(tpl.office_paths)
    for placed in tpl.place(fy).fields.values():
        if placed.formula and office & set(tpl.bound(placed.path, fy).refs()):
            value = tpl.evaluate(placed.path, fy, lambda p: tpl.get(record, p))
            tpl.set_(record, placed.path, value if isinstance(value, str) else None)


def write_sheet(wb: Workbook, styles: StyleBook, tpl: Template, projects: list[Any], label: str) -> Worksheet | None:
    """The input sheet: one row per project, the office fields unlocked, the rest locked."""
    paths = tpl.office_paths
    if not paths:
        return None
    ws = wb.add_worksheet(SHEET)
    head = styles.plain(bold=True, bg_color=LABEL_FILL, text_wrap=True, align="center", valign="vcenter",
                        border=1, locked=True)
    fixed = styles.plain(bg_color=LOCKED_FILL, border=1, valign="top", locked=True, num_format="@")
    entry = styles.plain(bg_color=INPUT_FILL, border=1, valign="top", text_wrap=True, locked=False, num_format="@")
    number = styles.plain(bg_color=INPUT_FILL, border=1, valign="top", locked=False)
    for c, name in enumerate(("_project_no", "_template", "", "", "", *paths)):
        ws.write_string(_PATH_ROW, c, name)
    ws.set_row(_PATH_ROW, None, None, {"hidden": True})
    ws.write_string(_PATH_ROW, 1, tpl.id)
    headers = [*IDENT, *(tpl.label(p) for p in paths)]
    types = [tpl.cell_type(p) for p in paths]
    name_fmt = styles.plain(bg_color=LOCKED_FILL, border=1, valign="top", locked=True, num_format="@", text_wrap=True)
    for r, p in enumerate(projects, start=_HEADER_ROW + 1):
        ident = p.ident or {}
        for c, value in enumerate((p.no, ident.get("project_name"), ident.get("department"), ident.get("division"),
                                   p.status)):
            ws.write_string(r, c, "" if value is None else str(value), name_fmt if c == 1 else fixed)
        # a long 事業名 wraps; LibreOffice keeps an imported row's height, so it is set here
        lines = math.ceil((display_width(str(ident.get("project_name") or "")) + 1) / (_NAME_WIDTH - 1))
        if lines > 1:
            ws.set_row(r, _LINE_HEIGHT * lines + 4)
        for c, (path, ftype) in enumerate(zip(paths, types, strict=True), start=len(IDENT)):
            value = ftype.to_cell(tpl.get(p.record, path)) if p.record else None
            if value is None:
                ws.write_blank(r, c, None, number if ftype.numeric else entry)
            elif isinstance(value, str):
                ws.write_string(r, c, value, entry)
            else:
                ws.write_number(r, c, value, number)
    last = _HEADER_ROW + max(len(projects), 1)
    for c, ftype in enumerate(types, start=len(IDENT)):
        rule = ftype.validation()
        if rule is not None:
            ws.data_validation(_HEADER_ROW + 1, c, last, c, rule)
        ws.set_column(c, c, 40 if ftype.kind == "text" else 12)
    ws.set_column(0, 0, 8)
    ws.set_column(1, 1, _NAME_WIDTH)
    ws.set_column(2, 4, 14)
    ws.write_string(last + 2, 0, f"{label}：黄色のセルに評価担当課が入力します。次に sheettool collect を実行すると"
                    "台帳に記録され、マスターブックとCSVに反映されます（この表の行の並べ替えは自由です）。")
    ws.add_table(_HEADER_ROW, 0, last, len(headers) - 1, {
        "name": "T_Office", "style": "Table Style Light 9", "autofilter": True,
        "columns": [{"header": h, "header_format": head} for h in headers]})
    ws.freeze_panes(_HEADER_ROW + 1, 2)
    ws.protect("", {"autofilter": True, "sort": True, "select_locked_cells": True, "select_unlocked_cells": True,
                    "format_columns": True, "format_rows": True})
    ws.set_landscape()
    ws.set_paper(8)  # A3: every field of a row on one line of paper
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(_HEADER_ROW)
    ws.set_header(f"&L&A&R{label}")  # as the master book's other sheets
    ws.set_footer("&C&P / &N")
    return ws


def read_back(master: Path, tpl: Template) -> tuple[dict[str, dict[str, Any]], list[Finding]]:
    """What the office typed into the book's input sheet: project → field → value, and what could not be read.

    A book without the sheet (or no book yet) gives nothing; a sheet of another template is ignored.
    """
    if not master.is_file():
        return {}, []
    try:
        data = safety.open_package(master, _LIMITS).open_bytes()
        wb = _openpyxl().load_workbook(data, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 -- an unreadable book is rewritten; the ledger keeps the entries
        return {}, [findings.make("C805", file=master.name)]
    try:
        if SHEET not in wb.sheetnames:
            return {}, []
        ws = wb[SHEET]
        ws.reset_dimensions()
        rows = ws.iter_rows(values_only=True)
        marks = list(next(rows, ()))
        if len(marks) < 2 or marks[0] != "_project_no" or marks[1] != tpl.id:
            return {}, []
        next(rows, None)  # the header people read
        columns = [(c, str(m)) for c, m in enumerate(marks) if isinstance(m, str) and m in tpl.office_paths]
        out: dict[str, dict[str, Any]] = {}
        problems: list[Finding] = []
        for r, row in enumerate(rows, start=_HEADER_ROW + 2):
            no = row[0] if row else None
            if no in (None, ""):
                continue
            no = str(int(no)) if isinstance(no, float) and no.is_integer() else str(no)
            values: dict[str, Any] = {}
            for c, path in columns:
                raw = row[c] if c < len(row) else None
                reading = read_value(raw, tpl.cell_type(path))
                if reading.problem:
                    problems.append(findings.make("C804", sheet=SHEET, cell=xl_rowcol_to_cell(r - 1, c), field=path,
                                                  no=no, label=tpl.label(path), problem=reading.problem))
                    continue
                values[path] = reading.value
            out[no] = values
        return out, problems
    finally:
        wb.close()


def _openpyxl():
    """openpyxl, imported when a book is read: a rerun that rewrites nothing never needs it (~0.2 s)."""
    import openpyxl

    return openpyxl
