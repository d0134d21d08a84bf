"""What check derives from a layout, built once per layout and reused across a batch.

A layout is a template, a fiscal year, the main sheet's name and the workbook's defined
names. Returns of one year share it: every template of that year carries the same
``xl/workbook.xml``, so ``Book`` hands out one ``names`` object for all of them (its parse
is cached by the part's digest), and a LibreOffice or Excel save keeps the names. What
follows from the layout alone is therefore computed for the first return and looked up
for the rest:

- where each item really is (``addresses``) and the T219/T221 findings about it;
- the formula each formula cell must hold, normalised as check compares it;
- the 入力チェック panel's flag formulas (``live_checks``, the costliest to build).

Nothing here depends on a cell's content, so no finding can differ from a fresh build;
tests/test_fastread.py checks that on real returns and mutants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..memo import remember
from ..spec import Placed, Placement, Template
from ..spec import formula as fx
from ..xlsx.read import is_cell, split_ref

_PLANS: dict[tuple[Any, ...], Plan] = {}
_PLANS_MAX = 32


@dataclass
class Plan:
    """One layout's derived tables; ``names`` is the defined-name map it was built for."""

    tpl: Template
    placement: Placement
    sheet_name: str
    names: dict[str, str]
    addresses: dict[str, str] = field(default_factory=dict)  # placed name → cell actually used
    unresolved: list[tuple[str, Placed, dict[str, str]]] = field(default_factory=list)  # T221
    unnamed: list[Placed] = field(default_factory=list)  # no defined name: T219 when _meta is there
    _formulas: dict[str, str] = field(default_factory=dict)
    _panel: list[str] | None = None

    def cell(self, placed: Placed) -> str:
        return self.addresses.get(placed.name, placed.cell)

    def expected_formula(self, placed: Placed) -> str:
        """The formula ``placed`` must hold, with references where the cells really are."""
        found = self._formulas.get(placed.name)
        if found is None:
            expr = self.tpl.bound(placed.path, self.placement.fiscal_year)
            found = self._formulas[placed.name] = fx.excel_formula(
                expr, lambda path: self.cell(self.placement.at(path)))
        return found

    def panel_formulas(self, build: Callable[[Plan], list[str]]) -> list[str]:
        """The panel's flag formulas, built by ``build`` the first time."""
        if self._panel is None:
            self._panel = build(self)
        return self._panel


def plan_for(tpl: Template, placement: Placement, sheet_name: str, names: dict[str, str]) -> Plan:
    """The plan of this layout: cached while ``names`` is the very object it was built for."""
    key = (id(tpl), placement.fiscal_year, sheet_name, id(names))
    plan = _PLANS.get(key)
    if plan is not None and plan.tpl is tpl and plan.names is names and plan.placement is placement:
        return plan
    # the plan holds tpl and names, so neither id can be reused while it is cached
    return remember(_PLANS, key, _build(tpl, placement, sheet_name, names), _PLANS_MAX)


def _build(tpl: Template, placement: Placement, sheet_name: str, names: dict[str, str]) -> Plan:
    plan = Plan(tpl, placement, sheet_name, names)
    for placed in placement.items:
        if placed.kind not in ("field", "computed"):
            continue
        target = names.get(placed.name)
        if target:
            sheet, cell = split_ref(target)
            if sheet in (None, sheet_name) and is_cell(cell):
                plan.addresses[placed.name] = cell
                continue
            if sheet in (None, sheet_name):  # ZZZZ1, #REF!: no cell to read from
                plan.unresolved.append(("T221", placed, {"name": placed.name, "target": target,
                                                         "cell": placed.cell}))
                continue
        plan.unnamed.append(placed)
    return plan
