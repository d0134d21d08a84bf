"""Who counts: the submissions read once, the live ones chosen, projects given their status."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..ledger import SubmissionInfo
from ..submission import MISSING, NEVER_CURRENT, UNEXPECTED, UNREADABLE, Submission
from .model import _Book, _Entry, _hashable, _key, _natural, _Project, _received
from .spill import _Spill


def _entry(sub: Submission, given: int | None, spill: _Spill, *, json: bool) -> _Entry:
    record = sub.result.record
    if record is None:
        return _Entry(SubmissionInfo.of(sub), given=given)
    return _Entry(SubmissionInfo.of(sub), spill.spec.summary(record), bool(record), given,
                  spill.put(record, json=json))


def _read(current: Iterable[Submission], expected: list[dict] | None,
          history: Iterable[Submission | SubmissionInfo], fiscal_year: int | None | Callable[[], int | None],
          spill: _Spill, *, json: bool) -> _Book:
    """One pass over ``current`` (records spilled as they come), then ``history`` (kept light)."""
    given = [_entry(sub, i, spill, json=json) for i, sub in enumerate(current)]
    keys = {_key(e) for e in given}
    seen = []
    for sub in history:
        record = getattr(sub.result, "record", None)
        # A Submission only in history counts if it is current (see _live): keep its record then.
        # A SubmissionInfo has none to keep; a file that never counts keeps none.
        if record is not None and _key(sub) not in keys and sub.current:
            seen.append(_entry(sub, None, spill, json=json))
        else:
            seen.append(_Entry(SubmissionInfo.of(sub)))
    year = fiscal_year() if callable(fiscal_year) else fiscal_year
    return _collect(given, expected, seen, year, spill)


def _collect(current: list[_Entry], expected: list[dict] | None,
             history: list[_Entry], fiscal_year: int | None, spill: _Spill) -> _Book:
    """Projects with their status, from the submissions and the expected list."""
    template = spill.spec.tpl.id
    ours = [e for e in history if e.sub.template in (None, template) or e.result.status in NEVER_CURRENT]
    foreign = [e for e in history if e.sub.current and e.sub.template not in (None, template)]
    live = _live(current, ours)
    for entry in live:
        if entry.record is None and entry.result.has_record and entry.result.status not in NEVER_CURRENT:
            raise ValueError(f"{entry.file}: a submission that counts now must come with its record "
                             "(in ``current``, or as a Submission in ``history``)")
    exp = None if expected is None else {str(r.get("project_no")): r for r in expected}
    chosen: dict[str, _Entry] = {}
    for sub in sorted(live, key=_received):
        no = _hinted(sub, exp) if sub.project_no is None else str(sub.project_no)  # a broken record may hold a number
        if no is None:
            continue
        prev = chosen.get(no)
        # A record that counts beats a file that never does; otherwise the later one counts.
        if prev is None or _counts_now(sub) >= _counts_now(prev):
            chosen[no] = sub
    projects = []
    for no, sub in chosen.items():
        record = sub.record
        ident = record if sub.truthy else (exp or {}).get(no) or {"project_no": no}
        status = sub.result.status
        if exp is not None and no not in exp and status not in NEVER_CURRENT:
            status = UNEXPECTED
        projects.append(_Project(no, ident, record, sub, status))
        if record is None and exp is not None and no in exp:
            _carry(projects[-1], exp[no], spill)
    for no, rec in (exp or {}).items():
        if no not in chosen:
            projects.append(_Project(no, rec, None, None, MISSING))
            _carry(projects[-1], rec, spill)
    projects.sort(key=lambda p: _natural(p.no))
    picked = {id(p.entry) for p in projects}
    loose = [s for s in live if id(s) not in picked and s.result.status in NEVER_CURRENT]
    names = dict(exp or {})
    names.update({p.no: p.ident for p in projects})
    return _Book(fiscal_year, projects, sorted(loose, key=_received), live, [e.sub for e in history],
                 [e.sub for e in current], spill, names, sorted(foreign, key=_received))


_NAME_NO = re.compile(r"([0-9A-Za-z]+)_")


def _hinted(entry: _Entry, expected: dict[str, dict] | None) -> str | None:
    """The expected project a file that names none stands for, by its name as generate wrote it
    ("088_事業名.xls": a template saved in another format), else None."""
    if expected is None or entry.result.status != UNREADABLE:
        return None
    m = _NAME_NO.match(entry.file.rsplit("/", 1)[-1])
    return m.group(1) if m and m.group(1) in expected else None


def _carry(project: _Project, expected: dict[str, Any], spill: _Spill) -> None:
    """Keep the expected record of a project whose return does not count (rollforward carries it)."""
    if isinstance(expected, dict):
        project.carried = spill.put(expected, json=True)
        project.carried_year = expected.get("fiscal_year")


def _counts_now(entry: _Entry) -> bool:
    return entry.record is not None and entry.result.status not in NEVER_CURRENT


def open_unreadable(current: list[Submission], history: list[Submission]) -> list[Submission]:
    """Unreadable and 受付不可 files nothing later replaced: the rows 提出状況 shows as such."""
    return _open_unreadable(_live(current, history))


def _open_unreadable(live: list[Any]) -> list[Any]:
    return sorted((s for s in live if s.result.status in NEVER_CURRENT), key=_received)


def _live(current: Sequence[Any], history: Sequence[Any]) -> list[Any]:
    """The submissions that count now: current ones, and unreadable files nothing replaced.

    Works on Submissions, SubmissionInfos and book entries alike (same attributes).
    """
    chosen = {_key(s): s for s in current}
    latest_file: dict[str, float] = {}  # the last arrival under each inbox path …
    latest_no: dict[Any, float] = {}  # … and for each project
    for sub in history:
        when = _received(sub)
        if when > latest_file.get(sub.file, -math.inf):
            latest_file[sub.file] = when
        if sub.project_no is not None and when > latest_no.get(_hashable(sub.project_no), -math.inf):
            latest_no[_hashable(sub.project_no)] = when
    for sub in history:
        if _key(sub) in chosen:
            continue
        if sub.current or (sub.result.status in NEVER_CURRENT and not _replaced(sub, latest_file, latest_no)):
            chosen[_key(sub)] = sub
    return list(chosen.values())


def _replaced(sub: Any, latest_file: dict[str, float], latest_no: dict[Any, float]) -> bool:
    """A later file arrived under the same inbox path, or (for an unreadable file) for the same
    project. A 受付不可 file (forged, another year) stays listed until its own path is replaced:
    a genuine file of the project it claims does not make the attempt go away."""
    when = _received(sub)
    if latest_file.get(sub.file, -math.inf) > when:
        return True
    return (sub.result.status == UNREADABLE and sub.project_no is not None
            and latest_no.get(_hashable(sub.project_no), -math.inf) > when)
