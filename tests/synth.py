"""Synthetic records for any template, made from its field tree alone (no template-specific code).

``synthetic_record(tpl, fy, seed)`` fills every input the layout places: numbers within the
field's bounds and decimals, choices from their lists, check boxes, dates, texts that fit
their printed boxes; formula fields get the values the template's formulas give, so a
generated sheet and the record agree. ``minimal_record`` holds only CONTRACT §5's common
fields and some costs: how a city starts, and how a new project enters.
"""

from __future__ import annotations

import copy
import random
import re
from decimal import Decimal
from typing import Any

from sheettool.spec import Template
from sheettool.spec.fields import Field
from sheettool.spec.rates import Rates

WORDS = ["市民", "窓口", "手続", "電子申請", "交付", "相談", "支援", "推進", "改善", "周知", "連携", "事業", "計画",
         "点検", "運営", "研修", "調査", "整備", "普及", "啓発"]


def _text(rng: random.Random, limit: int, capacity: int) -> str:
    size = max(1, min(limit, capacity, rng.randint(4, 40)))
    out = ""
    while len(out) < size:
        out += rng.choice(WORDS)
    return out[:size]


def _number(rng: random.Random, f: Field) -> Any:
    lo = f.min if f.min is not None else 0
    hi = f.max if f.max is not None else 10**6
    lo, hi = max(lo, 0), min(hi, 10**7)
    if f.kind == "integer":
        return rng.randint(int(lo), int(hi))
    decimals = f.decimals if f.decimals is not None else 1
    steps = int((hi - lo) * 10**decimals)
    return float(Decimal(rng.randint(0, min(steps, 10**6))) / Decimal(10**decimals) + Decimal(str(lo)))


def _code(rng: random.Random, f: Field) -> str:
    """A code of the field's pattern: tried among a few usual shapes (01, 8.4, A1 …)."""
    shapes = [lambda: f"{rng.randint(1, 99):02d}", lambda: f"{rng.randint(1, 17)}.{rng.randint(1, 9)}",
              lambda: str(rng.randint(1, 9)), lambda: f"A{rng.randint(1, 9)}", lambda: f"{rng.randint(1, 9)}-{rng.randint(1, 9)}"]
    for _ in range(50):
        code = rng.choice(shapes)()
        if (not f.pattern or re.fullmatch(f.pattern, code)) and (f.max_length is None or len(code) <= f.max_length):
            return code
    raise AssertionError(f"no code of pattern {f.pattern}")


def leaf_value(tpl: Template, f: Field, rng: random.Random, capacity: int) -> Any:
    """A value for one leaf field (a whole list for a multiple choice)."""
    kind = f.kind
    if kind in ("integer", "number"):
        if f.list and f.list in tpl.lists:
            return rng.choice(tpl.lists[f.list].values)
        return _number(rng, f)
    if kind == "code":
        return _code(rng, f)
    if kind == "text":
        return _text(rng, f.max_length or 50, capacity)
    if kind == "date":
        return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == "yesno":
        return rng.choice([True, False])
    if kind in ("choice", "scale"):
        if f.options and not f.list:
            return rng.choice(f.options).value
        return rng.choice(tpl.lists[f.list].values)
    if kind == "multi":
        chosen = [o.value for o in f.options if rng.random() < 0.4] or [f.options[0].value]
        return chosen
    if kind == "list":  # shown joined in one cell
        assert f.item is not None
        items: list[Any] = []
        for _ in range(rng.randint(1, 3)):
            value = leaf_value(tpl, f.item, rng, capacity)
            if value not in items:
                items.append(value)
        return items
    raise AssertionError(kind)


def synthetic_record(tpl: Template, fiscal_year: int, seed: int = 1) -> dict[str, Any]:
    """A complete record: every placed input filled, formula fields as the formulas compute them."""
    rng = random.Random(seed)
    placement = tpl.place(fiscal_year)
    record: dict[str, Any] = {"fiscal_year": fiscal_year}
    if not tpl.is_default:
        record["template"] = tpl.id
    done: set[str] = set()
    for placed in placement.fields.values():
        path = placed.path
        if placed.formula or path in ("fiscal_year",):
            continue
        leaf = tpl.field(path)
        if leaf is None:
            continue
        if leaf.options and not leaf.joined:  # a check-box set: one value for the whole set
            head = path.rpartition(".")[0]
            if head in done:
                continue
            done.add(head)
            tpl.set_(record, head, leaf_value(tpl, leaf, rng, 99))
            continue
        capacity = tpl.layout.text_capacity(placed)
        value = leaf_value(tpl, leaf, rng, capacity)
        owner = leaf.parent
        if owner is not None and owner.kind == "list" and owner.unique:  # no value twice in the list
            used = set(record.get(owner.name) or [])
            while value in used:
                value = leaf_value(tpl, leaf, rng, capacity)
        tpl.set_(record, path, value)
    record["project_no"] = f"{rng.randint(1, 9999):04d}"
    _compact(record)
    return with_formulas(tpl, record, Rates.bundled(tpl))


def with_formulas(tpl: Template, record: dict[str, Any], rates: Rates) -> dict[str, Any]:
    """``record`` with every formula field of its sheet as the template's formulas compute it."""
    record = copy.deepcopy(record)
    fy = record["fiscal_year"]

    def value(path: str) -> Any:
        if path.startswith("rates."):
            year, key = path.split(".")[1:]
            return rates.value(int(year), key)
        return tpl.get(record, path)

    for placed in sorted((p for p in tpl.place(fy).fields.values() if p.formula), key=lambda p: p.path):
        tpl.set_(record, placed.path, _plain(tpl.evaluate(placed.path, fy, value)))
    return tpl.canonical(record)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _compact(record: dict[str, Any]) -> None:
    """Positional lists without gaps (set_ pads them with None)."""
    for key, value in record.items():
        if isinstance(value, list) and any(v is None for v in value):
            record[key] = [v for v in value if v is not None]


def minimal_record(tpl: Template, fiscal_year: int) -> dict[str, Any]:
    """Only the common fields of CONTRACT §5 and a few costs of the evaluated year."""
    record: dict[str, Any] = {"fiscal_year": fiscal_year, "project_no": "N001",
                              "project_name": "新しい事業", "department": None, "division": "企画課"}
    if not tpl.is_default:
        record["template"] = tpl.id
    if tpl.field("department") is not None and tpl.field("department").placed:
        record["department"] = "企画部"
    series = next(f for f in tpl.tree.fields.values() if f.kind == "series")
    inputs = [name for name, f in series.fields.items()
              if f.kind in ("integer", "number") and tpl.formula_of(f"{series.name}.{fiscal_year}.{name}") is None]
    record[series.name] = [{"year": fiscal_year, **{name: 1000 for name in inputs[:2]}}]
    return record


def input_values(tpl: Template, record: dict[str, Any], fiscal_year: int,
                 locked: Any = ()) -> dict[str, Any]:
    """What a department types for ``record``: each open input's cell value, by defined name.

    ``locked``: the names the template locked for this project (its ``_meta`` locked values).
    """
    out = {}
    for placed in tpl.place(fiscal_year).fields.values():
        if placed.formula or placed.locked_by_role or placed.name in locked:
            continue
        value = tpl.cell_type(placed.path).to_cell(tpl.get(record, placed.path))
        if value is not None:
            out[placed.name] = value
    return out

