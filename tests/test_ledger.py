"""The submission ledger: archive, history, the newer-rule, idempotency, crashes, locks, paths.

Files here are tiny JSON payloads named .xlsx, read by a fake check function:
the ledger never looks inside a file, it only hashes and archives it.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sheettool.collect.ledger as ledger_mod
from sheettool.collect.ledger import (
    SCHEMA_VERSION,
    Archived,
    Ledger,
    LedgerError,
    LedgerLocked,
    SubmissionInfo,
    relpath_for,
    sha256_bytes,
    workspace_for,
)
from sheettool.collect.submission import ACCEPTED, NEEDS_FIX, UNREADABLE, CheckResult
from sheettool.findings import Finding

ROOT = Path(__file__).resolve().parent.parent
BASE_NS = 1_700_000_000_000_000_000  # 2023-11-14, a plausible mtime
SEC = 1_000_000_000
POSIX = os.name == "posix"

# --- the fake checker and a collect-like ingest loop ---------------------------------
# These functions are also copied verbatim (inspect.getsource) into a driver script
# that the crash and concurrency tests run in subprocesses, so they only use names
# from _DRIVER_HEADER.


def fake_check(data: bytes, relpath: str) -> CheckResult:
    """JSON payload → record; anything else → unreadable (meta from a BROKEN:NNN prefix)."""
    try:
        payload = json.loads(data.decode("utf-8"))
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        meta = {"project_no": data[7:10].decode()} if data.startswith(b"BROKEN:") else {}
        finding = Finding("F110", "error", f"{relpath} は壊れているため読み取れません。")
        return CheckResult(file=relpath, record=None, findings=[finding], meta=meta, readable=False)
    record = {k: payload.get(k) for k in
              ("fiscal_year", "project_no", "project_name", "department", "division")}
    findings = []
    if payload.get("bad"):
        findings.append(Finding("V301", "error", "予算額が数値ではありません。", sheet="シート",
                                cell="D12", field="costs.2022.budget", params={"value": "abc"}))
    return CheckResult(file=relpath, record=record, findings=findings,
                       meta={"project_no": record["project_no"], "template_version": "1"})


def ingest(ledger: Ledger, inbox: Path, on_file=None) -> dict:  # noqa: ANN001
    """What collect does per file: stat → known path? → hash → known content? → check."""
    counts = {"files": 0, "hashed": 0, "checked": 0}
    paths = sorted((p for p in inbox.rglob("*") if p.is_file()),
                   key=lambda p: relpath_for(inbox, p))
    for index, path in enumerate(paths):
        rel = relpath_for(inbox, path)
        stat = path.stat()
        sha = ledger.known_sha(rel, stat.st_size, stat.st_mtime_ns)
        data = result = None
        if sha is None:
            data = path.read_bytes()
            sha = sha256_bytes(data)
            counts["hashed"] += 1
            if not ledger.has_result(sha):
                result = fake_check(data, rel)
                counts["checked"] += 1
        ledger.record_file(rel, data, sha, stat.st_mtime_ns, result)
        counts["files"] += 1
        if on_file is not None:
            on_file(index)
    return counts


def die_at(spec: str) -> Callable[[], None]:
    """Arm a SIGKILL of this very process at the n-th pass of a named point."""
    point, n = spec.split(":")
    calls = itertools.count(1)

    def maybe_die() -> None:
        if next(calls) == int(n):
            os.kill(os.getpid(), signal.SIGKILL)

    if point == "before_replace":  # archive temp file written and fsynced, not renamed
        real_replace = os.replace

        def replace(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            maybe_die()
            return real_replace(*args, **kwargs)
        ledger_mod.os.replace = replace
    elif point == "after_archive":  # archive in place, no DB row yet
        real_fsync_dir = ledger_mod._fsync_dir

        def fsync_dir(path):  # noqa: ANN001, ANN202
            real_fsync_dir(path)
            maybe_die()
        ledger_mod._fsync_dir = fsync_dir
    elif point == "in_transaction":  # rows inserted, current updated, not committed
        real_recompute = Ledger._recompute_current

        def recompute(conn, template, project_no):  # noqa: ANN001, ANN202
            real_recompute(conn, template, project_no)
            maybe_die()
        Ledger._recompute_current = staticmethod(recompute)
    return maybe_die


def driver_main(argv: list) -> None:
    inbox, store = Path(argv[0]), Path(argv[1])
    spec = argv[2] if len(argv) > 2 else ""
    after_commit = die_at(spec) if spec else None

    def on_file(index: int) -> None:
        print(index, flush=True)
        if spec.startswith("after_commit"):
            after_commit()

    with Ledger.open(store) as ledger:
        ingest(ledger, inbox, on_file)


_DRIVER_HEADER = f"""from __future__ import annotations
import itertools, json, os, signal, sys
from collections.abc import Callable
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
import sheettool.collect.ledger as ledger_mod
from sheettool.findings import Finding
from sheettool.collect.ledger import Ledger, relpath_for, sha256_bytes
from sheettool.collect.submission import CheckResult
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = _DRIVER_HEADER + "\n\n".join(
        inspect.getsource(f) for f in (fake_check, ingest, die_at, driver_main)
    ) + "\n\ndriver_main(sys.argv[1:])\n"
    path = tmp_path_factory.mktemp("driver") / "driver.py"
    path.write_text(source, encoding="utf-8")
    return path


# --- building inboxes ----------------------------------------------------------------


def payload(project_no: str, version: int, *, bad: bool = False, **extra: object) -> bytes:
    return json.dumps({"fiscal_year": 2022, "project_no": project_no,
                       "project_name": f"事業{project_no}", "department": "総務部",
                       "division": "総務課", "version": version, "bad": bad, **extra},
                      ensure_ascii=False).encode("utf-8")


def put(inbox: Path, rel: str | bytes, data: bytes, mtime_ns: int) -> Path:
    path = Path(os.fsdecode(os.path.join(os.fsencode(inbox), os.fsencode(rel))))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def build_inbox(inbox: Path, n: int) -> None:
    """n files: ~n/40 versions per project with shuffled mtimes, broken files,
    files with errors, and the same content under a second path with a later mtime."""
    previous = b""
    for i in range(n):
        mtime = BASE_NS + ((i * 7919) % n) * SEC  # a permutation: distinct mtimes
        rel = f"部{i % 5}/課{i % 3}/file_{i:04d}.xlsx"
        if i % 23 == 22:
            data = previous  # a copy of the last file, seen later under another name
        elif i % 17 == 16:
            data = f"BROKEN:{i % 40:03d}:{i}".encode()
        else:
            data = payload(f"{i % 40:03d}", i, bad=i % 29 == 28)
        put(inbox, rel, data, mtime)
        previous = data


def snapshot(workspace: Path) -> dict:
    """The observable state: current, history, every path seen, and the archive."""
    with Ledger.open(workspace) as ledger:
        history = ledger.history()
        state = {
            "current": [(s.project_no, s.sha256) for s in ledger.current()],
            "history": [(s.sha256, s.file, s.modified_at, s.current, s.result.status,
                         json.dumps(s.result.to_json(), ensure_ascii=False, sort_keys=True),
                         s.result.meta) for s in history],
            "paths": {s.sha256: sorted(x.relpath for x in ledger.sightings(s.sha256))
                      for s in history},
        }
    state["archive"] = {p.relative_to(workspace).as_posix(): p.read_bytes()
                        for p in sorted((workspace / "archive").rglob("*"))
                        if p.is_file() and not p.name.startswith(".tmp-")}
    return state


def independent_check(workspace: Path) -> int:
    """Integrity without trusting Ledger.verify: raw SQLite and hashing every archive file.

    Returns the number of submissions recorded."""
    conn = sqlite3.connect(workspace / "ledger.sqlite3")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        for sha, ext in conn.execute("SELECT sha256, ext FROM submissions"):
            path = workspace / "archive" / sha[:2] / f"{sha}{ext}"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
        orphans = conn.execute(
            "SELECT count(*) FROM sightings WHERE sha256 NOT IN (SELECT sha256 FROM submissions)"
        ).fetchone()[0]
        assert orphans == 0
        unseen = conn.execute(
            "SELECT count(*) FROM submissions WHERE sha256 NOT IN (SELECT sha256 FROM sightings)"
        ).fetchone()[0]
        assert unseen == 0  # a submission and its first sighting are one transaction
        count = conn.execute("SELECT count(*) FROM submissions").fetchone()[0]
    finally:
        conn.close()
    with Ledger.open(workspace) as ledger:
        assert ledger.verify() == []
    return count


def record(ledger: Ledger, rel: str, data: bytes, mtime_ns: int):  # noqa: ANN201
    sha = sha256_bytes(data)
    return ledger.record_file(rel, data, sha, mtime_ns,
                              None if ledger.has_result(sha) else fake_check(data, rel))


@pytest.fixture
def ledger(tmp_path: Path):  # noqa: ANN201
    with Ledger.open(tmp_path / "M.sheettool") as opened:
        yield opened


# --- basics --------------------------------------------------------------------------


def test_workspace_next_to_master(tmp_path: Path) -> None:
    assert workspace_for(tmp_path / "MASTER.xlsx") == tmp_path / "MASTER.sheettool"
    with Ledger.open(workspace_for(tmp_path / "MASTER.xlsx")) as ledger:
        assert ledger.db_path == tmp_path / "MASTER.sheettool" / "ledger.sqlite3"
        assert ledger.stats()["journal_mode"] == "wal"
    assert (tmp_path / "MASTER.sheettool" / "archive").is_dir()


def test_result_round_trips(ledger: Ledger) -> None:
    data = payload("088", 1, bad=True)
    result = fake_check(data, "総務部/088.xlsx")
    result.meta["generated_at"] = datetime(2023, 4, 1, 9, 30)
    sub = ledger.record_file("総務部/088.xlsx", data, sha256_bytes(data), BASE_NS, result)
    again = ledger.history()[0]
    for got in (sub, again):
        assert got.result.record == result.record
        assert got.result.findings == result.findings
        assert [f.params for f in got.result.findings] == [{"value": "abc"}]
        assert got.result.to_json() == result.to_json()
        assert got.result.meta["generated_at"] == "2023-04-01T09:30:00"
        assert got.result.status == NEEDS_FIX and got.project_no == "088" and got.current
        assert got.file == "総務部/088.xlsx"
        assert datetime.fromisoformat(got.modified_at).timestamp() == BASE_NS / SEC
    assert ledger.archive_path(sub.sha256).read_bytes() == data
    assert ledger.archive_path(sub.sha256).name == sub.sha256 + ".xlsx"


def test_known_content_needs_no_data_or_result(ledger: Ledger) -> None:
    data = payload("001", 1)
    sha = sha256_bytes(data)
    with pytest.raises(ValueError):
        ledger.record_file("a.xlsx", data, sha, BASE_NS, None)  # new content, no result
    with pytest.raises(ValueError):
        ledger.record_file("a.xlsx", None, sha, BASE_NS, fake_check(data, "a.xlsx"))
    with pytest.raises(ValueError):
        ledger.record_file("a.xlsx", data, "0" * 64, BASE_NS, fake_check(data, "a.xlsx"))
    assert ledger.history() == [] and ledger.stats()["sightings"] == 0
    record(ledger, "a.xlsx", data, BASE_NS)
    # Known content: a sighting without data, and a different result is ignored.
    other = CheckResult(file="b.xlsx", record=None, readable=False)
    sub = ledger.record_file("b.xlsx", None, sha, BASE_NS + SEC, other)
    assert sub.result.status == ACCEPTED and sub.file == "a.xlsx"
    assert [s.relpath for s in ledger.sightings(sha)] == ["a.xlsx", "b.xlsx"]
    assert ledger.known_sha("b.xlsx", len(data), BASE_NS + SEC) == sha
    assert ledger.known_sha("b.xlsx", len(data), BASE_NS) is None


def test_content_archived_by_a_worker_travels_as_its_size(ledger: Ledger) -> None:
    data = payload("002", 1)
    sha = sha256_bytes(data)
    # claimed but not in the archive (or not whole there): refused, nothing recorded
    with pytest.raises(ValueError):
        ledger.record("c.xlsx", Archived(len(data)), sha, BASE_NS, fake_check(data, "c.xlsx"))
    ledger_mod.archive_content(ledger.workspace, sha, ".xlsx", data)
    with pytest.raises(ValueError):
        ledger.record("c.xlsx", Archived(len(data) - 1), sha, BASE_NS, fake_check(data, "c.xlsx"))
    assert ledger.history() == []
    ledger.record("c.xlsx", Archived(len(data)), sha, BASE_NS, fake_check(data, "c.xlsx"))
    (sub,) = ledger.history()
    assert (sub.sha256, sub.file) == (sha, "c.xlsx")
    assert ledger.stats()["submissions"] == 1 and ledger.verify() == []
    assert ledger.archive_path(sha).read_bytes() == data


def test_known_sha_refuses_ambiguous_triples(ledger: Ledger) -> None:
    # Same path, size and mtime with different bytes (a tool that restores mtimes):
    # the caller must hash rather than trust either.
    one, two = payload("001", 1), payload("001", 2)
    record(ledger, "x.xlsx", one, BASE_NS)
    assert ledger.known_sha("x.xlsx", len(one), BASE_NS) == sha256_bytes(one)
    record(ledger, "x.xlsx", two, BASE_NS)
    assert ledger.known_sha("x.xlsx", len(one), BASE_NS) is None


# --- the newer-rule ------------------------------------------------------------------


def test_newer_mtime_wins_whatever_the_arrival_order(ledger: Ledger) -> None:
    new, old = payload("005", 2), payload("005", 1)
    record(ledger, "v2.xlsx", new, BASE_NS + 10 * SEC)
    record(ledger, "v1.xlsx", old, BASE_NS)  # arrives later, but was modified earlier
    assert [s.file for s in ledger.current()] == ["v2.xlsx"]
    assert [(s.file, s.current) for s in ledger.history("005")] == [
        ("v1.xlsx", False), ("v2.xlsx", True)]


def test_old_file_reappearing_does_not_become_current(ledger: Ledger) -> None:
    old, new = payload("007", 1), payload("007", 2)
    record(ledger, "a/old.xlsx", old, BASE_NS)
    record(ledger, "a/new.xlsx", new, BASE_NS + SEC)
    # Someone copies the old file again, with a fresh mtime, under a new name.
    sub = record(ledger, "b/old-copy.xlsx", old, BASE_NS + 100 * SEC)
    assert not sub.current and sub.file == "a/old.xlsx"
    assert [s.file for s in ledger.current()] == ["a/new.xlsx"]
    assert len(ledger.history("007")) == 2
    assert [s.relpath for s in ledger.sightings(sub.sha256)] == ["a/old.xlsx", "b/old-copy.xlsx"]


def test_ties_broken_by_first_seen_then_path(ledger: Ledger,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    record(ledger, "z.xlsx", payload("010", 1), BASE_NS)
    record(ledger, "a.xlsx", payload("010", 2), BASE_NS)  # same mtime, seen later
    assert [s.file for s in ledger.current()] == ["a.xlsx"]
    monkeypatch.setattr(ledger_mod.time, "time_ns", lambda: 42)  # same first-seen too
    record(ledger, "m.xlsx", payload("011", 1), BASE_NS)
    record(ledger, "b.xlsx", payload("011", 2), BASE_NS)
    assert {s.project_no: s.file for s in ledger.current()}["011"] == "m.xlsx"


def test_errors_become_current_unreadable_never(ledger: Ledger) -> None:
    record(ledger, "ok.xlsx", payload("020", 1), BASE_NS)
    fix = record(ledger, "fix.xlsx", payload("020", 2, bad=True), BASE_NS + SEC)
    assert fix.current and fix.result.status == NEEDS_FIX
    broken = record(ledger, "broken.xlsx", b"BROKEN:020:x", BASE_NS + 2 * SEC)
    assert broken.result.status == UNREADABLE and not broken.current
    assert broken.project_no == "020"  # kept in the project's history via _meta
    assert [s.file for s in ledger.history("020")] == ["ok.xlsx", "fix.xlsx", "broken.xlsx"]
    assert [s.file for s in ledger.current()] == ["fix.xlsx"]
    # Unreadable without any project, and a record without a project number.
    record(ledger, "junk.xlsx", b"\x00garbage", BASE_NS)
    record(ledger, "blank.xlsx", payload("", 1), BASE_NS)
    assert [s.file for s in ledger.unreadable()] == ["junk.xlsx", "broken.xlsx"]
    assert {s.file for s in ledger.unattached()} == {"junk.xlsx", "blank.xlsx", "broken.xlsx"}
    assert len(ledger.current()) == 1
    stats = ledger.stats()
    assert (stats["submissions"], stats["current"], stats["unreadable"]) == (5, 1, 2)


@settings(max_examples=20, deadline=None)
@given(versions=st.lists(st.tuples(st.sampled_from(["001", "002", "003"]),
                                   st.integers(0, 10_000), st.booleans()),
                         min_size=1, max_size=12, unique_by=lambda v: v[1]),
       order=st.randoms(use_true_random=False))
def test_current_is_the_latest_mtime_in_any_order(versions: list, order: random.Random) -> None:
    files = [(f"{p}/{m}.xlsx", payload(p, m, bad=bad), BASE_NS + m * SEC)
             for p, m, bad in versions]
    arrivals = files + order.sample(files, k=len(files) // 2)  # some seen twice
    order.shuffle(arrivals)
    with tempfile.TemporaryDirectory() as tmp, Ledger.open(Path(tmp)) as ledger:
        for rel, data, mtime in arrivals:
            record(ledger, rel, data, mtime)
        expected = {}
        for rel, _, mtime in files:
            project = rel[:3]
            if project not in expected or mtime > expected[project][1]:
                expected[project] = (rel, mtime)
        assert {s.project_no: s.file for s in ledger.current()} == {
            p: rel for p, (rel, _) in expected.items()}
        assert len(ledger.history()) == len(files)
        assert ledger.verify() == []


# --- streaming reads (the master book's) ---------------------------------------------


def light(sub) -> tuple:  # noqa: ANN001
    """What a SubmissionInfo keeps of a submission."""
    res = sub.result
    return (sub.sha256, sub.file, sub.received_at, sub.modified_at, sub.project_no, sub.current,
            res.file, res.status, res.ok, res.readable, [f.to_json() | {"params": f.params} for f in res.findings])


def test_streamed_reads_match_the_lists(tmp_path: Path) -> None:
    inbox, ws = tmp_path / "inbox", tmp_path / "M.sheettool"
    build_inbox(inbox, 120)  # versions, broken files, errors, copies under a second name
    with Ledger.open(ws) as ledger:
        ingest(ledger, inbox)
        with ledger.snapshot():
            streamed = ledger.iter_current()
            assert not isinstance(streamed, list)
            streamed = list(streamed)
            infos = ledger.history_info()
        history = ledger.history()
        # current() is the streamed list itself; the reference is the current ones of history()
        current = sorted((s for s in history if s.current), key=lambda s: str(s.project_no))
        assert ledger.current() == streamed
        assert [(s.sha256, s.file, s.result.record, s.result.findings, s.current) for s in streamed] == \
            [(s.sha256, s.file, s.result.record, s.result.findings, s.current) for s in current]
        assert [light(i) for i in infos] == [light(s) for s in history]
        assert [i.result.has_record for i in infos] == [s.result.record is not None for s in history]
        assert infos == [SubmissionInfo.of(s) for s in history]
        assert any(i.result.status == UNREADABLE for i in infos) and any(not i.current for i in infos)
        assert [light(i) for i in ledger.history_info("005")] == [light(s) for s in ledger.history("005")]


def test_light_history_keeps_the_project_number_as_the_record_has_it(ledger: Ledger) -> None:
    """SubmissionInfo.project_no is Submission.project_no: the record's value (any JSON type), else _meta's as text."""
    def result(record: dict | None, meta: dict) -> CheckResult:
        return CheckResult(file="x", record=record, meta=meta, readable=record is not None)

    cases = [
        ("a.xlsx", result({"fiscal_year": 2022, "project_no": 88}, {}), 88),
        ("b.xlsx", result({"fiscal_year": 2022, "project_no": True}, {}), True),
        ("c.xlsx", result({"fiscal_year": 2022, "project_no": " 090 "}, {"project_no": "x"}), " 090 "),
        ("d.xlsx", result(None, {"project_no": 77}), "77"),
        ("e.xlsx", result(None, {}), None),
        ("f.xlsx", result({}, {"project_no": "091"}), "091"),  # an empty record: _meta's, as Submission does
    ]
    for i, (rel, res, _) in enumerate(cases):
        data = f"content {i}".encode()
        ledger.record_file(rel, data, sha256_bytes(data), BASE_NS + i * SEC, res)
    full = {s.file: s for s in ledger.history()}
    for info in ledger.history_info():
        assert info.project_no == full[info.file].project_no
        assert type(info.project_no) is type(full[info.file].project_no)
    assert {i.file: i.project_no for i in ledger.history_info()} == {rel: no for rel, _, no in cases}


def test_light_history_without_sqlite_json_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, ws = tmp_path / "inbox", tmp_path / "M.sheettool"
    build_inbox(inbox, 40)
    with Ledger.open(ws) as ledger:
        ingest(ledger, inbox)
        with_json = ledger.history_info()
        monkeypatch.setattr(ledger_mod, "_INFO_SELECT", ledger_mod._INFO_SELECT.replace("json_", "no_such_json_"))
        assert ledger.history_info() == with_json == [SubmissionInfo.of(s) for s in ledger.history()]


def test_snapshot_reads_one_state_while_another_process_records(tmp_path: Path) -> None:
    ws = tmp_path / "M.sheettool"
    with Ledger.open(ws) as reader, Ledger.open(ws) as writer:
        record(writer, "a.xlsx", payload("001", 1), BASE_NS)
        with reader.snapshot():
            before = [s.file for s in reader.iter_current()]
            record(writer, "b.xlsx", payload("002", 1), BASE_NS)  # WAL: the writer is not blocked
            assert [s.file for s in reader.iter_current()] == before == ["a.xlsx"]
            assert [i.file for i in reader.history_info()] == ["a.xlsx"]
        assert [s.file for s in reader.iter_current()] == ["a.xlsx", "b.xlsx"]


# --- idempotency and skipping work ---------------------------------------------------


def test_second_run_changes_nothing_observable(tmp_path: Path) -> None:
    inbox, ws = tmp_path / "inbox", tmp_path / "M.sheettool"
    build_inbox(inbox, 60)
    with Ledger.open(ws) as ledger:
        first = ingest(ledger, inbox)
    before = snapshot(ws)
    with Ledger.open(ws) as ledger:
        seen = {s.sha256: ledger.sightings(s.sha256) for s in ledger.history()}
        second = ingest(ledger, inbox)
        seen_again = {s.sha256: ledger.sightings(s.sha256) for s in ledger.history()}
    assert first["checked"] == len(before["history"]) and first["files"] == 60
    assert second == {"files": 60, "hashed": 0, "checked": 0}  # nothing re-hashed or re-checked
    assert snapshot(ws) == before
    # Only the sightings' last_seen moved.
    strip = {k: [(s.relpath, s.size, s.modified_at, s.first_seen) for s in v]
             for k, v in seen.items()}
    assert strip == {k: [(s.relpath, s.size, s.modified_at, s.first_seen) for s in v]
                     for k, v in seen_again.items()}
    assert all(datetime.fromisoformat(a.last_seen) > datetime.fromisoformat(b.last_seen)
               for k in seen for a, b in zip(seen_again[k], seen[k], strict=True))


def test_touched_file_is_hashed_not_checked(tmp_path: Path) -> None:
    inbox, ws = tmp_path / "inbox", tmp_path / "M.sheettool"
    path = put(inbox, "a.xlsx", payload("001", 1), BASE_NS)
    put(inbox, "b.xlsx", payload("001", 2), BASE_NS + SEC)
    with Ledger.open(ws) as ledger:
        ingest(ledger, inbox)
        os.utime(path, ns=(BASE_NS + 50 * SEC, BASE_NS + 50 * SEC))
        assert ingest(ledger, inbox) == {"files": 2, "hashed": 1, "checked": 0}
        assert [s.file for s in ledger.current()] == ["b.xlsx"]  # mtime at first sight counts
        assert len(ledger.history()) == 2


def test_existing_archive_file_is_left_alone(ledger: Ledger) -> None:
    data = payload("001", 1)
    sha = sha256_bytes(data)
    path = ledger.archive_path(sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(data)  # as a crash between archive and commit would leave it
    before = path.stat()
    record(ledger, "a.xlsx", data, BASE_NS)
    record(ledger, "b.xlsx", data, BASE_NS)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_damaged_archive_file_is_set_aside_not_deleted(ledger: Ledger) -> None:
    data = payload("001", 1)
    sha = sha256_bytes(data)
    path = ledger.archive_path(sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    record(ledger, "a.xlsx", data, BASE_NS)
    assert path.read_bytes() == data
    aside = list(path.parent.glob(f"{path.name}.damaged-*"))
    assert [p.read_bytes() for p in aside] == [b"half a file"]
    assert ledger.verify() == []


# --- hostile paths -------------------------------------------------------------------

HOSTILE = [
    "..evil.xlsx",
    "....xlsx",
    "..\\..\\..\\evil.xlsx",
    "C:/Windows/System32/evil.xlsx",
    "\\\\server\\share\\evil.xlsx",
    "etc/passwd/..xlsx",
    "改行\nを含む.xlsx",
    "あ" * 80 + ".xlsx",
    "/".join(["い" * 80] * 6) + "/深い.xlsx",
    unicodedata.normalize("NFC", "がぎぐ課.xlsx"),
    unicodedata.normalize("NFD", "がぎぐ課.xlsx"),
    "macro.XLSM",
    "no_extension",
]


def test_hostile_names_stay_inside_the_workspace(tmp_path: Path) -> None:
    inbox, ws = tmp_path / "inbox", tmp_path / "M.sheettool"
    for i, rel in enumerate(HOSTILE):
        # project numbers that look like paths must not matter either
        put(inbox, rel, payload(f"../../{i:03d}", i), BASE_NS + i * SEC)
    put(inbox, "nfd-copy/" + HOSTILE[10], payload("../../010", 10), BASE_NS)  # same content
    if POSIX and sys.platform != "darwin":
        put(inbox, b"\xff\xfe-undecodable.xlsx", payload("999", 1), BASE_NS)
    with Ledger.open(ws) as ledger:
        ingest(ledger, inbox)
        stored = {x.relpath for s in ledger.history() for x in ledger.sightings(s.sha256)}
        assert ledger.verify() == []
        exts = {ledger.archive_path(s.sha256).suffix for s in ledger.history()}
    expected = {relpath_for(inbox, p) for p in inbox.rglob("*") if p.is_file()}
    assert stored == expected
    assert unicodedata.normalize("NFC", "がぎぐ課.xlsx") in stored
    assert unicodedata.normalize("NFD", "がぎぐ課.xlsx") in stored  # kept apart, not merged
    assert exts == {".xlsx", ".xlsm", ".bin"}
    # Nothing was written anywhere but the inbox and the workspace ...
    assert sorted(p.name for p in tmp_path.iterdir()) == ["M.sheettool", "inbox"]
    # ... and the workspace holds only the database and hash-named archive files.
    allowed = re.compile(r"ledger\.sqlite3(-wal|-shm)?|archive/[0-9a-f]{2}/[0-9a-f]{64}\.(xlsx|xlsm|bin)")
    for path in ws.rglob("*"):
        assert path.resolve().is_relative_to(ws.resolve())
        if path.is_file():
            assert allowed.fullmatch(path.relative_to(ws).as_posix()), path


@pytest.mark.parametrize("rel", ["../x.xlsx", "a/../../x.xlsx", "/etc/x.xlsx", "", "a\x00b"])
def test_paths_outside_the_inbox_are_refused(ledger: Ledger, rel: str) -> None:
    data = payload("001", 1)
    with pytest.raises(ValueError):
        ledger.record_file(rel, data, sha256_bytes(data), BASE_NS, fake_check(data, "x"))


@pytest.mark.parametrize("sha", ["../../../../etc/passwd", "A" * 64, "0" * 63, "g" * 64])
def test_hash_is_the_only_archive_name(ledger: Ledger, sha: str) -> None:
    with pytest.raises(ValueError):
        ledger.archive_path(sha)
    with pytest.raises(ValueError):
        ledger.has_result(sha)


# --- schema and damaged stores -------------------------------------------------------


def test_newer_schema_is_refused_in_japanese(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        record(ledger, "a.xlsx", payload("001", 1), BASE_NS)
    conn = sqlite3.connect(tmp_path / "ledger.sqlite3")
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                     (str(SCHEMA_VERSION + 1),))
    conn.close()
    with pytest.raises(LedgerError, match="新しい版の sheettool"):
        Ledger.open(tmp_path)


def test_not_a_database_is_a_japanese_error(tmp_path: Path) -> None:
    (tmp_path / "ledger.sqlite3").write_bytes(b"this is not a database " * 100)
    with pytest.raises(LedgerError, match="壊れている"):
        Ledger.open(tmp_path)


# --- concurrency ---------------------------------------------------------------------


def test_locked_store_gives_a_japanese_error(tmp_path: Path) -> None:
    with Ledger.open(tmp_path, timeout=0.2) as ledger:
        holder = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(LedgerLocked, match="使用中") as info:
            record(ledger, "a.xlsx", payload("001", 1), BASE_NS)
        assert 0.15 < time.monotonic() - started < 5
        assert "0.2 秒" in str(info.value)
        assert ledger.current() == []  # readers are never blocked (WAL)
        holder.execute("ROLLBACK")
        holder.close()
        record(ledger, "a.xlsx", payload("001", 1), BASE_NS)  # archive leftover reused
        assert len(ledger.current()) == 1 and ledger.verify() == []


def run_driver(driver: Path, inbox: Path, ws: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(driver), str(inbox), str(ws), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def crash_inbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 150-file inbox and the state an uninterrupted run leaves."""
    root = tmp_path_factory.mktemp("crash")
    build_inbox(root / "inbox", 150)
    with Ledger.open(root / "reference") as ledger:
        ingest(ledger, root / "inbox")
    return root / "inbox", snapshot(root / "reference")


def test_two_concurrent_collects_do_not_corrupt(driver: Path, crash_inbox: tuple,
                                                tmp_path: Path) -> None:
    inbox, reference = crash_inbox
    procs = [run_driver(driver, inbox, tmp_path / "ws") for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    independent_check(tmp_path / "ws")
    assert snapshot(tmp_path / "ws") == reference


# --- crash safety (SIGKILL) ----------------------------------------------------------

needs_sigkill = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


@needs_sigkill
def test_sigkill_at_random_moments_then_resume(driver: Path, crash_inbox: tuple,
                                               tmp_path: Path) -> None:
    inbox, reference = crash_inbox
    ws = tmp_path / "ws"
    rng = random.Random(20240401)
    killed, counts = 0, [0]
    total = len(reference["history"])
    for target in (10, 40, 70, 100, 125, 145):
        proc = run_driver(driver, inbox, ws)
        assert proc.stdout is not None
        for line in proc.stdout:
            if int(line) >= target:
                break
        time.sleep(rng.uniform(0, 0.004))  # land anywhere inside the next file's work
        proc.kill()
        proc.wait()
        killed += proc.returncode == -signal.SIGKILL
        counts.append(independent_check(ws))
    assert killed >= 4  # the last may finish before the kill lands
    assert counts == sorted(counts) and counts[4] < total  # each run made progress
    proc = run_driver(driver, inbox, ws)
    assert proc.wait(timeout=60) == 0
    independent_check(ws)
    assert snapshot(ws) == reference


@needs_sigkill
@pytest.mark.parametrize("points", [
    ["before_replace:1", "before_replace:40", "before_replace:3"],
    ["after_archive:1", "after_archive:60", "after_archive:5"],
    ["in_transaction:1", "in_transaction:70", "in_transaction:20"],
    ["after_commit:1", "after_commit:90", "after_commit:130"],
])
def test_sigkill_at_each_step_then_resume(driver: Path, crash_inbox: tuple, tmp_path: Path,
                                          points: list[str]) -> None:
    inbox, reference = crash_inbox
    ws = tmp_path / "ws"
    counts = [0]
    for spec in points:
        proc = run_driver(driver, inbox, ws, spec)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, spec
        counts.append(independent_check(ws))
        if spec.startswith("before_replace"):  # the half-done archive write is visible
            assert list((ws / "archive").rglob(".tmp-*"))
    # Killed mid-way each time, and each run got further than the one before.
    assert counts == sorted(counts) and counts[-1] < len(reference["history"])
    proc = run_driver(driver, inbox, ws)
    assert proc.wait(timeout=60) == 0
    independent_check(ws)
    assert snapshot(ws) == reference


def _back_to_version_2(conn: sqlite3.Connection) -> None:
    """The version 2 layout, as an older sheettool left it: no save time, order or fiscal year."""
    conn.execute("DROP INDEX submissions_order")
    for column in ("saved_ns", "order_ns", "order_source", "fiscal_year"):
        conn.execute(f"ALTER TABLE submissions DROP COLUMN {column}")
    conn.execute("CREATE INDEX submissions_order ON submissions(template, project_no, eligible, mtime_ns, "
                 "first_seen_ns, first_path)")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


def test_a_version_1_store_is_migrated_with_nothing_lost(tmp_path: Path) -> None:
    """Stores made before templates (schema version 1: current keyed by project number) open as version 3."""
    build_inbox(tmp_path / "inbox", 60)
    ws = tmp_path / "ws"
    with Ledger.open(ws) as ledger:
        ingest(ledger, tmp_path / "inbox")
    before = snapshot(ws)
    conn = sqlite3.connect(ws / "ledger.sqlite3")
    with conn:  # back to the version 1 layout, as an older sheettool left it
        _back_to_version_2(conn)
        conn.execute("DROP INDEX submissions_order")
        conn.execute("ALTER TABLE submissions DROP COLUMN template")
        conn.execute("CREATE INDEX submissions_order ON submissions(project_no, eligible, mtime_ns, "
                     "first_seen_ns, first_path)")
        conn.execute("CREATE TABLE current_old(project_no TEXT PRIMARY KEY, sha256 TEXT NOT NULL "
                     "REFERENCES submissions(sha256))")
        conn.execute("INSERT INTO current_old SELECT project_no, sha256 FROM current")
        conn.execute("DROP TABLE current")
        conn.execute("ALTER TABLE current_old RENAME TO current")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    assert snapshot(ws)["current"] == before["current"]  # opening migrates
    conn = sqlite3.connect(ws / "ledger.sqlite3")
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
        templates = {t for (t,) in conn.execute("SELECT DISTINCT template FROM current")}
    finally:
        conn.close()
    assert templates == {"tsukuba"}
    assert snapshot(ws) == before
    with Ledger.open(ws) as ledger:
        assert ledger.verify() == []
