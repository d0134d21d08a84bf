"""What each cell of one project's template holds: the renderers' input.

``generate.plan.plan_sheet`` decides it from the record, the template and the rates;
the renderers (render.py, stamp.py) only draw it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..findings import Finding
from ..spec import CellType, Placed, Placement


@dataclass
class CellPlan:
    """One drawn item and what goes in it.

    ``state`` is input (unlocked, yellow), formula (locked, green) or locked (grey).
    """

    placed: Placed
    value: Any = None
    formula: str | None = None
    state: str = "locked"
    ftype: CellType | None = None


@dataclass
class SheetPlan:
    record: dict[str, Any]
    placement: Placement
    cells: list[CellPlan]
    locked_values: dict[str, Any] = field(default_factory=dict)
    constant_cells: list[str] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
