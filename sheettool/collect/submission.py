"""What ``collect`` keeps of each submission (the check result of one file is check/result.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..check.result import (
    ACCEPTED,
    EXCLUDED,
    FOREIGN,
    MISSING,
    NEEDS_FIX,
    NEVER_CURRENT,
    REJECTED,
    UNEXPECTED,
    UNREADABLE,
    CheckResult,
)
from ..findings import Finding

__all__ = ["ACCEPTED", "CHASED", "CSV_NAMES", "Chase", "EXCLUDED", "FOREIGN", "InboxNote", "MISSING", "NEEDS_FIX", "NEVER_CURRENT", "REJECTED", "UNEXPECTED", "UNREADABLE",
           "CheckResult", "Submission"]


@dataclass
class Submission:
    """One received file as the ledger knows it."""

    sha256: str
    file: str  # path relative to the inbox, as received
    received_at: str  # ISO 8601, when collect first saw this content
    modified_at: str  # ISO 8601, the file's modification time when first seen
    result: CheckResult
    current: bool = False  # the submission that counts for its project
    order_source: str = "mtime"  # what the newer-rule took for its age: "saved" (its own save time) or "mtime"

    @property
    def saved_at(self) -> str | None:
        """The workbook's own save time (docProps/core.xml), when it has one."""
        return self.result.saved_at

    @property
    def template(self) -> str | None:
        return self.result.template

    @property
    def project_no(self) -> str | None:
        """The record's number, else _meta's; a 受付不可 file's is _meta's (the project it was
        issued for, not the one its sheet claims)."""
        no = self.result.meta.get("project_no")
        if self.result.record and not (self.result.status == REJECTED and no is not None):
            return self.result.record.get("project_no")
        return str(no) if no is not None else None


@dataclass(frozen=True)
class InboxNote:
    """Something in the inbox that is not read as a submission (a symlink, a FIFO, a lock file,
    a leftover temp file): listed in 提出状況 and 指摘一覧 while it is there, never stored."""

    file: str  # relative to the inbox
    status: str  # UNREADABLE (the department must act) or EXCLUDED (not a submission)
    finding: Finding


CHASED = (NEEDS_FIX, REJECTED, UNREADABLE, MISSING)


@dataclass(frozen=True)
class Chase:
    """One row of 提出状況 that needs action: its status, and what names it."""

    status: str
    project_no: str | None
    project_name: str | None
    department: str | None
    division: str | None
    file: str | None


# The master book's CSV files: what must never be an input file (cli: outputs.guard)
CSV_NAMES = re.compile(r"(一覧|コスト推移|指標)(_\d+)?\.csv")
