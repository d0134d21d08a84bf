"""``sheettool collect``: every returned workbook under an inbox, into the ledger and a master book.

Every entry under the inbox is accounted for (``scan_inbox``, by ``lstat``, never
following a link or opening anything but a regular file): each regular file is read
as a submission (a .xls, .ods, .csv, .pdf or .zip becomes 読取不可 with what to do),
and what is not a submission — a symbolic link, a FIFO or device, an Office lock file
(``~$…``), a temp file of an interrupted run (``.tmp-*``, ``.sheettool-*``), an OS's
own file — is listed in 提出状況 and 指摘一覧 (``InboxNote``) without being read.

Each return is checked with the office's key (signing.py) and compared with its issue
register; the store keeps one fiscal year (the expected records', else the most common
of the returns), and a return of another year is 受付不可 (C810).

Files are listed in a stable order; those whose path, size and mtime the
ledger has seen are not read again. The rest are read once by a worker
process, hashed and checked on the very bytes that get archived, and
recorded by this process in the ledger (one transaction per file). A bad
file is one finding; the batch always completes. The master book, CSV and
JSON Lines are then written in one pass over the ledger's current submissions,
read one record at a time (memory does not grow with the number of projects).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import stat
import sys
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from .. import findings, membudget, signing
from ..fileio import OutputError, atomic_output
from ..records import jsonl_line
from ..spec import DEFAULT_TEMPLATE, Template, available, load
from .ledger import (
    Archived,
    Ledger,
    SubmissionInfo,
    archive_content,
    archive_ext,
    relpath_for,
    relpath_text,
    sha256_bytes,
    workspace_for,
)
from .submission import (
    ACCEPTED,
    CHASED,
    EXCLUDED,
    NEEDS_FIX,
    REJECTED,
    UNEXPECTED,
    UNREADABLE,
    Chase,
    CheckResult,
    InboxNote,
    Submission,
)

if TYPE_CHECKING:
    from .master import Written

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
    rejected: list[SubmissionInfo] = field(default_factory=list)  # 受付不可 that nothing replaced
    inbox_notes: list[InboxNote] = field(default_factory=list)  # what is in the inbox but is no submission
    missing: int | None = None  # expected projects 提出状況 shows as 未提出 (None: not counted there)
    notes: list[str] = field(default_factory=list)  # for the office, once per run (stderr): no key, …
    to_chase: list[Chase] = field(default_factory=list)  # 要修正, 受付不可, 読取不可, 未提出


@dataclass(frozen=True, slots=True)
class _Task:
    path: str
    relpath: str
    mtime_ns: int
    workspace: str
    known: tuple[tuple[str, str], ...] = ()  # template id → folder, for templates given as a folder
    key: signing.Key | None = None


# Files operating systems and file shares leave in folders; never a department's submission.
OS_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", ".directory"})
_KINDS = ((stat.S_ISFIFO, "名前付きパイプ（FIFO）"), (stat.S_ISSOCK, "ソケット"),
          (stat.S_ISCHR, "デバイス"), (stat.S_ISBLK, "デバイス"))


class InboxFile(NamedTuple):
    """A regular file of the inbox, as its ``lstat`` saw it (small: an inbox may hold 100,000)."""

    path: str
    relpath: str  # as the ledger stores it (relpath_for)
    size: int
    mtime_ns: int


def scan_inbox(inbox: Path, exclude: tuple[Path, ...] = ()) -> tuple[list[InboxFile], list[InboxNote]]:
    """Every regular file under ``inbox`` to read (sorted), and a note for everything else found
    there. Nothing is followed or opened; ``exclude`` (the store and the master book, should a
    caller put them there) is left out in silence."""
    excluded = {p.resolve() for p in exclude}
    ids = set()
    for p in excluded:
        with suppress(OSError):
            st = p.stat()
            ids.add((st.st_dev, st.st_ino))
    files: list[InboxFile] = []
    notes: list[InboxNote] = []
    _scan(inbox, inbox, "", (excluded, ids), files, notes)
    return files, notes


def _scan(inbox: Path, folder: Path, prefix: str, excluded: tuple[set[Path], set[tuple[int, int]]],
          files: list[InboxFile], notes: list[InboxNote]) -> None:
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        notes.append(_note(inbox, folder, UNREADABLE, "C816", detail=e.strerror or type(e).__name__))
        return
    folders = []
    paths, ids = excluded
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as e:
            notes.append(_note(inbox, Path(entry.path), UNREADABLE, "C816", detail=e.strerror or type(e).__name__))
            continue
        # the store or the master book itself, or a link to them (by inode: no path resolved per file)
        if (st.st_dev, st.st_ino) in ids or (stat.S_ISLNK(st.st_mode) and Path(entry.path).resolve() in paths):
            continue
        name = entry.name
        if stat.S_ISLNK(st.st_mode):
            notes.append(_note(inbox, Path(entry.path), UNREADABLE, "C813"))
        elif stat.S_ISDIR(st.st_mode):
            if name.startswith(".sheettool-"):  # a killed run's temp folder (master book spill)
                notes.append(_note(inbox, Path(entry.path), EXCLUDED, "C814"))
            else:
                folders.append(entry)
        elif not stat.S_ISREG(st.st_mode):
            kind = next((what for test, what in _KINDS if test(st.st_mode)), "特殊なファイル")
            notes.append(_note(inbox, Path(entry.path), UNREADABLE, "C812", kind=kind))
        elif name.startswith("~$"):
            notes.append(_note(inbox, Path(entry.path), EXCLUDED, "C811"))
        elif name.startswith(".tmp-"):  # fileio.TempOutput's, left by a killed run
            notes.append(_note(inbox, Path(entry.path), EXCLUDED, "C814"))
        elif name.lower() in OS_FILES or name.startswith("._"):
            notes.append(_note(inbox, Path(entry.path), EXCLUDED, "C815"))
        else:
            files.append(InboxFile(entry.path, prefix + relpath_text(name), st.st_size, st.st_mtime_ns))
    for sub in folders:
        _scan(inbox, Path(sub.path), prefix + relpath_text(sub.name) + "/", excluded, files, notes)


def _note(inbox: Path, path: Path, status: str, code: str, **params: Any) -> InboxNote:
    rel = relpath_for(inbox, path)
    return InboxNote(rel, status, findings.make(code, file=rel, **params))


def inbox_files(inbox: Path, exclude: tuple[Path, ...] = ()) -> Iterator[Path]:
    """The regular files ``scan_inbox`` reads as submissions, sorted."""
    for file in scan_inbox(inbox, exclude)[0]:
        yield Path(file.path)


def _read_regular(path: str) -> bytes:
    """The file's bytes, refusing anything but a regular file without ever blocking on one.

    The inbox was listed with lstat; the file may have become a FIFO or a link since.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "通常のファイルではありません")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def _check_again(data: bytes, rel: str, known: tuple[tuple[str, str], ...], key: signing.Key | None) -> CheckResult:
    from ..check import check_bytes

    return check_bytes(data, rel, known=dict(known), key=key)


def _work(task: _Task) -> tuple[_Task, str, bytes | Archived, CheckResult]:
    """Read once, hash, check and archive the same bytes (runs in a worker).

    Only the size of archived content goes back to the main process: pickling
    the bytes there cost more than the check's findings. Whatever goes wrong with
    the file is a finding for it; only the store failing (LedgerError) stops the batch.
    """
    from ..check import check_bytes, failure_finding

    try:
        data = _read_regular(task.path)
    except (OSError, MemoryError) as e:
        detail = e.strerror or str(e) if isinstance(e, OSError) else "メモリが足りません"
        return _unread(task, findings.make("F100", file=task.relpath, detail=detail))
    sha = sha256_bytes(data)
    try:
        result = check_bytes(data, task.relpath, known=dict(task.known), key=task.key)
    except Exception as e:  # check_bytes catches all it can; this is for a MemoryError on the way out
        result = CheckResult(task.relpath, None, [failure_finding(task.relpath, e)], readable=False)
    # Archived here, in parallel, before the ledger records it (the fsyncs are most of a file's cost).
    archive_content(Path(task.workspace), sha, archive_ext(task.relpath), data)
    return task, sha, Archived(len(data)), result


def collect(inbox: str | Path, master: str | Path, *, store: str | Path | None = None,
            expected: list[dict[str, Any]] | None = None, json_out: str | Path | None = None,
            csv_dir: str | Path | None = None, jobs: int | None = None,
            progress: bool | None = None, template: str | None = None,
            key: signing.KeyArg = signing.DEFAULT) -> CollectResult:
    """Run the whole collection; see the module docstring.

    ``key``: the office's key to verify signatures with (default: this machine's, if any).
    """
    inbox, master = Path(inbox), Path(master)
    workspace = Path(store) if store else workspace_for(master)
    result = CollectResult(expected=expected)
    known = ()
    if template:  # read every file by its own template; the given folder stands for its id
        given = load(template)
        known = ((given.id, str(given.directory)),)
    key = signing.resolve(key)
    register = _register(key, result.notes)
    with Ledger.open(workspace) as ledger, _workers(jobs) as pool:
        ledger.tidy()  # half-written archive files of a killed run
        # results an older version stored that cannot be read back are checked again from the archive
        ledger.repair_results(lambda data, rel: _check_again(data, rel, known, key))
        expected_years = _expected_years(expected)
        # before anything is recorded: a return of another year must never become current
        for tid, years_of in _expected_years_by_template(expected).items():
            ledger.set_fiscal_year(_most_common(years_of), "expected", tid)
        tasks = []
        files, result.inbox_notes = scan_inbox(inbox, exclude=(workspace, master))
        seen = []  # (task, the content hash recorded for its path, size and mtime)
        store = str(workspace)
        for file in files:
            result.seen += 1
            task = _Task(file.path, file.relpath, file.mtime_ns, store, known, key)
            sha = ledger.known_sha(file.relpath, file.size, file.mtime_ns)
            if sha is not None and ledger.has_result(sha):
                seen.append((task, sha))
            else:
                tasks.append(task)
        # Same path, size and mtime: the content must be the same too (hashing is cheap next to
        # checking), else the file is read again; a changed file is never skipped.
        unchanged = []
        for (task, sha), now in zip(seen, _content_hashes([t.path for t, _ in seen], jobs), strict=True):
            if now == sha:
                unchanged.append((task.relpath, sha, task.mtime_ns))
            else:
                tasks.append(task)
        ledger.record_seen(unchanged)
        del files, seen, unchanged  # before the workers are forked: they would each carry them
        show = sys.stderr.isatty() if progress is None else progress
        for done, (task, sha, data, checked) in enumerate(_run(tasks, jobs, pool), start=1):
            signing.assess(checked, register)  # before it is stored: the stored result is final
            # content already known (a copy under another name) keeps its first result
            ledger.record(task.relpath, data, sha, task.mtime_ns, checked)
            result.read += 1
            if show:
                print(f"\r回収中 {done}/{len(tasks)} 件", end="", file=sys.stderr, flush=True)
        if show and tasks:
            print(file=sys.stderr)
        _register_read(register, result.notes)
        # again: a killed run's orphaned workers may still have been writing at the start
        ledger.tidy()
        for tid in ledger.unpinned_templates():  # nothing expected of it: the year most of its returns hold
            year = ledger.most_common_year(tid)
            if year is not None:
                ledger.set_fiscal_year(year, "returns", tid)
        book_years = ledger.fiscal_years()
        csv_dir = Path(csv_dir) if csv_dir else master.with_name(master.stem + "_csv")
        years: Counter = Counter()  # of the current records, when nothing is expected
        # One pass over the current submissions, one record at a time, writes the master book,
        # the CSV and the JSON Lines; one snapshot of the ledger for that pass and the history.
        tpl = master_template(template, expected, ledger.current_templates())
        book_year = book_years.get(tpl.id)
        outputs_key = _outputs_key(tpl, expected, result.inbox_notes, master, csv_dir, json_out, book_year)
        if _outputs_unchanged(ledger, outputs_key):  # nothing they show changed, nor were they touched
            return _as_written(result, ledger, tpl, expected, book_years, ledger.outputs_state())
        # the outputs are written again: only now are the master book's modules needed
        from . import office
        from .master import write_all

        # what the office typed into the book last time, kept before the book is written again
        entries, result.office_problems = office.read_back(master, tpl)
        result.office_changes = ledger.record_office(tpl.id, entries)
        entered = ledger.office_values(tpl.id)
        ledger.set_outputs_state(None)  # until the new outputs are all in place
        with ledger.snapshot(), ExitStack() as stack:
            generation = ledger.generation()  # the state the outputs are written from
            history = [_of_year(s, book_years.get(s.template)) for s in ledger.history_info()]
            expected = None if expected is None else [r for r in expected if _template_id(r) == tpl.id]
            result.expected = expected
            result.template = tpl.id
            try:
                lines = stack.enter_context(atomic_output(json_out)) if json_out else None
                current = _records_out(ledger.iter_current(tpl.id), lines, None if expected_years else years,
                                       tpl, entered)
                written = write_all(master, csv_dir, current, expected, history,
                                    lambda: book_year or _most_common(expected_years or years),
                                    tpl=tpl, notes=result.inbox_notes)
            except OSError as e:  # every submission is recorded already; only the outputs failed
                raise OutputError(f"マスターブック（{master}）と CSV・JSON Lines の一部または全部", e,
                                  then="受け付けた提出はすべて台帳に記録済みです。") from None
        result.outputs = [master, *written.csv_paths, *([Path(json_out)] if json_out else [])]
        ledger.set_outputs_state(_written_state(outputs_key, generation, result.outputs, written))
    result.foreign = [s for s in history if s.current and s.template not in (None, result.template)]
    result.current, result.history, result.unreadable = written.current, history, written.unreadable
    result.rejected, result.missing = written.rejected, written.missing
    result.fiscal_year = written.fiscal_year
    result.to_chase = written.to_chase
    return result


# --------------------------------------------------------------------------- a rerun that changes nothing

_HASH_THREADS = 4  # hashlib and file reads release the GIL


def _content_hash(path: str) -> str | None:
    try:
        return sha256_bytes(_read_regular(path))
    except (OSError, MemoryError):
        return None  # read again by a worker, which says what is wrong


def _content_hashes(paths: list[str], jobs: int | None) -> Iterator[str | None]:
    if len(paths) < PARALLEL_MIN:
        yield from map(_content_hash, paths)
        return
    with ThreadPoolExecutor(max_workers=max(2, min(_HASH_THREADS, (jobs or os.cpu_count() or 1) * 2))) as pool:
        yield from pool.map(_content_hash, paths, chunksize=32)


def _outputs_key(tpl: Template, expected: list[dict[str, Any]] | None, notes: list[InboxNote], master: Path,
                 csv_dir: Path, json_out: str | Path | None, book_year: int | None) -> str:
    """Everything besides the ledger that decides what the outputs hold."""
    from .. import __version__

    given = {
        "version": __version__, "template": [tpl.id, tpl.version, str(tpl.directory)],
        "expected": expected, "notes": [[n.file, n.status, n.finding.code, n.finding.message] for n in notes],
        "outputs": [str(master), str(csv_dir), None if json_out is None else str(json_out)], "year": book_year,
    }
    return hashlib.sha256(json.dumps(given, ensure_ascii=False, sort_keys=True, default=repr).encode()).hexdigest()


def _identity(path: Path) -> list[Any] | None:
    """(path, size, mtime, sha256) of an output file, or None when it is not a regular file."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return None
        return [str(path), st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()]
    except OSError:
        return None


def _written_state(key: str, generation: int, outputs: list[Path], written: Written) -> dict[str, Any]:
    def ids(subs: list[SubmissionInfo]) -> list[list[str]]:
        return [[s.sha256, s.file] for s in subs]

    return {"key": key, "generation": generation, "files": [_identity(p) for p in outputs],
            "fiscal_year": written.fiscal_year, "missing": written.missing,
            "csv_paths": [str(p) for p in written.csv_paths], "current": ids(written.current),
            "unreadable": ids(written.unreadable), "rejected": ids(written.rejected),
            "to_chase": [dataclasses.astuple(c) for c in written.to_chase]}


def _outputs_unchanged(ledger: Ledger, key: str) -> bool:
    state = ledger.outputs_state()
    if state is None or state.get("key") != key or state.get("generation") != ledger.generation():
        return False
    files = state.get("files")
    return isinstance(files, list) and bool(files) and all(
        isinstance(f, list) and f == _identity(Path(f[0])) for f in files)


def _as_written(result: CollectResult, ledger: Ledger, tpl: Template, expected: list[dict[str, Any]] | None,
                book_years: dict[str | None, int], state: dict[str, Any]) -> CollectResult:
    """``result`` as the run that wrote the outputs (unchanged since) left it, from the ledger and
    what that run kept: the same summary and the same projects to chase."""
    raw = ledger.history_info()
    history = [_of_year(s, book_years.get(s.template)) for s in raw]
    current = {(s.sha256, s.file): s for s in raw}
    shown = {(s.sha256, s.file): s for s in history}
    listed = [tuple(k) for k in state["current"]]
    result.expected = None if expected is None else [r for r in expected if _template_id(r) == tpl.id]
    result.template = tpl.id
    result.history = history
    result.current = [current[k] for k in listed]
    result.unreadable = [current[k] if k in set(listed) else shown[k] for k in map(tuple, state["unreadable"])]
    result.rejected = [current[k] if k in set(listed) else shown[k] for k in map(tuple, state["rejected"])]
    result.foreign = [s for s in history if s.current and s.template not in (None, result.template)]
    result.missing, result.fiscal_year = state["missing"], state["fiscal_year"]
    result.to_chase = [Chase(*c) for c in state["to_chase"]]
    result.outputs = [Path(f[0]) for f in state["files"]]
    return result


def _register(key: signing.Key | None, notes: list[str]) -> signing.Register | None:
    """The key's issue register; what cannot be checked without one is said once in ``notes``."""
    if key is None:
        notes.append(f"署名用の鍵（{signing.default_key_path()}）がないため、返送されたファイルの署名を"
                     "確認していません。テンプレートを作成した端末の鍵を --key で指定してください。")
        return None
    register = signing.Register.load(key.register_path)
    if register is None:
        notes.append(f"発行記録（{key.register_path}）がないため、発行の記録との照合をしていません。")
    return register


def _register_read(register: signing.Register | None, notes: list[str]) -> None:
    """What reading the register found wrong, once it was read (a run that checked nothing never reads it)."""
    if register is not None and register.was_read and register.broken:
        notes.append(f"発行記録（{register.path}）の {register.broken} 行が読み取れませんでした（読めた行だけで照合しました）。")


def _of_year(sub: SubmissionInfo, year: int | None) -> SubmissionInfo:
    """``sub`` as the master book of ``year`` shows it: a return of another year is 受付不可 (C810)."""
    if year is None or sub.fiscal_year is None or sub.fiscal_year == year \
            or sub.result.status not in (ACCEPTED, NEEDS_FIX):
        return sub
    finding = findings.make("C810", file=sub.file, found=_year_text(sub.fiscal_year), expected=_year_text(year))
    result = dataclasses.replace(sub.result, status=REJECTED, findings=(*sub.result.findings, finding))
    return dataclasses.replace(sub, result=result)


def _year_text(year: int) -> str:
    from ..wareki import fiscal_label_with_western

    try:
        return fiscal_label_with_western(year)
    except ValueError:
        return f"{year}年度"


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
    from . import office

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


@contextmanager
def _workers(jobs: int | None) -> Iterator[ProcessPoolExecutor | None]:
    """The worker processes, started before the inbox is scanned.

    Forked workers carry what their parent held when they started; started first, they do
    not each carry the list of every file in the inbox (100,000 files: some 100 MB apiece).
    """
    jobs = jobs or os.cpu_count() or 1
    if jobs <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_start)
    try:
        try:
            # each call submitted while no worker is idle yet starts one more
            for started in [pool.submit(_ready) for _ in range(jobs)]:
                started.result()
        except BrokenProcessPool:  # _run starts its own when it needs them
            yield None
        else:
            yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ready() -> None:
    pass


def _run(tasks: list[_Task], jobs: int | None,
         started: ProcessPoolExecutor | None = None) -> Iterator[tuple[_Task, str, bytes | Archived, CheckResult]]:
    """Each task's outcome, in order; a worker that dies (killed, crashed) costs one file, not the batch.

    ``started``: workers to use first (``_workers``); after a worker died, new ones take over.
    """
    jobs = jobs or os.cpu_count() or 1
    if jobs <= 1 or len(tasks) < PARALLEL_MIN:
        yield from map(_work, tasks)
        return
    pending = list(tasks)
    while pending:
        done = 0
        try:
            with (started or ProcessPoolExecutor(max_workers=jobs, initializer=_worker_start)) as pool:
                started = None  # a broken pool is never used again
                # A bounded window of chunks in flight (pool.map would submit them all): when the
                # workers outrun the recording here, finished results must not pile up in memory.
                chunks = (pending[i:i + _CHUNK] for i in range(0, len(pending), _CHUNK))
                window = deque(pool.submit(_work_chunk, c) for c in islice(chunks, jobs * _AHEAD))
                while window:
                    outcomes = window.popleft().result()
                    window.extend(pool.submit(_work_chunk, c) for c in islice(chunks, 1))
                    for outcome in outcomes:
                        done += 1
                        yield outcome
            return
        except BrokenProcessPool:
            # The file that broke it is among those in flight: the first left, alone, tells.
            pending = pending[done:]
            yield _alone(pending.pop(0))


_CHUNK = 8  # tasks per message to a worker
_AHEAD = 4  # chunks in flight per worker


def _work_chunk(tasks: list[_Task]) -> list[tuple[_Task, str, bytes | Archived, CheckResult]]:
    return [_work(task) for task in tasks]


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
        data = _read_regular(task.path)
    except OSError:
        return _unread(task, finding)
    sha = sha256_bytes(data)
    archive_content(Path(task.workspace), sha, archive_ext(task.relpath), data)
    return task, sha, Archived(len(data)), CheckResult(task.relpath, None, [finding], readable=False)


def _expected_years_by_template(expected: list[dict[str, Any]] | None) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for r in expected or []:
        if isinstance(r, dict) and isinstance(r.get("fiscal_year"), int):
            out.setdefault(_template_id(r), Counter())[r["fiscal_year"]] += 1
    return out


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
    if result.rejected:
        line += f"、受付不可 {len(result.rejected)}件"
    if expected is not None:
        # an unreadable file that names its project (in _meta) stands for it, as in 提出状況
        received = {str(s.project_no) for s in (*result.current, *result.unreadable, *result.rejected)
                    if s.project_no is not None}
        missing = len(expected - received) if result.missing is None else result.missing
        line += f"、対象外 {counts.get(UNEXPECTED, 0)}件、未提出 {missing}件"
    if result.foreign:
        line += f"、様式違い {len(result.foreign)}件"
    unread = sum(n.status == UNREADABLE for n in result.inbox_notes)
    excluded = len(result.inbox_notes) - unread
    if unread or excluded:
        line += f"、読み取らなかったもの {unread + excluded}件（リンク・特殊ファイル {unread}件、除外 {excluded}件）"
    return line + "。"


CHASE_SHOWN = 5  # projects named per status before "ほかN件"


def chase_lines(result: CollectResult) -> list[str]:
    """The projects to chase, by status (要修正, 受付不可, 読取不可, 未提出): number, name, 部・課 or the file,
    at most ``CHASE_SHOWN`` each and "ほかN件" (the master book's 提出状況 lists them all)."""
    lines = []
    for status in CHASED:
        rows = [c for c in result.to_chase if c.status == status]
        if not rows:
            continue
        lines.append(f"  {status} {len(rows)}件:")
        shown = rows if len(rows) <= CHASE_SHOWN + 1 else rows[:CHASE_SHOWN]  # never "ほか1件"
        lines.extend(f"    {_chase_text(c)}" for c in shown)
        if len(shown) < len(rows):
            lines.append(f"    ほか{len(rows) - len(shown)}件（マスターブックの「提出状況」シートにすべてあります）")
    return lines


def _chase_text(row: Chase) -> str:
    name = " ".join(str(x) for x in (row.project_no, row.project_name) if x)
    where = " ".join(str(x) for x in (row.department, row.division) if x)
    if row.status == UNREADABLE or not name:
        return f"{row.file}（{name}）" if name else str(row.file)
    return f"{name}（{where}）" if where else name
