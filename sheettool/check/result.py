"""What ``check`` returns for one file: the record read, the findings, what ``_meta`` said.

This plain data class is the interface between the reader (check/), the ledger and the
master book (collect/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..findings import Finding

# Submission status in the master book and the ledger.
ACCEPTED = "受理"  # read, no error findings
NEEDS_FIX = "要修正"  # read, with error findings
UNREADABLE = "読取不可"  # could not be read as a workbook at all
MISSING = "未提出"  # expected, nothing received
UNEXPECTED = "対象外"  # received for a project nobody expected
FOREIGN = "様式違い"  # a return of another template than the master book's (kept in its own ledger rows)
REJECTED = "受付不可"  # read, but forged, never issued, for another project or year: never current
EXCLUDED = "除外"  # in the inbox but not a submission (a lock file, a leftover temp file): listed, not read
NEVER_CURRENT = (UNREADABLE, REJECTED)  # statuses of files kept in history that never count

# Findings that make a readable file 受付不可: its identity cannot be trusted, so it must
# never replace a genuinely issued submission (signature, issue register, identity, year).
REJECTING = frozenset({"T201", "T208", "T209", "T231", "T232", "T234", "T235", "T236", "C810"})


@dataclass
class CheckResult:
    """The outcome of reading one returned workbook.

    ``record`` is None when the file could not be read; ``meta`` holds what the
    template's ``_meta`` sheet says (template_id, template_version, fiscal_year,
    project_no, generated_at), empty when there is none.
    """

    file: str
    record: dict[str, Any] | None
    findings: list[Finding] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    readable: bool = True
    template: str | None = None  # the id of the template it was read by
    saved_at: str | None = None  # the workbook's own save time (docProps/core.xml), ISO 8601
    # Cells (sheet, ref) holding exactly the template's formula: what an annotated copy keeps
    # as a formula. Every other formula there is written as text. Not stored by the ledger.
    trusted_formulas: frozenset[tuple[str, str]] = frozenset()

    @property
    def ok(self) -> bool:
        return self.readable and self.record is not None and not any(f.is_error for f in self.findings)

    @property
    def status(self) -> str:
        if not self.readable or self.record is None:
            return UNREADABLE
        if any(f.code in REJECTING for f in self.findings):
            return REJECTED
        return NEEDS_FIX if any(f.is_error for f in self.findings) else ACCEPTED

    def to_json(self) -> dict[str, Any]:
        """CONTRACT §4 ``check --json`` shape."""
        return {
            "file": self.file,
            "ok": self.ok,
            "record": self.record,
            "findings": [f.to_json() for f in self.findings],
        }


