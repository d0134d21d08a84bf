"""What the checks share about one workbook being read: ``Context``.

Every check (tamper.py, read.py, rules.py) adds its findings through ``Context.add``,
which knows the sheet, the real cell of a placed item and its Japanese label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import findings
from ..findings import Finding
from ..spec import Placed, Placement, Template
from ..xlsx.read import Book, RawCell, SheetData
from .normalize import Reading
from .plan import Plan, plan_for


@dataclass
class Context:
    """Everything the checks share about one workbook being read."""

    file: str
    book: Book
    tpl: Template
    placement: Placement
    sheet_name: str
    data: SheetData
    meta: dict[str, Any]
    addresses: dict[str, str] = field(default_factory=dict)  # placed name → cell actually used
    readings: dict[str, Reading] = field(default_factory=dict)  # field path → reading
    computed: dict[str, Any] = field(default_factory=dict)  # formula path → recomputed value
    record: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    trusted_formulas: set[tuple[str, str]] = field(default_factory=set)  # (sheet, cell) holding our formula
    _plan: Plan | None = field(default=None, repr=False)

    def plan(self) -> Plan:
        """This layout's derived tables (plan.py), shared with every return of the same layout."""
        if self._plan is None:
            self._plan = plan_for(self.tpl, self.placement, self.sheet_name, self.book.names)
        return self._plan

    def cell(self, placed: Placed) -> str:
        return self.addresses.get(placed.name, placed.cell)

    def raw(self, placed: Placed) -> RawCell | None:
        return self.data.cells.get(self.cell(placed))

    def value(self, placed: Placed) -> Any:
        return self.book.value(self.raw(placed))

    def constants(self) -> set[str]:
        """Formula cells kept as reported values (history): _meta's list, where its digest vouches."""
        locked = self.meta.get("locked_values")
        listed = self.meta.get("constant_cells")
        if not isinstance(locked, dict) or not isinstance(listed, list):
            return set()
        return {name for name in listed if isinstance(name, str) and name in locked}

    def rate(self, path: str) -> Any:
        """A rate cell's value: as recorded at generation (tampering is reported separately)."""
        placed = self.placement.computed.get(path)
        if placed is None:
            return None
        locked = self.meta.get("locked_values")
        if isinstance(locked, dict) and placed.name in locked:
            return locked[placed.name]
        value = self.value(placed)
        return value if isinstance(value, float) else None

    def label(self, placed: Placed) -> str:
        return self.tpl.label(placed.path)

    def add(self, code: str, placed: Placed | None = None, **params: Any) -> None:
        cell, path = params.pop("cell", None), params.pop("field", None)
        if placed is not None:  # the placed item's real cell and path win over the defaults given
            cell = self.cell(placed)
            path = placed.path if placed.kind == "field" else path
        if placed is not None and "label" not in params:
            params["label"] = self.label(placed)
        self.findings.append(findings.make(code, sheet=self.sheet_name, cell=cell, field=path, **params))

    def add_finding(self, finding: Finding) -> None:
        self.findings.append(finding)
