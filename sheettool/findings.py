"""Findings: one problem found in one place, rendered from the message catalog."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .messages import CATALOG, Message


@dataclass(frozen=True)
class Finding:
    """One problem, pointing at a sheet/cell/field where it can.

    ``message`` is the rendered Japanese text (problem and remedy);
    ``code`` is the stable catalog code it came from.
    """

    code: str
    severity: str
    message: str
    sheet: str | None = None
    cell: str | None = None
    field: str | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_json(self) -> dict[str, Any]:
        """The shape of CONTRACT §4 (``check --json``), plus ``code``."""
        return {
            "severity": self.severity,
            "code": self.code,
            "sheet": self.sheet,
            "cell": self.cell,
            "field": self.field,
            "message": self.message,
        }


def make(code: str, *, sheet: str | None = None, cell: str | None = None,
         field: str | None = None, message: str | None = None, remedy: str | None = None,
         **params: Any) -> Finding:
    """Build a finding from catalog ``code``; ``params`` fill the template.

    ``message`` and ``remedy`` replace the catalog's wording (a template's rule may say it
    in its own terms); the code, and so the meaning and severity, stay the catalog's.
    """
    entry = CATALOG[code]
    if message is not None or remedy is not None:
        entry = Message(code, entry.severity, message if message is not None else entry.template,
                        remedy if remedy is not None else entry.remedy)
    values = {"sheet": sheet or "", "cell": cell or "", "field": field or "", **params}
    return Finding(
        code=code,
        severity=entry.severity,
        message=entry.render(values),
        sheet=sheet,
        cell=cell,
        field=field,
        params=params,
    )


def has_errors(findings: list[Finding]) -> bool:
    return any(f.is_error for f in findings)
