"""What every cell of one project's template holds: the logic of ``generate``.

``plan_sheet`` decides values, lock state and formulas from the record, the
template and the rates; the renderers (xlsx/render.py, xlsx/stamp.py) only draw
the plan (xlsx/cells.py), so both make the same workbook.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .. import findings, wareki
from ..findings import Finding
from ..spec import Placed, Placement, Template
from ..spec import formula as fx
from ..spec.rates import Rates
from ..xlsx.cells import CellPlan, SheetPlan


class RecordProblem(Exception):
    """The record cannot become a template; ``findings`` say why (Japanese)."""

    def __init__(self, problems: list[Finding]) -> None:
        super().__init__("; ".join(f.message for f in problems))
        self.findings = problems


def record_label(record: dict[str, Any], index: int | None = None) -> str:
    """'3件目（事業番号 088 情報通信…）' for messages about a record."""
    no = record.get("project_no") if isinstance(record, dict) else None
    name = record.get("project_name") if isinstance(record, dict) else None
    head = f"{index}件目" if index is not None else "記録"
    who = " ".join(str(x) for x in (no, name) if x)
    return f"{head}（事業番号 {who}）" if who else head


def plan_sheet(record: dict[str, Any], tpl: Template, rates: Rates, label: str = "記録") -> SheetPlan:
    """Decide every cell. Raises RecordProblem when the record does not fit the template."""
    fy = record["fiscal_year"]
    placement = tpl.place(fy)
    problems = _capacity_problems(record, tpl, placement, label)
    plan = SheetPlan(record, placement, [])
    plan.warnings.extend(_window_warnings(record, tpl, placement, label))
    for placed in placement.items:
        if placed.formula:
            cell, problem = _plan_formula(placed, record, fy, tpl, placement, rates, plan, label)
            if problem:
                problems.append(problem)
        elif placed.role == "rate":
            year, key = placed.path.split(".")[1:]
            cell = CellPlan(placed, rates.value(int(year), key), state="locked")
        elif placed.kind == "field":
            cell = _plan_field(placed, record, fy, tpl)
        else:
            cell = CellPlan(placed, placed.text)
        plan.cells.append(cell)
    if problems:
        raise RecordProblem(_unique(problems))
    for cell in plan.cells:
        p = cell.placed
        if p.kind in ("field", "computed") and (cell.state == "locked"):
            plan.locked_values[p.name] = cell.value
    return plan


def _unique(items: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in items:
        if f.message not in seen:
            seen.add(f.message)
            out.append(f)
    return out


def _plan_field(placed: Placed, record: dict[str, Any], fy: int, tpl: Template) -> CellPlan:
    ftype = tpl.cell_type(placed.path)
    value = ftype.to_cell(tpl.get(record, placed.path))
    if value is None and ftype.dash and dash_allowed(tpl, record, placed.path, fy):
        value = ftype.dash  # the sheet shows "-" (set by law) where the record's null means it
    if placed.locked_by_role or (placed.history and _is_history(record, placed, fy, tpl)):
        state = "locked"
    else:
        state = "input"
    return CellPlan(placed, value, state=state, ftype=ftype)


def dash_allowed(tpl: Template, record: dict[str, Any], path: str, fy: int) -> bool:
    """Does a rule of the template allow the dash at ``path`` for this record (``allowed_if`` "-")?

    Then a null there is the dash, not a blank: the published sheet shows "-" where a
    project's implementation is set by law, and check reads the dash back as null.
    """
    return any(rule.kind == "allowed_if" and rule.value == "-" and path in rule.fields
               and tpl.holds(rule.when or "TRUE", record, fy)[0] for rule in tpl.rules)


def _is_history(record: dict[str, Any], placed: Placed, fy: int, tpl: Template) -> bool:
    """A past year that arrived filled is history (locked), per year entry."""
    return placed.year is not None and placed.year < fy and entry_filled(record, placed.path, tpl)


def entry_filled(record: dict[str, Any], path: str, tpl: Template) -> bool:
    """The year entry holding ``path`` has any value."""
    entry = tpl.get(record, path.rpartition(".")[0])
    return isinstance(entry, dict) and any(v is not None for k, v in entry.items() if k != "year")


def _plan_formula(placed: Placed, record: dict[str, Any], fy: int, tpl: Template,
                  placement: Placement, rates: Rates, plan: SheetPlan,
                  label: str) -> tuple[CellPlan, Finding | None]:
    expr = tpl.bound(placed.path, fy)
    refs = expr.refs()

    def value(path: str) -> Any:
        if path.startswith("rates."):
            year, key = path.split(".")[1:]
            return rates.value(int(year), key)
        return tpl.get(record, path)

    computed = tpl.evaluate(placed.path, fy, value)
    text = fx.excel_formula(expr, lambda path: placement.at(path).cell)
    reported = tpl.get(record, placed.path) if placed.kind == "field" else None
    history = placed.year is not None and placed.year < fy and entry_filled(record, placed.path, tpl)
    missing_rate = any(p.startswith("rates.") and value(p) is None for p in refs)
    if history and reported is not None and (missing_rate or _differs(reported, computed)):
        # History is kept as reported, even where today's formula would say otherwise.
        plan.constant_cells.append(placed.name)
        reason = "単価がないため" if missing_rate else "内訳からの計算と一致しないため"
        leaf = tpl.field(placed.path)
        plan.warnings.append(findings.make(
            "G605", record=label, year=placed.year, field_label=leaf.title if leaf else placed.path,
            value=f"{reported:,}", reason=reason))
        return CellPlan(placed, reported, state="locked"), None
    if missing_rate:
        return CellPlan(placed, None, text, state="formula"), missing_rate_finding(
            tpl, placed.year, [(label, record.get("project_no"))])
    return CellPlan(placed, _plain(computed), text, state="formula"), None


def missing_rate_finding(tpl: Template, year: int, records: list[tuple[str, Any]]) -> Finding:
    """G602 for ``year``, naming the records it stops ((label, 事業番号) each, in order):
    by number, the first few and "ほかN件"."""
    listed = records if len(records) <= _NAMED + 1 else records[:_NAMED]  # never "ほか1件"
    shown = "、".join(str(no) if no is not None else label for label, no in listed)
    more = f" ほか{len(records) - len(listed)}件" if len(listed) < len(records) else ""
    return findings.make("G602", year=year, wareki=wareki.fiscal_label(year),
                         rates_title=tpl.rates_title.removesuffix("（年度別）"),
                         fields="・".join(tpl.rate_fields), records=f"記録 {len(records)}件: 事業番号 {shown}{more}",
                         count=len(records), members=list(records))


_NAMED = 5  # records a G602 names before "ほかN件"


def _differs(reported: Any, computed: Any) -> bool:
    return not isinstance(computed, Decimal) or Decimal(str(reported)) != computed


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _capacity_problems(record: dict[str, Any], tpl: Template, placement: Placement,
                       label: str) -> list[Finding]:
    out = []
    for name, f in tpl.tree.fields.items():
        items = record.get(name) or []
        if f.kind == "list" and not f.joined:  # a joined list holds every item in its one cell
            capacity = len({p.split(".")[1] for p in placement.fields if p.startswith(name + ".")})
            if len(items) > capacity:
                out.append(findings.make("G603", record=label, field_label=tpl.label(name), capacity=capacity,
                                         count=len(items)))
        elif f.kind == "repeat":
            nos = [i.get("no") for i in items if isinstance(i, dict)]
            if len(nos) != len(set(nos)):
                out.append(findings.make("G601", record=label, field_label=f.item_title or f.title,
                                         field=name, problem="の番号が重複しています。"))
    return out


def _window_warnings(record: dict[str, Any], tpl: Template, placement: Placement,
                     label: str) -> list[Finding]:
    """Values of years the sheet does not show (they would be lost)."""
    shown: dict[str, set[int]] = {}
    for p in placement.fields.values():
        if p.year is not None:
            shown.setdefault(p.path.split(".")[0], set()).add(p.year)
    out = []
    for name, f in tpl.tree.fields.items():
        if f.kind == "series":
            entries = [(e, f.title) for e in record.get(name) or []]
        elif f.kind == "repeat" and f.inline_series() is not None:
            series = f.inline_series().name
            entries = [(v, f"{f.item_title or f.title}{item.get('no')}") for item in record.get(name) or []
                       if isinstance(item, dict) for v in item.get(series) or []]
        else:
            continue
        for entry, what in entries:
            if (isinstance(entry, dict) and entry.get("year") not in shown.get(name, set())
                    and any(v is not None for k, v in entry.items() if k != "year")):
                out.append(findings.make("G604", record=label, year=entry["year"],
                                         fiscal_year=record["fiscal_year"], field_label=what))
    return out
