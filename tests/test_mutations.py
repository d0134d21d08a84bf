"""Mutation fuzz of a real return: every kind of attribute and text node of its XML parts, changed.

The return is a generated template filled in and saved by LibreOffice, as a department sends it.
Its main sheet, ``_meta`` sheet, workbook, styles and shared strings are parsed; every kind of
attribute (element name + attribute name) and of text node (element name) found there is one
mutation site. The values are chosen systematically, not at random:

- a text node kind gets every hostile value: "", "abc", "-1", "1e309", "NaN", escaped control
  characters (valid XML), and, in its first occurrence only, 33,000 characters and "[" nested
  100,000 deep (in every occurrence they would only make the part exceed its size cap);
- an attribute kind gets three of the six short values, in rotation over the kinds of its part
  (each value reaches every other kind; every element's attributes see all six);
- each part once gets raw control characters (which no longer make it XML).

Short values replace every occurrence of the kind (every ``s=`` of every cell, every ``<v>``).
Every mutant must give a ``CheckResult`` whose JSON is strict (no NaN), never an exception; one
``collect`` of all the mutants must finish with a result for every file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sqlite3
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from cycle import fill, run_cli, sent_out
from helpers import seed_record

from sheettool.check import CheckResult, check_bytes
from sheettool.collect.ledger import DB_NAME
from sheettool.generate import output_path
from sheettool.xlsx.read import Book
from sheettool.xlsx.safety import package_from_bytes

CONTROL_ESCAPED = "_x0001__x001B_[31m_x0000_"  # valid XML, control characters once decoded
CONTROL_RAW = "\x01\x1b[31m"  # not even XML 1.0
SHORT = ["", "abc", "-1", "1e309", "NaN", CONTROL_ESCAPED]
PER_ATTRIBUTE = 3  # of SHORT, in rotation
LONG = "あ" * 33_000  # more than a cell may hold (32,767)
DEEP = "[" * 100_000  # for _meta's JSON, and anything else that might recurse

_PREFIX = rb"(?:[\w.-]+:)?"


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def kinds(xml: bytes) -> list[tuple[str, str | None]]:
    """Every (element, attribute) and (element, None) for a text node, in a stable order."""
    found: set[tuple[str, str | None]] = set()
    for elem in ET.fromstring(xml).iter():
        tag = elem.tag.rpartition("}")[2]
        if elem.text and elem.text.strip():
            found.add((tag, None))
        found.update((tag, name.rpartition("}")[2]) for name in elem.attrib)
    return sorted(found, key=lambda k: (k[0], k[1] or ""))


def mutate(xml: bytes, kind: tuple[str, str | None], value: str, *, first_only: bool) -> bytes:
    tag, attr = kind
    raw = _escape(value).encode("utf-8")
    name = re.escape(tag.encode())
    if attr is None:
        pattern = rb"(<" + _PREFIX + name + rb"(?:\s[^>]*)?>)([^<]+)(</" + _PREFIX + name + rb">)"
    else:
        pattern = (rb"(<" + _PREFIX + name + rb"(?=[\s/>])[^>]*?\s" + _PREFIX + re.escape(attr.encode())
                   + rb'=")([^"]*)(")')
    return re.sub(pattern, lambda m: m.group(1) + raw + m.group(3), xml, count=1 if first_only else 0)


def rezip(data: bytes, part: str, body: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, body if info.filename == part else src.read(info))
    return out.getvalue()


def parsed_parts(data: bytes) -> list[str]:
    """The parts check parses: main sheet, _meta, workbook, styles, shared strings."""
    book = Book(package_from_bytes("return.xlsx", data))
    sheets = [s.part for s in book.sheets if s.name in ("マネジメントシート", "_meta")]
    return [*sheets, "xl/workbook.xml", "xl/styles.xml", "xl/sharedStrings.xml"]


def _values(n: int, kind: tuple[str, str | None]) -> list[tuple[str, str, bool]]:
    """(label, value, first occurrence only) for the ``n``-th kind of a part."""
    if kind[1] is None:
        return [*((f"v{i}", v, False) for i, v in enumerate(SHORT)), ("long", LONG, True), ("deep", DEEP, True)]
    picked = [(n + j) % len(SHORT) for j in range(PER_ATTRIBUTE)]
    return [(f"v{i}", SHORT[i], False) for i in picked]


def mutants(data: bytes) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        bodies = {name: zf.read(name) for name in parsed_parts(data)}
    for part, xml in bodies.items():
        stem = re.sub(r"\W", "_", part)
        found = kinds(xml)
        for n, kind in enumerate(found):
            for label, value, first in _values(n, kind):
                body = mutate(xml, kind, value, first_only=first)
                if body != xml:
                    yield f"{stem}_{n}_{kind[0]}_{kind[1] or 'text'}_{label}", rezip(data, part, body)
        raw = mutate(xml, found[0], CONTROL_RAW, first_only=True)
        yield f"{stem}_raw_control", rezip(data, part, raw)


def _checked(item: tuple[str, bytes]) -> tuple[str, str, str]:
    """(name, status, JSON text) of one mutant, or the exception's repr as the status."""
    name, data = item
    try:
        result = check_bytes(data, f"{name}.xlsx")
    except BaseException as exc:  # the test is that this never happens
        return name, f"raised {exc!r}", ""
    if not isinstance(result, CheckResult):
        return name, f"returned {type(result).__name__}", ""
    return name, result.status, json.dumps(result.to_json(), ensure_ascii=False, allow_nan=False)


@pytest.fixture(scope="module")
def real_return(calc, tmp_path_factory) -> bytes:
    """088 as sent out, filled in LibreOffice with its published values, saved as .xlsx."""
    folder = tmp_path_factory.mktemp("mutations")
    record = seed_record("088")
    src = folder / "records.json"
    src.write_text(json.dumps([sent_out(record)], ensure_ascii=False), encoding="utf-8")
    rc, out, err = run_cli("generate", src, "--out", folder / "t")
    assert rc == 0, out + err
    saved = fill(calc, output_path(folder / "t", record), record, folder / "return.xlsx")
    return saved.read_bytes()


@pytest.fixture(scope="module")
def all_mutants(real_return: bytes) -> list[tuple[str, bytes]]:
    return list(mutants(real_return))


def test_the_real_return_is_clean(real_return: bytes) -> None:
    result = check_bytes(real_return, "return.xlsx")
    assert result.ok, [(f.code, f.message) for f in result.findings if f.is_error]


def test_every_kind_is_mutated(real_return: bytes, all_mutants: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(io.BytesIO(real_return)) as zf:
        total = sum(len(kinds(zf.read(p))) for p in parsed_parts(real_return))
    sites = {name.rsplit("_", 1)[0] for name, _ in all_mutants}  # name: <part>_<n>_<tag>_<attr>_<value>
    assert total > 150 and len({s for s in sites if not s.endswith("_raw")}) == total


def test_check_never_raises(all_mutants: list[tuple[str, bytes]]) -> None:
    with ProcessPoolExecutor(max_workers=2) as pool:  # the machine's two cores: half the time
        outcomes = list(pool.map(_checked, all_mutants, chunksize=16))
    statuses: dict[str, int] = {}
    for name, status, text in outcomes:
        # 受付不可: a mutated identity (a project number changed on the sheet, _meta edited)
        assert status in ("受理", "要修正", "読取不可", "受付不可"), (name, status)
        assert "予期しない内部エラー" not in text and '"F122"' not in text, (name, text[:2000])
        statuses[status] = statuses.get(status, 0) + 1
    # some accepted, some to fix, some unreadable: the mutations bite
    assert {"受理", "要修正", "読取不可"} <= set(statuses), statuses


def test_collect_reads_every_mutant(all_mutants: list[tuple[str, bytes]], tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, data in all_mutants:
        (inbox / f"{name}.xlsx").write_bytes(data)
    with _fast_folder(tmp_path) as store:  # the archive's fsyncs are most of collect's time on a disk
        rc, out, err = run_cli("collect", inbox, "--out", tmp_path / "m.xlsx", "--store", store, "--jobs", "2")
        assert rc == 1 and "Traceback" not in err, out + err
        with contextlib.closing(sqlite3.connect(store / DB_NAME)) as conn:
            seen = conn.execute("SELECT count(DISTINCT relpath) FROM sightings").fetchone()[0]
            crashed = conn.execute("SELECT count(*) FROM submissions WHERE findings_json LIKE '%\"F122\"%'"
                                   " OR findings_json LIKE '%\"C803\"%'").fetchone()[0]
    assert seen == len(all_mutants) and crashed == 0


@contextlib.contextmanager
def _fast_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder in memory (/dev/shm) where there is one, else under ``tmp_path``."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        yield tmp_path / "store"
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="sheettool-test-") as folder:
        yield Path(folder) / "store"
