"""``sheettool collect``: every returned workbook under an inbox, into the ledger and a master book.

Files are listed in a stable order; those whose path, size and mtime the
ledger has seen are not read again. The rest are read once by a worker
process, hashed and checked on the very bytes that get archived, and
recorded by this process in the ledger (one transaction per file). A bad
file is one finding; the batch always completes. The master book, CSV and
JSON Lines are then written in one pass over the ledger's current submissions,
read one record at a time (memory does not grow with the number of projects).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .. import findings, membudget
from ..check import check_bytes, failure_finding
from ..fileio import OutputError, atomic_output
from ..records import jsonl_line
from ..spec import DEFAULT_TEMPLATE, Template, available, load
from . import master as masterbook
from . import office
from .ledger import (
    Archived,
    Ledger,
    SubmissionInfo,
    archive_content,
    archive_ext,
    relpath_for,
    sha256_bytes,
    workspace_for,
)
from .submission import ACCEPTED, NEEDS_FIX, UNEXPECTED, UNREADABLE, CheckResult, Submission

SUFFIXES = (".xlsx", ".xlsm")
PARALLEL_MIN = 16  # below this, worker start-up costs more than it saves


@dataclass
class CollectResult:
    """What one run did: files seen, read anew, and the state of each project afterwards."""

    seen: int = 0
    read: int = 0
    # The submissions without their records (SubmissionInfo: status, findings, file, …).
    current: list[SubmissionInfo] = field(default_factory=list)
    history: list[SubmissionInfo] = field(default_factory=list)
    unreadable: list[SubmissionInfo] = field(default_factory=list)  # still to chase: nothing replaced them
    expected: list[dict[str, Any]] | None = None
    fiscal_year: int | None = None
    outputs: list[Path] = field(default_factory=list)
    template: str | None = None  # the master book's
    foreign: list[SubmissionInfo] = field(default_factory=list)  # current returns of another template
    office_problems: list[Any] = field(default_factory=list)  # what could not be read back (C804)
    office_changes: int = 0  # values the office entered or changed since the last run
    to_chase: list[masterbook.Chase] = field(default_factory=list)  # 要修正, 読取不可, 未提出 (提出状況's order)


@dataclass(frozen=True)
class _Task:
    path: str
    relpath: str
    mtime_ns: int
    workspace: str
    known: tuple[tuple[str, str], ...] = ()  # template id → folder, for templates given as a folder


def inbox_files(inbox: Path, exclude: tuple[Path, ...] = ()) -> Iterator[Path]:
    """Every .xlsx / .xlsm under ``inbox``, sorted; no symlinks, no Office lock files (~$…)."""
    excluded = tuple(p.resolve() for p in exclude)
    for root, dirs, files in os.walk(inbox, followlinks=False):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() not in excluded)
        for name in sorted(files):
            path = here / name
            if (path.suffix.lower() in SUFFIXES and not name.startswith("~$")
                    and not path.is_symlink() and path.resolve() not in excluded):
                yield path


def _work(task: _Task) -> tuple[_Task, str, bytes | Archived, CheckResult]:
    """Read once, hash, check and archive the same bytes (runs in a worker).

    Only the size of archived content goes back to the main process: pickling
    the bytes there cost more than the check's findings. Whatever goes wrong with
    the file is a finding for it; only the store failing (LedgerError) stops the batch.
    """
    try:
        data = Path(task.path).read_bytes()
    except (OSError, MemoryError) as e:
        detail = e.strerror or str(e) if isinstance(e, OSError) else "メモリが足りません"
        return _unread(task, findings.make("F100", file=task.relpath, detail=detail))
    sha = sha256_bytes(data)
    try:
        result = check_bytes(data, task.relpath, known=dict(task.known))
    except Exception as e:  # check_bytes catches all it can; this is for a MemoryError on the way out
        result = CheckResult(task.relpath, None, [failure_finding(task.relpath, e)], readable=False)
    # Archived here, in parallel, before the ledger records it (the fsyncs are most of a file's cost).
    archive_content(Path(task.workspace), sha, archive_ext(task.relpath), data)
    return task, sha, Archived(len(data)), result


def collect(inbox: str | Path, master: str | Path, *, store: str | Path | None = None,
            expected: list[dict[str, Any]] | None = None, json_out: str | Path | None = None,
            csv_dir: str | Path | None = None, jobs: int | None = None,
            progress: bool | None = None, template: str | None = None) -> CollectResult:
    """Run the whole collection; see the module docstring."""
    inbox, master = Path(inbox), Path(master)
    workspace = Path(store) if store else workspace_for(master)
    result = CollectResult(expected=expected)
    known = ()
    if template:  # read every file by its own template; the given folder stands for its id
        given = load(template)
        known = ((given.id, str(given.directory)),)
    with Ledger.open(workspace) as ledger:
        ledger.tidy()  # half-written archive files of a killed run
        # results an older version stored that cannot be read back are checked again from the archive
        ledger.repair_results(lambda data, rel: check_bytes(data, rel, known=dict(known)))
        tasks = []
        for path in inbox_files(inbox, exclude=(workspace, master)):
            try:
                st = path.stat()
            except OSError:
                continue  # gone since it was listed: nothing to read, nothing to record
            result.seen += 1
            rel = relpath_for(inbox, path)
            sha = ledger.known_sha(rel, st.st_size, st.st_mtime_ns)
            if sha is not None and ledger.has_result(sha):
                ledger.record(rel, None, sha, st.st_mtime_ns, None)
            else:
                tasks.append(_Task(str(path), rel, st.st_mtime_ns, str(workspace), known))
        show = sys.stderr.isatty() if progress is None else progress
        for done, (task, sha, data, checked) in enumerate(_run(tasks, jobs), start=1):
            # content already known (a copy under another name) keeps its first result
            ledger.record(task.relpath, data, sha, task.mtime_ns, checked)
            result.read += 1
            if show:
                print(f"\r回収中 {done}/{len(tasks)} 件", end="", file=sys.stderr, flush=True)
        if show and tasks:
            print(file=sys.stderr)
        # again: a killed run's orphaned workers may still have been writing at the start
        ledger.tidy()
        csv_dir = Path(csv_dir) if csv_dir else master.with_name(master.stem + "_csv")
        expected_years = _expected_years(expected)
        years: Counter = Counter()  # of the current records, when nothing is expected
        # One pass over the current submissions, one record at a time, writes the master book,
        # the CSV and the JSON Lines; one snapshot of the ledger for that pass and the history.
        tpl = master_template(template, expected, ledger.current_templates())
        # what the office typed into the book last time, kept before the book is written again
        entries, result.office_problems = office.read_back(master, tpl)
        result.office_changes = ledger.record_office(tpl.id, entries)
        entered = ledger.office_values(tpl.id)
        with ledger.snapshot(), ExitStack() as stack:
            history = ledger.history_info()
            expected = None if expected is None else [r for r in expected if _template_id(r) == tpl.id]
            result.expected = expected
            result.template = tpl.id
            try:
                lines = stack.enter_context(atomic_output(json_out)) if json_out else None
                current = _records_out(ledger.iter_current(tpl.id), lines, None if expected_years else years,
                                       tpl, entered)
                written = masterbook.write_all(master, csv_dir, current, expected, history,
                                               lambda: _most_common(expected_years or years), tpl=tpl)
            except OSError as e:  # every submission is recorded already; only the outputs failed
                raise OutputError(f"マスターブック（{master}）と CSV・JSON Lines の一部または全部", e,
                                  then="受け付けた提出はすべて台帳に記録済みです。") from None
    result.foreign = [s for s in history if s.current and s.template not in (None, result.template)]
    result.current, result.history, result.unreadable = written.current, history, written.unreadable
    result.fiscal_year = written.fiscal_year
    result.to_chase = written.to_chase
    result.outputs = [master, *written.csv_paths, *([Path(json_out)] if json_out else [])]
    return result


def _template_id(record: dict[str, Any]) -> str:
    return str(record.get("template") or DEFAULT_TEMPLATE)


def master_template(override: str | None, expected: list[dict[str, Any]] | None,
                    current: dict[str, int]) -> Template:
    """The template of the master book: ``--template``, else the expected records', else the returns'.

    One master book shows one template; returns of another are listed as 様式違い (C801).
    """
    if override:
        return load(override)
    if expected:
        return load(Counter(_template_id(r) for r in expected).most_common(1)[0][0])
    known = {tid: n for tid, n in current.items() if tid in available()}
    return load(max(known, key=lambda t: (known[t], t == DEFAULT_TEMPLATE)) if known else DEFAULT_TEMPLATE)


def _records_out(current: Iterable[Submission], lines: IO[bytes] | None, years: Counter | None,
                 tpl: Template, entered: dict[str, dict[str, Any]]) -> Iterator[Submission]:
    """``current`` as it is read: the office's entries laid over each record, which also goes to the
    JSON Lines, and its year is counted."""
    for sub in current:
        record = sub.result.record
        if record and str(sub.project_no) in entered:
            record = sub.result.record = office.merged(record, entered[str(sub.project_no)], tpl)
        if record:
            if lines is not None:
                lines.write(jsonl_line(record))
            if years is not None:
                years[record["fiscal_year"]] += 1
        yield sub


def _unread(task: _Task, finding: findings.Finding) -> tuple[_Task, str, bytes, CheckResult]:
    """A file that could not even be read: empty content, one finding."""
    return task, sha256_bytes(b""), b"", CheckResult(task.relpath, None, [finding], readable=False)


def _worker_start() -> None:
    membudget.apply_worker_budget()  # a file needing more memory fails alone, as F123


def _run(tasks: list[_Task], jobs: int | None) -> Iterator[tuple[_Task, str, bytes | Archived, CheckResult]]:
    """Each task's outcome, in order; a worker that dies (killed, crashed) costs one file, not the batch."""
    jobs = jobs or os.cpu_count() or 1
    if jobs <= 1 or len(tasks) < PARALLEL_MIN:
        yield from map(_work, tasks)
        return
    pending = list(tasks)
    while pending:
        done = 0
        try:
            with ProcessPoolExecutor(max_workers=jobs, initializer=_worker_start) as pool:
                for outcome in pool.map(_work, pending, chunksize=8):
                    done += 1
                    yield outcome
            return
        except BrokenProcessPool:
            # The file that broke it is among those in flight: the first left, alone, tells.
            pending = pending[done:]
            yield _alone(pending.pop(0))


def _alone(task: _Task) -> tuple[_Task, str, bytes | Archived, CheckResult]:
    """One task in a worker of its own; if that worker dies too, the file is C803."""
    try:
        with ProcessPoolExecutor(max_workers=1, initializer=_worker_start) as pool:
            return pool.submit(_work, task).result()
    except BrokenProcessPool:
        pass
    # recorded as what it is (its own hash, archived), so the next run does not try it again
    finding = findings.make("C803", file=task.relpath, detail="読み取り用の処理が停止しました")
    try:
        data = Path(task.path).read_bytes()
    except OSError:
        return _unread(task, finding)
    sha = sha256_bytes(data)
    archive_content(Path(task.workspace), sha, archive_ext(task.relpath), data)
    return task, sha, Archived(len(data)), CheckResult(task.relpath, None, [finding], readable=False)


def _expected_years(expected: list[dict[str, Any]] | None) -> Counter:
    return Counter(r.get("fiscal_year") for r in expected or [] if isinstance(r, dict))


def _most_common(years: Counter) -> int | None:
    """The year of the book: the expected records' most common, else the current records'."""
    return years.most_common(1)[0][0] if years else None


def summary_line(result: CollectResult) -> str:
    """The counts 提出状況 shows: files replaced later (fixed) no longer count."""
    expected = None if result.expected is None else {str(r.get("project_no")) for r in result.expected}
    counts = Counter(s.result.status if expected is None or str(s.project_no) in expected else UNEXPECTED
                     for s in result.current)
    line = (f"ファイル {result.seen}件（新たに読み取り {result.read}件）: 受理 {counts.get(ACCEPTED, 0)}件、"
            f"要修正 {counts.get(NEEDS_FIX, 0)}件、読取不可 {len(result.unreadable)}件")
    if expected is not None:
        # an unreadable file that names its project (in _meta) stands for it, as in 提出状況
        received = {str(s.project_no) for s in (*result.current, *result.unreadable) if s.project_no is not None}
        line += f"、対象外 {counts.get(UNEXPECTED, 0)}件、未提出 {len(expected - received)}件"
    if result.foreign:
        line += f"、様式違い {len(result.foreign)}件"
    return line + "。"


CHASE_SHOWN = 5  # projects named per status before "ほかN件"


def chase_lines(result: CollectResult) -> list[str]:
    """The projects to chase, by status (要修正, 読取不可, 未提出): number, name, 部・課 or the file,
    at most ``CHASE_SHOWN`` each and "ほかN件" (the master book's 提出状況 lists them all)."""
    lines = []
    for status in masterbook.CHASED:
        rows = [c for c in result.to_chase if c.status == status]
        if not rows:
            continue
        lines.append(f"  {status} {len(rows)}件:")
        shown = rows if len(rows) <= CHASE_SHOWN + 1 else rows[:CHASE_SHOWN]  # never "ほか1件"
        lines.extend(f"    {_chase_text(c)}" for c in shown)
        if len(shown) < len(rows):
            lines.append(f"    ほか{len(rows) - len(shown)}件（マスターブックの「提出状況」シートにすべてあります）")
    return lines


def _chase_text(row: masterbook.Chase) -> str:
    name = " ".join(str(x) for x in (row.project_no, row.project_name) if x)
    where = " ".join(str(x) for x in (row.department, row.division) if x)
    if row.status == UNREADABLE or not name:
        return f"{row.file}（{name}）" if name else str(row.file)
    return f"{name}（{where}）" if where else name
