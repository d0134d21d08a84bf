"""What every cell of one project's template holds: the logic of ``generate``.

``plan_sheet`` decides values, lock state and formulas from the record, the
layout and the rates; the renderer (writer.py) only draws the plan. Keeping
the two apart lets other renderers reuse the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import findings, recordpath, wareki
from .fieldtypes import FieldType, field_type
from .findings import Finding
from .formulas import FORMULAS
from .layout import Layout, Placed, Placement
from .rates import Rates

# Fields of a year group; a past year with any of them filled is locked history.
_COST_KEYS = ("budget", "settlement", "general_fund", "subsidies_bonds", "other", "staff_fte",
              "overtime_hours", "part_time_staff", "personnel_cost")
_SLOTS = {"sdgs": "sdgs.{i}", "mayor_pledge": "mayor_pledge.{i}", "strategy_plan": "strategy_plan.{i}.pillar"}


class RecordProblem(Exception):
    """The record cannot become a template; ``findings`` say why (Japanese)."""

    def __init__(self, problems: list[Finding]) -> None:
        super().__init__("; ".join(f.message for f in problems))
        self.findings = problems


@dataclass
class CellPlan:
    """One drawn item and what goes in it.

    ``state`` is input (unlocked, yellow), formula (locked, green) or locked (grey).
    """

    placed: Placed
    value: Any = None
    formula: str | None = None
    state: str = "locked"
    ftype: FieldType | None = None


@dataclass
class SheetPlan:
    record: dict[str, Any]
    placement: Placement
    cells: list[CellPlan]
    locked_values: dict[str, Any] = field(default_factory=dict)
    constant_cells: list[str] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)


def record_label(record: dict[str, Any], index: int | None = None) -> str:
    """'3件目（事業番号 088 情報通信…）' for messages about a record."""
    no = record.get("project_no") if isinstance(record, dict) else None
    name = record.get("project_name") if isinstance(record, dict) else None
    head = f"{index}件目" if index is not None else "記録"
    who = " ".join(str(x) for x in (no, name) if x)
    return f"{head}（事業番号 {who}）" if who else head


def plan_sheet(record: dict[str, Any], layout: Layout, rates: Rates, label: str = "記録") -> SheetPlan:
    """Decide every cell. Raises RecordProblem when the record does not fit the template."""
    fy = record["fiscal_year"]
    placement = layout.place(fy)
    problems = _capacity_problems(record, placement, label)
    plan = SheetPlan(record, placement, [])
    plan.warnings.extend(_window_warnings(record, placement, label))
    for placed in placement.items:
        if placed.formula:
            cell, problem = _plan_formula(placed, record, fy, layout, placement, rates, plan, label)
            if problem:
                problems.append(problem)
        elif placed.role == "rate":
            rate = rates.get(placed.year)
            value = getattr(rate, placed.path.rsplit(".", 1)[1]) if rate else None
            cell = CellPlan(placed, value, state="locked")
        elif placed.kind == "field":
            cell = _plan_field(placed, record, fy)
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


def _plan_field(placed: Placed, record: dict[str, Any], fy: int) -> CellPlan:
    ftype = field_type(placed.path, placed.format)
    value = ftype.to_cell(recordpath.get(record, placed.path))
    if placed.locked_by_role or (placed.history and _is_history(record, placed, fy)):
        state = "locked"
    else:
        state = "input"
    return CellPlan(placed, value, state=state, ftype=ftype)


def _is_history(record: dict[str, Any], placed: Placed, fy: int) -> bool:
    """A past year that arrived filled is history (locked), per year group."""
    if placed.year is None or placed.year >= fy:
        return False
    group = placed.path.rsplit(".", 1)[0]
    entry = recordpath.get(record, group)
    if not isinstance(entry, dict):
        return False
    keys = _COST_KEYS if group.startswith("costs.") else ("target", "actual")
    return any(entry.get(k) is not None for k in keys)


def _plan_formula(placed: Placed, record: dict[str, Any], fy: int, layout: Layout,
                  placement: Placement, rates: Rates, plan: SheetPlan,
                  label: str) -> tuple[CellPlan, Finding | None]:
    formula = FORMULAS[placed.formula]
    bound = formula.bind(placed.year, placed.formula_args)
    computed = formula.compute(_env(bound, record, rates, layout, placed))
    text = formula.excel(lambda arg: _ref(arg, bound, placement, placed))
    reported = recordpath.get(record, placed.path) if placed.kind == "field" else None
    history = placed.year is not None and placed.year < fy and _year_filled(record, placed.year)
    missing_rate = any(p.startswith("rates.") for p in bound.values()) and rates.get(placed.year) is None
    if history and reported is not None and (missing_rate or _differs(reported, computed)):
        # History is kept as reported, even where today's formula would say otherwise.
        plan.constant_cells.append(placed.name)
        reason = "単価がないため" if missing_rate else "内訳からの計算と一致しないため"
        plan.warnings.append(findings.make(
            "G605", record=label, year=placed.year, field_label=_leaf_title(placed.path),
            value=f"{reported:,}", reason=reason))
        return CellPlan(placed, reported, state="locked"), None
    if missing_rate:
        return CellPlan(placed, None, text, state="formula"), findings.make(
            "G602", record=label, year=placed.year, wareki=wareki.fiscal_label(placed.year))
    return CellPlan(placed, _plain(computed), text, state="formula"), None


def _year_filled(record: dict[str, Any], year: int) -> bool:
    entry = recordpath.get(record, f"costs.{year}")
    return isinstance(entry, dict) and any(entry.get(k) is not None for k in _COST_KEYS)


def _differs(reported: Any, computed: Any) -> bool:
    return computed is None or Decimal(str(reported)) != computed


def _leaf_title(path: str) -> str:
    return {"settlement": "決算額", "personnel_cost": "人件費計"}.get(path.rsplit(".", 1)[-1], path)


def _env(bound: dict[str, str], record: dict[str, Any], rates: Rates, layout: Layout,
         placed: Placed) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for arg, path in bound.items():
        if path.startswith("rates."):
            _, year, key = path.split(".")
            rate = rates.get(int(year))
            env[arg] = getattr(rate, key) if rate else None
        else:
            env[arg] = recordpath.get(record, path)
    if "table" in placed.formula_args:
        env["table:sentence"] = layout.sentences[placed.formula_args["table"]]
    return env


def _ref(arg: str, bound: dict[str, str], placement: Placement, placed: Placed) -> str:
    if arg.startswith("table:"):
        return f"tbl_{arg[6:]}_{placed.formula_args['table']}"
    return placement.at(bound[arg]).cell


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _capacity_problems(record: dict[str, Any], placement: Placement, label: str) -> list[Finding]:
    out = []
    for key, pattern in _SLOTS.items():
        items = record.get(key) or []
        capacity = sum(1 for i in range(1, 50) if pattern.format(i=i) in placement.fields)
        if len(items) > capacity:
            out.append(findings.make("G603", record=label, field_label=_title(key), capacity=capacity,
                                     count=len(items)))
    nos = [i.get("no") for i in record.get("indicators") or []]
    if len(nos) != len(set(nos)):
        out.append(findings.make("G601", record=label, field_label="指標", field="indicators",
                                 problem="の番号が重複しています。"))
    return out


def _title(key: str) -> str:
    from .schema import field_label

    return field_label(key)


def _window_warnings(record: dict[str, Any], placement: Placement, label: str) -> list[Finding]:
    shown_costs = {p.year for p in placement.fields.values() if p.path.startswith("costs.")}
    shown_ind = {p.year for p in placement.fields.values() if p.path.startswith("indicators.") and p.year}
    out = []
    for cost in record.get("costs") or []:
        if cost.get("year") not in shown_costs and any(cost.get(k) is not None for k in _COST_KEYS):
            out.append(findings.make("G604", record=label, year=cost["year"],
                                     fiscal_year=record["fiscal_year"], field_label="コストの推移"))
    for ind in record.get("indicators") or []:
        for v in ind.get("values") or []:
            if v.get("year") not in shown_ind and (v.get("target") is not None or v.get("actual") is not None):
                out.append(findings.make("G604", record=label, year=v["year"],
                                         fiscal_year=record["fiscal_year"],
                                         field_label=f"指標{ind.get('no')}"))
    return out
