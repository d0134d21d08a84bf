"""Reading a returned workbook: which template, sheet and year, where each item is, every value.

Every field is found through the workbook's defined names (so a renamed sheet or
moved cell is still read), falling back to the layout. Formula cells are never read
as data: ``recompute`` computes them from the inputs with the template's formulas.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..spec import Placed, Template
from ..spec import formula as fx
from ..spec.celltypes import CellType
from ..spec.schema import SERIES_YEARS, bound_problem
from ..xlsx import meta as meta_mod
from ..xlsx.read import Book, Sheet, SheetData, split_ref
from ..xlsx.safety import UnreadableFile
from .context import Context
from .normalize import Reading, read_value

UNREADABLE = object()  # what recompute gives when an input could not be read


def read_meta(book: Book) -> dict[str, Any]:
    """The ``_meta`` sheet's keys and values (column A and B), typed; empty without one."""
    sheet = book.sheet(meta_mod.SHEET)
    if sheet is None:
        return {}
    data = book.read_sheet(sheet)
    rows: dict[str, Any] = {}
    for ref, cell in data.cells.items():
        if ref[:1] == "A" and ref[1:].isdigit():
            key = book.value(cell)
            if isinstance(key, str):
                rows[key] = book.value(data.cells.get("B" + ref[1:]))
    return meta_mod.parse(rows)


_CORE = "docprops/core.xml"
_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def saved_time(book: Book) -> str | None:
    """When the workbook itself says it was last saved: ``docProps/core.xml`` dcterms:modified.

    Excel and LibreOffice write it on every save (our templates: the generation time). ISO
    8601 with offset, or None when absent or unreadable (never a finding: it only orders files).
    """
    part = next((n for n in book.pkg.names if n.lower() == _CORE), None)
    if part is None:
        return None
    try:
        root = book.pkg.root(part)
    except UnreadableFile:
        return None
    for child in root:
        if child.tag.rpartition("}")[2] == "modified" and child.text:
            return _iso_time(child.text)
    return None


def _iso_time(text: str) -> str | None:
    text = _FRACTION.sub(r"\1", text.strip())  # LibreOffice writes nanoseconds
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:  # W3CDTF without a zone: taken as UTC, as Excel writes it
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def main_sheet(book: Book, tpl: Template) -> Sheet | None:
    target = book.names.get("f_project_no")
    if target:
        sheet_name, _ = split_ref(target)
        found = book.sheet(sheet_name) if sheet_name else None
        if found:
            return found
    return book.sheet(tpl.sheet_name) or next(
        (s for s in book.sheets if s.state == "visible" and not s.name.startswith("_")), None)


def fiscal_year(book: Book, data: SheetData, tpl: Template, meta: dict[str, Any]) -> int | None:
    """The year whose layout the workbook follows: _meta's, unless its defined names say otherwise.

    An edited _meta year (reported as T208 later) must not shift every year column.
    """
    target = book.names.get("f_fiscal_year")
    cell = split_ref(target)[1] if target else None
    if cell is None:
        probe = tpl.place(2000).fields.get("fiscal_year")
        cell = probe.cell if probe else None
    value = book.value(data.cells.get(cell)) if cell else None
    on_sheet = int(value) if isinstance(value, float) and value.is_integer() and _plausible(value) else None
    recorded = meta.get("fiscal_year")
    recorded = recorded if isinstance(recorded, int) and _plausible(recorded) else None  # _meta may say 0
    candidates = [fy for fy in (recorded, on_sheet) if fy is not None]
    if len(candidates) < 2 or candidates[0] == candidates[1]:
        return candidates[0] if candidates else None

    def named(fy: int) -> int:
        return sum(p.name in book.names for p in tpl.place(fy).fields.values())

    return max(candidates, key=named)  # a tie keeps _meta's year


def _plausible(year: float) -> bool:
    return SERIES_YEARS[0] <= year <= SERIES_YEARS[1]


def resolve_addresses(ctx: Context) -> None:
    """Where each item really is: its defined name if it points into the main sheet."""
    plan = ctx.plan()
    ctx.addresses = plan.addresses  # shared by the layout's returns: never written to
    for code, placed, params in plan.unresolved:
        ctx.add(code, placed, **params)
    if ctx.meta:
        for placed in plan.unnamed:
            ctx.add("T219", placed, name=placed.name, cell=placed.cell)


def read_fields(ctx: Context) -> None:
    """Every input field read and normalised into ``ctx.readings`` and ``ctx.record``."""
    for placed in ctx.placement.fields.values():
        if placed.formula:
            continue  # computed from inputs in tamper.check_formulas
        ftype = ctx.tpl.cell_type(placed.path)
        raw_cell = ctx.raw(placed)
        raw = ctx.book.value(raw_cell)
        if raw_cell is not None and raw_cell.f is not None:
            _formula_in_input(ctx, placed, ftype, raw_cell.f)
            continue
        reading = read_value(raw, ftype)
        ctx.readings[placed.path] = reading
        if reading.problem:
            ctx.add("V302", placed, problem=reading.problem, hint=hint(ftype))
            continue
        if not within_bounds(ctx, placed, reading.value):
            reading.problem = "範囲外"  # read, but no value of this field: formulas using it are not computed
            continue
        if reading.changes:
            ctx.add("V301", placed, raw=show(raw, ftype), value="-" if reading.dash else show(reading.value, ftype),
                    changes="、".join(reading.changes))
        if reading.value is not None:
            ctx.tpl.set_(ctx.record, placed.path, reading.value)
    _one_box_ticked(ctx)


def _one_box_ticked(ctx: Context) -> None:
    """A single choice shown as check boxes: more than one ticked is an error (none is blank)."""
    ticked: dict[str, list[Any]] = {}
    for path, reading in ctx.readings.items():
        if reading.value is True:
            head = path.rpartition(".")[0]
            leaf = ctx.tpl.field(head)
            if leaf is not None and leaf.kind != "multi" and leaf.options:
                ticked.setdefault(head, []).append(path)
    for head, paths in ticked.items():
        if len(paths) > 1:
            placed = ctx.placement.fields[paths[0]]
            labels = "、".join(o.label for o in ctx.tpl.field(head).options
                              if f"{head}.{o.key}" in paths)
            ctx.add("V304", placed, label=ctx.tpl.label(head), chosen=labels)
            _clear(ctx, head)


def _clear(ctx: Context, path: str) -> None:
    head, _, name = path.rpartition(".")
    node = ctx.tpl.get(ctx.record, head) if head else ctx.record
    if isinstance(node, dict):
        node[name] = None


def within_bounds(ctx: Context, placed: Placed, value: Any) -> bool:
    """Is a number within its field's bounds? If not, S401 at the cell (the record never holds it).

    The schema states the same bounds; checking them here keeps an absurd number (1.7e308 in
    従事割合) out of every formula computed from it, the ledger and the master book.
    """
    leaf = ctx.tpl.field(placed.path)
    if leaf is None or leaf.kind not in ("integer", "number") or not isinstance(value, int | float | Decimal):
        return True
    if isinstance(value, bool):
        return True
    problem = bound_problem(value, leaf.min, leaf.max)
    if problem is None:
        return True
    ctx.add("S401", placed, field=placed.path, at=f"（{ctx.cell(placed)}）", problem=problem)
    return False


def _formula_in_input(ctx: Context, placed: Placed, ftype: CellType, formula: str) -> None:
    """A formula typed into an input cell is an error (V310), never run, never its cached result.

    Its result may be whatever a web service or another workbook said (WEBSERVICE, external
    references) and runs again wherever the file is opened. A text field keeps the formula
    as text ("=…"), so every output carries what was typed, inert; any other field is left
    unread (a formula computed from it is not computed either).
    """
    shown = formula if formula not in ("", "(shared)") else "（共有数式）"
    text = "=" + shown
    if ftype.kind == "text":
        ctx.readings[placed.path] = Reading(text)
        ctx.tpl.set_(ctx.record, placed.path, text)
        kept = "入力された数式を文字として記録しました"
    else:
        ctx.readings[placed.path] = Reading(problem="数式が入力されています")
        kept = "この項目は未入力として扱います"
    ctx.add("V310", placed, formula=shown, kept=kept)


def recompute(ctx: Context, placed: Placed) -> Any:
    """The value of a formula cell computed from the (normalised) inputs of this workbook.

    ``UNREADABLE`` when an input could not be read (V302): a value computed
    without it would be wrong. A formula reading another formula's cell takes that
    one's recomputed value (or its reported value, where it is kept as a constant).
    """
    path = placed.path
    if path in ctx.computed:
        return ctx.computed[path]
    ctx.computed[path] = UNREADABLE  # a cycle reads as unreadable (lint refuses cycles)
    constants = ctx.constants()
    expr = ctx.tpl.bound(path, ctx.placement.fiscal_year)
    unreadable = False

    def value(ref: str) -> Any:
        nonlocal unreadable
        if ref.startswith("rates."):
            return ctx.rate(ref)
        other = ctx.placement.fields.get(ref) or ctx.placement.computed.get(ref)
        if other is not None and other.formula:
            if other.name in constants:
                found = ctx.value(other)
                return found if isinstance(found, float) else None
            got = recompute(ctx, other)
            if got is UNREADABLE:
                unreadable = True
                return None
            return got
        reading = ctx.readings.get(ref)
        if reading is not None and reading.problem:
            unreadable = True
            return None
        return "-" if reading is not None and reading.dash else (reading.value if reading else None)

    result = expr.evaluate(fx.Env(value, ctx.tpl.tables))
    ctx.computed[path] = UNREADABLE if unreadable else result
    return ctx.computed[path]


def hint(ftype: CellType) -> str:
    if ftype.kind in ("integer", "number"):
        lo, hi = ftype.minimum, ftype.maximum
        what = "整数" if ftype.kind == "integer" else "数値"
        return f"半角の{what}（{show(lo)}～{show(hi)}）で入力してください。"
    if ftype.kind in ("enum", "yesno", "coded", "score", "mark"):
        return "一覧から選んでください。"
    return "入力し直してください。"


def show(value: Any, ftype: CellType | None = None) -> str:
    """A value as a message shows it: 1,234 / 有 / （空欄）."""
    if value is None:
        return "（空欄）"
    if ftype is not None and ftype.kind == "joined":
        return str(ftype.to_cell(value))
    if isinstance(value, bool):
        if ftype is not None and ftype.kind in ("yesno", "mark"):
            return str(ftype.to_cell(value))
        if ftype is not None:
            return "TRUE" if value else "FALSE"  # a logical value where no 有/無 belongs
        return "有" if value else "無"
    if isinstance(value, int | float) and abs(value) >= HUGE:
        return repr(float(value))  # 1.7976931348623157e+308, not 309 digits
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else repr(value)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


HUGE = 1e15  # from here a number is shown as 1.5e+20
