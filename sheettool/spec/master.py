"""The master book of a template (master.json): its columns and aggregates.

- ``derived``: values computed per year entry for the master book only (トータルコスト),
  each a formula in the template's language over the entry's fields;
- ``list``: the template's columns of 一覧 (between the identity columns and the
  submission status); ``{year}`` in a header is the book's fiscal year label, and a
  column marked ``basic`` is shown from the expected record when nothing was received;
- ``costs``: the items of コスト推移, one row per project × year × item;
- ``department_costs``: the sums of 部別コスト;
- ``indicators``: the columns of 指標 and its 達成率;
- ``direction``: the field 方向性集計 counts, with a colour per choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import formula as fx

if TYPE_CHECKING:
    from .template import Template

IDENTITY = ("template", "project_no", "fiscal_year", "project_name", "department", "division")
LOWER_IS_BETTER_UNITS = ("以内", "以下", "未満")


@dataclass(frozen=True)
class ListColumn:
    header: str  # "{year}" = the book's fiscal year label
    path: str  # "{fiscal_year}" = the book's fiscal year
    kind: str = "text"
    basic: bool = False


@dataclass(frozen=True)
class CostItem:
    item: str
    unit: str
    key: str
    kind: str


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    kind: str = "text"


class MasterSpec:
    """master.json compiled against its template."""

    def __init__(self, tpl: Template) -> None:
        data = tpl.master
        self.tpl = tpl
        self.derived: dict[str, tuple[str, fx.Expr]] = {}
        for key, d in (data.get("derived") or {}).items():
            series = d["series"]
            probe = f"{series}.0.{key}"  # bound once; evaluated on one entry at a time
            tree = fx.bind(fx.parse(d["formula"]), lambda n, probe=probe: tpl.resolve(n, probe))
            self.derived[key] = (series, tree)
        self.list = [ListColumn(c["header"], c["path"], c.get("kind", "text"), c.get("basic", False))
                     for c in data.get("list") or []]
        costs = data.get("costs") or {}
        self.cost_series: str | None = costs.get("series")
        self.cost_items = [CostItem(i["item"], i.get("unit", ""), i["key"], i.get("kind", "money"))
                           for i in costs.get("items") or []]
        self.department_costs = [Column(c["header"], c["key"], c.get("kind", "money"))
                                 for c in data.get("department_costs") or []]
        ind = data.get("indicators") or {}
        self.indicator_repeat: str | None = ind.get("repeat")
        self.indicator_series: str | None = ind.get("series")
        self.indicator_item_columns = [Column(c["header"], c["key"], c.get("kind", "text"))
                                       for c in ind.get("item_columns") or []]
        self.indicator_value_columns = [Column(c["header"], c["key"], c.get("kind", "number"))
                                        for c in ind.get("value_columns") or []]
        self.rate: dict[str, str] | None = ind.get("rate")
        direction = data.get("direction") or {}
        self.direction_path: str | None = direction.get("path")
        self.direction_colors: dict[str, str] = direction.get("colors") or {}
        self.directions: tuple[str, ...] = ()
        if self.direction_path:
            leaf = tpl.field(self.direction_path)
            if leaf is not None:
                self.directions = choices(tpl, leaf) or ()
        keys = set(IDENTITY)
        for col in self.list:
            keys.add(col.path.split(".")[0])
        for top in (self.direction_path, self.cost_series, *tpl.office_paths):
            if top:
                keys.add(top.split(".")[0])
        self.summary_keys = tuple(k for k in (*IDENTITY, *tpl.tree.fields) if k in keys)

    def summary(self, record: dict[str, Any]) -> dict[str, Any]:
        """The parts of a record 一覧, 提出状況 and the aggregates read (the rest is spilled)."""
        return {k: record[k] for k in self.summary_keys if k in record}

    def value(self, record: dict[str, Any] | None, path: str, fiscal_year: int | None) -> Any:
        """A list column's value: ``{fiscal_year}`` filled, derived entry values computed."""
        if record is None:
            return None
        if "{fiscal_year}" in path:
            if fiscal_year is None:
                return None
            path = path.replace("{fiscal_year}", str(fiscal_year))
        head, _, key = path.rpartition(".")
        if key in self.derived and head:
            entry = self.tpl.get(record, head)
            return self.entry_value(entry, key) if isinstance(entry, dict) else None
        try:
            return self.tpl.get(record, path)
        except (TypeError, ValueError, AttributeError):  # a broken record (要修正) may hold anything
            return None

    def entry_value(self, entry: dict[str, Any], key: str) -> Any:
        """A field of one year entry, or a derived value computed from it."""
        if key not in self.derived:
            return entry.get(key)
        _, tree = self.derived[key]
        try:
            result = tree.evaluate(fx.Env(lambda p: entry.get(p.rpartition(".")[2]), self.tpl.tables))
        except (TypeError, ValueError, ArithmeticError):
            return None
        if isinstance(result, Decimal):
            return int(result) if result == result.to_integral_value() else float(result)
        return None


def choices(tpl: Template, leaf: Any) -> tuple[str, ...] | None:
    """The values a choice field may take, in the template's order: its list's or its options';
    None for a field without choices."""
    if leaf.list in tpl.lists:
        return tuple(str(v) for v in tpl.lists[leaf.list].values)
    if leaf.kind == "choice" and leaf.options:
        return tuple(str(o.value) for o in leaf.options)
    return None


def lower_is_better(unit: str | None) -> bool:
    """A target stated as a ceiling ('分以内', '件以下'): less is better."""
    return bool(unit) and unit.endswith(LOWER_IS_BETTER_UNITS)


def achievement_rate(actual: Any, target: Any, unit: str | None = None) -> float | None:
    """達成率 as a ratio (1.0 = 100%); None without a positive target.

    Usually 実績 ÷ 目標値. For a ceiling ('280分以内'), meeting it is 100% and
    exceeding it scores 目標値 ÷ 実績.
    """
    if not _is_number(actual) or not _is_number(target) or Decimal(str(target)) <= 0:
        return None
    a, t = Decimal(str(actual)), Decimal(str(target))
    if lower_is_better(unit):
        return 1.0 if a <= t else float(t / a)
    return float(a / t)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
