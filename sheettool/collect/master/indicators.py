"""指標: project × indicator × year, with 達成率."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...spec.master import MasterSpec, achievement_rate
from .model import IDENT_COLS, Col, Table, _Book, _ident, _wareki, _with_records


def indicator_columns(spec: MasterSpec) -> list[Col]:
    """The columns of 指標 (project × indicator × year, with 達成率 where the template has one)."""
    rate = spec.rate
    item_path = f"{spec.indicator_repeat}.1" if spec.indicator_repeat else None
    return [*IDENT_COLS, Col("指標番号", "int"),
            *(Col(c.header, c.kind, path=item_path and f"{item_path}.{c.key}") for c in spec.indicator_item_columns),
            Col("年度", "int"), Col("和暦"), *(Col(c.header, c.kind) for c in spec.indicator_value_columns),
            *([Col(rate["header"], "ratio", csv_header=f"{rate['header']}（％）")] if rate else []),
            Col("提出状況")]


def _indicator_table(book: _Book) -> Table:
    """指標: project × indicator × year with 達成率 (ceilings such as 以内 inverted, see achievement_rate)."""
    spec = book.spec
    rate = spec.rate
    cols = indicator_columns(spec)
    series = spec.indicator_series or ""

    def rows() -> Iterator[list[Any]]:
        for p in _with_records(book):
            ident = _ident(book, p.no)
            _, indicators = book.spill.tables(p.entry.spilled)
            for ind in sorted(indicators or [], key=lambda i: i.get("no") or 0):
                head = [*ident, ind.get("no"), *(ind.get(c.key) for c in spec.indicator_item_columns)]
                values = sorted(ind.get(series) or [], key=lambda v: v.get("year") or 0)
                for v in values or [{}]:  # an indicator without values still shows
                    year = v.get("year")
                    shown = [v.get(c.key) for c in spec.indicator_value_columns]
                    ratio = ([achievement_rate(v.get(rate["actual"]), v.get(rate["target"]),
                                               ind.get(rate.get("unit", "unit")))] if rate else [])
                    yield [*head, year, _wareki(year), *shown, *ratio, p.status]

    return Table("T_Indicators", cols, rows(), sum(p.entry.spilled.indicator_rows for p in _with_records(book)))
