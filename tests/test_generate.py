"""`sheettool generate`: the workbook's structure, read back with openpyxl."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
from helpers import formula_excel, generate_seed_templates, seed_record, seed_records

from sheettool import spec
from sheettool.cli import main
from sheettool.generate import output_path
from sheettool.xlsx import meta

LAYOUT = spec.load()
PLACE = LAYOUT.place(2022)


pytestmark = pytest.mark.usefixtures("renderer")  # every test once per renderer


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory, renderer) -> Path:
    return generate_seed_templates(tmp_path_factory.mktemp("gen"))


def _book(seed_dir: Path, no: str) -> Path:
    return output_path(seed_dir, seed_record(no))


def test_one_file_per_record_at_the_contract_path(seed_dir):
    files = sorted(p.relative_to(seed_dir).as_posix() for p in seed_dir.rglob("*.xlsx"))
    assert files == sorted(f"政策イノベーション部/情報政策課/{r['project_no']}_{r['project_name']}.xlsx"
                           for r in seed_records())


def test_every_field_has_its_defined_name(seed_dir):
    wb = openpyxl.load_workbook(_book(seed_dir, "088"))
    names = wb.defined_names
    for path, placed in PLACE.fields.items():
        dn = names[placed.name]
        sheet, ref = next(dn.destinations)
        assert sheet == LAYOUT.sheet_name
        assert ref.replace("$", "") == placed.cell, path
    for example in ("f_project_name", "f_costs_2022_personnel_cost", "f_costs_2023_budget",
                    "f_indicators_1_name", "f_indicators_1_2021_actual", "f_evaluation_progress",
                    "f_results_improvement_goal"):
        assert example in names


def test_values_prefilled_from_the_record(seed_dir):
    wb = openpyxl.load_workbook(_book(seed_dir, "089"))
    ws = wb[LAYOUT.sheet_name]

    def at(path):
        return ws[PLACE.fields[path].cell].value

    assert at("project_no") == "089"
    assert at("category") == "自治事務（任意）"
    assert at("costs.2021.subsidies_bonds") == 425
    assert at("costs.2020.staff_fte") == 1.5
    assert at("costs.2022.part_time_staff") == "無"
    assert at("sdgs.1") == "09産業と技術革新の基盤をつくろう"
    assert at("indicators.1.2019.actual") == 1570.0
    assert at("evaluation.progress") == 4
    assert at("direction") == "拡大・拡充"


def test_formulas_are_written_from_the_shared_definitions(seed_dir):
    ws = openpyxl.load_workbook(_book(seed_dir, "098"))[LAYOUT.sheet_name]
    for year in range(2020, 2025):
        cell = PLACE.fields[f"costs.{year}.personnel_cost"].cell
        col = re.match(r"[A-Z]+", cell).group(0)
        refs = {"staff_fte": f"{col}29", "overtime_hours": f"{col}30", "salary_per_fte": f"{col}32",
                "overtime_per_hour": f"{col}33"}
        assert ws[cell].value == formula_excel("personnel_cost", refs, year)
        assert ws[cell].protection.locked
        sc = PLACE.fields[f"costs.{year}.settlement"].cell
        assert ws[sc].value.startswith("=IF(AND(") and ws[sc].protection.locked
    sentence = ws[PLACE.computed["evaluation_text.progress"].cell].value
    assert "VLOOKUP(D76,tbl_sentence_progress,2,FALSE)" in sentence


def test_cached_values_are_python_results(seed_dir):
    wb = openpyxl.load_workbook(_book(seed_dir, "098"), data_only=True)
    ws = wb[LAYOUT.sheet_name]
    assert ws[PLACE.fields["costs.2022.personnel_cost"].cell].value == 13711
    assert ws[PLACE.fields["costs.2023.personnel_cost"].cell].value == 6901
    assert ws[PLACE.fields["costs.2022.settlement"].cell].value == 8238


def test_history_locked_current_year_open(seed_dir):
    ws = openpyxl.load_workbook(_book(seed_dir, "087"))[LAYOUT.sheet_name]
    for key in ("budget", "general_fund", "staff_fte", "overtime_hours"):
        assert ws[PLACE.fields[f"costs.2020.{key}"].cell].protection.locked
        assert ws[PLACE.fields[f"costs.2021.{key}"].cell].protection.locked
        assert not ws[PLACE.fields[f"costs.2022.{key}"].cell].protection.locked
        assert not ws[PLACE.fields[f"costs.2023.{key}"].cell].protection.locked
    assert ws[PLACE.fields["project_no"].cell].protection.locked
    assert not ws[PLACE.fields["results.achievements"].cell].protection.locked
    assert ws[PLACE.fields["indicators.1.2019.actual"].cell].protection.locked
    assert not ws[PLACE.fields["indicators.1.2022.actual"].cell].protection.locked
    assert ws["A1"].protection.locked  # labels


def test_a_past_year_with_no_value_is_an_input(tmp_path):
    rec = seed_record("098")
    rec["costs"] = [c for c in rec["costs"] if c["year"] != 2021]
    src = tmp_path / "r.json"
    src.write_text(json.dumps([rec], ensure_ascii=False), encoding="utf-8")
    assert main(["generate", str(src), "--out", str(tmp_path / "o")]) == 0
    ws = openpyxl.load_workbook(output_path(tmp_path / "o", rec))[LAYOUT.sheet_name]
    assert not ws[PLACE.fields["costs.2021.budget"].cell].protection.locked
    assert ws[PLACE.fields["costs.2020.budget"].cell].protection.locked


def test_protection_meta_and_print_setup(seed_dir):
    path = _book(seed_dir, "090")
    wb = openpyxl.load_workbook(path)
    ws = wb[LAYOUT.sheet_name]
    assert ws.protection.sheet and not ws.protection.password
    assert wb["_meta"].sheet_state == "veryHidden"
    assert wb["_lists"].sheet_state == "veryHidden"
    with zipfile.ZipFile(path) as z:
        assert '<workbookProtection lockStructure="1"/>' in z.read("xl/workbook.xml").decode()
    rows = {r[0].value: r[1].value for r in wb["_meta"].iter_rows()}
    assert rows["template_id"] == "tsukuba" and rows["project_no"] == "090"
    assert rows["fiscal_year"] == 2022 and rows["generated_at"]
    locked = json.loads(rows["locked_values"])
    assert rows["locked_digest"] == meta.digest(locked)
    assert locked["f_costs_2020_budget"] == 353346
    assert ws.page_setup.paperSize == 9 and ws.page_setup.orientation == "portrait"
    # one page wide (fitToWidth defaults to 1), as many pages tall as needed, breaks at the sections
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth in (None, 1)
    assert ws.page_setup.fitToHeight == 0
    assert [b.id for b in ws.row_breaks.brk] == [38, 64]
    assert ws.print_area == f"'{LAYOUT.sheet_name}'!$A$1:$J$82"
    assert ws.print_title_rows == "$1:$2"


def test_validations_dropdowns_bounds_and_ime(seed_dir):
    path = _book(seed_dir, "088")
    ws = openpyxl.load_workbook(path)[LAYOUT.sheet_name]
    by_cell = {}
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            by_cell[rng.coord.split(":")[0]] = dv
    status = by_cell[PLACE.fields["status"].cell]
    assert status.type == "list" and status.formula1 == "list_status"
    budget = by_cell[PLACE.fields["costs.2022.budget"].cell]
    assert budget.type == "whole" and budget.formula1 == "0" and budget.formula2 == "999999999"
    assert "整数" in budget.error and budget.errorTitle
    fte = by_cell[PLACE.fields["costs.2022.staff_fte"].cell]
    assert fte.type == "decimal" and float(fte.formula2) == 999.99
    assert by_cell[PLACE.fields["direction"].cell].formula1 == "list_direction"
    assert by_cell[PLACE.fields["evaluation.priority"].cell].formula1 == "list_score"
    assert by_cell[PLACE.fields["costs.2022.part_time_staff"].cell].formula1 == "list_yesno"
    assert by_cell[PLACE.fields["sdgs.4"].cell].formula1 == "list_sdgs"
    assert by_cell[PLACE.fields["indicators.2.kind"].cell].formula1 == "list_kind"
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    budget_cell = PLACE.fields["costs.2022.budget"].cell
    tag = next(m for m in re.findall(r"<dataValidation [^>]*>", xml) if budget_cell in m)
    assert 'imeMode="off"' in tag
    # history cells carry no validation: they are locked
    assert PLACE.fields["costs.2020.budget"].cell not in by_cell


def test_text_that_looks_like_a_formula_stays_text(tmp_path):
    rec = seed_record("088")
    rec["project_name"] = "=HYPERLINK(\"http://x\",\"y\")"
    rec["purpose"] = "+1+2"
    rec["results"]["achievements"] = "@SUM(A1)"
    rec["target"] = "-1"
    src = tmp_path / "r.json"
    src.write_text(json.dumps([rec], ensure_ascii=False), encoding="utf-8")
    assert main(["generate", str(src), "--out", str(tmp_path / "o")]) == 0
    files = list((tmp_path / "o").rglob("*.xlsx"))
    ws = openpyxl.load_workbook(files[0])[LAYOUT.sheet_name]
    for path, text in (("project_name", rec["project_name"]), ("purpose", "+1+2"),
                       ("results.achievements", "@SUM(A1)"), ("target", "-1")):
        cell = ws[PLACE.fields[path].cell]
        assert cell.data_type == "s" and cell.value == text


def test_bad_record_is_reported_and_the_others_written(tmp_path, capsys):
    recs = seed_records()
    recs[1]["costs"][2]["budget"] = -5
    recs[1]["direction"] = "やめる"
    src = tmp_path / "r.json"
    src.write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
    assert main(["generate", str(src), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "2件目（事業番号 089" in err
    assert "令和4年度の予算額（千円）（costs.2022.budget）は0以上にしてください" in err
    assert "方向性（direction）" in err and "Traceback" not in err
    assert len(list((tmp_path / "o").rglob("*.xlsx"))) == 5


def _template_with_rates(tmp_path, years) -> str:
    """A copy of the つくば template whose bundled rates cover only ``years``."""
    folder = tmp_path / "tpl"
    shutil.copytree(LAYOUT.directory, folder)
    bundled = json.loads((folder / "rates.json").read_text(encoding="utf-8"))
    (folder / "rates.json").write_text(json.dumps({str(y): bundled[str(y)] for y in years}), encoding="utf-8")
    return str(folder)


def test_missing_rate_is_a_clear_error(tmp_path, capsys):
    template = _template_with_rates(tmp_path, (2020, 2021, 2022))
    src = tmp_path / "r.json"
    src.write_text(json.dumps([seed_record("088")], ensure_ascii=False), encoding="utf-8")
    assert main(["generate", str(src), "--out", str(tmp_path / "o"), "--template", template]) == 1
    err = capsys.readouterr().err
    assert "2023年度（令和5年度）の人件費単価が単価ファイルにありません" in err
    assert "2024年度（令和6年度）" in err


def test_a_missing_rate_is_told_once_per_year_for_all_its_records(tmp_path, capsys):
    """Eight records without 2023–24 rates: one line per year naming them, not sixteen lines."""
    template = _template_with_rates(tmp_path, (2020, 2021, 2022))
    records = []
    for i in range(8):
        rec = seed_record("088")
        rec.update(project_no=f"{100 + i}", project_name=f"事業{i}")
        records.append(rec)
    src = tmp_path / "r.json"
    src.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    assert main(["generate", str(src), "--out", str(tmp_path / "o"), "--template", template]) == 1
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if "[G602]" in line]
    assert [line.split("の人件費単価")[0] for line in lines] == \
        ["エラー [G602] 2023年度（令和5年度）", "エラー [G602] 2024年度（令和6年度）"]
    assert all("（記録 8件: 事業番号 100、101、102、103、104 ほか3件）" in line for line in lines)
    assert "0件のテンプレートを作成しました" in out and "8件は作成できませんでした" in out


def test_history_without_a_rate_is_kept_as_reported(tmp_path, capsys):
    template = _template_with_rates(tmp_path, (2022, 2023, 2024))
    src = tmp_path / "r.json"
    src.write_text(json.dumps([seed_record("089")], ensure_ascii=False), encoding="utf-8")
    assert main(["generate", str(src), "--out", str(tmp_path / "o"), "--template", template]) == 0
    assert "報告値 10,814 を固定値として記載します" in capsys.readouterr().err
    ws = openpyxl.load_workbook(next((tmp_path / "o").rglob("*.xlsx")))[LAYOUT.sheet_name]
    cell = ws[PLACE.fields["costs.2020.personnel_cost"].cell]
    assert cell.value == 10814 and cell.protection.locked


def test_a_rates_file_is_laid_over_the_bundled_rates(tmp_path):
    """--rates with only next year's rates keeps the bundled past years (README「単価ファイル」)."""
    rates = tmp_path / "rates.json"
    rates.write_text(json.dumps({"2025": {"salary_per_fte": 6900000, "overtime_per_hour": 2500},
                                 "2022": {"salary_per_fte": 7000000, "overtime_per_hour": 2446}}))
    record = seed_record("088")
    record["fiscal_year"] = 2023  # costs 2021–2025
    src = tmp_path / "r.json"
    src.write_text(json.dumps([record], ensure_ascii=False), encoding="utf-8")
    assert main(["generate", str(src), "--out", str(tmp_path / "o"), "--rates", str(rates)]) == 0
    ws = openpyxl.load_workbook(next((tmp_path / "o").rglob("*.xlsx")))[LAYOUT.sheet_name]
    place = LAYOUT.place(2023)
    assert ws[place.computed["rates.2025.salary_per_fte"].cell].value == 6900000
    assert ws[place.computed["rates.2022.salary_per_fte"].cell].value == 7000000  # the file's year wins
    assert ws[place.computed["rates.2021.salary_per_fte"].cell].value == 6834600  # bundled


@pytest.mark.parametrize("content,needle", [
    (None, "見つかりません"),
    ("[{\"a\": ", "JSONが不正です"),
    ("", "空です"),
])
def test_unreadable_records_file_exits_2_without_traceback(tmp_path, content, needle):
    src = tmp_path / "r.json"
    if content is not None:
        src.write_text(content, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "sheettool.cli", "generate", str(src), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_jsonl_with_a_broken_line(tmp_path, capsys):
    recs = seed_records()[:2]
    src = tmp_path / "r.jsonl"
    src.write_text(json.dumps(recs[0], ensure_ascii=False) + "\n{broken\n"
                   + json.dumps(recs[1], ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["generate", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "2行目" in capsys.readouterr().err
    assert len(list((tmp_path / "o").rglob("*.xlsx"))) == 2


def test_path_parts_cannot_escape_the_output_folder(tmp_path):
    rec = seed_record("088")
    rec["department"] = "../../etc"
    rec["division"] = "a/b\\c"
    rec["project_name"] = "..\\x:y*"
    path = output_path(tmp_path, rec)
    assert path.resolve().is_relative_to(tmp_path.resolve())
    assert len(path.relative_to(tmp_path).parts) == 3


def test_password_protects_sheet_and_structure(tmp_path):
    src = tmp_path / "r.json"
    src.write_text(json.dumps([seed_record("088")], ensure_ascii=False), encoding="utf-8")
    assert main(["generate", str(src), "--out", str(tmp_path / "o"), "--password", "himitsu"]) == 0
    path = next((tmp_path / "o").rglob("*.xlsx"))
    ws = openpyxl.load_workbook(path)[LAYOUT.sheet_name]
    assert ws.protection.sheet and ws.protection.password
    with zipfile.ZipFile(path) as z:
        assert re.search(r'<workbookProtection workbookPassword="[0-9A-F]{4}" lockStructure="1"/>',
                         z.read("xl/workbook.xml").decode())
