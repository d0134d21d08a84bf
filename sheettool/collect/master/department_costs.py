"""部別コスト: totals per 部 and per 課 for each year."""

from __future__ import annotations

from collections import defaultdict

from xlsxwriter.workbook import Workbook

from ...xlsx.styles import StyleBook
from .model import DEPARTMENT_COSTS, Col, Table, _Book, _wareki
from .printing import _finish
from .tablewriter import _Formats, _title, _write_table


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


def _department_costs_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, book: _Book, label: str) -> None:
    ws = wb.add_worksheet(DEPARTMENT_COSTS)
    top = 2
    _title(ws, styles, f"部別コスト {label}（対象: 提出状況が受理・要修正の事業。集計単位「部」は部の合計、「課」は課ごと）")
    _write_table(ws, fmts, styles, _department_cost_table(book), top=top)
    _finish(ws, fmts, header_row=top, label=label, title_cols=3)  # 集計単位, 部, 課
