"""Identity and tampering checks: is this our template, for this project, unchanged where locked?

LibreOffice saves veryHidden sheets as hidden and drops workbook structure
protection, so neither counts as tampering here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from .. import findings
from ..findings import Finding
from ..memo import remember
from ..spec import DEFAULT_TEMPLATE, Placed, Template, TemplateError, load
from ..spec.live import live_checks
from ..xlsx import meta as meta_mod
from ..xlsx import panel
from ..xlsx.read import column_formulas
from .context import Context
from .plan import Plan
from .read import UNREADABLE, recompute, within_bounds

_OWN_SHEETS = ("_lists", meta_mod.SHEET, panel.SHEET)


def template_of(meta: dict[str, Any], override: str | None = None,
                known: Mapping[str, str] | None = None) -> tuple[Template, list[Finding]]:
    """The template the workbook was made from, and findings about its id and version.

    ``override`` is the template the user named (``check --template``); it must exist.
    ``known`` maps template ids to folders to load them from (collect's ``--template DIR``).
    """
    found: list[Finding] = []
    template_id = override or meta.get("template_id") or DEFAULT_TEMPLATE
    template_id = (known or {}).get(str(template_id), template_id)
    try:
        lay = load(str(template_id))
    except TemplateError:
        lay = load(DEFAULT_TEMPLATE)
        found.append(findings.make("T205", template=template_id, default=lay.id))
    version = meta.get("template_version")
    if version and str(version) != lay.version:
        code = "T206" if str(version).split(".")[0] != lay.version.split(".")[0] else "T207"
        found.append(findings.make(code, found=version, expected=lay.version))
    return lay, found


def check_structure(ctx: Context) -> None:
    book, lay = ctx.book, ctx.tpl
    if ctx.sheet_name != lay.sheet_name:
        ctx.add("T210", None, expected=lay.sheet_name, found=ctx.sheet_name)
    for sheet in book.sheets:
        if sheet.name != ctx.sheet_name and sheet.name not in _OWN_SHEETS:
            ctx.add("T211", None, name=sheet.name)
        elif sheet.name in _OWN_SHEETS and sheet.state == "visible":
            ctx.add("T218", None, name=sheet.name)
    if book.sheets and book.sheets[0].name != ctx.sheet_name:
        ctx.add("T212", None)
    if not ctx.data.protected:
        ctx.add("T213", None)  # the message names ctx.sheet_name
    _check_identity(ctx)


def _check_identity(ctx: Context) -> None:
    fields = ctx.placement.fields
    expected_no = ctx.meta.get("project_no")
    if expected_no is not None and "project_no" in fields:
        found = ctx.value(fields["project_no"])
        if _text(found) != _text(expected_no):
            ctx.add("T209", fields["project_no"], expected=expected_no, found=_text(found))
    expected_fy = ctx.meta.get("fiscal_year")
    if expected_fy is not None and "fiscal_year" in fields:
        found = ctx.value(fields["fiscal_year"])
        if not _same(expected_fy, found):
            ctx.add("T208", fields["fiscal_year"], expected=expected_fy, found=_text(found))


def expected_formula(ctx: Context, placed: Placed) -> str:
    """The formula this cell must hold, with references where the cells really are."""
    return ctx.plan().expected_formula(placed)


def check_formulas(ctx: Context) -> None:
    """Formulas present and unchanged; the record takes the recomputed value, never the cache."""
    constants = ctx.constants()
    for placed in ctx.placement.items:
        if not placed.formula:
            continue
        if placed.name in constants:  # history kept as reported: a locked value by design
            value = ctx.value(placed)
            if placed.kind == "field" and isinstance(value, float):
                _set(ctx, placed, int(value))
            continue
        computed = recompute(ctx, placed)
        unreadable = computed is UNREADABLE
        if unreadable:
            computed = None
        raw = ctx.raw(placed)
        if raw is None or raw.f is None:
            ctx.add("T202", placed, value=_text(ctx.value(placed)))
        elif raw.f not in ("", "(shared)") and normalize_formula(raw.f) != normalize_formula(expected_formula(ctx, placed)):
            ctx.add("T203", placed, found=raw.f)
        else:
            if raw.f not in ("", "(shared)"):  # exactly ours: an annotated copy keeps it a formula
                ctx.trusted_formulas.add((ctx.sheet_name, ctx.cell(placed)))
            if raw.v is not None and not unreadable and not _same(computed, ctx.value(placed)):
                ctx.add("T204", placed, cached=_text(ctx.value(placed)), computed=_text(computed))
        if placed.kind == "field" and isinstance(computed, Decimal):
            _set(ctx, placed, computed)
        elif placed.kind == "field" and isinstance(computed, str):
            ctx.tpl.set_(ctx.record, placed.path, computed)


def _set(ctx: Context, placed: Placed, value: Any) -> None:
    """The record takes a formula's value as its field's kind holds it (an integer, or a number)."""
    if not within_bounds(ctx, placed, value):
        return
    leaf = ctx.tpl.field(placed.path)
    number = Decimal(str(value))
    if leaf is not None and leaf.kind == "integer" and number == number.to_integral_value():
        ctx.tpl.set_(ctx.record, placed.path, int(number))
    else:
        ctx.tpl.set_(ctx.record, placed.path, float(number))


_STRING = re.compile(r'"(?:[^"]|"")*"')


@lru_cache(maxsize=8192)
def normalize_formula(text: str) -> str:
    """Formula text compared without $, spaces, case, _xlfn. prefixes or FALSE() vs FALSE."""
    text = text.strip().lstrip("=")
    parts = []
    last = 0
    for m in _STRING.finditer(text):
        parts.append(_norm_code(text[last:m.start()]))
        parts.append(m.group(0))
        last = m.end()
    parts.append(_norm_code(text[last:]))
    return "".join(parts)


def _norm_code(code: str) -> str:
    code = code.replace("$", "").replace(" ", "").upper().replace("_XLFN.", "")
    return code.replace("FALSE()", "FALSE").replace("TRUE()", "TRUE")


def check_locked(ctx: Context) -> None:
    """Locked values as generated (per _meta), lock flags kept, labels as in the spec."""
    locked = ctx.meta.get("locked_values")
    listed = ctx.meta.get("constant_cells")
    if ctx.meta and (not isinstance(locked, dict) or ctx.meta.get("locked_digest") != meta_mod.digest(locked)
                     or not isinstance(listed, list) or not all(isinstance(n, str) and n in locked for n in listed)):
        ctx.add("T215", None)  # locked values, their digest or the constant list edited or removed
    if isinstance(locked, dict):
        by_name = ctx.placement.by_name
        # T208/T209 already say it where the fiscal year or project number was changed
        reported = {f.cell for f in ctx.findings if f.code in ("T208", "T209")}
        for name, old in locked.items():
            placed = by_name.get(name)
            if placed is None or ctx.cell(placed) in reported:
                continue
            new = ctx.value(placed)
            if not _same(old, new):
                ctx.add("T214", placed, old=_text(old), new=_text(new))
    for placed in ctx.placement.items:
        if placed.kind not in ("field", "computed"):
            continue
        must_lock = placed.formula or placed.locked_by_role or (
            isinstance(locked, dict) and placed.name in locked)
        if must_lock and not ctx.book.is_locked(ctx.raw(placed)):
            ctx.add("T216", placed)
    if all(ctx.cell(p) == p.cell for p in ctx.placement.items if p.kind in ("field", "computed")):
        _check_labels(ctx)


def _check_labels(ctx: Context) -> None:
    for placed in ctx.placement.items:
        if placed.kind not in ("label", "heading", "header"):
            continue
        found = ctx.book.value(ctx.data.cells.get(placed.cell))
        if _text(found) != _text(placed.text):
            ctx.add("T217", None, cell=placed.cell, expected=placed.text, found=_text(found))


def _same(a: Any, b: Any) -> bool:
    if type(a) is type(b) and a == b:
        return True
    if a in (None, "") and b in (None, ""):
        return True
    if isinstance(a, (int, float, Decimal)) and not isinstance(a, bool) and isinstance(b, (int, float, Decimal)):
        return Decimal(str(a)) == Decimal(str(b))
    return _text(a) == _text(b)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    return str(value)


def check_panel(ctx: Context) -> None:
    """The 入力チェック's formulas as generated (T240), or missing where the generator draws it (T241).

    Never read as data: a department's sheet shows the panel, check recomputes everything itself.
    """
    sheet = next((s for s in ctx.book.sheets if s.name == panel.SHEET), None)
    if sheet is None:
        if _generator_version(ctx.meta) >= PANEL_SINCE:
            ctx.add("T241")
        return
    plan = ctx.plan()
    expected = plan.panel_formulas(_panel_formulas)
    part = ctx.book.pkg.read(sheet.part)
    ctx.book.pkg.check_prolog(sheet.part, part)
    # A correct return's panel shows no problem, so its part is the same bytes in every such
    # return of the layout: one verdict per distinct part.
    key = (id(plan), hashlib.blake2b(part, digest_size=20).digest())
    known = _PANEL_VERDICTS.get(key)
    if known is not None and known[0] is plan:
        changed = known[1]
    else:
        quick = column_formulas(part, "B")  # None for an irregular or malformed part: read in full
        changed = _changed_flags(expected, quick) if quick is not None else None
        if changed != []:  # irregular, or a difference: said only as the element parser reads the part
            cells = ctx.book.read_sheet(sheet).cells
            changed = _changed_flags(expected, {ref: c.f for ref, c in cells.items() if ref.startswith("B")})
        remember(_PANEL_VERDICTS, key, (plan, changed), 256)
    if changed:
        ctx.add("T240", count=len(changed), cell=changed[0])


_PANEL_VERDICTS: dict[tuple[int, bytes], tuple[Plan, list[str]]] = {}


def _panel_formulas(plan: Plan) -> list[str]:
    return [_bare(f) for f in panel.formulas(live_checks(plan.tpl, plan.placement, plan.cell))]


def _changed_flags(expected: list[str], found: dict[str, str | None]) -> list[str]:
    """The ``_check`` flag cells whose formula is not the one generate writes."""
    changed = []
    for row, formula in enumerate(expected, start=1):
        f = found.get(f"B{row}")
        if f == "(shared)":
            continue
        if f is None or _bare(f) != formula:
            changed.append(f"{panel.SHEET}!B{row}")
    return changed


PANEL_SINCE = (0, 2, 0)


def _generator_version(meta: dict[str, Any]) -> tuple[int, ...]:
    text = str(meta.get("generator") or "").rpartition(" ")[2]
    try:
        return tuple(int(x) for x in text.split("."))
    except ValueError:
        return (0,)


def _bare(formula: str) -> str:
    """Compared as check compares formulas, and without the quotes round a sheet name (LibreOffice drops them)."""
    return normalize_formula(formula).replace("'", "")
