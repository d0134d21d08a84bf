"""コスト推移: project × year × item."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...spec.master import MasterSpec
from .model import IDENT_COLS, Cell, Col, Table, _Book, _ident, _wareki, _with_records


def cost_columns(spec: MasterSpec) -> list[Col]:
    """The columns of コスト推移 (project × year × item; 値 in the item's unit)."""
    return [*IDENT_COLS, Col("年度", "int"), Col("和暦"), Col("項目"), Col("単位"), Col("値", "number"),
            Col("提出状況")]


def _cost_table(book: _Book) -> Table:
    """コスト推移: project × year × item, the value's unit in its own column."""
    spec = book.spec
    cols = cost_columns(spec)

    def rows() -> Iterator[list[Any]]:
        for p in _with_records(book):
            ident = _ident(book, p.no)
            costs, _ = book.spill.tables(p.entry.spilled)
            for entry in sorted(costs or [], key=lambda e: e.get("year") or 0):
                year = entry.get("year")
                for item in spec.cost_items:
                    value = spec.entry_value(entry, item.key)
                    yield [*ident, year, _wareki(year), item.item, item.unit, Cell(value, item.kind), p.status]

    return Table("T_Costs", cols, rows(), sum(p.entry.spilled.cost_rows for p in _with_records(book)))
