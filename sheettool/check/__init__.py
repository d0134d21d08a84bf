"""``sheettool check``: read one returned workbook back into a record, with findings.

The template comes from the workbook's ``_meta`` (or ``--template``). Cached formula
results are never trusted: every formula is recomputed from the inputs with the
template's own formulas. The checks run in sequence and each adds findings pointing
at its sheet and cell:

1. file safety (xlsx/safety.py) — unreadable files stop here (exit code 2)
2. identity: _meta and its signature (signing.py), template version, fiscal year,
   project number (tamper.py)
3. every field read and normalised (read.py, normalize.py)
4. formulas present and unchanged, locked content unchanged (tamper.py)
5. the record schema, then the template's rules (rules.py)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .result import CheckResult
    from .run import check_bytes, check_file, failure_finding

__all__ = ["CheckResult", "check_bytes", "check_file", "failure_finding"]


def __getattr__(name: str) -> Any:
    # Imported when first used: a collect rerun that checks nothing never loads the checks.
    if name == "CheckResult":
        from .result import CheckResult
        return CheckResult
    if name in ("check_bytes", "check_file", "failure_finding"):
        from . import run
        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
