"""``sheettool collect``: every returned workbook under an inbox, into the ledger and a master book.

Files are listed in a stable order; those whose path, size and mtime the
ledger has seen are not read again. The rest are read once by a worker
process, hashed and checked on the very bytes that get archived, and
recorded by this process in the ledger (one transaction per file). A bad
file is one finding; the batch always completes. The master book, CSV and
JSON Lines are then written from the ledger's current submissions.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .check import check_bytes
from .fileio import atomic_write_text
from .ledger import Ledger, archive_content, archive_ext, relpath_for, sha256_bytes, workspace_for
from .submission import ACCEPTED, NEEDS_FIX, UNEXPECTED, CheckResult, Submission

SUFFIXES = (".xlsx", ".xlsm")
PARALLEL_MIN = 16  # below this, worker start-up costs more than it saves


@dataclass
class CollectResult:
    """What one run did: files seen, read anew, and the state of each project afterwards."""

    seen: int = 0
    read: int = 0
    current: list[Submission] = field(default_factory=list)
    history: list[Submission] = field(default_factory=list)
    unreadable: list[Submission] = field(default_factory=list)  # still to chase: nothing replaced them
    expected: list[dict[str, Any]] | None = None
    fiscal_year: int | None = None
    outputs: list[Path] = field(default_factory=list)

    def counts(self) -> Counter:
        return Counter(s.result.status for s in self.current)


@dataclass(frozen=True)
class _Task:
    path: str
    relpath: str
    mtime_ns: int
    workspace: str
    template: str | None = None


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


def _work(task: _Task) -> tuple[_Task, str, bytes, CheckResult]:
    """Read once, hash and check the same bytes (runs in a worker)."""
    try:
        data = Path(task.path).read_bytes()
    except OSError as e:
        data = b""
        from . import findings

        result = CheckResult(task.relpath, None, [findings.make("F100", file=task.relpath,
                                                                detail=e.strerror or str(e))],
                             readable=False)
        return task, sha256_bytes(data), data, result
    sha = sha256_bytes(data)
    result = check_bytes(data, task.relpath, task.template)
    # Archived here, in parallel, before the ledger records it (the fsyncs are most of a file's cost).
    archive_content(Path(task.workspace), sha, archive_ext(task.relpath), data)
    return task, sha, data, result


def collect(inbox: str | Path, master: str | Path, *, store: str | Path | None = None,
            expected: list[dict[str, Any]] | None = None, json_out: str | Path | None = None,
            csv_dir: str | Path | None = None, jobs: int | None = None,
            progress: bool | None = None, template: str | None = None) -> CollectResult:
    """Run the whole collection; see the module docstring."""
    from . import masterbook

    inbox, master = Path(inbox), Path(master)
    workspace = Path(store) if store else workspace_for(master)
    result = CollectResult(expected=expected)
    with Ledger.open(workspace) as ledger:
        ledger.tidy()  # half-written archive files of a killed run
        tasks = []
        for path in inbox_files(inbox, exclude=(workspace, master)):
            result.seen += 1
            st = path.stat()
            rel = relpath_for(inbox, path)
            sha = ledger.known_sha(rel, st.st_size, st.st_mtime_ns)
            if sha is not None and ledger.has_result(sha):
                ledger.record_file(rel, None, sha, st.st_mtime_ns, None)
            else:
                tasks.append(_Task(str(path), rel, st.st_mtime_ns, str(workspace), template))
        show = sys.stderr.isatty() if progress is None else progress
        for done, (task, sha, data, checked) in enumerate(_run(tasks, jobs), start=1):
            known = ledger.has_result(sha)
            ledger.record_file(task.relpath, data, sha, task.mtime_ns, None if known else checked)
            result.read += 1
            if show:
                print(f"\r回収中 {done}/{len(tasks)} 件", end="", file=sys.stderr, flush=True)
        if show and tasks:
            print(file=sys.stderr)
        result.current = ledger.current()
        result.history = ledger.history()
    result.unreadable = masterbook.open_unreadable(result.current, result.history)
    result.fiscal_year = _fiscal_year(result.current, expected)
    result.outputs.append(master)
    csv_dir = Path(csv_dir) if csv_dir else master.with_name(master.stem + "_csv")
    result.outputs.extend(masterbook.write_outputs(master, csv_dir, result.current, expected, result.history,
                                                   result.fiscal_year))
    if json_out:
        lines = [json.dumps(s.result.record, ensure_ascii=False) for s in result.current if s.result.record]
        atomic_write_text(json_out, "".join(line + "\n" for line in lines))
        result.outputs.append(Path(json_out))
    return result


def _run(tasks: list[_Task], jobs: int | None) -> Iterator[tuple[_Task, str, bytes, CheckResult]]:
    jobs = jobs or os.cpu_count() or 1
    if jobs <= 1 or len(tasks) < PARALLEL_MIN:
        yield from map(_work, tasks)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_work, tasks, chunksize=8)


def _fiscal_year(current: list[Submission], expected: list[dict[str, Any]] | None) -> int | None:
    years = Counter(r.get("fiscal_year") for r in expected or [] if isinstance(r, dict))
    if not years:
        years = Counter(s.result.record["fiscal_year"] for s in current if s.result.record)
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
    return line + "。"
