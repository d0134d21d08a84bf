"""What the master book is made of: sheet names, statuses, labels, the table model and the projects."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...spec.master import MasterSpec
from ...wareki import fiscal_label, fiscal_label_with_western
from ...xlsx.styles import DEFAULT_FONT
from ..ledger import SubmissionInfo
from ..submission import (
    ACCEPTED,
    EXCLUDED,
    FOREIGN,
    MISSING,
    NEEDS_FIX,
    NEVER_CURRENT,
    REJECTED,
    UNEXPECTED,
    UNREADABLE,
    Chase,
    InboxNote,
    Submission,
)
from .spill import _Spill, _Spilled

# Sheet names (the visible ones in book order, then the hidden one).
LIST = "一覧"
COSTS = "コスト推移"
INDICATORS = "指標"
DIRECTION_SUMMARY = "方向性集計"
DEPARTMENT_COSTS = "部別コスト"
STATUS = "提出状況"
FINDINGS = "指摘一覧"
HISTORY = "履歴"
RECORDS = "_records"
FONT = DEFAULT_FONT  # the font of the templates: one look across the toolkit
FONT_SIZE = 10
COUNTED = (ACCEPTED, NEEDS_FIX)  # statuses whose figures enter the aggregates
CARRIED = (MISSING, *NEVER_CURRENT)  # _records rows holding the expected record, no return counting
STATUS_ORDER = (MISSING, NEEDS_FIX, UNREADABLE, REJECTED, UNEXPECTED, FOREIGN, EXCLUDED, ACCEPTED)
# 受付不可 and 除外 are counted only when there is one (as 様式違い): most books have none
_OPTIONAL_STATUSES = (REJECTED, FOREIGN, EXCLUDED)
# 履歴: which time decided a file's age (ledger.SAVED / ledger.MTIME)
ORDER_LABEL = {"saved": "ブックの保存日時", "mtime": "ファイル更新日時"}
SEVERITY_LABEL = {"error": "エラー", "warning": "注意"}
CURRENT_LABEL, SUPERSEDED_LABEL = "現行", "置換済み"
SHA_PREFIX = 12
NO_DIRECTION = "未記入"
OTHER_DIRECTION = "その他の値"  # a 要修正 record may hold a value outside the list
UNKNOWN_DEPARTMENT = "（不明）"
UNKNOWN_YEAR = "評価年度不明"
EXTRA_COLORS = {NO_DIRECTION: "#D9D9D9", OTHER_DIRECTION: "#A5A5A5"}


@dataclass(frozen=True)
class Col:
    """One table column: header, value kind (number format) and optional fixed width."""

    header: str
    kind: str = "text"
    width: float | None = None
    csv_header: str | None = None  # where the CSV says it differently (units, %)
    path: str | None = None  # the record field it shows, where it is one (sheettool.frames: choices)


@dataclass(frozen=True)
class Cell:
    """A value whose format differs from its column's (コスト推移's 値 by unit)."""

    value: Any
    kind: str


@dataclass(frozen=True)
class Formula:
    """A formula cell with its computed value cached (readers that do not recalculate see it)."""

    text: str
    value: Any


@dataclass
class Table:
    name: str  # the Excel table name
    cols: list[Col]
    rows: Iterable[list[Any]]  # a list, or for the long tables an iterator read once …
    count: int | None = None  # … with its number of rows (the sheet's dimension precedes its rows)


class _Entry:
    """One submission as the book keeps it: light, with the summary fields of its record.

    Reads like a Submission where ``_live`` and ``_collect`` look (sha256, file,
    received_at, current, project_no, result); ``record`` holds only the fields
    of ``MasterSpec.summary``, and ``spilled`` says where the rest is.
    """

    __slots__ = ("sub", "record", "truthy", "given", "spilled")

    def __init__(self, sub: SubmissionInfo, record: dict[str, Any] | None = None, truthy: bool = False,
                 given: int | None = None, spilled: _Spilled | None = None) -> None:
        self.sub = sub
        self.record = record  # None: no record (or none kept: a file that cannot count now)
        self.truthy = truthy  # the full record was not empty (``record or …`` picks the names)
        self.given = given  # index in ``current``; None for a submission only in ``history``
        self.spilled = spilled

    sha256 = property(lambda self: self.sub.sha256)
    file = property(lambda self: self.sub.file)
    received_at = property(lambda self: self.sub.received_at)
    current = property(lambda self: self.sub.current)
    project_no = property(lambda self: self.sub.project_no)
    result = property(lambda self: self.sub.result)


@dataclass
class _Project:
    """One row of 一覧: a project received, expected, or both."""

    no: str
    ident: dict[str, Any]  # names come from here: the record, else the expected record
    record: dict[str, Any] | None  # its summary fields (``MasterSpec.summary``)
    entry: _Entry | None
    status: str
    carried: _Spilled | None = None  # no record counts: the expected record, kept for _records
    carried_year: Any = None

    @property
    def sub(self) -> SubmissionInfo | None:
        return self.entry.sub if self.entry is not None else None

    @property
    def counted(self) -> bool:
        return self.record is not None and self.status in COUNTED

    @property
    def department(self) -> str:
        """部 for grouping (the aggregates name a missing one)."""
        return self.ident.get("department") or UNKNOWN_DEPARTMENT

    @property
    def division(self) -> str:
        return self.ident.get("division") or UNKNOWN_DEPARTMENT


@dataclass
class _Book:
    fiscal_year: int | None  # None: nothing readable and nothing expected says which year
    projects: list[_Project]
    loose: list[_Entry]  # live unreadable files that do not stand for a project
    live: list[_Entry]
    history: list[SubmissionInfo]
    current: list[SubmissionInfo]  # what ``current`` held, in its order
    spill: _Spill
    names: dict[str, dict[str, Any]] = field(default_factory=dict)  # project_no → identity
    foreign: list[_Entry] = field(default_factory=list)  # current returns of another template (C801)
    notes: list[InboxNote] = field(default_factory=list)  # what is in the inbox but not a submission
    _by_sub: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_sub = {id(p.entry): p.status for p in self.projects if p.entry is not None}

    @property
    def spec(self) -> MasterSpec:
        return self.spill.spec

    def status_of(self, entry: _Entry) -> str:
        """提出状況 of one file: its project's, when it is the file that counts for it."""
        return self._by_sub.get(id(entry), entry.result.status)


@dataclass
class Written:
    """What ``write_all`` wrote, and what it saw of the submissions on the way."""

    csv_paths: list[Path]
    fiscal_year: int | None
    current: list[SubmissionInfo]  # the current submissions without their records, in the order given
    unreadable: list[SubmissionInfo]  # as ``open_unreadable``: the rows 提出状況 shows as 読取不可
    rejected: list[SubmissionInfo] = field(default_factory=list)  # … and as 受付不可
    missing: int = 0  # expected projects 提出状況 shows as 未提出
    # The rows of 提出状況 the office has to chase (要修正, 受付不可, 読取不可, 未提出), in its order.
    to_chase: list[Chase] = field(default_factory=list)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:  # a broken record may hold a list here
        return ("\0unhashable", repr(value))
    return value


def _key(sub: Any) -> tuple[str, str]:
    return sub.sha256, sub.file


def _received(sub: Any) -> float:
    dt = _parse_time(sub.received_at)
    return dt.timestamp() if dt else 0.0


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None


def _natural(text: str) -> tuple:
    """'9' before '10'; '088' with '88'; letters after numbers."""
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", text) if part)


def _counts(sub: Submission | SubmissionInfo | None) -> tuple[int | None, int | None]:
    if sub is None:
        return None, None
    errors = sum(1 for f in sub.result.findings if f.is_error)
    return errors, len(sub.result.findings) - errors


def _cost_entry(record: dict[str, Any] | None, year: int) -> dict[str, Any]:
    for entry in (record or {}).get("costs") or []:
        if entry.get("year") == year:
            return entry
    return {}


def _wareki(year: Any) -> str | None:
    try:
        return _wareki_of(year)
    except TypeError:  # unhashable: not a year anyway
        return None


@lru_cache(maxsize=256)
def _wareki_of(year: Any) -> str | None:
    try:
        return fiscal_label(int(year))
    except (TypeError, ValueError):
        return None


def _year_label(fiscal_year: int | None) -> str:
    return fiscal_label_with_western(fiscal_year) if fiscal_year is not None else UNKNOWN_YEAR


def _ident(book: _Book, no: str | None) -> list[Any]:
    """番号, 事業名, 部, 課 of a project (blank where unknown)."""
    ident = book.names.get(no or "", {})
    return [no, ident.get("project_name"), ident.get("department"), ident.get("division")]


IDENT_COLS = [Col("番号"), Col("事業名"), Col("部"), Col("課")]


def _with_records(book: _Book) -> list[_Project]:
    return [p for p in book.projects if p.record is not None]


def _departments(projects: Iterable[_Project]) -> list[str]:
    """部 in order of first appearance (projects are in 番号 order, which follows the organisation)."""
    return list(dict.fromkeys(p.department for p in projects))


_TEXT_MEMORY = 4096  # texts remembered per column (names repeat on every row of a project)
_NOTHING = object()
