"""Draw a ``SheetPlan`` into an .xlsx with XlsxWriter.

One template per project: the visible sheet shaped like the official form,
``_lists`` (dropdown choices and sentence tables) and ``_meta``, both
veryHidden and protected.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from xlsxwriter.format import Format
from xlsxwriter.packager import Packager
from xlsxwriter.sharedstrings import SharedStrings
from xlsxwriter.utility import quote_sheetname, xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from .. import __version__
from ..spec import CellType, Placed, Template
from . import meta, panel
from .cells import CellPlan, SheetPlan
from .styles import DEFAULT_FONT, JAPANESE_CHARSET, StyleBook
from .text import preserve_space

if TYPE_CHECKING:
    from ..signing import Key

LISTS_SHEET = "_lists"
_PAPER = {"A4": 9, "A3": 8}
# XlsxWriter options that keep every string a string: text starting with "=" (or a URL,
# or digits) is data. Every workbook the toolkit writes through XlsxWriter uses them.
TEXT_STAYS_TEXT = {
    "strings_to_formulas": False,
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


class _SharedStrings(SharedStrings):
    """Every shared string as plain text.

    XlsxWriter writes any string shaped "<r>…</r>" raw, as rich-text XML from
    write_rich_string (which we never use). A record's text of that shape would
    inject XML into sharedStrings.xml and shift every later string: labels,
    dropdown lists and _meta.
    """

    def _write_si(self, string: str) -> None:
        string = self._escape_control_characters(string)
        self._xml_si_element(string, [("xml:space", "preserve")] if preserve_space(string) else [])


class _Packager(Packager):
    def _write_shared_strings_file(self) -> None:
        if not self.workbook.str_table.count:
            return
        sst = _SharedStrings()
        sst.string_table = self.workbook.str_table
        sst._set_xml_writer(self._filename("xl/sharedStrings.xml"))
        sst._assemble_xml_file()


class _Workbook(Workbook):
    """Adds workbook structure protection, which XlsxWriter has no option for."""

    structure_password_hash: str | None = None
    protect_structure = False
    # Formats no cell uses, kept in styles.xml anyway (the stamping renderer's spare styles).
    reserved_formats: tuple[Format, ...] = ()

    def _prepare_format_properties(self) -> None:
        # Runs after the sheets are written, so cells keep the numbering XlsxWriter gives them
        # and the reserved formats take the indices after.
        for fmt in self.reserved_formats:
            fmt._get_xf_index()
        super()._prepare_format_properties()

    def _get_packager(self) -> Packager:
        return _Packager()

    def _write_workbook_pr(self) -> None:
        super()._write_workbook_pr()
        if self.protect_structure:
            attrs: list[tuple[str, Any]] = []
            if self.structure_password_hash:
                attrs.append(("workbookPassword", self.structure_password_hash))
            attrs.append(("lockStructure", 1))
            self._xml_empty_tag("workbookProtection", attrs)


# The arguments of ``StyleBook.value`` for a value cell:
# (state, number format, text, lines, center, shrink).
ValueStyle = tuple[str, str | None, bool, int, bool, bool]


class ValidationGroup(NamedTuple):
    """One data validation: a rule, its imeMode and the refs ("C5:D5") of its input cells."""

    key: str
    rule: dict[str, Any]
    ime: str
    refs: list[str]


def render(plan: SheetPlan, tpl: Template, target: str | Path | IO[bytes], *,
           password: str | None = None, generated_at: datetime | None = None,
           meta_override: dict[str, str | int] | None = None) -> None:
    """Write the workbook for ``plan`` to ``target`` (a path or a binary stream).

    ``meta_override``: the ``_meta`` values (``meta_values``, signed), else unsigned ones.
    """
    wb, _ = compose(plan, tpl, target, password=password, generated_at=generated_at,
                    meta_override=meta_override)
    wb.close()


def compose(plan: SheetPlan, tpl: Template, target: str | Path | IO[bytes], *,
            password: str | None = None, generated_at: datetime | None = None,
            meta_override: dict[str, str | int] | None = None,
            validations: list[ValidationGroup] | None = None) -> tuple[_Workbook, StyleBook]:
    """The whole workbook of ``render``, not yet closed (nothing is written before ``close()``).

    ``meta_override`` replaces the ``_meta`` values and ``validations`` the plan's data
    validations (the stamping renderer's base uses 0s and every rule the layout can need).
    """
    generated_at = generated_at or datetime.now().astimezone()
    spec = tpl.layout.spec
    font = spec.get("font", {})
    options: dict[str, Any] = dict(TEXT_STAYS_TEXT)
    options["default_format_properties"] = {"font_name": font.get("name", DEFAULT_FONT),
                                            "font_size": font.get("size", 10),
                                            "font_charset": JAPANESE_CHARSET}
    if isinstance(target, io.IOBase):
        options["in_memory"] = True
    wb = _Workbook(target, options)
    ws: _Sheet = wb.add_worksheet(tpl.sheet_name, worksheet_class=_Sheet)
    styles = StyleBook(wb, spec["formats"])
    _setup_sheet(ws, spec, plan)
    sheet_ref = quote_sheetname(tpl.sheet_name)
    for cell in plan.cells:
        _draw(ws, styles, cell)
        if cell.placed.kind in ("field", "computed"):
            wb.define_name(cell.placed.name, f"={sheet_ref}!{_abs(cell.placed)}")
    _validate(ws, validation_groups(plan) if validations is None else validations)
    _write_lists(wb, tpl)
    _write_meta(wb, meta_override or meta_values(tpl, plan, generated_at))
    panel.draw(wb, ws, tpl, plan.placement)
    _protect(wb, ws, password)
    wb.set_properties(doc_properties(tpl, plan.record, generated_at))
    for name, value in custom_properties(tpl, plan.record):
        wb.set_custom_property(name, value)
    return wb, styles


def doc_properties(tpl: Template, record: dict[str, Any], generated_at: datetime) -> dict[str, Any]:
    """docProps/core.xml: title, subject, … and ``created`` (UTC; XlsxWriter prints it with a Z)."""
    return {"title": f"{record['project_no']} {record['project_name']}",
            "subject": f"{tpl.name}（{record['fiscal_year']}年度）",
            "author": "sheettool", "comments": "sheettool generate で作成",
            "created": generated_at.astimezone(UTC)}


def custom_properties(tpl: Template, record: dict[str, Any]) -> list[tuple[str, str]]:
    """docProps/custom.xml, all text."""
    return [("sheettool_template", f"{tpl.id} {tpl.version}"),
            ("sheettool_project_no", str(record["project_no"])),
            ("sheettool_fiscal_year", str(record["fiscal_year"]))]


def _abs(placed: Placed) -> str:
    return xl_rowcol_to_cell(placed.row, placed.col, row_abs=True, col_abs=True)


def _setup_sheet(ws: _Sheet, spec: dict[str, Any], plan: SheetPlan) -> None:
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
    if p.kind in ("heading", "label", "text", "header"):
        fmt = styles.label(label_style(p))
        if p.is_merged:
            ws.merge_range(p.row, p.col, p.last_row, p.last_col, "", fmt)
        ws.write_string(p.row, p.col, p.text or "", fmt)
        return
    fmt = value_format(styles, value_style(cell))
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


def label_style(placed: Placed) -> str:
    """The ``StyleBook.label`` style of a heading, label, text or header item."""
    return placed.style or ("header" if placed.kind == "header" else "label")


def value_style(cell: CellPlan) -> ValueStyle:
    """How a field or computed cell looks: a function of its state, its spec format and its type."""
    p = cell.placed
    kind = cell.ftype.kind if cell.ftype else None
    text = not cell.ftype.numeric if cell.ftype else p.format in (None, "text")
    # Text inputs are formatted as text (@), so "=SUM(…)" typed there stays text in Excel.
    number_format = p.format or ("text" if kind in ("text", "code", "enum") else None)
    return (cell.state, number_format, text, p.lines, kind in ("score", "yesno"),
            kind in ("enum", "code") and p.lines == 1)


def value_format(styles: StyleBook, style: ValueStyle) -> Format:
    state, number_format, text, lines, center, shrink = style
    return styles.value(state, number_format, text=text, lines=lines, center=center, shrink=shrink)


def validation_groups(plan: SheetPlan) -> list[ValidationGroup]:
    """One group per distinct rule and imeMode, over all the input cells it covers, in cell order.

    Locked cells (history, identity) get none: nobody can type into them.
    """
    groups: dict[str, ValidationGroup] = {}
    for cell in plan.cells:
        if cell.state != "input" or cell.ftype is None:
            continue
        keyed = _keyed_rule(cell.ftype)
        if keyed is None:
            continue
        key, rule = keyed
        group = groups.get(key)
        if group is None:
            group = groups[key] = ValidationGroup(key, rule, cell.ftype.ime_mode, [])
        group.refs.append(cell.placed.ref)
    return list(groups.values())


@cache
def _keyed_rule(ftype: CellType) -> tuple[str, dict[str, Any]] | None:
    # CellType is frozen, so its rule never changes; building it per cell cost ~1 ms a sheet.
    rule = ftype.validation()
    if rule is None:
        return None
    return repr(sorted(rule.items())) + ftype.ime_mode, rule


def _validate(ws: _Sheet, groups: list[ValidationGroup]) -> None:
    for group in groups:
        # XlsxWriter drops a rule it refuses (a message over 255 characters, …) with only a
        # warning; the imeMode below would then land on the previous rule.
        if ws.data_validation(group.refs[0], {**group.rule, "multi_range": " ".join(group.refs)}) != 0:
            raise ValueError(f"XlsxWriter refused the data validation of {group.refs[0]}: {group.rule}")
        ws.validations[-1]["ime_mode"] = group.ime


def _write_lists(wb: _Workbook, tpl: Template) -> None:
    """``_lists``: every dropdown's choices and every lookup table, each under its defined name."""
    ws = wb.add_worksheet(LISTS_SHEET)
    col = 0
    for name, choices in tpl.dropdown_lists().items():
        ws.write_string(0, col, name)
        values = (*choices.values, *((choices.dash,) if choices.dash else ()))
        for i, (value, shown) in enumerate(zip(values, choices.shown, strict=True), start=1):
            if isinstance(value, int) and not isinstance(value, bool) and shown == str(value):
                ws.write_number(i, col, value)  # a typed number matches it
            else:
                ws.write_string(i, col, shown)
        first = xl_rowcol_to_cell(1, col, row_abs=True, col_abs=True)
        last = xl_rowcol_to_cell(len(values), col, row_abs=True, col_abs=True)
        wb.define_name(name, f"={LISTS_SHEET}!{first}:{last}")
        col += 1
    for name, table in tpl.tables.items():
        ws.write_string(0, col, f"tbl_{name}")
        for i, (key, text) in enumerate(table.items(), start=1):
            if key.isdigit():
                ws.write_number(i, col, int(key))
            else:
                ws.write_string(i, col, key)
            ws.write_string(i, col + 1, text)
        first = xl_rowcol_to_cell(1, col, row_abs=True, col_abs=True)
        last = xl_rowcol_to_cell(len(table), col + 1, row_abs=True, col_abs=True)
        wb.define_name(f"tbl_{name}", f"={LISTS_SHEET}!{first}:{last}")
        col += 3
    ws.protect()
    ws.very_hidden()


def meta_values(tpl: Template, plan: SheetPlan, generated_at: datetime,
                key: Key | None = None) -> dict[str, str | int]:
    """The ``_meta`` entries, by key (meta.KEYS order), signed with ``key`` if given."""
    record = plan.record
    values: dict[str, str | int] = {
        "template_id": tpl.id,
        "template_version": tpl.version,
        "fiscal_year": record["fiscal_year"],
        "project_no": str(record["project_no"]),
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "generator": f"sheettool {__version__}",
        "layout_digest": tpl.digest,
        "locked_digest": meta.digest(plan.locked_values),
        "locked_values": meta.canonical_json(plan.locked_values),
        "constant_cells": meta.canonical_json(plan.constant_cells),
        "key_id": key.id if key is not None else "",
        "signature": "",
    }
    if key is not None:
        values["signature"] = key.sign(values)
    return values



def _write_meta(wb: _Workbook, values: dict[str, str | int]) -> None:
    ws = wb.add_worksheet(meta.SHEET)
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
