"""The template's rules (spec/rules.py), checked in order after the schema.

Each rule kind is one small function that knows the cells it speaks of and adds
findings through the context; conditions are evaluated over the record read.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .. import wareki
from ..spec.rules import ORPHAN_CODE, Rule, years
from .context import Context


def _wording(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"title": rule.title}
    if rule.message is not None:
        out["message"] = rule.message
    if rule.remedy is not None:
        out["remedy"] = rule.remedy
    return out


def _holds(ctx: Context, record: dict[str, Any], text: str) -> tuple[bool, dict[str, Any]]:
    """Whether a condition holds for ``record``, and the values it read (for the message)."""
    return ctx.tpl.holds(text, record, ctx.placement.fiscal_year)


def required(ctx: Context, record: dict[str, Any], rule: Rule) -> None:
    """Fields that must be filled (``{fiscal_year}``: the year evaluated); a check-box set needs one box."""
    for path in rule.fields:
        path = years(path, ctx.placement.fiscal_year)
        placed = ctx.placement.fields.get(path)
        if placed is None:
            boxes = [p for p in ctx.placement.fields.values() if p.path.rpartition(".")[0] == path
                     and ctx.tpl.cell_type(p.path).kind == "mark"]
            readings = [ctx.readings.get(p.path) for p in boxes]
            if boxes and not any(r is not None and (r.value or r.problem) for r in readings):
                ctx.add(rule.code, boxes[0], label=ctx.tpl.label(path), **_wording(rule))
            continue
        reading = ctx.readings.get(path)
        if reading and (reading.problem or reading.dash):
            continue
        if reading is None or reading.value is None:
            ctx.add(rule.code, placed, **_wording(rule))


def formula_holds(ctx: Context, record: dict[str, Any], rule: Rule) -> None:
    """A formula's cell kept as the reported value (history) should still equal its formula."""
    constants = ctx.constants()
    fy = ctx.placement.fiscal_year
    for placed in ctx.placement.fields.values():
        if placed.formula != rule.formula or placed.name not in constants:
            continue
        reported = ctx.tpl.get(record, placed.path)
        if reported is None:
            continue
        expected = ctx.tpl.evaluate(placed.path, fy, lambda p: ctx.rate(p) if p.startswith("rates.")
                                    else ctx.tpl.get(record, p))
        if isinstance(expected, Decimal) and expected != Decimal(str(reported)):
            ctx.add(rule.code, placed, value=f"{reported:,}", expected=f"{expected:,}", **_wording(rule))


def complete_repeat(ctx: Context, record: dict[str, Any], rule: Rule) -> None:
    """An item with its key (an indicator with a name) has what ``needs`` lists; values need a key."""
    fy = ctx.placement.fiscal_year
    fields = ctx.placement.fields
    repeat = ctx.tpl.tree.fields[rule.repeat]
    item = repeat.item_title or repeat.title
    key_title = repeat.fields[rule.key].title
    for n in range(1, (repeat.max_items or 0) + 1):
        key_cell = fields.get(f"{rule.repeat}.{n}.{rule.key}")
        if key_cell is None:
            continue
        key_reading = ctx.readings.get(key_cell.path)
        has_key = bool(key_reading and key_reading.value)
        prefix = f"{rule.repeat}.{n}."
        has_values = any(r.value is not None for p, r in ctx.readings.items()
                         if p.startswith(prefix) and p[len(prefix):].split(".")[0].isdigit())
        if not has_key:
            if has_values:
                ctx.add(ORPHAN_CODE, key_cell, no=n, item=item, key=key_title)
            continue
        for need in rule.needs:
            placed = fields.get(prefix + need.field.replace("{fiscal_year}", str(fy)))
            reading = ctx.readings.get(placed.path) if placed else None
            if placed is not None and reading is not None and reading.value is None:
                what = need.what.replace("{fiscal_label}", wareki.fiscal_label(fy))
                ctx.add(rule.code, placed, no=n, name=key_reading.value, what=what, item=item,
                        **_wording(rule))


def allowed_if(ctx: Context, record: dict[str, Any], rule: Rule) -> None:
    """``value`` (e.g. "-") only where ``when`` holds."""
    holds = None
    for path in rule.fields:
        reading = ctx.readings.get(path)
        if reading is None:
            continue
        used = reading.dash if rule.value == "-" else reading.value == rule.value
        if not used:
            continue
        if holds is None:
            holds = _holds(ctx, record, rule.when or "TRUE")[0]
        if not holds:
            ctx.add(rule.code, ctx.placement.fields[path], value=rule.value, **_wording(rule))


def required_if(ctx: Context, record: dict[str, Any], rule: Rule) -> None:
    """``field`` must be filled where ``when`` holds; the message may name the values the condition read."""
    holds, values = _holds(ctx, record, rule.when or "TRUE")
    if not holds:
        return
    for path in rule.fields:
        value = ctx.tpl.get(record, path)
        placed = ctx.placement.fields.get(path)
        if placed is not None and value in (None, ""):
            params = {p.replace(".", "_"): v for p, v in values.items()}
            ctx.add(rule.code, placed, **params, **_wording(rule))


def fits_box(ctx: Context, record: dict[str, Any], rule: Rule) -> None:
    """Long text is cut off when printed; warn where it will not fit the box."""
    for path, reading in ctx.readings.items():
        placed = ctx.placement.fields[path]
        if not isinstance(reading.value, str) or placed.role != "input":
            continue
        if ctx.tpl.cell_type(path).kind != "text":
            continue  # choices and codes are shrunk to fit by the cell format
        capacity = ctx.tpl.layout.text_capacity(placed)
        length = printed_length(reading.value, capacity // max(placed.lines, 1))
        if length > capacity:
            ctx.add(rule.code, placed, length=int(length), capacity=capacity, **_wording(rule))


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


KINDS: dict[str, Callable[[Context, dict[str, Any], Rule], None]] = {
    "required": required,
    "formula_holds": formula_holds,
    "complete_repeat": complete_repeat,
    "allowed_if": allowed_if,
    "required_if": required_if,
    "fits_box": fits_box,
}


def run(ctx: Context, record: dict[str, Any]) -> None:
    for rule in ctx.tpl.rules:
        KINDS[rule.kind](ctx, record, rule)
