"""The sheet reader's fast path (xlsx/read.py ``_fast_sheet``) reads what the element parser reads.

Over real returns (generated, and filled and saved by LibreOffice, every template), the
mutation corpus of tests/test_mutations.py, and hand-made irregular sheets: the cells and
protection of every sheet, and every finding of ``check``, are the same on both paths.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from cycle import fill, run_cli, sent_out
from test_mutations import mutants

from sheettool import spec
from sheettool.check import check_bytes, plan
from sheettool.generate import output_path
from sheettool.xlsx import read as xlsx_read
from sheettool.xlsx.safety import package_from_bytes

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ("tsukuba", "fukaya", "koriyama")


def _records(template: str) -> list[dict]:
    prefix = {"tsukuba": "tsukuba_R4", "fukaya": "fukaya_R6", "koriyama": "koriyama_R7"}[template]
    return json.loads((ROOT / "data" / f"{prefix}_records.json").read_text(encoding="utf-8"))


def _both(data: bytes, name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    """check's JSON on the fast path and on the element parser alone."""
    monkeypatch.setattr(xlsx_read, "FAST_SHEETS", True)
    fast = check_bytes(data, name, key=None).to_json()
    monkeypatch.setattr(xlsx_read, "FAST_SHEETS", False)
    full = check_bytes(data, name, key=None).to_json()
    monkeypatch.setattr(xlsx_read, "FAST_SHEETS", True)
    return fast, full


def _sheets_fast(data: bytes) -> int:
    """How many sheets of a readable workbook took the fast path; each read the same as in full."""
    book = xlsx_read.Book(package_from_bytes("return.xlsx", data))
    taken = 0
    for sheet in book.sheets:
        raw = book.pkg.read(sheet.part)
        fast = xlsx_read._fast_sheet(raw)
        quick = xlsx_read.column_formulas(raw, "B")  # the panel's flags are compared this way
        if quick is not None and fast is not None:
            assert quick == {ref: c.f for ref, c in fast[0].items() if ref[0] == "B" and ref[1:].isdigit()}
        if fast is None:
            continue
        taken += 1
        cells = {}
        prot = {}
        for elem, parent in book.pkg.elements(sheet.part, xlsx_read._SHEET_ITEMS, raw):
            if parent == "row":
                xlsx_read._read_cell(elem, cells)
            elif parent == "worksheet" and elem.tag.rpartition("}")[2] == "sheetProtection":
                prot = dict(elem.attrib)
        assert fast == (cells, prot), sheet.name
    part = book._part("xl/sharedstrings.xml")
    if part is not None:
        raw = book.pkg.read(part)
        strings = xlsx_read._fast_strings(raw)
        if strings is not None:
            taken += 1
            assert strings == [xlsx_read._text_of(si) for si, _ in book.pkg.elements(part, xlsx_read._SI, raw)]
    return taken


@pytest.fixture(scope="module")
def saved_returns(calc, tmp_path_factory) -> dict[str, list[bytes]]:
    """Two projects of each template: generated (sent out), then filled and saved by LibreOffice."""
    folder = tmp_path_factory.mktemp("fastread")
    out: dict[str, list[bytes]] = {}
    for template in TEMPLATES:
        lay = spec.load(template)
        records = _records(template)[:2]
        src = folder / f"{template}.json"
        issued = [sent_out(r) if template == "tsukuba" else r for r in records]  # sent_out knows つくば's
        src.write_text(json.dumps(issued, ensure_ascii=False), encoding="utf-8")
        rc, stdout, err = run_cli("generate", src, "--out", folder / template)
        assert rc == 0, stdout + err
        out[template] = []
        for i, (record, sent) in enumerate(zip(records, issued, strict=True)):
            generated = output_path(folder / template, sent)
            saved = fill(calc, generated, record, folder / f"{template}_{i}.xlsx", lay=lay)
            out[template] += [generated.read_bytes(), saved.read_bytes()]
    return out


def test_real_returns_take_the_fast_path_and_check_the_same(saved_returns, monkeypatch):
    for template, returns in saved_returns.items():
        for n, data in enumerate(returns):
            assert _sheets_fast(data) >= 2 + (n % 2), (template, n)  # main sheet, _meta (and LibreOffice's strings)
            fast, full = _both(data, f"{template}_{n}.xlsx", monkeypatch)
            assert fast == full, (template, n)
            assert fast["record"] is not None


def test_layout_plans_reused_across_returns_change_no_finding(saved_returns):
    """check/plan.py: what one return's layout gave is looked up for the next; built afresh for
    every file, every template's returns and their mutants (other names, moved cells) check the same."""
    corpus = [(f"{t}_{n}", d) for t, returns in saved_returns.items() for n, d in enumerate(returns)]
    corpus += list(mutants(saved_returns["fukaya"][1]))[::7]
    warm = [check_bytes(data, f"{name}.xlsx", key=None).to_json() for name, data in corpus + corpus[::-1]]
    fresh = []
    for name, data in corpus + corpus[::-1]:
        plan._PLANS.clear()
        fresh.append(check_bytes(data, f"{name}.xlsx", key=None).to_json())
    assert warm == fresh
    assert sum(r["record"] is not None for r in fresh) > len(corpus)


def test_mutants_check_the_same_on_both_paths(saved_returns, monkeypatch):
    taken = 0
    for name, data in mutants(saved_returns["tsukuba"][1]):  # saved by LibreOffice
        fast, full = _both(data, f"{name}.xlsx", monkeypatch)
        assert fast == full, name
        with contextlib.suppress(Exception):  # an unreadable mutant: check said so on both paths
            taken += _sheets_fast(data) > 0
    assert taken > 100  # most mutants are regular XML still


IRREGULAR = {
    "comment": b'<!-- x --><row r="1"><c r="A1"><v>1</v></c></row>',
    "prefixed cell": b'<row r="1"><x:c xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" r="A1"><x:v>1</x:v></x:c></row>',
    "attribute order": b'<row r="1"><c s="1" r="A1"><v>1</v></c></row>',
    "rich text": b'<row r="1"><c r="A1" t="inlineStr"><is><r><t>a</t></r><r><t>b</t></r></is></c></row>',
    "CR": b'<row r="1"><c r="A1" t="inlineStr"><is><t>a\r\nb</t></is></c></row>',
    "CDATA": b'<row r="1"><c r="A1" t="inlineStr"><is><t><![CDATA[<a>]]></t></is></c></row>',
    "no ref": b'<row r="1"><c><v>1</v></c></row>',
    "extLst in cell": b'<row r="1"><c r="A1"><v>1</v><extLst/></c></row>',
    "cell twice": b'<row r="1"><c r="A1" s="1"/><c r="A1"><v>1</v></c></row>',
    "empty cell twice": b'<row r="1"><c r="A1" s="1"/><c r="A1" s="2"/></row>',
}
REGULAR = {
    "entities": b'<row r="1"><c r="A1" t="inlineStr"><is><t>&lt;&amp;&#x41;&#66;&quot;</t></is></c></row>',
    "shared formula": b'<row r="1"><c r="A1"><f t="shared" ref="A1:A2" si="0">B1+1</f><v>2</v></c>'
                      b'<c r="A2"><f t="shared" si="0"/><v>3</v></c></row>',
    "empty v of a string": b'<row r="1"><c r="A1" t="str"><f>""</f><v></v></c><c r="B1" s="x"/></row>',
    "escapes": b'<row r="1" spans="1:2"><c r="A1" t="inlineStr"><is><t xml:space="preserve"> _x0041_ </t></is></c></row>',
}


def _sheet(rows: bytes, after: bytes = b'<sheetProtection sheet="1" objects="1"/>') -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            b'<dimension ref="A1"/><sheetData>' + rows + b"</sheetData>" + after + b"</worksheet>")


@pytest.mark.parametrize("name", sorted(IRREGULAR))
def test_irregular_sheets_go_the_long_way(name):
    assert xlsx_read._fast_sheet(_sheet(IRREGULAR[name])) is None


@pytest.mark.parametrize("name", sorted(REGULAR))
def test_regular_sheets_read_as_the_element_parser_reads_them(name):
    import xml.etree.ElementTree as ET

    data = _sheet(REGULAR[name])
    cells: dict = {}
    for row in ET.fromstring(data).iter("{http://schemas.openxmlformats.org/spreadsheetml/2006/main}row"):
        for c in row:
            xlsx_read._read_cell(c, cells)
    assert xlsx_read._fast_sheet(data) == (cells, {"sheet": "1", "objects": "1"})


def test_protection_elsewhere_or_twice_goes_the_long_way():
    row = b'<row r="1"><c r="A1"><v>1</v></c></row>'
    assert xlsx_read._fast_sheet(_sheet(row, b'<x><sheetProtection sheet="1"/></x>')) is None
    assert xlsx_read._fast_sheet(_sheet(row, b'<sheetProtection sheet="1"/><sheetProtection sheet="0"/>')) is None
    assert xlsx_read._fast_sheet(_sheet(row, b"")) == ({"A1": xlsx_read.RawCell("A1", v="1")}, {})
    nested = (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x>'
              b"<sheetData>" + row + b"</sheetData></x></worksheet>")
    assert xlsx_read._fast_sheet(nested) is None  # cells three levels down are not read at all


def test_malformed_sheets_go_the_long_way():
    for broken in (_sheet(b'<row r="1"><c r="A1"><v>&foo;</v></c></row>'),
                   _sheet(b'<row r="1" r="2"><c r="A1"/></row>'),
                   _sheet(b'<row r="1"><c r="A1"><v>\x01</v></c></row>'),
                   _sheet(b'<row r="1"><c r="A1"><v>1</v></c></row>')[:-5]):
        assert xlsx_read._fast_sheet(broken) is None
