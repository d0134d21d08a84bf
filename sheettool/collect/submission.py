"""What ``collect`` keeps of each submission (the check result of one file is check/result.py)."""

from __future__ import annotations

from dataclasses import dataclass

from ..check.result import (
    ACCEPTED,
    FOREIGN,
    MISSING,
    NEEDS_FIX,
    UNEXPECTED,
    UNREADABLE,
    CheckResult,
)

__all__ = ["ACCEPTED", "FOREIGN", "MISSING", "NEEDS_FIX", "UNEXPECTED", "UNREADABLE", "CheckResult", "Submission"]


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
    def template(self) -> str | None:
        return self.result.template

    @property
    def project_no(self) -> str | None:
        if self.result.record:
            return self.result.record.get("project_no")
        no = self.result.meta.get("project_no")
        return str(no) if no is not None else None
