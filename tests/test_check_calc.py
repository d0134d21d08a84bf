"""``sheettool check`` on workbooks filled in and saved by LibreOffice Calc, driven as a user would.

Each test opens a generated template in the real client, types into it (or forces
changes a user can only make by removing protection), saves, and checks the saved
file. The six seed records also make the full round trip: every input cleared, the
record typed back in, saved, and read back to exactly the same record.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from calc.client import EXCEL_2007_FILTER, CalcRefused
from cycle import as_typed, input_cells
from helpers import (
    errors,
    generate_seed_templates,
    only,
    seed_record,
    seed_records,
    tamper_codes,
)

from sheettool import spec
from sheettool.check import check_file
from sheettool.check.annotate import annotate
from sheettool.generate import output_path

LAYOUT = spec.load()
PLACE = LAYOUT.place(2022)
SHEET = LAYOUT.sheet_name
NOS = [r["project_no"] for r in seed_records()]


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory) -> Path:
    return generate_seed_templates(tmp_path_factory.mktemp("checkcalc"))


def template(seed_dir: Path, no: str) -> Path:
    return output_path(seed_dir, seed_record(no))


def cell(path: str) -> str:
    return PLACE.at(path).cell


# --------------------------------------------------------------------------- the round trip


@pytest.mark.parametrize("no", NOS)
def test_round_trip_typed_by_a_user_gives_the_same_record(calc, seed_dir, tmp_path, no):
    src = template(seed_dir, no)
    record = seed_record(no)
    fields = input_cells(src)
    typed = {}
    for placed in fields:
        value = LAYOUT.cell_type(placed.path).to_cell(LAYOUT.get(record, placed.path))
        if value is not None:
            typed[placed.name] = as_typed(value)
    assert len(typed) > 50  # the round trip is not vacuous: costs, indicators, texts, scores
    # Calc's own choice "Excel 2007-365" for half the records, the default OOXML filter for the others
    save_filter = EXCEL_2007_FILTER if NOS.index(no) % 2 else None
    with calc.open(src) as doc:
        doc.type({p.name: None for p in fields})
        cleared = doc.read([p.name for p in fields[:5]])
        assert all(c["type"] == "empty" for c in cleared.values())
        doc.type(typed)
        doc.recalc()
        saved = doc.save(tmp_path / f"{no}.xlsx", filter=save_filter)
    result = check_file(saved)
    assert result.record == record
    assert errors(result) == []
    assert tamper_codes(result) == set()  # hidden _meta, dropped structure lock: not tampering
    with zipfile.ZipFile(saved) as zf:
        workbook = zf.read("xl/workbook.xml").decode()
    assert re.search(r'<sheet name="_meta"[^>]*state="hidden"', workbook)  # what Calc made of veryHidden
    assert "lockStructure" not in workbook


# --------------------------------------------------------------------------- typing like a user


def test_what_users_type_is_read_and_normalised_where_calc_left_text(calc, seed_dir, tmp_path):
    with calc.open(template(seed_dir, "088")) as doc:
        shown = doc.type({
            "f_costs_2023_budget": "１２，３４５",
            "f_costs_2023_general_fund": "1,234",
            "f_costs_2023_subsidies_bonds": " 5 ",
            "f_costs_2023_other": "△375",
            "f_costs_2023_staff_fte": "１．５",
            "f_costs_2023_overtime_hours": "abc",
            "f_costs_2024_budget": "－",
            "f_costs_2024_general_fund": "—",
            "f_costs_2024_subsidies_bonds": "-",
            "f_evaluation_progress": "３",
        })
        # numbers Calc itself understood are stored as numbers; dashes and "abc" stay text
        assert shown["f_costs_2023_other"]["value"] == -375
        assert shown["f_costs_2023_budget"]["value"] == 12345
        assert shown["f_costs_2024_budget"]["type"] == "text"
        doc.type({"f_indicators_1_2023_actual": "１２", "f_costs_2024_other": "1,000"}, mode="string")
        doc.recalc()
        saved = doc.save(tmp_path / "typed.xlsx")
    result = check_file(saved)
    cost23 = result.record["costs"][3]
    assert cost23 == {"year": 2023, "budget": 12345, "settlement": 1234 + 5 - 375, "general_fund": 1234,
                      "subsidies_bonds": 5, "other": -375, "staff_fte": 1.5, "overtime_hours": None,
                      "part_time_staff": False, "personnel_cost": None}
    cost24 = result.record["costs"][4]
    assert (cost24["budget"], cost24["general_fund"], cost24["subsidies_bonds"], cost24["other"]) == \
        (None, None, None, 1000)
    assert result.record["evaluation"]["progress"] == 3
    assert next(v for v in result.record["indicators"][0]["values"] if v["year"] == 2023)["actual"] == 12
    v301 = {f.cell: f for f in result.findings if f.code == "V301"}
    assert set(v301) == {"J23", "J25", "J26", "I43", "J27"}
    assert "「－」" in v301["J23"].message and "値なし" in v301["J23"].message
    assert "「—」" in v301["J25"].message and "「-」" in v301["J26"].message
    assert "全角" in v301["I43"].message and "桁区切り" in v301["J27"].message
    assert all(f.severity == "warning" and f.sheet == SHEET for f in v301.values())
    v302 = only(result, "V302")
    assert (v302.cell, v302.field, v302.severity) == ("I30", "costs.2023.overtime_hours", "error")
    assert "「abc」" in v302.message and "半角の数値" in v302.message
    assert errors(result) == [("V302", "I30")]
    # the sheet shows #VALUE! where text meets arithmetic; the record has the recomputed value
    assert {f.cell for f in result.findings if f.code == "T204"} <= {"J24"}


def test_locked_cells_refuse_typing_as_they_would_for_a_user(calc, seed_dir):
    with calc.open(template(seed_dir, "088")) as doc:
        for name in ("f_costs_2022_settlement", "f_costs_2020_budget", "f_project_no", "c_rates_2022_salary_per_fte"):
            with pytest.raises(CalcRefused):
                doc.type({name: "1"})


# --------------------------------------------------------------------------- forced changes


def test_values_and_formulas_forced_into_formula_cells(calc, seed_dir, tmp_path):
    with calc.open(template(seed_dir, "089")) as doc:
        doc.type({"f_costs_2022_settlement": "999"}, force=True)
        doc.type({"f_costs_2022_personnel_cost": "=H29*1000"}, force=True, mode="formula")
        doc.recalc()
        saved = doc.save(tmp_path / "forced.xlsx")
    result = check_file(saved)
    t202 = only(result, "T202")
    assert (t202.cell, t202.field, t202.severity) == ("H24", "costs.2022.settlement", "error")
    assert "数式が変更されています" in t202.message and "「999」" in t202.message
    t203 = only(result, "T203")
    assert (t203.cell, t203.field, t203.severity) == ("H28", "costs.2022.personnel_cost", "error")
    assert "H29*1000" in t203.message
    cost = result.record["costs"][2]
    assert (cost["settlement"], cost["personnel_cost"]) == (232402, 7422)  # recomputed, not 999 / 1000
    assert not result.ok


def test_locked_history_and_identity_forced(calc, seed_dir, tmp_path):
    with calc.open(template(seed_dir, "090")) as doc:
        doc.type({"f_costs_2020_budget": "1", "f_project_name": "別の事業", "c_rates_2022_overtime_per_hour": "3000"},
                 force=True)
        doc.recalc()
        saved = doc.save(tmp_path / "forced.xlsx")
    result = check_file(saved)
    t214 = {f.cell: f for f in result.findings if f.code == "T214"}
    assert set(t214) == {"F23", "D4", "H33"}
    assert "作成時「353346」→ 現在「1」" in t214["F23"].message
    assert "別の事業" in t214["D4"].message and "時間外勤務1時間当たり単価" in t214["H33"].message
    assert all(f.severity == "error" for f in t214.values())
    # 人件費 is computed with the rate the template was made with, whatever the sheet now says
    assert result.record["costs"][2]["personnel_cost"] == 7422


def test_protection_removed_then_locked_cell_typed(calc, seed_dir, tmp_path):
    with calc.open(template(seed_dir, "091")) as doc:
        doc.unprotect(SHEET)
        doc.type({"f_costs_2021_general_fund": "1"})  # no force needed any more
        doc.recalc()
        saved = doc.save(tmp_path / "unprotected.xlsx")
    result = check_file(saved)
    t213 = only(result, "T213")
    assert t213.severity == "warning" and "保護が解除" in t213.message
    t214 = only(result, "T214")
    assert (t214.cell, t214.field) == ("G25", "costs.2021.general_fund")


def test_protection_removed_only_is_a_warning(calc, seed_dir, tmp_path):
    with calc.open(template(seed_dir, "089")) as doc:
        doc.unprotect(SHEET)
        saved = doc.save(tmp_path / "unprotected.xlsx")
    result = check_file(saved)
    assert tamper_codes(result) == {"T213"} and result.ok
    assert result.record == seed_record("089")


# --------------------------------------------------------------------------- structure


def test_renamed_sheet(calc, seed_dir, tmp_path):
    with calc.open(template(seed_dir, "087")) as doc:
        doc.rename_sheet(SHEET, "R4シート")
        doc.type({"f_costs_2023_budget": "-"})
        saved = doc.save(tmp_path / "renamed.xlsx")
    result = check_file(saved)
    expected = seed_record("087")
    expected["costs"][3]["budget"] = None
    assert result.record == expected
    t210 = only(result, "T210")
    assert t210.severity == "warning" and "「R4シート」" in t210.message
    v301 = only(result, "V301")
    assert (v301.sheet, v301.cell) == ("R4シート", "I23")
    assert errors(result) == []


def test_rows_inserted_above_move_every_field(calc, seed_dir, tmp_path):
    with calc.open(template(seed_dir, "088")) as doc:
        with pytest.raises(CalcRefused):
            doc.insert_rows(SHEET, 3, 2)  # protection forbids it, as for a user
        doc.insert_rows(SHEET, 3, 2, force=True)
        doc.insert_rows(SHEET, 30, 1, force=True)  # inside the cost table too
        moved = doc.read(["f_costs_2022_budget", "f_costs_2022_staff_fte", "f_project_no"])
        assert [c["address"] for c in moved.values()] == [f"{SHEET}!H25", f"{SHEET}!H32", f"{SHEET}!C6"]
        doc.type({"f_costs_2023_budget": "－", "f_costs_2023_general_fund": "5000"})
        doc.recalc()
        saved = doc.save(tmp_path / "rows.xlsx")
    result = check_file(saved)
    expected = seed_record("088")
    expected["costs"][3].update(budget=None, general_fund=5000, settlement=5000)
    assert result.record == expected
    assert errors(result) == []
    assert tamper_codes(result) == {"V301"}  # formulas follow the cells; no T203/T219/T214
    v301 = only(result, "V301")
    assert (v301.cell, v301.field) == ("I25", "costs.2023.budget")  # where the cell is now, not I23
    out = tmp_path / "rows_annotated.xlsx"
    annotate(saved, result, out)
    ws = openpyxl.load_workbook(out)[SHEET]
    assert ws["I25"].comment is not None and v301.message in ws["I25"].comment.text
    assert ws["I23"].comment is None


def test_sheet_inserted_and_moved_first(calc, seed_dir, tmp_path):
    with calc.open(template(seed_dir, "098")) as doc:
        doc.insert_sheet("作業用")
        doc.move_sheet("作業用", 0)
        doc.type({"作業用!A1": "下書き"})
        saved = doc.save(tmp_path / "sheets.xlsx")
    result = check_file(saved)
    assert result.record == seed_record("098") and result.ok
    assert "「作業用」" in only(result, "T211").message
    assert only(result, "T212").severity == "warning"


def test_saved_as_xlsm_by_calc_is_read(calc, seed_dir, tmp_path):
    with calc.open(template(seed_dir, "089")) as doc:
        saved = doc.save(tmp_path / "089.xlsm")
    result = check_file(saved)
    assert result.record == seed_record("089") and result.ok
    assert tamper_codes(result) <= {"F118"}


# --------------------------------------------------------------------------- speed


def test_recalculated_and_saved_by_calc_reads_back_unchanged(calc, seed_dir, tmp_path):
    """A template only opened, recalculated and saved by Calc reads back as its record."""
    generated = [template(seed_dir, no) for no in NOS]
    saved = []
    for src in generated:
        with calc.open(src) as doc:
            doc.recalc()
            saved.append(doc.save(tmp_path / src.name))
    assert all(check_file(p).record == seed_record(no) for p, no in zip(saved, NOS, strict=True))
