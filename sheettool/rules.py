"""Cross-field rules, one small function each, run in order after the schema.

Each rule knows the cells it speaks of and adds findings through the context.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import formulas, wareki
from .fieldtypes import field_type

if TYPE_CHECKING:
    from .check import Context

Rule = Callable[["Context", dict[str, Any]], None]

_BY_LAW = ("自治事務（義務）", "法定受託事務")
_DASH_ALLOWED = ("city_involvement", "priority")


def required_inputs(ctx: Context, record: dict[str, Any]) -> None:
    """The current year's inputs are present (the list lives in the layout spec)."""
    for path in ctx.layout.required(ctx.placement.fiscal_year):
        placed = ctx.placement.fields.get(path)
        reading = ctx.readings.get(path)
        if placed is None or (reading and (reading.problem or reading.dash)):
            continue
        if reading is None or reading.value is None:
            ctx.add("R501", placed)


def constant_settlement_matches_breakdown(ctx: Context, record: dict[str, Any]) -> None:
    """A 決算額 kept as a constant (history) should still equal its breakdown."""
    constants = ctx.constants()
    for cost in record.get("costs") or []:
        placed = ctx.placement.fields.get(f"costs.{cost['year']}.settlement")
        if placed is None or placed.name not in constants or cost.get("settlement") is None:
            continue
        expected = formulas.settlement(cost.get("general_fund"), cost.get("subsidies_bonds"), cost.get("other"))
        if expected is not None and expected != cost["settlement"]:
            ctx.add("R502", placed, value=f"{cost['settlement']:,}", expected=f"{expected:,}")


def indicators_complete(ctx: Context, record: dict[str, Any]) -> None:
    """An indicator with a name has a unit and this year's target; values need a name."""
    fy = ctx.placement.fiscal_year
    fields = ctx.placement.fields
    for n in range(1, 6):
        name_cell = fields.get(f"indicators.{n}.name")
        if name_cell is None:
            continue
        name_reading = ctx.readings.get(f"indicators.{n}.name")
        has_name = bool(name_reading and name_reading.value)
        has_values = any(r.value is not None for p, r in ctx.readings.items()
                         if p.startswith(f"indicators.{n}.") and p.endswith(("target", "actual")))
        if not has_name:
            if has_values:
                ctx.add("R504", name_cell, no=n)
            continue
        name = name_reading.value
        unit = fields.get(f"indicators.{n}.unit")
        if unit and ctx.readings.get(unit.path) and ctx.readings[unit.path].value is None:
            ctx.add("R503", unit, no=n, name=name, what="単位")
        target = fields.get(f"indicators.{n}.{fy}.target")
        if target and ctx.readings.get(target.path) and ctx.readings[target.path].value is None:
            ctx.add("R503", target, no=n, name=name, what=f"{wareki.fiscal_label(fy)}の目標値")


def dash_scores_only_where_allowed(ctx: Context, record: dict[str, Any]) -> None:
    """'-' means set by law: only for 市の関与 / 優先度, and only for projects the law assigns."""
    category = record.get("category")
    for key in ("citizen_needs", "progress", "city_involvement", "priority"):
        reading = ctx.readings.get(f"evaluation.{key}")
        if reading and reading.dash and (key not in _DASH_ALLOWED or category not in _BY_LAW):
            ctx.add("R505", ctx.placement.fields[f"evaluation.{key}"])


def direction_has_reason(ctx: Context, record: dict[str, Any]) -> None:
    """A 方向性 other than 継続 must say why."""
    direction = record.get("direction")
    if direction and direction != "継続" and not record.get("direction_reason"):
        ctx.add("R506", ctx.placement.fields["direction_reason"], direction=direction)


def texts_fit_their_boxes(ctx: Context, record: dict[str, Any]) -> None:
    """Long text is cut off when printed; warn where it will not fit the box."""
    for path, reading in ctx.readings.items():
        placed = ctx.placement.fields[path]
        if not isinstance(reading.value, str) or placed.role != "input":
            continue
        if field_type(path, placed.format).kind != "text":
            continue  # choices and codes are shrunk to fit by the cell format
        capacity = ctx.layout.text_capacity(placed)
        length = printed_length(reading.value, capacity // max(placed.lines, 1))
        if length > capacity:
            ctx.add("R507", placed, length=int(length), capacity=capacity)


def printed_length(text: str, per_line: int) -> float:
    """Length in full-width characters; a line break uses up the rest of its line."""
    total = 0.0
    lines = text.split("\n")
    for i, line in enumerate(lines):
        n = sum(1.0 if unicodedata.east_asian_width(c) in "FWA" else 0.5 for c in line)
        if i < len(lines) - 1 and per_line > 0:
            n = -(-n // per_line) * per_line if n else per_line  # round up to whole lines
        total += n
    return total


RULES: tuple[Rule, ...] = (
    required_inputs,
    constant_settlement_matches_breakdown,
    indicators_complete,
    dash_scores_only_where_allowed,
    direction_has_reason,
    texts_fit_their_boxes,
)


def run(ctx: Context, record: dict[str, Any]) -> None:
    for rule in RULES:
        rule(ctx, record)
