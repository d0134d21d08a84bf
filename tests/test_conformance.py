"""Every template under templates/, through the same suite: nothing here names a city.

Synthetic records (from the field tree alone) → generate → LibreOffice recalculates, and
a department types every input again → save → check → the same record; every formula
gives the same value in LibreOffice as in Python; a minimal record makes a sheet with
blank inputs; tampering is found; roll-forward carries history and locks it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import openpyxl
import pytest
from cycle import as_typed, named, run_cli
from helpers import ROOT, errors
from synth import input_values, minimal_record, synthetic_record, with_formulas

from sheettool import spec
from sheettool.check import check_file
from sheettool.generate import output_path
from sheettool.spec.formula import Env

TEMPLATES = spec.available()
YEAR = {"tsukuba": 2022}  # others: the year of their sample record


def sample_records(tid: str) -> list[dict]:
    path = next(ROOT.glob(f"data/{tid}_*records.json"))
    return json.loads(path.read_text(encoding="utf-8"))


def fiscal_year(tid: str) -> int:
    return YEAR.get(tid) or sample_records(tid)[0]["fiscal_year"]


def generate(records: list[dict], folder: Path, *args: str) -> dict[str, Path]:
    src = folder.with_name(folder.name + ".json")
    src.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    rc, out, err = run_cli("generate", src, "--out", folder, *args)
    assert rc == 0, err
    return {r["project_no"]: output_path(folder, r) for r in records}


def test_there_are_several_templates():
    assert {"tsukuba", "fukaya"} <= set(TEMPLATES)


@pytest.mark.parametrize("tid", TEMPLATES)
def test_the_sample_record_round_trips_and_checks_clean(tid, tmp_path):
    tpl = spec.load(tid)
    for record in sample_records(tid):
        path = generate([record], tmp_path / "t")[record["project_no"]]
        result = check_file(path)
        assert result.record == tpl.canonical(record)
        assert errors(result) == []


@pytest.mark.parametrize("tid", TEMPLATES)
def test_calc_reproduces_every_published_figure_of_the_sample(calc, tid, tmp_path):
    """Each computed figure the sample record holds as published (totals, 人件費, 単位コスト …), recalculated
    by LibreOffice from the sheet's formulas, is the published figure exactly — in every year it is a formula."""
    tpl = spec.load(tid)
    compared = 0
    for record in sample_records(tid):
        fy = record.get("fiscal_year") or fiscal_year(tid)
        path = generate([record], tmp_path / record["project_no"])[record["project_no"]]
        formulas = [p for p in tpl.place(fy).items if p.formula and p.path is not None]
        published = {p.name: tpl.get(record, p.path) for p in formulas}
        published = {name: v for name, v in published.items() if v not in (None, "")}
        with calc.open(path) as doc:
            doc.recalc()
            assert doc.errors() == []
            cells = doc.read(list(published))
        for name, want in published.items():
            got = cells[name]["value"] if cells[name]["value"] is not None else cells[name]["string"]
            if isinstance(want, str):
                assert got == want, name
            else:
                assert got is not None and float(got) == float(want), (name, got, want, cells[name].get("formula"))
            compared += 1
    assert compared >= 10  # not vacuous: the sample's years of totals and unit costs


@pytest.mark.parametrize("tid", TEMPLATES)
@pytest.mark.parametrize("seed", [1, 2])
def test_synthetic_records_typed_in_calc_come_back_the_same(calc, tid, seed, tmp_path):
    tpl = spec.load(tid)
    fy = fiscal_year(tid)
    record = synthetic_record(tpl, fy, seed)
    path = generate([record], tmp_path / "t")[record["project_no"]]
    locked = check_file(path).meta["locked_values"]
    typed = {name: as_typed(value) for name, value in input_values(tpl, record, fy, locked).items()}
    assert len(typed) > 40  # not vacuous: costs, indicators, texts, choices
    placement = tpl.place(fy)
    formulas = [p for p in placement.items if p.formula]
    with calc.open(path) as doc:
        doc.type(dict.fromkeys(typed))  # cleared first: the department types everything
        doc.type(typed)
        doc.recalc()
        assert doc.errors() == []
        computed = doc.read([p.name for p in formulas])
        saved = doc.save(tmp_path / "typed.xlsx")
    result = check_file(saved)
    assert errors(result) == []
    assert result.record == record
    rates = tpl.default_rates_path
    from sheettool.spec.rates import Rates

    table = Rates.load(rates, tpl) if rates else Rates({})
    for placed in formulas:
        def value(p: str) -> object:
            if p.startswith("rates."):
                year, key = p.split(".")[1:]
                return table.value(int(year), key)
            return tpl.get(record, p)
        python = tpl.evaluate(placed.path, fy, value)
        cell = computed[placed.name]
        calc_value = cell["value"] if cell["value"] is not None else (cell["string"] or None)
        python = None if python in (None, "") else python
        if isinstance(python, str):
            assert calc_value == python, placed.path
        else:
            assert (calc_value in (None, "") and python is None) or float(calc_value) == float(python), (
                placed.path, calc_value, python, computed[placed.name].get("formula"))


@pytest.mark.parametrize("tid", TEMPLATES)
def test_a_minimal_record_makes_a_sheet_with_every_other_input_blank(tid, tmp_path):
    tpl = spec.load(tid)
    fy = fiscal_year(tid)
    record = minimal_record(tpl, fy)
    assert tpl.validator.problems(record) == []
    path = generate([record], tmp_path / "t")[record["project_no"]]
    result = check_file(path)
    got = result.record
    for key in ("project_no", "project_name", "division", "fiscal_year"):
        assert got[key] == record[key]
    series = next(f for f in tpl.tree.fields.values() if f.kind == "series").name
    assert [e for e in got[series] if e["year"] == fy][0].items() >= record[series][0].items()
    def blank(v: object) -> bool:
        return v in (None, [], {}) or (isinstance(v, dict) and all(blank(x) for x in v.values()))

    empty = [k for k, v in got.items() if k not in (*record, "template") and not blank(v)]
    assert empty == []  # every other input arrives blank
    assert {f.code for f in result.findings if f.is_error} <= {"R501"}  # what is left to fill


@pytest.mark.parametrize("tid", TEMPLATES)
def test_tampering_is_found(tid, tmp_path):
    tpl = spec.load(tid)
    fy = fiscal_year(tid)
    record = synthetic_record(tpl, fy, 3)
    path = generate([record], tmp_path / "t")[record["project_no"]]
    formula = next(p for p in tpl.place(fy).items if p.formula and p.kind == "field")
    wb = openpyxl.load_workbook(path)
    named(wb, formula.name).value = 12345
    named(wb, "f_project_name").value = "別の事業"
    wb.save(tmp_path / "tampered.xlsx")
    codes = {f.code for f in check_file(tmp_path / "tampered.xlsx").findings}
    assert {"T202", "T214"} <= codes


@pytest.mark.parametrize("tid", TEMPLATES)
def test_rollforward_carries_history_and_locks_it(tid, tmp_path):
    tpl = spec.load(tid)
    fy = fiscal_year(tid)
    record = synthetic_record(tpl, fy, 4)
    src = tmp_path / "this.json"
    src.write_text(json.dumps([record], ensure_ascii=False), encoding="utf-8")
    rolled_path = tmp_path / "next.json"
    rates = tmp_path / "rates.json"
    if tpl.rate_fields:  # next year's rates: the last bundled year's, one year on
        from sheettool.spec.rates import Rates

        bundled = Rates.bundled(tpl)
        last = max(bundled.years())
        rates.write_text(json.dumps({str(y): bundled.get(last) for y in range(last + 1, fy + 8)}), encoding="utf-8")
    rc, _, err = run_cli("rollforward", src, "--records-only", rolled_path, "--keep-all",
                         *(("--rates", rates) if tpl.rate_fields else ()), "--out", tmp_path / "t")
    assert rc == 0, err
    rolled = json.loads(rolled_path.read_text(encoding="utf-8"))[0]
    assert rolled["fiscal_year"] == fy + 1
    series = next(f for f in tpl.tree.fields.values() if f.kind == "series").name
    old = {e["year"]: e for e in record[series]}
    history = [e for e in rolled[series] if e["year"] <= fy]
    assert history and all(e == old[e["year"]] for e in history)  # carried exactly as reported
    path = output_path(tmp_path / "t", rolled)
    result = check_file(path)
    from sheettool.spec.rates import Rates

    rates_used = Rates.bundled(tpl).merged(Rates.load(rates, tpl)) if tpl.rate_fields else Rates({})
    assert result.record == with_formulas(tpl, rolled, rates_used)  # the open years' formulas computed
    locked = result.meta["locked_values"]
    for entry in history:
        for key, value in entry.items():
            name = f"f_{series}_{entry['year']}_{key}"
            placed = tpl.place(fy + 1).by_name.get(name)
            if key != "year" and value is not None and placed is not None:
                # history is locked: inputs by their value in _meta, formulas as formulas (or kept values)
                assert name in locked or placed.formula, name


@pytest.mark.parametrize("tid", TEMPLATES)
def test_every_formula_is_the_same_in_excel_text_and_python(tid):
    """The Excel text comes from the same tree Python evaluates: a formula of only blanks is blank."""
    tpl = spec.load(tid)
    fy = fiscal_year(tid)
    for placed in (p for p in tpl.place(fy).items if p.formula):
        expr = tpl.bound(placed.path, fy)
        assert expr.excel(lambda n: "A1" if hasattr(n, "path") else f"tbl_{n.name}")
        blank = expr.evaluate(Env(lambda p: None, tpl.tables))
        if expr.refs():  # a formula of inputs shows nothing, or a number, until they are filled
            assert blank in (None, "", False) or not isinstance(blank, str), placed.path
        copy.deepcopy(expr)


def test_a_mixed_inbox_keeps_each_template_apart(tmp_path):
    """Returns of two templates in one inbox: one master book per template, 様式違い for the others."""
    tsukuba = spec.load("tsukuba")
    fukaya = spec.load("fukaya")
    t_records = [synthetic_record(tsukuba, 2022, s) for s in (5, 6)]
    f_records = [synthetic_record(fukaya, 2023, 7)]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in [*generate(t_records, inbox / "a").values(), *generate(f_records, inbox / "b").values()]:
        assert path.is_file()
    rc, out, err = run_cli("collect", inbox, "--out", tmp_path / "m.xlsx")
    assert "様式違い 1件" in out, out
    wb = openpyxl.load_workbook(tmp_path / "m.xlsx", read_only=True)
    listed = [row[0] for row in wb["一覧"].iter_rows(min_row=2, values_only=True) if row[0]]
    assert sorted(listed) == sorted(r["project_no"] for r in t_records)  # no fukaya row among them
    findings = [row for row in wb["指摘一覧"].iter_rows(min_row=2, values_only=True) if row[0]]
    assert [r for r in findings if r[10] == "C801" and r[0] == f_records[0]["project_no"]]
    wb.close()
    rc, out, err = run_cli("collect", inbox, "--out", tmp_path / "f.xlsx", "--template", "fukaya")
    wb = openpyxl.load_workbook(tmp_path / "f.xlsx", read_only=True)
    listed = [row[0] for row in wb["一覧"].iter_rows(min_row=2, values_only=True) if row[0]]
    assert listed == [f_records[0]["project_no"]]
    header = next(wb["一覧"].iter_rows(max_row=1, values_only=True))
    assert any("総事業費試算（円）" in str(h) for h in header)  # the fukaya columns
    wb.close()
