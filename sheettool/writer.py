"""Draw a ``SheetPlan`` into an .xlsx with XlsxWriter.

One template per project: the visible sheet shaped like the official form,
``_lists`` (dropdown choices and sentence tables) and ``_meta``, both
veryHidden and protected.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from xlsxwriter.utility import quote_sheetname, xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from . import __version__, meta
from .fieldtypes import dropdown_lists
from .layout import Layout, Placed
from .sheetplan import CellPlan, SheetPlan
from .styles import StyleBook

LISTS_SHEET = "_lists"
_PAPER = {"A4": 9, "A3": 8}
_WB_OPTIONS = {
    "strings_to_formulas": False,  # text starting with "=" stays text
    "strings_to_urls": False,
    "strings_to_numbers": False,
}


class _Sheet(Worksheet):
    """Adds ``imeMode`` to data validations, which XlsxWriter has no option for."""

    _ime: str | None = None

    def _write_data_validation(self, options: dict) -> None:
        self._ime = options.get("ime_mode")
        super()._write_data_validation(options)
        self._ime = None

    def _xml_start_tag(self, tag: str, attributes: Any = ()) -> None:
        if self._ime and tag == "dataValidation":
            attributes = [*attributes, ("imeMode", self._ime)]
        super()._xml_start_tag(tag, list(attributes))


class _Workbook(Workbook):
    """Adds workbook structure protection, which XlsxWriter has no option for."""

    structure_password_hash: str | None = None
    protect_structure = False

    def _write_workbook_pr(self) -> None:
        super()._write_workbook_pr()
        if self.protect_structure:
            attrs: list[tuple[str, Any]] = []
            if self.structure_password_hash:
                attrs.append(("workbookPassword", self.structure_password_hash))
            attrs.append(("lockStructure", 1))
            self._xml_empty_tag("workbookProtection", attrs)


def render(plan: SheetPlan, layout: Layout, target: str | Path | IO[bytes], *,
           password: str | None = None, generated_at: datetime | None = None) -> None:
    """Write the workbook for ``plan`` to ``target`` (a path or a binary stream)."""
    spec = layout.spec
    font = spec.get("font", {})
    options = dict(_WB_OPTIONS)
    options["default_format_properties"] = {"font_name": font.get("name", "ＭＳ Ｐゴシック"),
                                            "font_size": font.get("size", 10)}
    if isinstance(target, io.IOBase):
        options["in_memory"] = True
    wb = _Workbook(target, options)
    ws: _Sheet = wb.add_worksheet(layout.sheet_name, worksheet_class=_Sheet)
    styles = StyleBook(wb, spec["formats"])
    _setup_sheet(ws, layout, plan)
    sheet_ref = quote_sheetname(layout.sheet_name)
    for cell in plan.cells:
        _draw(ws, styles, cell)
        if cell.placed.kind in ("field", "computed"):
            wb.define_name(cell.placed.name, f"={sheet_ref}!{_abs(cell.placed)}")
    _validate(ws, plan)
    _write_lists(wb, layout)
    _write_meta(wb, layout, plan, generated_at or datetime.now().astimezone())
    _protect(wb, ws, password)
    record = plan.record
    wb.set_properties({"title": f"{record['project_no']} {record['project_name']}",
                       "subject": f"{layout.spec.get('name', '')}（{record['fiscal_year']}年度）",
                       "author": "sheettool", "comments": "sheettool generate で作成"})
    wb.set_custom_property("sheettool_template", f"{layout.template_id} {layout.version}")
    wb.set_custom_property("sheettool_project_no", str(record["project_no"]))
    wb.set_custom_property("sheettool_fiscal_year", str(record["fiscal_year"]))
    wb.close()


def _abs(placed: Placed) -> str:
    return xl_rowcol_to_cell(placed.row, placed.col, row_abs=True, col_abs=True)


def _setup_sheet(ws: _Sheet, layout: Layout, plan: SheetPlan) -> None:
    spec = layout.spec
    for letter, width in spec["columns"].items():
        col = _col(letter)
        ws.set_column(col, col, width)
    ws.set_default_row(spec.get("default_row_height", 18))
    for row, height in plan.placement.row_heights.items():
        ws.set_row(row, height)
    p = spec.get("print", {})
    ws.set_paper(_PAPER.get(p.get("paper", "A4"), 9))
    if p.get("orientation") == "landscape":
        ws.set_landscape()
    else:
        ws.set_portrait()
    if "scale" in p:
        ws.set_print_scale(p["scale"])
    else:
        ws.fit_to_pages(p.get("fit_width", 1), p.get("fit_height", 0))
    if p.get("page_breaks"):
        ws.set_h_pagebreaks([row - 1 for row in p["page_breaks"]])
    if "area" in p:
        ws.print_area(p["area"])
    if "repeat_rows" in p:
        first, last = (int(x) - 1 for x in p["repeat_rows"].split(":"))
        ws.repeat_rows(first, last)
    m = p.get("margins", {})
    ws.set_margins(left=m.get("left", 0.5), right=m.get("right", 0.5), top=m.get("top", 0.6),
                   bottom=m.get("bottom", 0.6))
    if "footer" in p:
        ws.set_footer(p["footer"])
    ws.center_horizontally()
    ws.hide_gridlines(2)
    ws.set_zoom(100)
    ws.activate()


def _col(letter: str) -> int:
    from xlsxwriter.utility import xl_cell_to_rowcol

    return xl_cell_to_rowcol(letter + "1")[1]


def _draw(ws: _Sheet, styles: StyleBook, cell: CellPlan) -> None:
    p = cell.placed
    if p.kind in ("section", "label", "text", "header"):
        fmt = styles.label(p.style or ("header" if p.kind == "header" else "label"))
        if p.is_merged:
            ws.merge_range(p.row, p.col, p.last_row, p.last_col, "", fmt)
        ws.write_string(p.row, p.col, p.text or "", fmt)
        return
    kind = cell.ftype.kind if cell.ftype else None
    text = not cell.ftype.numeric if cell.ftype else p.format in (None, "text")
    fmt = styles.value(cell.state, p.format, text=text, lines=p.lines, center=kind in ("score", "yesno"),
                       shrink=kind in ("enum", "code") and p.lines == 1)
    if p.is_merged:
        ws.merge_range(p.row, p.col, p.last_row, p.last_col, "", fmt)
    if cell.formula:
        ws.write_formula(p.row, p.col, cell.formula, fmt, "" if cell.value is None else cell.value)
    elif cell.value is None:
        ws.write_blank(p.row, p.col, None, fmt)
    elif isinstance(cell.value, str):
        ws.write_string(p.row, p.col, cell.value, fmt)
    else:
        ws.write_number(p.row, p.col, cell.value, fmt)


def _validate(ws: _Sheet, plan: SheetPlan) -> None:
    """One data validation per distinct rule, over all the input cells it covers."""
    groups: dict[str, tuple[dict, str, list[str]]] = {}
    for cell in plan.cells:
        if cell.state != "input" or cell.ftype is None:
            continue
        rule = cell.ftype.validation()
        if rule is None:
            continue
        key = repr(sorted(rule.items())) + cell.ftype.ime_mode
        groups.setdefault(key, (rule, cell.ftype.ime_mode, []))[2].append(cell.placed.ref)
    for rule, ime, refs in groups.values():
        ws.data_validation(refs[0], {**rule, "multi_range": " ".join(refs)})
        ws.validations[-1]["ime_mode"] = ime


def _write_lists(wb: _Workbook, layout: Layout) -> None:
    ws = wb.add_worksheet(LISTS_SHEET)
    col = 0
    for name, choices in dropdown_lists().items():
        ws.write_string(0, col, name)
        for i, choice in enumerate(choices, start=1):
            if name == "list_score" and choice.isdigit():
                ws.write_number(i, col, int(choice))  # typed scores are numbers
            else:
                ws.write_string(i, col, choice)
        first = xl_rowcol_to_cell(1, col, row_abs=True, col_abs=True)
        last = xl_rowcol_to_cell(len(choices), col, row_abs=True, col_abs=True)
        wb.define_name(name, f"={LISTS_SHEET}!{first}:{last}")
        col += 1
    for item, table in layout.sentences.items():
        ws.write_string(0, col, f"tbl_sentence_{item}")
        for i, (key, sentence) in enumerate(table.items(), start=1):
            if key.isdigit():
                ws.write_number(i, col, int(key))
            else:
                ws.write_string(i, col, key)
            ws.write_string(i, col + 1, sentence)
        first = xl_rowcol_to_cell(1, col, row_abs=True, col_abs=True)
        last = xl_rowcol_to_cell(len(table), col + 1, row_abs=True, col_abs=True)
        wb.define_name(f"tbl_sentence_{item}", f"={LISTS_SHEET}!{first}:{last}")
        col += 3
    ws.protect()
    ws.very_hidden()


def _write_meta(wb: _Workbook, layout: Layout, plan: SheetPlan, generated_at: datetime) -> None:
    ws = wb.add_worksheet(meta.SHEET)
    record = plan.record
    values = {
        "template_id": layout.template_id,
        "template_version": layout.version,
        "fiscal_year": record["fiscal_year"],
        "project_no": str(record["project_no"]),
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "generator": f"sheettool {__version__}",
        "layout_digest": meta.layout_digest(layout.spec),
        "locked_digest": meta.digest(plan.locked_values),
        "locked_values": meta.canonical(plan.locked_values),
        "constant_cells": meta.canonical(plan.constant_cells),
    }
    for row, key in enumerate(meta.KEYS):
        ws.write_string(row, 0, key)
        value = values[key]
        if isinstance(value, str):
            ws.write_string(row, 1, value)
        else:
            ws.write_number(row, 1, value)
    ws.protect()
    ws.very_hidden()


def _protect(wb: _Workbook, ws: _Sheet, password: str | None) -> None:
    ws.protect(password or "", {"select_locked_cells": True, "select_unlocked_cells": True,
                                "format_rows": True})
    wb.protect_structure = True
    if password:
        wb.structure_password_hash = ws._encode_password(password)
