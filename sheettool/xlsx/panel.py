"""The 入力チェック panel: the sheet tells the department what check will say, as it types.

Two parts, both locked and drawn from ``spec.live.live_checks`` (so from rules.json and
fields.json, like check itself):

- the hidden sheet ``_check``: one row per live check — A code, B flag (1 when the
  finding exists now), C 種類 (エラー/注意), D message, E cell, F running count of the
  flags (the panel picks the k-th flagged row by it); K the dashes the reader takes for
  "no value" (``chk_dashes``). ``chk_errors`` and ``chk_warnings`` count the flags.
- beside the form, outside its print area: the counts, the colour legend and the first
  ``DISPLAY_ROWS`` problems with their cells; conditional formats mark each cell in the
  legend's colours while its condition holds.

Formulas carry an empty cached value so LibreOffice computes them on load; Excel does
anyway (fullCalcOnLoad).
"""

from __future__ import annotations

from typing import Any

from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from ..spec import Template
from ..spec.celltypes import DASHES
from ..spec.layout import Placement
from ..spec.live import DASHES_NAME, LiveCheck, live_checks

SHEET = "_check"
DISPLAY_ROWS = 40
ERROR, WARNING = "エラー", "注意"
MISSING_FILL, MISSING_FONT = "#F4B183", "#833C0B"  # orange: a required input still empty
WRONG_FILL, WRONG_FONT = "#FF7C80", "#9C0006"  # red: out of bounds, or not allowed here
_FIRST_ROW = 6  # 0-based row of the first listed problem on the main sheet


def panel_column(placement: Placement) -> int:
    """The panel's first column: two after the form's last."""
    return max(p.last_col for p in placement.items) + 2


def draw(wb: Workbook, ws: Worksheet, tpl: Template, placement: Placement) -> list[LiveCheck]:
    """Write ``_check`` and the panel beside the form; the checks drawn, in row order."""
    checks = live_checks(tpl, placement)
    _check_sheet(wb, checks)
    _panel(wb, ws, placement, len(checks))
    _marks(wb, ws, checks)
    return checks


def formulas(checks: list[LiveCheck]) -> list[str]:
    """The ``_check`` sheet's flag formulas, row by row (what tamper detection compares)."""
    return [f"=IF({c.condition},1,0)" for c in checks]


def _check_sheet(wb: Workbook, checks: list[LiveCheck]) -> None:
    cs = wb.add_worksheet(SHEET)
    n = max(len(checks), 1)
    for r, (check, flag) in enumerate(zip(checks, formulas(checks), strict=True)):
        cs.write_string(r, 0, check.code)
        cs.write_formula(r, 1, flag, None, "")
        cs.write_string(r, 2, ERROR if check.severity == "error" else WARNING)
        cs.write_string(r, 3, check.message)
        cs.write_string(r, 4, check.placed.cell)
        cs.write_formula(r, 5, f"=SUM($B$1:B{r + 1})", None, "")
    for r, dash in enumerate(DASHES):
        cs.write_string(r, 10, dash)
    wb.define_name(DASHES_NAME, f"={SHEET}!$K$1:$K${len(DASHES)}")
    wb.define_name("chk_errors", f'=SUMIF({SHEET}!$C$1:$C${n},"{ERROR}",{SHEET}!$B$1:$B${n})')
    wb.define_name("chk_warnings", f'=SUMIF({SHEET}!$C$1:$C${n},"{WARNING}",{SHEET}!$B$1:$B${n})')
    cs.protect()
    cs.hide()


def _panel(wb: Workbook, ws: Worksheet, placement: Placement, n: int) -> None:
    col = panel_column(placement)
    n = max(n, 1)
    title = wb.add_format({"bold": True, "font_size": 12})
    label = wb.add_format({"bg_color": "#DDEBF7", "border": 1})
    count = wb.add_format({"bold": True, "border": 1, "align": "center"})
    text = wb.add_format({"text_wrap": True, "valign": "top", "font_size": 9})
    ws.set_column(col, col, 9)
    ws.set_column(col + 1, col + 1, 60)
    ws.write_string(0, col, "入力チェック（入力すると自動で更新されます。印刷されません）", title)
    ws.write_string(1, col, "エラー", label)
    ws.write_formula(1, col + 1, "=chk_errors", count, "")
    ws.write_string(2, col, "注意", label)
    ws.write_formula(2, col + 1, "=chk_warnings", count, "")
    ws.write_string(3, col, "", wb.add_format({"bg_color": MISSING_FILL, "border": 1}))
    ws.write_string(3, col + 1, "未入力の必須項目", text)
    ws.write_string(4, col, "", wb.add_format({"bg_color": WRONG_FILL, "border": 1}))
    ws.write_string(4, col + 1, "範囲外の値・この事業では使えない値", text)
    ws.write_string(5, col, "セル", label)
    ws.write_string(5, col + 1, "内容（提出前にすべて直してください。注意は確認だけで構いません）", label)
    pick = f"MATCH({{k}},{SHEET}!$F$1:$F${n},0)"
    for k in range(1, DISPLAY_ROWS + 1):
        row = _FIRST_ROW + k - 1
        at = pick.format(k=k)
        ws.write_formula(row, col, f'=IFERROR(INDEX({SHEET}!$E$1:$E${n},{at}),"")', text, "")
        ws.write_formula(row, col + 1, f'=IFERROR(INDEX({SHEET}!$C$1:$C${n},{at})&"："&'
                                        f'INDEX({SHEET}!$D$1:$D${n},{at}),"")', text, "")
    more = _FIRST_ROW + DISPLAY_ROWS
    ws.write_formula(more, col + 1, f'=IF(chk_errors+chk_warnings>{DISPLAY_ROWS},"ほか"&'
                                    f'(chk_errors+chk_warnings-{DISPLAY_ROWS})&"件","")', text, "")


def _marks(wb: Workbook, ws: Worksheet, checks: list[LiveCheck]) -> None:
    looks: dict[str, Any] = {
        "missing": wb.add_format({"bg_color": MISSING_FILL, "font_color": MISSING_FONT}),
        "wrong": wb.add_format({"bg_color": WRONG_FILL, "font_color": WRONG_FONT}),
    }
    for check in checks:
        if check.colour is None:
            continue
        p = check.placed
        ws.conditional_format(p.row, p.col, p.last_row, p.last_col,
                              {"type": "formula", "criteria": f"={check.condition}", "format": looks[check.colour]})


def panel_range(placement: Placement) -> str:
    """The panel's cells on the main sheet (A1 range), which check never reads as data."""
    col = panel_column(placement)
    return f"{xl_col_to_name(col)}1:{xl_rowcol_to_cell(_FIRST_ROW + DISPLAY_ROWS, col + 1)}"
