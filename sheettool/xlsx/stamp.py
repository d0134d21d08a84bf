"""The stamping renderer: ``render.render``'s workbook in a fraction of the time.

XlsxWriter spends most of a template's ~30 ms formatting XML that is the same for
every project of a year: styles, ~200 defined names, the ``_lists`` sheet, labels,
merges, protection and print setup. Here XlsxWriter (through ``render.compose``)
builds that once per (layout, fiscal year, password), the *base*; each project then
only gets the parts that differ, written as text:

- the main sheet's ``<sheetData>``: label cells copied from the base, value cells
  written from the plan, with the style index the base registered for their look;
  per-project text as inline strings (``t="inlineStr"``), so the shared strings
  never depend on the project;
- the main sheet's ``<dataValidations>`` (locked history cells get none);
- the ``_meta`` sheet's values, and the shared strings they add;
- ``docProps/core.xml`` and ``docProps/custom.xml``.

Everything else is the base's bytes. ``render.render`` stays the reference: the tests
read both renderers' workbooks back and compare them cell by cell.
"""

from __future__ import annotations

import io
import logging
import os
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from xlsxwriter.core import Core
from xlsxwriter.custom import Custom
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_cell_to_rowcol
from xlsxwriter.worksheet import Worksheet, re_dynamic_function

from ..spec import Placed, Placement, Template
from . import meta
from . import render as writer
from .cells import CellPlan, SheetPlan
from .text import escape_control, escape_text, number_text, string_item, text_item, truncate

log = logging.getLogger(__name__)

# Deflate level, by measurement on the seed workbooks (113 KB of XML each, 2-core machine):
# level 1 zips in 1.4 ms to 23.7 KB, level 6 (XlsxWriter's) in 2.3 ms to 21.3 KB.
# A tenth bigger files for 40 % less zip time: level 1.
ZIP_LEVEL = 1
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # what XlsxWriter stamps on every part

_VALUE_KINDS = ("field", "computed")
_STATES = ("input", "locked", "formula")
_ERRORS = ("#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!")

_ROW = re.compile(r'<row r="(\d+)"[^>]*?(/?)>')
_CELL = re.compile(r'<c r="([A-Z]+\d+)"[^>]*?(?:/>|>.*?</c>)')
_VALIDATION = re.compile(r"<dataValidation\b[^>]*?(?:/>|>.*?</dataValidation>)", re.S)
_SQREF = re.compile(r' sqref="[^"]*"')


class StampMiss(Exception):
    """The base cannot express this plan (a style, rule or layout it never saw)."""


def render_fast(plan: SheetPlan, tpl: Template, target: str | Path | IO[bytes], *,
                password: str | None = None, generated_at: datetime | None = None,
                meta_override: dict[str, str | int] | None = None) -> None:
    """Write the workbook for ``plan`` to ``target`` (a path or a binary stream), like ``render.render``.

    A plan the cached base cannot express is drawn by ``render.render`` instead.
    """
    try:
        data = stamp_bytes(plan, tpl, password=password, generated_at=generated_at,
                           meta_override=meta_override)
    except StampMiss as e:
        log.info("stamp: %s; drawing with XlsxWriter instead", e)
        writer.render(plan, tpl, target, password=password, generated_at=generated_at,
                      meta_override=meta_override)
        return
    if isinstance(target, str | os.PathLike):
        Path(target).write_bytes(data)
    else:
        target.write(data)


def stamp_bytes(plan: SheetPlan, tpl: Template, *, password: str | None = None,
                generated_at: datetime | None = None,
                meta_override: dict[str, str | int] | None = None) -> bytes:
    """The .xlsx bytes for ``plan``. Raises StampMiss when the base cannot express it.

    ``meta_override``: the ``_meta`` values (``render.meta_values``, signed), else unsigned ones.
    """
    generated_at = generated_at or datetime.now().astimezone()
    base = base_for(tpl, plan.placement.fiscal_year, password)
    if plan.placement is not base.placement and plan.placement.items != base.placement.items:
        raise StampMiss("the plan's placement differs from the base's")
    if len(plan.cells) != len(base.placement.items):
        raise StampMiss("the plan does not have one cell per placed item")
    main = "".join((base.main_head, _sheet_data(base, plan), base.main_mid,
                    _validations_xml(base, plan), base.main_end))
    meta_xml, sst_xml = _meta_and_strings(base, meta_override or writer.meta_values(tpl, plan, generated_at))
    dynamic = {
        base.main_part: main,
        base.meta_part: meta_xml,
        base.sst_part: sst_xml,
        "docProps/core.xml": _core_xml(writer.doc_properties(tpl, plan.record, generated_at)),
        "docProps/custom.xml": _custom_xml(writer.custom_properties(tpl, plan.record)),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as zf:
        for name, static in base.parts:
            info = zipfile.ZipInfo(name, _ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            data = static if static is not None else dynamic[name].encode("utf-8")
            zf.writestr(info, data, compresslevel=ZIP_LEVEL)
    return buf.getvalue()


# --------------------------------------------------------------------------- the base


@dataclass(frozen=True)
class _Slot:
    """A run of value-item cells in the base's sheetData: the item's value cell, or its merged blanks."""

    item: int  # index into plan.cells
    refs: tuple[str, ...]
    value: bool


@dataclass
class Base:
    """What every project of one (layout, fiscal year, password) shares, from one XlsxWriter build.

    The main sheet's XML is ``main_head`` + sheetData + ``main_mid`` + dataValidations +
    ``main_end``; its sheetData alternates ``statics`` (row tags, label cells) with
    ``slots`` (value cells). Immutable once built, except the blank-run memo.
    """

    placement: Placement
    parts: list[tuple[str, bytes | None]]  # zip order; None = written per project
    main_part: str
    meta_part: str
    sst_part: str
    main_head: str
    main_mid: str
    main_end: str
    statics: list[str]
    slots: list[_Slot]
    xf: dict[writer.ValueStyle, int]  # every look a value cell can take → cellXfs index
    rules: dict[str, tuple[str, str]]  # validation key → XML before / after the sqref value
    meta_head: str
    meta_statics: list[str]
    meta_rows: list[int]  # the meta.KEYS index of each value slot
    meta_end: str
    sst_open: str  # '<sst xmlns="…"' (count attributes follow)
    sst_body: str
    sst_count: int
    sst_index: dict[str, int]
    _blanks: dict[tuple[int, int], str] = field(default_factory=dict)

    def blank_run(self, slot: int, xf: int) -> str:
        key = (slot, xf)
        run = self._blanks.get(key)
        if run is None:
            run = self._blanks[key] = "".join(f'<c r="{ref}" s="{xf}"/>' for ref in self.slots[slot].refs)
        return run


@lru_cache(maxsize=16)
def base_for(tpl: Template, fiscal_year: int, password: str | None) -> Base:
    """The base for one template, fiscal year and password; built once per process (~35 ms).

    Rates are not part of the key: rate cells are value cells, written from each plan.
    """
    placement = tpl.place(fiscal_year)
    skeleton = SheetPlan({"project_no": "", "project_name": "", "fiscal_year": fiscal_year}, placement,
                         [_nominal(tpl, p, fiscal_year) for p in placement.items])
    every_rule = writer.validation_groups(SheetPlan(skeleton.record, placement,
                                                    [_all_input(tpl, p) for p in placement.items]))
    buf = io.BytesIO()
    wb, styles = writer.compose(skeleton, tpl, buf, password=password,
                                generated_at=datetime(2000, 1, 1).astimezone(),
                                meta_override=dict.fromkeys(meta.KEYS, 0), validations=every_rule)
    looks = _every_look(tpl, placement)
    formats: dict[writer.ValueStyle, Format] = {look: writer.value_format(styles, look) for look in looks}
    wb.reserved_formats = tuple(formats.values())
    sheets = [ws.name for ws in wb.worksheets()]
    wb.close()
    with zipfile.ZipFile(buf) as zf:
        raw = [(info.filename, zf.read(info)) for info in zf.infolist()]
    texts = {name: data.decode("utf-8") for name, data in raw}
    main_part = f"xl/worksheets/sheet{sheets.index(tpl.sheet_name) + 1}.xml"
    meta_part = f"xl/worksheets/sheet{sheets.index(meta.SHEET) + 1}.xml"
    sst_part = "xl/sharedStrings.xml"
    dynamic = {main_part, meta_part, sst_part, "docProps/core.xml", "docProps/custom.xml"}
    if not dynamic <= texts.keys():
        raise RuntimeError(f"stamp: the base lacks {sorted(dynamic - texts.keys())}")

    main_head, main_rows, tail = _split_sheet(texts[main_part])
    main_mid, rules_xml, main_end = _split_validations(tail)
    statics, slots = _main_program(main_rows, skeleton)
    meta_head, meta_rows, meta_end = _split_sheet(texts[meta_part])
    meta_statics, meta_slots = _meta_program(meta_rows)
    sst = texts[sst_part]
    sst_open, _, rest = sst.partition(" count=")
    sst_body = rest[rest.index(">") + 1:rest.rindex("</sst>")]
    return Base(
        placement=placement,
        parts=[(name, None if name in dynamic else data) for name, data in raw],
        main_part=main_part, meta_part=meta_part, sst_part=sst_part,
        main_head=main_head, main_mid=main_mid, main_end=main_end,
        statics=statics, slots=slots,
        xf={look: fmt._get_xf_index() for look, fmt in formats.items()},
        rules=_rule_templates(rules_xml, every_rule),
        meta_head=meta_head, meta_statics=meta_statics, meta_rows=meta_slots, meta_end=meta_end,
        sst_open=sst_open, sst_body=sst_body, sst_count=wb.str_table.count,
        sst_index={text: i for i, text in enumerate(wb.str_table.string_array)},
    )


def _nominal(tpl: Template, placed: Placed, fy: int) -> CellPlan:
    """The cell as a project with every past year filled has it, with no value.

    Drawing the base with these states numbers the styles as ``render.render`` numbers
    them for such a project. Only the numbering depends on this guess, never the looks.
    """
    if placed.kind not in _VALUE_KINDS:
        return CellPlan(placed, placed.text)
    if placed.formula:
        return CellPlan(placed, None, state="formula")
    if placed.kind != "field":
        return CellPlan(placed, None, state="locked")
    history = placed.history and placed.year is not None and placed.year < fy
    state = "locked" if placed.locked_by_role or history else "input"
    return CellPlan(placed, None, state=state, ftype=tpl.cell_type(placed.path))


def _all_input(tpl: Template, placed: Placed) -> CellPlan:
    """Every typed field open: its validation group then exists in the base."""
    if placed.kind == "field" and not placed.formula and not placed.locked_by_role:
        return CellPlan(placed, None, state="input", ftype=tpl.cell_type(placed.path))
    return CellPlan(placed, None)


def _every_look(tpl: Template, placement: Placement) -> list[writer.ValueStyle]:
    """Each value item in each state, typed or not: every look any project's plan can give it."""
    looks: dict[writer.ValueStyle, None] = {}
    for placed in placement.items:
        if placed.kind not in _VALUE_KINDS:
            continue
        ftypes = [None]
        if placed.kind == "field" and not placed.formula:
            ftypes.append(tpl.cell_type(placed.path))
        for state in _STATES:
            for ftype in ftypes:
                looks[writer.value_style(CellPlan(placed, state=state, ftype=ftype))] = None
    return list(looks)


def _split_sheet(xml: str) -> tuple[str, list[tuple[str, list[tuple[str, str]]]], str]:
    """Head, rows (open tag, [(ref, cell XML)]) and tail of a worksheet XlsxWriter wrote."""
    start = xml.index("<sheetData>") + len("<sheetData>")
    end = xml.index("</sheetData>")
    rows = []
    body = xml[start:end]
    pos = 0
    while pos < len(body):
        m = _ROW.match(body, pos)
        if m is None:
            raise RuntimeError(f"stamp: unexpected sheetData at {body[pos:pos + 40]!r}")
        if m.group(2):  # <row …/>: height only, no cells
            rows.append((m.group(0), []))
            pos = m.end()
            continue
        close = body.index("</row>", m.end())
        cells = [(c.group(1), c.group(0)) for c in _CELL.finditer(body, m.end(), close)]
        if sum(len(x) for _, x in cells) != close - m.end():
            raise RuntimeError(f"stamp: unexpected cell XML in row {m.group(1)}")
        rows.append((m.group(0), cells))
        pos = close + len("</row>")
    return xml[:start], rows, xml[end:]


def _split_validations(tail: str) -> tuple[str, str, str]:
    """The tail before, in and after ``<dataValidations>`` (empty when the base has none)."""
    start = tail.find("<dataValidations")
    if start < 0:
        # CT_Worksheet order: dataValidations comes before hyperlinks, printOptions, pageMargins, …
        for follower in ("<hyperlinks", "<printOptions", "<pageMargins", "<pageSetup", "<headerFooter",
                         "<rowBreaks", "<colBreaks", "<ignoredErrors", "<drawing", "<legacyDrawing",
                         "<tableParts", "<extLst", "</worksheet>"):
            start = tail.find(follower)
            if start >= 0:
                return tail[:start], "", tail[start:]
        raise RuntimeError("stamp: no place for dataValidations in the base")
    end = tail.index("</dataValidations>") + len("</dataValidations>")
    return tail[:start], tail[start:end], tail[end:]


def _main_program(rows: list[tuple[str, list[tuple[str, str]]]],
                  skeleton: SheetPlan) -> tuple[list[str], list[_Slot]]:
    """The base's sheetData as static text between value-cell slots."""
    owner: dict[tuple[int, int], int] = {}  # later items overwrite earlier ones, as in XlsxWriter
    for index, cell in enumerate(skeleton.cells):
        p = cell.placed
        mine = index if p.kind in _VALUE_KINDS else -1
        for r in range(p.row, p.last_row + 1):
            for c in range(p.col, p.last_col + 1):
                owner[(r, c)] = mine
    statics: list[str] = []
    slots: list[_Slot] = []
    text: list[str] = []
    seen: set[int] = set()

    def flush() -> None:
        statics.append("".join(text))
        text.clear()

    for open_tag, cells in rows:
        text.append(open_tag)
        for ref, xml in cells:
            r, c = xl_cell_to_rowcol(ref)
            item = owner.get((r, c), -1)
            if item < 0:
                text.append(xml)
                continue
            p = skeleton.cells[item].placed
            value = (r, c) == (p.row, p.col)
            # a merged item's blanks right after one another in a row become one slot
            last = slots[-1] if slots and not text else None
            if last is not None and not value and not last.value and last.item == item:
                slots[-1] = _Slot(item, (*last.refs, ref), False)
                continue
            flush()
            slots.append(_Slot(item, (ref,), value))
            if value:
                seen.add(item)
        if cells:
            text.append("</row>")
    flush()
    missing = [i for i, cell in enumerate(skeleton.cells) if cell.placed.kind in _VALUE_KINDS and i not in seen]
    if missing:
        raise RuntimeError(f"stamp: value cells missing from the base: {missing[:5]}")
    return statics, slots


def _meta_program(rows: list[tuple[str, list[tuple[str, str]]]]) -> tuple[list[str], list[int]]:
    """``_meta``: key cells (column A) are static, value cells (column B) are slots."""
    statics: list[str] = []
    slots: list[int] = []
    text: list[str] = []
    for index, (open_tag, cells) in enumerate(rows):
        refs = [ref for ref, _ in cells]
        if refs != [f"A{index + 1}", f"B{index + 1}"]:
            raise RuntimeError(f"stamp: unexpected _meta row {open_tag}")
        text += [open_tag, cells[0][1]]
        statics.append("".join(text))
        text = ["</row>"]
        slots.append(index)
    statics.append("".join(text))
    return statics, slots


def _rule_templates(xml: str, groups: list[writer.ValidationGroup]) -> dict[str, tuple[str, str]]:
    """Validation key → its ``<dataValidation>`` XML cut around the sqref value."""
    elements = _VALIDATION.findall(xml)
    if len(elements) != len(groups):
        raise RuntimeError("stamp: the base's data validations do not match its rules")
    out = {}
    for group, element in zip(groups, elements, strict=True):
        m = _SQREF.search(element)
        if m is None:
            raise RuntimeError("stamp: a data validation without sqref")
        out[group.key] = (element[:m.start()] + ' sqref="', '"' + element[m.end():])
    return out


# --------------------------------------------------------------------------- per project


def _sheet_data(base: Base, plan: SheetPlan) -> str:
    cells = plan.cells
    items = base.placement.items
    xf_of: dict[int, int] = {}
    statics = base.statics
    out = [statics[0]]
    for k, slot in enumerate(base.slots):
        item = slot.item
        xf = xf_of.get(item)
        if xf is None:
            placed = cells[item].placed
            if placed is not items[item] and placed != items[item]:
                raise StampMiss(f"cell {item} of the plan is not the base's {items[item].cell}")
            look = writer.value_style(cells[item])
            xf = base.xf.get(look)
            if xf is None:
                raise StampMiss(f"no style in the base for {look}")
            xf_of[item] = xf
        if slot.value:
            out.append(cell_xml(slot.refs[0], xf, cells[item]))
        else:
            out.append(base.blank_run(k, xf))
        out.append(statics[k + 1])
    return "".join(out)


def cell_xml(ref: str, xf: int, cell: CellPlan) -> str:
    """``<c>`` for a value cell, as ``render.render`` stores it except text is inline.

    Text starting with "=" stays text: only ``cell.formula`` becomes a formula.
    """
    head = f'<c r="{ref}" s="{xf}"'
    if cell.formula:
        return head + _formula_tail(cell.formula, cell.value)
    value = cell.value
    if value is None:
        return head + "/>"
    if isinstance(value, str):
        return f'{head} t="inlineStr"><is>{string_item(value)}</is></c>'
    return f"{head}><v>{number_text(value)}</v></c>"


def _formula_tail(formula: str, value: Any) -> str:
    """From after the style attribute: type, ``<f>`` and the cached value."""
    value = "" if value is None else value
    kind = ""
    if isinstance(value, bool):
        kind, value = ' t="b"', int(value)
    elif isinstance(value, str) and value:
        kind = ' t="e"' if value in _ERRORS else ' t="str"'
        # XlsxWriter leaves control characters raw here, which is not well-formed XML.
        value = escape_control(value)
    return f"{kind}><f>{_formula_text(formula)}</f><v>{escape_text(str(value))}</v></c>"


_FORMULA_SHEET = Worksheet()  # only for XlsxWriter's formula preparation


@lru_cache(maxsize=4096)
def _formula_text(formula: str) -> str:
    """The escaped ``<f>`` text XlsxWriter's write_formula stores (cached: formulas repeat per year)."""
    if re_dynamic_function.search(formula) or (formula.startswith("{") and formula.endswith("}")):
        raise StampMiss(f"array formula {formula!r}")
    return escape_text(_FORMULA_SHEET._prepare_formula(formula))


def _validations_xml(base: Base, plan: SheetPlan) -> str:
    groups = writer.validation_groups(plan)
    if not groups:
        return ""
    out = [f'<dataValidations count="{len(groups)}">']
    for group in groups:
        template = base.rules.get(group.key)
        if template is None:
            raise StampMiss(f"no validation in the base for {group.key[:60]}")
        out += [template[0], " ".join(group.refs), template[1]]
    out.append("</dataValidations>")
    return "".join(out)


def _meta_and_strings(base: Base, values: dict[str, str | int]) -> tuple[str, str]:
    """``_meta`` with its values, and the shared strings with the text values added.

    The values go to the shared strings, as in ``render.render``, because readers of
    ``_meta`` (and tests that edit it) expect that layout.
    """
    added: dict[str, int] = {}
    count = base.sst_count
    out = [base.meta_head, base.meta_statics[0]]
    for k, row in enumerate(base.meta_rows):
        value = values[meta.KEYS[row]]
        ref = f"B{row + 1}"
        if isinstance(value, str):
            value = truncate(value)
            index = base.sst_index.get(value)
            if index is None:
                index = added.setdefault(value, len(base.sst_index) + len(added))
            count += 1
            out.append(f'<c r="{ref}" t="s"><v>{index}</v></c>')
        else:
            out.append(f'<c r="{ref}"><v>{number_text(value)}</v></c>')
        out.append(base.meta_statics[k + 1])
    out.append(base.meta_end)
    sst = [f'{base.sst_open} count="{count}" uniqueCount="{len(base.sst_index) + len(added)}">',
           base.sst_body]
    sst += [f"<si>{text_item(text)}</si>" for text in added]  # uncached: locked_values is one per project
    sst.append("</sst>")
    return "".join(out), "".join(sst)


def _core_xml(properties: dict[str, Any]) -> str:
    core = Core()
    core._set_properties(properties)
    return _assemble(core)


def _custom_xml(properties: list[tuple[str, str]]) -> str:
    custom = Custom()
    custom._set_properties([(name, value, "text") for name, value in properties])
    return _assemble(custom)


def _assemble(part: Core | Custom) -> str:
    fh = io.StringIO()
    part._set_filehandle(fh)
    part._assemble_xml_file()
    return fh.getvalue()
