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
import errno
import functools
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import badfiles
import pytest
from cycle import run_cli, tree
from helpers import seed_record, seed_records
from test_filesafety import REFUSED, WARNED

from sheettool import jsontext, spec
from sheettool.check import check_file
from sheettool.collect.ledger import DB_NAME
from sheettool.generate import output_path
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
    import sheettool.collect as collect_mod

    real = collect_mod.check_bytes

    def dies_on_poison(data: bytes, name: str, *args: Any, **kwargs: Any):
        if "poison" in name:
            os._exit(9)  # as a worker killed by the kernel
        return real(data, name, *args, **kwargs)

    kit.monkeypatch.setattr(collect_mod, "check_bytes", dies_on_poison)
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
    src = kit.records("records.json", [record])
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


def _no_temp_files(where: Path) -> None:
    assert not [p for p in where.rglob("*") if p.name.startswith((".tmp-", ".sheettool-"))]


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
    _no_temp_files(kit.root)
    if case.then is not None:
        case.then(kit, outcome)


def test_the_catalogue_is_large_and_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)


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
    path.write_bytes(big_return(generated["088"].read_bytes(), 8 * MIB - 64 * 1024))
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
