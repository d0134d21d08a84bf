"""The submission ledger: every received file, kept forever, in an embedded store.

``collect`` records each file it reads here before it builds the master book, so
that no submission is ever lost, re-reading an unchanged inbox is cheap, and the
master book always shows the latest state of each department's work.

Workspace
    A folder (by default next to the master book: ``MASTER.xlsx`` →
    ``MASTER.sheettool/``, see :func:`workspace_for`) holding ``ledger.sqlite3``
    (SQLite, WAL mode) and ``archive/``. Each received content is archived once
    under its SHA-256 as ``archive/ab/abcdef….xlsx`` (extension ``.xlsx``,
    ``.xlsm`` or ``.bin`` from the first name it was seen under). Archive files
    are written atomically (temp file, fsync, ``os.replace``) and are never
    overwritten or deleted. Their names come only from the hash, so no file name
    or content can make the ledger write outside its workspace.

Tables (schema version 3; version 1 and 2 stores are migrated when opened)
    ``meta(key, value)``
        ``schema_version``; ``fiscal_year:<template>``, the evaluation year the store
        serves for that template's returns, with ``fiscal_year_from:<template>``
        (``expected``: the expected records', ``returns``: the most common year of the
        returns). A store written by a newer sheettool is refused.
    ``submissions`` — one row per distinct content (sha256)
        size, archive extension, the first relative path, first-seen time,
        the file's mtime at first sight, the workbook's own save time
        (``saved_ns``, docProps/core.xml), the time the newer-rule orders by
        (``order_ns``) and which of the two it is (``order_source``: ``saved`` or
        ``mtime``), project number, fiscal year, whether it may become current
        (``eligible``), status, and the check result as JSON (``record_json``,
        ``findings_json`` with code/severity/sheet/cell/field/message/params,
        ``meta_json``, ``readable``). Immutable once written.
    ``sightings`` — one row per (relpath, size, mtime_ns, sha256)
        first and last time that exact file was seen. Answers "every path this
        content was seen under" and lets ``collect`` skip hashing a file whose
        path, size and mtime it has seen before (:meth:`Ledger.known_sha`).
    ``current(template, project_no, sha256)``
        the submission that counts for each project of each template; derived from
        ``submissions`` by the rule below and kept in the same transaction.

Which submission is "newer"
    Ordered by the workbook's own save time (docProps/core.xml ``dcterms:modified``,
    which Excel and LibreOffice write on every save and a copy or a mail client
    does not change), else — no save time, or one later than the file's first
    sight (a clock cannot save in the future) — by the file's modification time
    *at first sight* (``mtime_ns``); then by first-seen time, then by relative
    path (code point order). All are fixed when the content is first recorded,
    so a later re-appearance of an old file (same bytes, even copied with a fresh
    mtime) never makes it current again. The newest *eligible* submission of a
    project (of the store's fiscal year for its template, once known) is current; older ones stay
    in :meth:`Ledger.history`.

    Eligible means readable with a project number in its record, and not
    受付不可 (forged, never issued, for another project: check/result.py
    REJECTING). A file whose
    record has a project number is attached to that project even if it has
    error findings (status 要修正), and it does become current when it is the
    newest: the master book must show the latest state of the department's
    work, errors included, rather than silently an older version. A file that
    could not be read (status 読取不可) is kept in history (under the project
    its ``_meta`` names, if any) but never becomes current for any project.

Idempotency
    Recording the same content again, under any path, never adds a
    submission, never changes a stored result, the current choice or the
    archive; it only adds a sighting (a new path/size/mtime) or moves that
    sighting's ``last_seen``. So running ``collect`` twice on the same inbox
    leaves :meth:`Ledger.current`, :meth:`Ledger.history` and the archive
    exactly as they were. The first stored check result of a content is kept.

    The one exception: a result that cannot be read back (an older version stored NaN,
    which is not JSON, or a record with 1.7e308). :meth:`Ledger.repair_results`, run
    once per store by ``collect``, checks the archived file again and stores that result
    (the file unreadable, C802, if its archived copy is gone). Reading is tolerant all
    the same: such a row reads as an unreadable file with finding C802, never an error.

Crash safety and concurrency
    Everything one file contributes is one ``BEGIN IMMEDIATE`` transaction,
    preceded by the archive write (content-addressed, so a leftover from a
    crash is harmless and reused by the next run). A killed ``collect`` leaves
    the store consistent and the next run finishes the job. All writes happen
    in one process per ``collect``; a second concurrent ``collect`` waits on
    the lock (busy timeout) and gets :class:`LedgerLocked`, a Japanese message,
    if it waits too long. WAL needs a local disk: on a network share, put the
    store on a local folder (``--store``). A kill during an archive write may
    leave an ``archive/ab/.tmp-<pid>-*.part`` file; it is never referenced, and
    :meth:`Ledger.tidy` (which the next ``collect`` calls) removes it once
    process ``<pid>`` is gone (POSIX; elsewhere it may be removed by hand), so
    a resumed run ends with the same archive as an uninterrupted one. An archive file that no longer matches its hash is renamed
    ``….damaged-<ns>`` (kept, not deleted) and written again from the inbox.

    ``current`` is keyed by (template, project number): returns of two templates never
    mix. One store serves one master book, i.e. one evaluation year.

Use from ``collect`` (checks may run in worker processes; writes stay here)::

    with Ledger.open(workspace_for(master)) as ledger:
        for path in files:
            rel, st = relpath_for(inbox, path), path.stat()
            sha = ledger.known_sha(rel, st.st_size, st.st_mtime_ns)   # skip hashing
            data = result = None
            if sha is None:
                data = path.read_bytes()
                sha = sha256_bytes(data)
                if not ledger.has_result(sha):                          # skip checking
                    result = check_file(path)
            ledger.record_file(rel, data, sha, st.st_mtime_ns, result)
        with ledger.snapshot():                                         # one state for both reads
            history = ledger.history_info()                             # no records: small
            for sub in ledger.iter_current():                           # one record at a time
                ...

:meth:`Ledger.current` and :meth:`Ledger.history` return the same as lists, records included.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

from .. import findings, jsontext
from ..fileio import describe_os_error
from ..findings import Finding
from ..spec import DEFAULT_TEMPLATE
from .submission import (
    ACCEPTED,
    NEEDS_FIX,
    NEVER_CURRENT,
    REJECTED,
    UNREADABLE,
    CheckResult,
    Submission,
)

__all__ = [
    "SCHEMA_VERSION",
    "Archived",
    "Ledger",
    "LedgerError",
    "LedgerLocked",
    "ResultInfo",
    "Sighting",
    "SubmissionInfo",
    "archive_content",
    "archive_ext",
    "relpath_for",
    "relpath_text",
    "sha256_bytes",
    "workspace_for",
]

SCHEMA_VERSION = 3  # 2: submissions.template, current keyed by (template, project_no);
# 3: submissions.fiscal_year / saved_ns / order_ns / order_source, meta fiscal_year
DB_NAME = "ledger.sqlite3"
ARCHIVE_DIR = "archive"
DEFAULT_TIMEOUT = 30.0  # seconds a write waits for another collect on the same store
_CHECKED_KEY = "results_checked"  # in meta: every stored result was read back once (suspect_results)

_SHA_RE = re.compile(r"[0-9a-f]{64}")
_ARCHIVE_EXTS = (".xlsx", ".xlsm")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SAVED, MTIME = "saved", "mtime"  # order_source: what stood for a file's age in the newer-rule
_EARLIEST_SAVE_NS = 946_684_800 * 10**9  # 2000-01-01: an earlier save time is a wrong clock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions(
    sha256        TEXT PRIMARY KEY CHECK (length(sha256) = 64),
    size          INTEGER NOT NULL,
    ext           TEXT NOT NULL CHECK (ext IN ('.xlsx', '.xlsm', '.bin')),
    first_path    TEXT NOT NULL,
    first_seen_ns INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    saved_ns      INTEGER,
    order_ns      INTEGER NOT NULL,
    order_source  TEXT NOT NULL CHECK (order_source IN ('saved', 'mtime')),
    project_no    TEXT,
    template      TEXT,
    fiscal_year   INTEGER,
    eligible      INTEGER NOT NULL CHECK (eligible IN (0, 1)),
    status        TEXT NOT NULL,
    readable      INTEGER NOT NULL,
    record_json   TEXT,
    findings_json TEXT NOT NULL,
    meta_json     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS submissions_order
    ON submissions(template, project_no, eligible, order_ns, first_seen_ns, first_path);
CREATE TABLE IF NOT EXISTS sightings(
    relpath       TEXT NOT NULL,
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    sha256        TEXT NOT NULL REFERENCES submissions(sha256),
    first_seen_ns INTEGER NOT NULL,
    last_seen_ns  INTEGER NOT NULL,
    PRIMARY KEY (relpath, size, mtime_ns, sha256)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sightings_sha ON sightings(sha256);
CREATE TABLE IF NOT EXISTS current(
    template   TEXT NOT NULL,
    project_no TEXT NOT NULL,
    sha256     TEXT NOT NULL REFERENCES submissions(sha256),
    PRIMARY KEY (template, project_no)
);
"""

# What the evaluation office entered in the master book (二次評価, comments): every change kept,
# the latest value of each (template, project, field) is the one that counts.
_OFFICE_TABLE = """
CREATE TABLE IF NOT EXISTS office_entries(
    template   TEXT NOT NULL,
    project_no TEXT NOT NULL,
    path       TEXT NOT NULL,
    value_json TEXT NOT NULL,
    entered_ns INTEGER NOT NULL,
    PRIMARY KEY (template, project_no, path, entered_ns)
) WITHOUT ROWID
"""

# A counter every change of what the outputs show moves (triggers, so no writer can forget it):
# submissions, the current choice, the office's entries, the store's fiscal years, sightings
# added or removed, but not a sighting's last_seen. ``collect`` writes the master book and CSV
# only when it moved (or the outputs were touched) since they were last written (``outputs``).
_GENERATION = [
    "CREATE TABLE IF NOT EXISTS generation(n INTEGER NOT NULL)",
    "INSERT INTO generation(n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM generation)",
    "CREATE TABLE IF NOT EXISTS outputs(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    *(f"CREATE TRIGGER IF NOT EXISTS generation_{name} AFTER {event} ON {table}{when}"
      " BEGIN UPDATE generation SET n = n + 1; END"
      for name, event, table, when in (
          *((f"{t}_{e.lower()}", e, t, "") for t in ("submissions", "office_entries") for e in ("INSERT", "UPDATE", "DELETE")),
          ("current_insert", "INSERT", "current", ""), ("current_delete", "DELETE", "current", ""),
          ("current_update", "UPDATE", "current", " WHEN OLD.sha256 IS NOT NEW.sha256"),
          ("meta_insert", "INSERT", "meta", ""), ("meta_delete", "DELETE", "meta", ""),
          ("meta_update", "UPDATE", "meta", " WHEN OLD.value IS NOT NEW.value"),
          ("sightings_insert", "INSERT", "sightings", ""), ("sightings_delete", "DELETE", "sightings", ""),
          ("sightings_update", "UPDATE OF relpath, size, mtime_ns, sha256", "sightings", ""),
      )),
]

# Version 2's own tables, which a version 1 store is migrated to first (then to 3).
_CURRENT_V2 = """
CREATE TABLE current(
    template   TEXT NOT NULL,
    project_no TEXT NOT NULL,
    sha256     TEXT NOT NULL REFERENCES submissions(sha256),
    PRIMARY KEY (template, project_no)
)"""

# The newer-rule, oldest first; reversed (DESC) it picks the current one.
_ORDER = "s.order_ns, s.first_seen_ns, s.first_path"
_COLUMNS = (
    "sha256", "size", "ext", "first_path", "first_seen_ns", "mtime_ns", "project_no", "template",
    "eligible", "status", "readable", "record_json", "findings_json", "meta_json",
    "saved_ns", "order_source", "fiscal_year",
)
_SELECT = (
    "SELECT " + ", ".join("s." + c for c in _COLUMNS) + ", c.sha256 IS NOT NULL"
    " FROM submissions s LEFT JOIN current c ON c.sha256 = s.sha256"
)
# What a light entry needs: no record JSON, just whether there is one and its project number.
_INFO_SELECT = (
    "SELECT s.sha256, s.first_path, s.first_seen_ns, s.mtime_ns, s.status, s.readable,"
    " s.record_json IS NOT NULL, s.record_json IS NOT NULL AND s.record_json != '{}',"
    " CASE WHEN json_valid(s.record_json) THEN json_extract(s.record_json, '$.project_no') END,"
    " CASE WHEN json_valid(s.record_json) THEN json_type(s.record_json, '$.project_no') END,"
    " s.meta_json, s.findings_json, c.sha256 IS NOT NULL, s.template,"
    " s.record_json IS NULL OR json_valid(s.record_json),"
    " s.saved_ns, s.order_source, s.fiscal_year"
    " FROM submissions s LEFT JOIN current c ON c.sha256 = s.sha256"
)
# The store's fiscal year (the 4th and 5th parameters; NULL while unknown) filters the candidates.
_NEWEST = (
    "SELECT sha256 FROM submissions s WHERE template = ? AND project_no = ? AND eligible = 1"
    " AND (? IS NULL OR fiscal_year = ?)"
    " ORDER BY " + ", ".join(f"{column} DESC" for column in _ORDER.split(", ")) + " LIMIT 1"
)


class LedgerError(Exception):
    """The store cannot be used; the message is Japanese and meant for users."""


class LedgerLocked(LedgerError):
    """Another process held the store's write lock for longer than the timeout."""


@dataclass(frozen=True)
class Sighting:
    """One way a content was seen: a path with a size and a modification time."""

    relpath: str
    size: int
    modified_at: str
    first_seen: str
    last_seen: str


@dataclass(frozen=True)
class ResultInfo:
    """A stored check result without its record: status, findings, whether a record exists."""

    file: str
    status: str
    findings: tuple[Finding, ...]
    readable: bool
    has_record: bool

    @property
    def ok(self) -> bool:
        """As ``CheckResult.ok``: read, with a record and no error finding."""
        return self.status == ACCEPTED


@dataclass(frozen=True)
class SubmissionInfo:
    """A submission without its record (``result`` is a :class:`ResultInfo`).

    The same attributes as :class:`Submission` apart from ``result.record``, so
    lists such as 履歴 and 指摘一覧 read either. Small: a ledger's whole history
    fits in memory this way, however large its records are.
    """

    sha256: str
    file: str
    received_at: str
    modified_at: str
    project_no: Any  # as Submission.project_no: the record's value, else _meta's as text
    result: ResultInfo
    current: bool = False
    template: str | None = None  # the template it was read by (None: unreadable, none named)
    saved_at: str | None = None  # the workbook's own save time, as Submission.saved_at
    order_source: str = MTIME  # which time the newer-rule took for it (SAVED or MTIME)
    fiscal_year: int | None = None  # its record's

    @classmethod
    def of(cls, sub: Submission | SubmissionInfo) -> SubmissionInfo:
        if isinstance(sub, SubmissionInfo):
            return sub
        res = sub.result
        info = ResultInfo(res.file, res.status, tuple(res.findings), res.readable, res.record is not None)
        fy = (res.record or {}).get("fiscal_year")
        return cls(sub.sha256, sub.file, sub.received_at, sub.modified_at, sub.project_no, info, sub.current,
                   sub.template, sub.saved_at, sub.order_source, fy if isinstance(fy, int) else None)


# --- small helpers -----------------------------------------------------------------


def workspace_for(master: str | Path) -> Path:
    """The default workspace of a master book: ``MASTER.xlsx`` → ``MASTER.sheettool``."""
    master = Path(master)
    return master.with_name(master.stem + ".sheettool")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def relpath_for(inbox: str | Path, path: str | Path) -> str:
    """``path`` relative to ``inbox`` with ``/`` separators, as the ledger stores it.

    Names are kept exactly as the file system gives them (no Unicode
    normalisation): two files whose names differ only as NFC/NFD are two files.
    """
    rel = Path(path).relative_to(Path(inbox))
    return _text(rel.as_posix())


def relpath_text(name: str) -> str:
    """One file or folder name as ``relpath_for`` puts it in a relative path."""
    return _text(name)


def _text(name: str) -> str:
    # Undecodable bytes in a POSIX file name arrive as lone surrogates, which
    # SQLite cannot store; keep them visible as \\xNN instead.
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _check_relpath(relpath: str) -> str:
    if not isinstance(relpath, str) or not relpath or "\x00" in relpath:
        raise ValueError(f"relpath must be a non-empty string without NUL: {relpath!r}")
    relpath = _text(relpath)
    pure = PurePosixPath(relpath)
    if pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"relpath must be relative to the inbox: {relpath!r}")
    return relpath


def _check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA_RE.fullmatch(sha256):
        raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
    return sha256


def archive_ext(relpath: str) -> str:
    suffix = PurePosixPath(relpath).suffix.lower()
    return suffix if suffix in _ARCHIVE_EXTS else ".bin"


def _iso(ns: int) -> str:
    """ISO 8601 in local time with offset, microsecond precision."""
    moment = _EPOCH + timedelta(microseconds=ns // 1000)
    try:
        return moment.astimezone().isoformat()
    except (OverflowError, OSError, ValueError):  # far outside the local tz tables
        return moment.isoformat()


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _dumps(value: Any) -> str:
    # strict JSON always: SQLite's JSON functions refuse NaN, and one such row would break every query
    return jsontext.dumps(value, ensure_ascii=False, sort_keys=True, default=_json_default)


class _Damaged(ValueError):
    """A stored result that is not strict JSON, or holds a number no check result can hold."""


_ABSURD = 1e15  # beyond every bound of every template (money tops out at 999,999,999)


def _loads(text: str, *, record: bool = False) -> Any:
    """Stored JSON read back strictly (a row an older version wrote may hold NaN, or a record 1.7e308)."""
    try:
        value = jsontext.loads(text)
    except ValueError as exc:
        raise _Damaged(str(exc)) from None
    if record and _absurd(value):
        raise _Damaged("記録に大きすぎる数値があります")
    return value


def _absurd(value: Any) -> bool:
    stack = [value]
    while stack:  # iterative: loads already bounded the depth, this keeps to it
        item = stack.pop()
        if isinstance(item, float | int) and not isinstance(item, bool):
            if not -_ABSURD <= item <= _ABSURD:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _project_no(result: CheckResult) -> str | None:
    # Same rule as Submission.project_no: the record's number, else _meta's; a 受付不可 file
    # stands for the project it was issued for (_meta's), not the one its sheet claims.
    meta_no = result.meta.get("project_no") if isinstance(result.meta, dict) else None
    use_meta = not result.record or (result.status == REJECTED and meta_no is not None)
    raw = meta_no if use_meta else result.record.get("project_no")
    text = str(raw).strip() if raw is not None else ""
    return text or None


def _template(result: CheckResult) -> str | None:
    """The template a result was read by; for an unreadable file, the one its ``_meta`` names."""
    if result.template:
        return result.template
    named = result.meta.get("template_id") if isinstance(result.meta, dict) else None
    return str(named) if named else (DEFAULT_TEMPLATE if result.record else None)


def _eligible(result: CheckResult) -> bool:
    return result.status not in NEVER_CURRENT and bool(result.record) and _project_no(result) is not None


def _fiscal_year(result: CheckResult) -> int | None:
    fy = (result.record or {}).get("fiscal_year")
    return fy if isinstance(fy, int) and not isinstance(fy, bool) else None


def _ns(iso: str | None) -> int | None:
    """Nanoseconds since the epoch of an ISO 8601 time with offset; None when there is none."""
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def order_time(saved_ns: int | None, mtime_ns: int, first_seen_ns: int) -> tuple[int, str]:
    """What the newer-rule orders a file by: its save time when plausible, else its mtime.

    A save time before 2000 or after the file was first seen is a wrong clock (or a lie).
    """
    if saved_ns is not None and _EARLIEST_SAVE_NS <= saved_ns <= first_seen_ns:
        return saved_ns, SAVED
    return mtime_ns, MTIME


def _json_value(value: Any, json_type: str | None) -> Any:
    """What json.loads gives for a value SQLite's json_extract returned (true/false come as 1/0)."""
    if json_type == "true":
        return True
    if json_type == "false":
        return False
    if json_type in ("object", "array"):
        return _loads(value)
    return value


def _findings_to_json(findings: list[Finding]) -> str:
    return _dumps([{**f.to_json(), "params": f.params} for f in findings])


def _findings_from_json(text: str) -> list[Finding]:
    return [
        Finding(code=d["code"], severity=d["severity"], message=d["message"],
                sheet=d.get("sheet"), cell=d.get("cell"), field=d.get("field"),
                params=d.get("params") or {})
        for d in _loads(text)
    ]


def _label(year: int, label: Any) -> str:
    try:
        return label(year)
    except ValueError:
        return f"{year}年度"


def _archived_save_time(path: Path) -> str | None:
    """The save time inside an archived workbook (for the version 3 migration); None if unreadable."""
    from ..check.read import saved_time
    from ..xlsx.read import Book
    from ..xlsx.safety import UnreadableFile, open_package

    try:
        return saved_time(Book(open_package(path)))
    except (UnreadableFile, OSError, ValueError):
        return None
    except Exception:  # noqa: BLE001 -- whatever an old archived file holds, the migration goes on
        return None


def _fsync_dir(path: Path) -> None:
    # Makes the rename durable on POSIX; directories cannot be opened on Windows.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        _fsync_dir(path.parent.parent)  # the new archive/ab/ entry itself
    # The writer's pid in the name lets a later open tell a crash's leftover from a live write.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{os.getpid()}-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


_PART_RE = re.compile(r"\.tmp-(\d+)-.*\.part")


def _remove_stale_parts(archive: Path) -> list[Path]:
    """Delete archive temp files whose writing process no longer exists (a kill's leftovers).

    POSIX only: there ``kill(pid, 0)`` merely asks whether the process exists.
    A part of a live process (another collect on this store) is left alone.
    """
    removed: list[Path] = []
    if os.name != "posix":
        return removed
    for part in archive.glob("*/.tmp-*.part"):
        match = _PART_RE.fullmatch(part.name)
        if match is None:
            continue  # not ours (or from an older version): leave it for a person to judge
        pid = int(match.group(1))
        if pid == os.getpid():
            continue
        if _process_is_gone(pid):
            part.unlink(missing_ok=True)
            removed.append(part)
    return removed


def _process_is_gone(pid: int) -> bool:
    """True when no live process has ``pid``; a zombie counts as gone.

    A killed worker can stay a zombie for a long time (in a container, PID 1
    may never reap it), and ``kill(pid, 0)`` still succeeds on a zombie.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False  # alive under another user, or not a pid we can ask about
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # the state letter follows the parenthesised command name, which may itself hold ")"
    return stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"])


def _file_sha256(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


_SQLITE_REASONS = (  # SQLite's English, as the user needs it
    ("disk is full", "ディスクの空き容量が足りません"),
    ("disk i/o error", "ディスクに書き込めません。空き容量が足りないか、装置の入出力エラーです"),
    ("readonly", "読み取り専用の場所か、書き込みの権限がありません"),
    ("unable to open", "台帳ファイルを開けません"),
)


def _sqlite_reason(exc: sqlite3.Error) -> str:
    text = str(exc).lower()
    return next((reason for key, reason in _SQLITE_REASONS if key in text), str(exc))


def _damaged_result(path: str, template: str | None, exc: BaseException) -> CheckResult:
    """What a stored result that cannot be read back stands for: an unreadable file, said so."""
    detail = str(exc) if isinstance(exc, _Damaged) else "保存形式が正しくありません"
    return CheckResult(path, None, [findings.make("C802", file=path, detail=detail)], readable=False,
                       template=template)


# --- the ledger --------------------------------------------------------------------


@dataclass(frozen=True)
class Archived:
    """Content already stored by :func:`archive_content` (in a worker): only its size travels back."""

    size: int


def archive_path_for(workspace: Path, sha256: str, ext: str) -> Path:
    """``archive/ab/<sha><ext>``: the name comes only from the (validated) hash, so
    nothing a sender controls can steer a write outside the workspace."""
    return Path(workspace) / ARCHIVE_DIR / sha256[:2] / (_check_sha(sha256) + ext)


def archive_content(workspace: Path, sha256: str, ext: str, data: bytes, *, trust_existing: bool = False) -> None:
    """Make sure the archive holds ``data`` under its hash, durably; never overwrite good content.

    Safe to call from a worker process before the ledger records the file: the
    write is atomic and content-addressed, so a copy written twice is the same.
    """
    path = archive_path_for(workspace, sha256, ext)
    try:
        if path.exists():
            # A recorded content's file was verified when written; a size check
            # is enough. A leftover from a crash gets the full hash check.
            if trust_existing and path.stat().st_size == len(data):
                return
            if _file_sha256(path) == sha256:
                return
            # Damaged copy: set it aside (never delete), then write a good one.
            os.replace(path, path.with_name(f"{path.name}.damaged-{time.time_ns()}"))
        _atomic_write(path, data)
    except OSError as exc:
        raise LedgerError(
            f"受領ファイルを台帳フォルダに保管できません（{path}: {describe_os_error(exc, name=False)}）。"
            "空き容量と書き込み権限を確認してください。"
        ) from exc


class Ledger:
    """An open store. Use from one thread of one process; see the module docstring."""

    def __init__(self, workspace: Path, conn: sqlite3.Connection, timeout: float) -> None:
        self.workspace = workspace
        self.db_path = workspace / DB_NAME
        self._conn = conn
        self._timeout = timeout

    # -- opening and closing

    @classmethod
    def open(cls, workspace: str | Path, *, timeout: float = DEFAULT_TIMEOUT) -> Ledger:
        """Open (creating if needed) the store in folder ``workspace``."""
        workspace = Path(workspace)
        try:
            (workspace / ARCHIVE_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"台帳フォルダ（{workspace}）を作成できません（{describe_os_error(exc, name=False)}）。"
                "書き込みできる場所を --store で指定してください。"
            ) from exc
        try:
            conn = sqlite3.connect(workspace / DB_NAME, timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise LedgerError(f"台帳ファイル（{workspace / DB_NAME}）を開けません（{exc}）。") from exc
        ledger = cls(workspace, conn, timeout)
        try:
            with ledger._errors():
                ledger._prepare()
        except BaseException:
            conn.close()
            raise
        return ledger

    def _wal(self) -> None:
        """Switch to WAL, waiting as for any lock: SQLite may refuse the switch at once ("database is
        locked", no busy handler) while a second collect creates the same new ledger."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _prepare(self) -> None:
        self._conn.execute("PRAGMA foreign_keys = ON")
        # WAL: readers never block the writer, commits are atomic after a kill.
        # NORMAL sync: a power cut may lose the last commits, never consistency;
        # the inbox still holds those files and the next run records them again.
        self._wal()
        self._conn.execute("PRAGMA synchronous = NORMAL")
        version = self._schema_version()
        if version is None:
            with self._transaction() as conn:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            version = self._schema_version()
        if version == 1:
            self._migrate_from_1()
            version = self._schema_version()
        if version == 2:
            self._migrate_from_2()
            version = self._schema_version()
        if version is None:
            raise LedgerError(
                f"台帳（{self.db_path}）の形式（schema_version）を確認できません。"
                "別の台帳フォルダを --store で指定してください。"
            )
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"台帳（{self.db_path}）は新しい版の sheettool（台帳形式 {version}）で"
                f"作成されているため、この版（台帳形式 {SCHEMA_VERSION}）では開けません。"
                "sheettool を更新するか、別の台帳フォルダを --store で指定してください。"
            )
        with self._transaction() as conn:  # added beside any version: older readers ignore it
            conn.execute(_OFFICE_TABLE)
            for statement in _GENERATION:
                conn.execute(statement)

    def _migrate_from_1(self) -> None:
        """Version 1 knew one template: every submission is the default template's (or its _meta's)."""
        with self._transaction() as conn:
            conn.execute("ALTER TABLE submissions ADD COLUMN template TEXT")
            for sha, meta_json, has_record in conn.execute(
                    "SELECT sha256, meta_json, record_json IS NOT NULL FROM submissions").fetchall():
                named = json.loads(meta_json).get("template_id")
                template = str(named) if named else (DEFAULT_TEMPLATE if has_record else None)
                conn.execute("UPDATE submissions SET template = ? WHERE sha256 = ?", (template, sha))
            conn.execute("DROP INDEX IF EXISTS submissions_order")
            conn.execute("ALTER TABLE current RENAME TO current_v1")
            conn.execute(_CURRENT_V2)
            conn.execute("INSERT INTO current(template, project_no, sha256) SELECT s.template, c.project_no,"
                         " c.sha256 FROM current_v1 c JOIN submissions s ON s.sha256 = c.sha256")
            conn.execute("DROP TABLE current_v1")
            conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")

    def _migrate_from_2(self) -> None:
        """Version 3 orders by the workbook's save time and knows each record's fiscal year.

        Both are read again from what the store holds: the year from the stored record, the
        save time from the archived file itself (a file that cannot be read keeps its mtime).
        The current choice is then made again by the new rule; no row is dropped.
        """
        rows = self._conn.execute(
            "SELECT sha256, ext, record_json, mtime_ns, first_seen_ns FROM submissions").fetchall()
        updates = []
        for sha, ext, record_json, mtime_ns, first_seen_ns in rows:
            try:
                record = json.loads(record_json) if record_json else None
            except ValueError:  # a damaged result (repair_results checks it again)
                record = None
            fy = record.get("fiscal_year") if isinstance(record, dict) else None
            saved_ns = _ns(_archived_save_time(self._archive_file(sha, ext)))
            order_ns, source = order_time(saved_ns, mtime_ns, first_seen_ns)
            updates.append((fy if isinstance(fy, int) and not isinstance(fy, bool) else None,
                            saved_ns, order_ns, source, sha))
        with self._transaction() as conn:
            if self._schema_version() != 2:  # another collect migrated it meanwhile
                return
            conn.execute("ALTER TABLE submissions ADD COLUMN saved_ns INTEGER")
            conn.execute("ALTER TABLE submissions ADD COLUMN order_ns INTEGER NOT NULL DEFAULT 0")
            conn.execute("ALTER TABLE submissions ADD COLUMN order_source TEXT NOT NULL DEFAULT 'mtime'"
                         " CHECK (order_source IN ('saved', 'mtime'))")
            conn.execute("ALTER TABLE submissions ADD COLUMN fiscal_year INTEGER")
            conn.executemany("UPDATE submissions SET fiscal_year = ?, saved_ns = ?, order_ns = ?,"
                             " order_source = ? WHERE sha256 = ?", updates)
            conn.execute("DROP INDEX IF EXISTS submissions_order")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            self._recompute_all(conn)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def _schema_version(self) -> int | None:
        has_meta = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            return int(row[0]) if row else None
        except ValueError:
            return None

    def close(self) -> None:
        self._conn.close()

    def tidy(self) -> list[Path]:
        """Remove the archive temp files of killed writers; return what was removed.

        Only files named by a process that no longer exists (POSIX); a live
        collect's half-written file is left alone, and so is anything else.
        """
        with suppress(OSError):  # tidying only: a leftover is never referenced
            return _remove_stale_parts(self.workspace / ARCHIVE_DIR)
        return []

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- errors and transactions

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite errors into Japanese ``LedgerError``s."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "locked" in text or "busy" in text:
                raise LedgerLocked(
                    f"台帳（{self.db_path}）は他の処理（別の collect など）が使用中のため、"
                    f"{self._timeout:g} 秒待っても書き込めませんでした。"
                    "その処理が終わってから、もう一度実行してください。"
                ) from exc
            raise LedgerError(f"台帳（{self.db_path}）を読み書きできません（{_sqlite_reason(exc)}）。"
                              "台帳フォルダの空き容量と書き込み権限を確認してください。") from exc
        except sqlite3.DatabaseError as exc:
            raise LedgerError(
                f"台帳（{self.db_path}）が壊れているか、台帳ファイルではありません（{exc}）。"
                "別の台帳フォルダを --store で指定してください。"
            ) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so two collects serialise
        # here (waiting up to the busy timeout) instead of failing mid-way.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    # -- lookups that let collect skip work

    def known_sha(self, relpath: str, size: int, mtime_ns: int) -> str | None:
        """The content hash of a file seen before with this path, size and mtime.

        None when never seen, or when that triple was seen with two different
        contents (mtime tampering): then the caller must hash the file.
        """
        with self._errors():
            rows = self._conn.execute(
                "SELECT DISTINCT sha256 FROM sightings WHERE relpath = ? AND size = ? AND mtime_ns = ?",
                (_check_relpath(relpath), size, mtime_ns),
            ).fetchall()
        return rows[0][0] if len(rows) == 1 else None

    def has_result(self, sha256: str) -> bool:
        """True when this content is recorded with its check result (no need to check again)."""
        with self._errors():
            row = self._conn.execute(
                "SELECT 1 FROM submissions WHERE sha256 = ?", (_check_sha(sha256),)
            ).fetchone()
        return row is not None

    # -- recording

    def record_file(self, relpath: str, data: bytes | Archived | None, sha256: str, mtime_ns: int,
                    result: CheckResult | None) -> Submission:
        """Record one sighting of a file (see :meth:`record`); return its submission as stored."""
        self.record(relpath, data, sha256, mtime_ns, result)
        with self._errors():
            row = self._conn.execute(_SELECT + " WHERE s.sha256 = ?", (_check_sha(sha256),)).fetchone()
        return self._submission(row)

    def record(self, relpath: str, data: bytes | Archived | None, sha256: str, mtime_ns: int,
               result: CheckResult | None) -> None:
        """Record one sighting of a file.

        ``data`` may be None and ``result`` may be None only for content the
        ledger already has (``has_result``); ``Archived`` stands for content a
        worker has already stored with :func:`archive_content`. A result for
        known content is ignored: the first stored result is kept. Archive
        first, then all rows in one transaction.
        """
        relpath = _check_relpath(relpath)
        sha256 = _check_sha(sha256)
        if type(data) is bytes and sha256_bytes(data) != sha256:
            raise ValueError(f"sha256 does not match the data of {relpath!r}")
        with self._errors():
            known = self._row(sha256)
            if known is None and (data is None or result is None):
                raise ValueError(f"new content {sha256} needs both data and result ({relpath!r})")
            ext = known["ext"] if known else archive_ext(relpath)
            if type(data) is Archived:
                path = self._archive_file(sha256, ext)
                if not path.is_file() or path.stat().st_size != data.size:
                    raise ValueError(f"{sha256} is not in the archive as claimed ({relpath!r})")
            elif data is not None:
                self._archive(sha256, ext, data, trust_existing=known is not None)
            size = known["size"] if data is None else len(data) if type(data) is bytes else data.size
            now = time.time_ns()
            with self._transaction() as conn:
                # Re-read inside the lock: another collect may have added it meanwhile.
                if self._row(sha256) is None:
                    assert result is not None and data is not None
                    self._insert(conn, relpath, size, sha256, mtime_ns, result, now)
                conn.execute(
                    "INSERT INTO sightings(relpath, size, mtime_ns, sha256, first_seen_ns, last_seen_ns)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(relpath, size, mtime_ns, sha256)"
                    " DO UPDATE SET last_seen_ns = excluded.last_seen_ns",
                    (relpath, size, mtime_ns, sha256, now, now),
                )

    def record_seen(self, seen: list[tuple[str, str, int]]) -> None:
        """``record(relpath, None, sha256, mtime_ns, None)`` for each (relpath, sha256, mtime_ns)
        of content the ledger has (``has_result``), in one transaction: a rerun over an unchanged
        inbox moves each sighting's ``last_seen`` and nothing else."""
        if not seen:
            return
        rows = [(_check_relpath(relpath), _check_sha(sha256), mtime_ns) for relpath, sha256, mtime_ns in seen]
        now = time.time_ns()
        with self._errors(), self._transaction() as conn:
            sizes = {}
            for _, sha256, _ in rows:
                if sha256 not in sizes:
                    known = self._row(sha256)
                    if known is None:
                        raise ValueError(f"record_seen: content {sha256} is not in the ledger")
                    sizes[sha256] = known["size"]
            conn.executemany(
                "INSERT INTO sightings(relpath, size, mtime_ns, sha256, first_seen_ns, last_seen_ns)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(relpath, size, mtime_ns, sha256)"
                " DO UPDATE SET last_seen_ns = excluded.last_seen_ns",
                [(relpath, sizes[sha256], mtime_ns, sha256, now, now) for relpath, sha256, mtime_ns in rows])

    def generation(self) -> int:
        """Moves with every change of what the outputs show (see ``_GENERATION``)."""
        with self._errors():
            row = self._conn.execute("SELECT n FROM generation").fetchone()
        return int(row[0]) if row else -1

    def outputs_state(self) -> dict[str, Any] | None:
        """What ``set_outputs_state`` kept about the outputs last written, or None."""
        with self._errors():
            row = self._conn.execute("SELECT value FROM outputs WHERE key = 'last'").fetchone()
        if row is None:
            return None
        try:
            state = json.loads(row[0])
        except ValueError:
            return None
        return state if isinstance(state, dict) else None

    def set_outputs_state(self, state: dict[str, Any] | None) -> None:
        """Keep (None: forget) what was written; never moves ``generation``."""
        with self._errors(), self._transaction() as conn:
            conn.execute("DELETE FROM outputs WHERE key = 'last'")
            if state is not None:
                conn.execute("INSERT INTO outputs(key, value) VALUES ('last', ?)",
                             (json.dumps(state, ensure_ascii=False, sort_keys=True),))

    def _insert(self, conn: sqlite3.Connection, relpath: str, size: int, sha256: str,
                mtime_ns: int, result: CheckResult, now: int) -> None:
        project = _project_no(result)
        template = _template(result)
        saved_ns = _ns(result.saved_at)
        order_ns, source = order_time(saved_ns, mtime_ns, now)
        conn.execute(
            "INSERT INTO submissions(sha256, size, ext, first_path, first_seen_ns, mtime_ns, saved_ns,"
            " order_ns, order_source, project_no, template, fiscal_year, eligible, status, readable,"
            " record_json, findings_json, meta_json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sha256, size, archive_ext(relpath), relpath, now, mtime_ns, saved_ns, order_ns, source,
             project, template, _fiscal_year(result), int(_eligible(result)), result.status,
             int(result.readable), None if result.record is None else _dumps(result.record),
             _findings_to_json(result.findings), _dumps(result.meta)),
        )
        if _eligible(result):
            self._recompute_current(conn, template, project)

    def _recompute_all(self, conn: sqlite3.Connection) -> None:
        """The current choice of every project made again (after the rule or the year changed)."""
        projects = conn.execute("SELECT DISTINCT template, project_no FROM submissions WHERE eligible = 1"
                                " UNION SELECT template, project_no FROM current").fetchall()
        for template, project_no in projects:
            self._recompute_current(conn, template, project_no)

    @staticmethod
    def _recompute_current(conn: sqlite3.Connection, template: str | None, project_no: str | None) -> None:
        year = Ledger._year(conn, template)
        newest = conn.execute(_NEWEST, (template, project_no, year, year)).fetchone()
        if newest is None:
            conn.execute("DELETE FROM current WHERE template = ? AND project_no = ?", (template, project_no))
        else:
            conn.execute(
                "INSERT INTO current(template, project_no, sha256) VALUES (?, ?, ?)"
                " ON CONFLICT(template, project_no) DO UPDATE SET sha256 = excluded.sha256",
                (template, project_no, newest[0]),
            )

    def _archive(self, sha256: str, ext: str, data: bytes, *, trust_existing: bool) -> None:
        archive_content(self.workspace, sha256, ext, data, trust_existing=trust_existing)

    # -- repairing results an older version stored

    def suspect_results(self) -> list[tuple[str, str]]:
        """(sha256, first path) of every stored result that does not read back as it should.

        A result an older sheettool stored may hold NaN (no JSON: SQLite's JSON functions then
        fail on every query) or a record with 1.7e308 (which no template's bounds allow). The
        whole store is looked at once, then ``meta`` says so: results written since are strict
        JSON with bounded numbers by construction, and reading them stays tolerant regardless.
        """
        with self._errors():
            if self._conn.execute("SELECT 1 FROM meta WHERE key = ?", (_CHECKED_KEY,)).fetchone():
                return []
            suspect = []
            rows = self._conn.execute("SELECT sha256, first_path, record_json, findings_json, meta_json"
                                      f" FROM submissions s ORDER BY {_ORDER}")
            for sha256, path, record_json, findings_json, meta_json in rows:
                try:
                    if record_json is not None:
                        _loads(record_json, record=True)
                    _findings_from_json(findings_json)
                    _loads(meta_json)
                except (_Damaged, KeyError, TypeError, AttributeError):
                    suspect.append((sha256, path))
            return suspect

    def repair_results(self, recheck: Callable[[bytes, str], CheckResult]) -> list[str]:
        """Check each suspect result's archived file again (``recheck(data, path)``) and store that.

        The one exception to "a stored result is never changed": one that cannot be read back.
        A file whose archived copy is gone becomes unreadable, with a finding (C802). Returns the
        paths repaired.
        """
        repaired = []
        for sha256, path in self.suspect_results():
            row = self._row(sha256)
            data = self._archived_bytes(sha256, row["ext"])
            result = (recheck(data, path) if data is not None
                      else _damaged_result(path, row["template"], _Damaged("保管したファイルがありません")))
            with self._errors(), self._transaction() as conn:
                self._replace_result(conn, sha256, result)
            repaired.append(path)
        with self._errors(), self._transaction() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES (?, '1') ON CONFLICT(key) DO UPDATE"
                         " SET value = '1' WHERE value IS NOT '1'", (_CHECKED_KEY,))  # no change: no move
        return repaired

    def _archived_bytes(self, sha256: str, ext: str) -> bytes | None:
        try:
            data = self._archive_file(sha256, ext).read_bytes()
        except OSError:
            return None
        return data if sha256_bytes(data) == sha256 else None

    def _replace_result(self, conn: sqlite3.Connection, sha256: str, result: CheckResult) -> None:
        before = conn.execute("SELECT template, project_no, eligible FROM submissions WHERE sha256 = ?",
                              (sha256,)).fetchone()
        project, template = _project_no(result), _template(result)
        conn.execute(
            "UPDATE submissions SET project_no = ?, template = ?, fiscal_year = ?, eligible = ?, status = ?,"
            " readable = ?, record_json = ?, findings_json = ?, meta_json = ? WHERE sha256 = ?",
            (project, template, _fiscal_year(result), int(_eligible(result)), result.status, int(result.readable),
             None if result.record is None else _dumps(result.record), _findings_to_json(result.findings),
             _dumps(result.meta), sha256))
        if before is not None and before[2]:
            self._recompute_current(conn, before[0], before[1])
        if _eligible(result):
            self._recompute_current(conn, template, project)

    # -- the store's fiscal year, per template

    @staticmethod
    def _year(conn: sqlite3.Connection, template: str | None) -> int | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (f"fiscal_year:{template}",)).fetchone()
        return int(row[0]) if row and str(row[0]).lstrip("-").isdigit() else None

    def fiscal_year(self, template: str | None) -> tuple[int | None, str | None]:
        """The evaluation year this store serves for ``template`` and where it came from
        (``expected`` / ``returns``); (None, None) while no collect has said."""
        with self._errors():
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?",
                                     (f"fiscal_year_from:{template}",)).fetchone()
            year = self._year(self._conn, template)
        return year, (row[0] if row else None) if year is not None else None

    def fiscal_years(self) -> dict[str | None, int]:
        """The evaluation year of each template the store has one for."""
        with self._errors():
            rows = self._conn.execute("SELECT key, value FROM meta WHERE key LIKE 'fiscal\\_year:%' ESCAPE '\\'").fetchall()
        return {key.partition(":")[2]: int(value) for key, value in rows if str(value).lstrip("-").isdigit()}

    def set_fiscal_year(self, year: int, source: str, template: str | None) -> None:
        """Make ``year`` the evaluation year of ``template``'s returns: other years never become current.

        A year the expected records gave is kept: another one raises LedgerError (one store
        serves one year). A year taken from the returns gives way to the expected records'.
        """
        known, known_from = self.fiscal_year(template)
        if known == year and (known_from == source or source == "returns"):
            return
        if known is not None and known != year and known_from == "expected":
            from ..wareki import fiscal_label_with_western

            raise LedgerError(
                f"台帳（{self.workspace}）は{_label(known, fiscal_label_with_western)}の回収に使われています。"
                f"{_label(year, fiscal_label_with_western)}の回収には、別のマスターブック名か別の台帳フォルダ"
                "（--store）を指定してください。")
        with self._errors(), self._transaction() as conn:
            for key, value in ((f"fiscal_year:{template}", str(year)), (f"fiscal_year_from:{template}", source)):
                conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)"
                             " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
            self._recompute_all(conn)

    def unpinned_templates(self) -> list[str | None]:
        """Templates with eligible submissions but no evaluation year yet."""
        pinned = self.fiscal_years()
        with self._errors():
            rows = self._conn.execute("SELECT DISTINCT template FROM submissions WHERE eligible = 1").fetchall()
        return [t for (t,) in rows if t not in pinned]

    def most_common_year(self, template: str | None) -> int | None:
        """The fiscal year most eligible submissions of ``template`` hold; ties: the later."""
        with self._errors():
            row = self._conn.execute(
                "SELECT fiscal_year FROM submissions WHERE eligible = 1 AND fiscal_year IS NOT NULL"
                " AND template IS ? GROUP BY fiscal_year ORDER BY count(*) DESC, fiscal_year DESC LIMIT 1",
                (template,)).fetchone()
        return row[0] if row else None

    # -- reading

    def archive_path(self, sha256: str) -> Path:
        """Where the archived copy of this content is (it exists once recorded)."""
        row = self._row(_check_sha(sha256))
        return self._archive_file(sha256, row["ext"] if row else ".xlsx")

    def _archive_file(self, sha256: str, ext: str) -> Path:
        return archive_path_for(self.workspace, sha256, ext)

    def _row(self, sha256: str) -> sqlite3.Row | None:
        cur = self._conn.execute("SELECT * FROM submissions WHERE sha256 = ?", (sha256,))
        cur.row_factory = sqlite3.Row
        return cur.fetchone()

    def _query(self, where: str = "", params: tuple[Any, ...] = ()) -> list[Submission]:
        with self._errors():
            rows = self._conn.execute(f"{_SELECT} {where} ORDER BY {_ORDER}", params).fetchall()
        return [self._submission(r) for r in rows]

    def get(self, sha256: str) -> Submission | None:
        rows = self._query("WHERE s.sha256 = ?", (_check_sha(sha256),))
        return rows[0] if rows else None

    def current(self, template: str | None = None) -> list[Submission]:
        """The current submission of every project (of one template, if given), by template and number."""
        return list(self.iter_current(template))

    def history(self, project_no: str | None = None) -> list[Submission]:
        """Every submission (of one project, if given), oldest first by the newer-rule."""
        if project_no is None:
            return self._query()
        return self._query("WHERE s.project_no = ?", (str(project_no).strip(),))

    def iter_current(self, template: str | None = None) -> Iterator[Submission]:
        """The current submissions as :meth:`current` lists them, read one at a time.

        Each record is parsed when its row is reached, so memory does not grow
        with the number of projects. Do not record files while iterating; use
        :meth:`snapshot` to read this and :meth:`history_info` as one state.
        """
        where, params = ("AND c.template = ?", (template,)) if template is not None else ("", ())
        with self._errors():
            cursor = self._conn.execute(
                f"{_SELECT} WHERE c.sha256 IS NOT NULL {where} ORDER BY c.template, c.project_no, {_ORDER}", params)
            for row in cursor:
                yield self._submission(row)

    def office_values(self, template: str) -> dict[str, dict[str, Any]]:
        """The office's latest entry of each field, by project number (a cleared field is None)."""
        out: dict[str, dict[str, Any]] = {}
        with self._errors():
            rows = self._conn.execute(
                "SELECT project_no, path, value_json FROM office_entries o WHERE template = ? AND entered_ns ="
                " (SELECT max(entered_ns) FROM office_entries i WHERE i.template = o.template"
                " AND i.project_no = o.project_no AND i.path = o.path) ORDER BY project_no, path",
                (template,)).fetchall()
        for no, path, value in rows:
            out.setdefault(no, {})[path] = json.loads(value)
        return out

    def record_office(self, template: str, entries: dict[str, dict[str, Any]]) -> int:
        """Keep what the office entered (project → field → value); returns how many values changed."""
        known = self.office_values(template)
        now = time.time_ns()
        changed = 0
        with self._errors(), self._transaction() as conn:
            for no, values in entries.items():
                before = known.get(no, {})
                for path, value in values.items():
                    if (before[path] == value) if path in before else value is None:
                        continue  # unchanged, or a blank never entered
                    conn.execute("INSERT INTO office_entries(template, project_no, path, value_json, entered_ns)"
                                 " VALUES (?, ?, ?, ?, ?)", (template, no, path, _dumps(value), now))
                    changed += 1
        return changed

    def current_templates(self) -> dict[str, int]:
        """How many current submissions each template has."""
        with self._errors():
            return dict(self._conn.execute("SELECT template, count(*) FROM current GROUP BY template").fetchall())

    def history_info(self, project_no: str | None = None) -> list[SubmissionInfo]:
        """:meth:`history` without the records (:class:`SubmissionInfo`), oldest first.

        The record JSON is not parsed (SQLite reads the project number out of
        it), so this stays small for any number of submissions.
        """
        where, params = ("", ()) if project_no is None else ("WHERE s.project_no = ?", (str(project_no).strip(),))
        with self._errors():
            try:
                rows = self._conn.execute(f"{_INFO_SELECT} {where} ORDER BY {_ORDER}", params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such function" not in str(exc):
                    raise
                # An SQLite without its JSON functions: parse each record, keep none.
                cursor = self._conn.execute(f"{_SELECT} {where} ORDER BY {_ORDER}", params)
                return [SubmissionInfo.of(self._submission(row)) for row in cursor]
        return [self._info(r) for r in rows]

    @contextmanager
    def snapshot(self) -> Iterator[Ledger]:
        """Reads inside see one state of the store, even while another collect records files.

        A read transaction (WAL: it never blocks a writer); recording inside it is an error.
        """
        with self._errors():
            self._conn.execute("BEGIN DEFERRED")
        try:
            yield self
        finally:
            if self._conn.in_transaction:
                with self._errors():
                    self._conn.execute("COMMIT")

    def unreadable(self) -> list[Submission]:
        """Submissions with status 読取不可 (never current)."""
        return self._query("WHERE s.status = ?", (UNREADABLE,))

    def unattached(self) -> list[Submission]:
        """Submissions that can never be current: unreadable, or no project number."""
        return self._query("WHERE s.eligible = 0")

    def sightings(self, sha256: str) -> list[Sighting]:
        """Every path/size/mtime under which this content was seen, first seen first."""
        with self._errors():
            rows = self._conn.execute(
                "SELECT relpath, size, mtime_ns, first_seen_ns, last_seen_ns FROM sightings"
                " WHERE sha256 = ? ORDER BY first_seen_ns, relpath", (_check_sha(sha256),),
            ).fetchall()
        return [Sighting(r[0], r[1], _iso(r[2]), _iso(r[3]), _iso(r[4])) for r in rows]

    def _submission(self, row: tuple[Any, ...]) -> Submission:
        cols = dict(zip((*_COLUMNS, "is_current"), row, strict=True))
        try:
            result = CheckResult(
                file=cols["first_path"],
                record=None if cols["record_json"] is None else _loads(cols["record_json"], record=True),
                findings=_findings_from_json(cols["findings_json"]),
                meta=_loads(cols["meta_json"]),
                readable=bool(cols["readable"]),
                template=cols["template"],
                saved_at=None if cols["saved_ns"] is None else _iso(cols["saved_ns"]),
            )
        except (_Damaged, KeyError, TypeError, AttributeError) as exc:
            result = _damaged_result(cols["first_path"], cols["template"], exc)
        return Submission(
            sha256=cols["sha256"],
            file=cols["first_path"],
            received_at=_iso(cols["first_seen_ns"]),
            modified_at=_iso(cols["mtime_ns"]),
            result=result,
            current=bool(cols["is_current"]),
            order_source=cols["order_source"],
        )

    @staticmethod
    def _info(row: tuple[Any, ...]) -> SubmissionInfo:
        (sha256, path, first_seen_ns, mtime_ns, status, readable, has_record, truthy,
         record_no, record_no_type, meta_json, findings_json, is_current, template, valid,
         saved_ns, order_source, fiscal_year) = row
        try:
            if not valid:
                raise _Damaged("記録が JSON として正しくありません")
            meta_no = _loads(meta_json).get("project_no")
            # Submission.project_no: the record's value when there is a (non-empty) record, but
            # _meta's for a 受付不可 file (the project it was issued for)
            if truthy and not (status == REJECTED and meta_no is not None):
                project_no = _json_value(record_no, record_no_type)
            else:
                project_no = str(meta_no) if meta_no is not None else None
            result = ResultInfo(path, status, tuple(_findings_from_json(findings_json)), bool(readable),
                                bool(has_record))
        except (_Damaged, KeyError, TypeError, AttributeError) as exc:
            damaged = _damaged_result(path, template, exc)
            project_no = None
            result = ResultInfo(path, damaged.status, tuple(damaged.findings), False, False)
        return SubmissionInfo(sha256, path, _iso(first_seen_ns), _iso(mtime_ns), project_no, result,
                              bool(is_current), template, None if saved_ns is None else _iso(saved_ns),
                              order_source, fiscal_year)

    # -- overview and self-check

    def stats(self) -> dict[str, Any]:
        """Counts for the collect summary and diagnostics."""
        with self._errors():
            one = self._conn.execute
            by_status = dict(one("SELECT status, count(*) FROM submissions GROUP BY status").fetchall())
            return {
                "schema_version": SCHEMA_VERSION,
                "journal_mode": one("PRAGMA journal_mode").fetchone()[0],
                "submissions": one("SELECT count(*) FROM submissions").fetchone()[0],
                "current": one("SELECT count(*) FROM current").fetchone()[0],
                "needs_fix": by_status.get(NEEDS_FIX, 0),
                "unreadable": by_status.get(UNREADABLE, 0),
                "rejected": by_status.get(REJECTED, 0),
                "sightings": one("SELECT count(*) FROM sightings").fetchone()[0],
                "archive_bytes": one("SELECT coalesce(sum(size), 0) FROM submissions").fetchone()[0],
            }

    def verify(self) -> list[str]:
        """Problems found in the store (empty when sound), in Japanese.

        Checks SQLite integrity, foreign keys, that every archived file exists
        and hashes to its name, and that ``current`` follows the newer-rule.
        """
        problems: list[str] = []
        with self._errors():
            one = self._conn.execute
            integrity = [r[0] for r in one("PRAGMA integrity_check").fetchall()]
            if integrity != ["ok"]:
                problems.append("SQLite の整合性検査で異常: " + "; ".join(integrity))
            if one("PRAGMA foreign_key_check").fetchall():
                problems.append("参照先のない行があります（foreign_key_check）。")
            for sha, ext in one("SELECT sha256, ext FROM submissions").fetchall():
                path = self._archive_file(sha, ext)
                if _file_sha256(path) != sha:
                    problems.append(f"保管ファイルがないか内容が一致しません: {path}")
            stored = {(t, p): sha for t, p, sha in one("SELECT template, project_no, sha256 FROM current")}
            projects = one("SELECT DISTINCT template, project_no FROM submissions WHERE eligible = 1").fetchall()
            years = {t: self._year(self._conn, t) for t, _ in projects}
            newest = {(t, p): one(_NEWEST, (t, p, years[t], years[t])).fetchone() for t, p in projects}
            expected = {k: row[0] for k, row in newest.items() if row is not None}
            if stored != expected:
                problems.append("current 表が規則（最新の提出）と一致しません。")
        return problems

