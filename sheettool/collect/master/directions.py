"""方向性集計: 部 × 方向性 counts and shares, with a stacked bar chart."""

from __future__ import annotations

from collections import Counter
from typing import Any

from xlsxwriter.utility import xl_range, xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from ...spec.master import MasterSpec
from ...xlsx.styles import StyleBook
from .model import (
    DIRECTION_SUMMARY,
    EXTRA_COLORS,
    FONT,
    FONT_SIZE,
    NO_DIRECTION,
    OTHER_DIRECTION,
    Col,
    Formula,
    Table,
    _Book,
    _departments,
)
from .printing import _finish
from .tablewriter import _Formats, _title, _write_table

_CHART_WIDTH = 760  # pixels, 方向性集計's chart


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
