"""Generated templates in the real client: LibreOffice Calc recalculates, is typed into, saves."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from helpers import (
    formula_excel,
    generate_seed_templates,
    personnel_cost,
    seed_record,
    seed_records,
    settlement,
)

from sheettool import spec
from sheettool.generate import output_path
from sheettool.spec.rates import Rates

LAYOUT = spec.load()
PLACE = LAYOUT.place(2022)
RATES = Rates.bundled(LAYOUT)
SHEET = LAYOUT.sheet_name


pytestmark = pytest.mark.usefixtures("renderer")  # every test once per renderer


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory, renderer) -> Path:
    return generate_seed_templates(tmp_path_factory.mktemp("gencalc"))


@pytest.mark.parametrize("no", [r["project_no"] for r in seed_records()])
def test_calc_reproduces_every_published_cost(calc, seed_dir, no):
    record = seed_record(no)
    with calc.open(output_path(seed_dir, record)) as doc:
        doc.recalc()
        assert doc.errors() == []
        names = [f"f_costs_{c['year']}_{k}" for c in record["costs"] for k in ("settlement", "personnel_cost")]
        cells = doc.read(names)
        for cost in record["costs"]:
            y = cost["year"]
            rate = RATES.get(y)
            py_pc = personnel_cost(cost["staff_fte"], cost["overtime_hours"], rate["salary_per_fte"],
                                   rate["overtime_per_hour"])
            py_st = settlement(cost["general_fund"], cost["subsidies_bonds"], cost["other"])
            assert cells[f"f_costs_{y}_personnel_cost"]["value"] == py_pc
            assert cells[f"f_costs_{y}_settlement"]["value"] == py_st
            if 2022 <= y <= 2024:  # the published 令和4–6年度 figures, exactly
                assert cells[f"f_costs_{y}_personnel_cost"]["value"] == cost["personnel_cost"]
                assert cells[f"f_costs_{y}_settlement"]["value"] == cost["settlement"]
        for key, score in record["evaluation"].items():
            text = doc.value(f"c_evaluation_text_{key}")
            assert text == LAYOUT.tables[f"sentence_{key}"][str(score)]


def test_no_error_values_in_any_sheet(calc, seed_dir):
    with calc.open(output_path(seed_dir, seed_record("091"))) as doc:
        doc.recalc()
        assert doc.formula_cells(SHEET)  # the check below is not vacuous
        assert doc.errors() == []


def test_typing_like_a_user_recomputes(calc, seed_dir, tmp_path):
    path = output_path(seed_dir, seed_record("088"))
    with calc.open(path) as doc:
        doc.type({"f_costs_2023_staff_fte": "2.35", "f_costs_2023_overtime_hours": "1,050",
                  "f_costs_2023_general_fund": "120,000", "f_costs_2023_subsidies_bonds": "5000",
                  "f_costs_2023_other": "-375", "f_evaluation_priority": "-"})
        doc.recalc()
        rate = RATES.get(2023)
        assert doc.value("f_costs_2023_personnel_cost") == personnel_cost(
            2.35, 1050, rate["salary_per_fte"], rate["overtime_per_hour"])
        assert doc.value("f_costs_2023_settlement") == 124625
        assert doc.value("c_evaluation_text_priority") == "法令等により市の実施が定められている。"
        # a locked cell refuses typing, as it would for a user
        from calc.client import CalcRefused

        with pytest.raises(CalcRefused):
            doc.type({"f_costs_2023_personnel_cost": "1"})
        with pytest.raises(CalcRefused):
            doc.type({"f_costs_2021_budget": "1"})
        out = doc.save(tmp_path / "filled.xlsx")
    wb = openpyxl.load_workbook(out, data_only=True)
    ws = wb[SHEET]
    assert ws[PLACE.fields["costs.2023.staff_fte"].cell].value == 2.35
    assert ws[PLACE.fields["costs.2023.settlement"].cell].value == 124625


def test_protection_validation_and_names_survive_a_calc_save(calc, seed_dir, tmp_path):
    with calc.open(output_path(seed_dir, seed_record("087"))) as doc:
        refs = [f"{SHEET}!{PLACE.fields[p].cell}" for p in
                ("costs.2022.budget", "costs.2022.personnel_cost", "status", "costs.2020.budget")]
        info = doc.info(*refs)
        out = doc.save(tmp_path / "saved.xlsx")
    sheets = {s["name"]: s for s in info["sheets"]}
    assert sheets[SHEET]["protected"]
    cells = info["cells"]
    assert cells[refs[0]]["locked"] is False and cells[refs[1]]["locked"] is True
    assert cells[refs[3]]["locked"] is True
    wb = openpyxl.load_workbook(out)
    ws = wb[SHEET]
    assert ws.protection.sheet
    assert wb["_meta"].sheet_state in ("hidden", "veryHidden")
    assert not ws[PLACE.fields["costs.2022.budget"].cell].protection.locked
    assert ws[PLACE.fields["costs.2022.personnel_cost"].cell].protection.locked
    for placed in PLACE.fields.values():
        assert placed.name in wb.defined_names
    kinds = {dv.type for dv in ws.data_validations.dataValidation}
    assert {"list", "whole", "decimal", "textLength"} <= kinds
    assert ws.page_setup.paperSize == 9
    assert ws.print_title_rows == "$1:$2"


def test_prints_on_three_a4_pages_one_page_wide(calc, seed_dir, tmp_path):
    """Too wide a sheet would print extra pages to the right; ours is 3 A4 portrait pages."""
    if shutil.which("pdfinfo") is None:
        pytest.skip("pdfinfo (poppler-utils) not installed")
    with calc.open(output_path(seed_dir, seed_record("091"))) as doc:
        pdf = doc.export_pdf(tmp_path / "sheet.pdf")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+3$", info, re.M), info
    assert "(A4)" in info
    width, height = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
    assert width < height  # portrait


def test_python_rounding_matches_calc_on_edge_cases(calc, tmp_path):
    """ROUND((fte × salary + hours × rate) / 1000, 0) in Calc and in Python, 400 cases."""
    rng = random.Random(20221)
    cases = []
    for _ in range(200):  # exact .5 千円: fte × salary + hours × rate ends in 500 yen exactly
        salary = rng.randrange(5_000_000, 8_000_000, 1000)
        fte = Decimal(rng.randrange(0, 500)) / 100
        rate = rng.choice([r for r in range(2001, 3000) if r % 2 and r % 5])  # invertible mod 10**5
        need = (500 - int(fte * salary) % 1000) * 100 % 100_000  # in hundredths of an hour × rate
        hours = Decimal(need * pow(rate, -1, 100_000) % 100_000) / 100
        cases.append((float(fte), float(hours), salary, rate))
    for _ in range(200):  # arbitrary two-decimal inputs
        cases.append((rng.randrange(0, 99999) / 100, rng.randrange(0, 999999) / 100,
                      rng.randrange(1_000_000, 9_000_000), rng.randrange(1000, 4000)))
    cases += [(1.0, 37, 6810000, 2446), (0.25, 0, 6810000, 0), (0.15, 0, 6810000, 0), (0.35, 0, 6810000, 0),
              (0.05, 0, 6810000, 0), (1.15, 0, 6810000, 0), (2.45, 0, 6810000, 0)]
    path = tmp_path / "round.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("r")
    for i, (fte, hours, salary, rate) in enumerate(cases):
        ws.write_row(i, 0, [fte, hours, salary, rate])
        ref = {"staff_fte": f"A{i + 1}", "overtime_hours": f"B{i + 1}", "salary_per_fte": f"C{i + 1}",
               "overtime_per_hour": f"D{i + 1}"}
        ws.write_formula(i, 4, formula_excel("personnel_cost", ref))
    wb.close()
    with calc.open(path) as doc:
        doc.recalc()
        ref = f"r!E1:E{len(cases)}"
        got = doc.read(ref)[ref]
    values = [row[0]["value"] for row in got["cells"]]
    expected = [personnel_cost(*c) for c in cases]
    mismatches = [(c, v, e) for c, v, e in zip(cases, values, expected, strict=True) if v != e]
    assert mismatches == []
    halves = sum(1 for f, h, s, r in cases if (Decimal(str(f)) * s + Decimal(str(h)) * r) % 1000 == 500)
    assert halves >= 200  # the edge is really exercised


def test_formula_like_text_typed_into_a_text_input_stays_text(calc, seed_dir, tmp_path):
    """Text inputs are formatted as text, so '=SUM(1,2)' typed by a user is not a formula."""
    from sheettool.check import check_file

    with calc.open(output_path(seed_dir, seed_record("088"))) as doc:
        doc.type({"f_section": "=SUM(1,2)", "f_results_achievements": "+81-29-883-1111"})
        doc.recalc()
        assert doc.cell("f_section")["type"] == "text"
        out = doc.save(tmp_path / "typed.xlsx")
    result = check_file(out)
    assert result.record["section"] == "=SUM(1,2)"
    assert result.record["results"]["achievements"] == "+81-29-883-1111"
    assert "V303" not in [f.code for f in result.findings]
