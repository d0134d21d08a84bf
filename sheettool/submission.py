"""What ``check`` returns for one file, and what ``collect`` keeps of each submission.

These plain data classes are the interface between the reader (check.py),
the ledger (ledger.py) and the master book (masterbook.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .findings import Finding

# Submission status in the master book and the ledger.
ACCEPTED = "受理"  # read, no error findings
NEEDS_FIX = "要修正"  # read, with error findings
UNREADABLE = "読取不可"  # could not be read as a workbook at all
MISSING = "未提出"  # expected, nothing received
UNEXPECTED = "対象外"  # received for a project nobody expected


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

    @property
    def ok(self) -> bool:
        return self.readable and self.record is not None and not any(f.is_error for f in self.findings)

    @property
    def status(self) -> str:
        if not self.readable or self.record is None:
            return UNREADABLE
        return NEEDS_FIX if any(f.is_error for f in self.findings) else ACCEPTED

    def to_json(self) -> dict[str, Any]:
        """CONTRACT §4 ``check --json`` shape."""
        return {
            "file": self.file,
            "ok": self.ok,
            "record": self.record,
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass
class Submission:
    """One received file as the ledger knows it."""

    sha256: str
    file: str  # path relative to the inbox, as received
    received_at: str  # ISO 8601, when collect first saw this content
    modified_at: str  # ISO 8601, the file's modification time when first seen
    result: CheckResult
    current: bool = False  # the submission that counts for its project

    @property
    def project_no(self) -> str | None:
        if self.result.record:
            return self.result.record.get("project_no")
        no = self.result.meta.get("project_no")
        return str(no) if no is not None else None
