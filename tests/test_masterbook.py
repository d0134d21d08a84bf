"""The master book (sheettool/masterbook.py): every sheet, the hidden records, the tidy CSV."""

from __future__ import annotations

import copy
import csv
import io
import random
import struct
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from helpers import seed_records, total_cost
from openpyxl.utils import get_column_letter

from sheettool import findings
from sheettool.collect import master as masterbook
from sheettool.collect.ledger import SubmissionInfo
from sheettool.collect.master import read_master_records, write_csv, write_master
from sheettool.collect.submission import (
    ACCEPTED,
    MISSING,
    NEEDS_FIX,
    UNEXPECTED,
    UNREADABLE,
    CheckResult,
    Submission,
)
from sheettool.findings import Finding
from sheettool.records import RecordsError
from sheettool.spec.master import achievement_rate

FY = 2022
VISIBLE = ["一覧", "評価担当課入力", "コスト推移", "指標", "方向性集計", "部別コスト", "提出状況", "指摘一覧", "履歴"]
INJECTIONS = ["=SUM(1,2)", "+81-29-883-1111", "-課", "@cmd"]


def sub(record: dict | None, *, file: str, n: int, found: Sequence[Finding] = (), current: bool = True,
        readable: bool = True, meta: dict | None = None) -> Submission:
    """A submission with a CheckResult made directly (the real checker lives elsewhere)."""
    return Submission(
        sha256=f"{n:02d}" + "ab" * 31,
        file=file,
        received_at=f"2023-05-{10 + n:02d}T09:{n:02d}:00+09:00",
        modified_at=f"2023-05-{9 + n:02d}T18:00:00+09:00",
        result=CheckResult(file=Path(file).name, record=record, findings=list(found), meta=meta or {},
                           readable=readable),
        current=current,
    )


def finding(code: str, severity: str, message: str, cell: str | None = "E20",
            field: str | None = "costs.2022.budget") -> Finding:
    return Finding(code=code, severity=severity, message=message, sheet="マネジメントシート", cell=cell, field=field)


def unexpected_record() -> dict:
    """A project nobody expected, with text that looks like formulas and a JSON over 32,767 characters."""
    rec = copy.deepcopy(seed_records()[5])  # 087
    rec.update(project_no="X01", project_name=INJECTIONS[0], department="市民部", division=INJECTIONS[2],
               section=INJECTIONS[1], target=INJECTIONS[3], direction="縮小")
    cost = next(c for c in rec["costs"] if c["year"] == FY)
    cost.update(other=-375, settlement=cost["general_fund"] + cost["subsidies_bonds"] - 375)
    rec["indicators"][0]["name"] = "件数\n（改行あり）"
    # Long, and full of what a spreadsheet round trip might mangle.
    rec["results"]["achievements"] = ("成果😀" * 9000 + " _x0041_ \x01\x7f\u0085\u2028 " + "=1+1 " * 10
                                      + "  末尾に空白  ")
    return rec


@dataclass
class Scenario:
    path: Path
    current: list[Submission]
    expected: list[dict]
    history: list[Submission]
    records: list[dict]  # the records of ``current``, in order


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    seeds = seed_records()
    by_no = {r["project_no"]: r for r in seeds}
    old_089 = sub(copy.deepcopy(by_no["089"]), file="政策イノベーション部/089.xlsx", n=1, current=False,
                  found=[finding("V399", "error", "古い版の指摘（表示されないこと）")])
    current = [
        sub(r, file=f"政策イノベーション部/{r['project_no']}.xlsx", n=i + 2,
            found={"088": [finding("V350", "warning", "注意: 予算額が前年度から大きく変わっています。")],
                   "089": [finding("V320", "warning", "注意の指摘", cell="F30", field=None),
                           finding("V301", "error", "=予算額が入力されていません。", cell="E21",
                                   field="costs.2022.settlement"),
                           finding("R501", "error", "決算額が内訳の合計と一致しません。")]}
            .get(r["project_no"], []))
        for i, r in enumerate(seeds)
    ]
    current.append(sub(unexpected_record(), file="市民部/X01.xlsx", n=9))
    garbage = sub(None, file="壊れた.xlsx", n=10, readable=False,
                  found=[findings.make("F110", file="壊れた.xlsx", detail="zipの終端がありません")])
    missing = copy.deepcopy(by_no["087"])
    missing.update(project_no="099", project_name="提出のない事業", department="総務部", division="総務課",
                   section="庶務係")
    expected = [*copy.deepcopy(seeds), missing]
    history = [old_089, *current, garbage]
    path = tmp_path_factory.mktemp("master") / "master.xlsx"
    write_master(path, current, expected, history, FY)
    return Scenario(path, current, expected, history, [s.result.record for s in current])


@pytest.fixture(scope="module")
def wb(scenario):
    return openpyxl.load_workbook(scenario.path)


def table_rows(ws, name: str) -> list[dict]:
    """The data rows of one Excel table as dicts keyed by header (totals row left out)."""
    table = ws.tables[name]
    cells = list(ws[table.ref])
    header = [c.value for c in cells[0]]
    body = cells[1:len(cells) - (table.totalsRowCount or 0)]
    rows = [dict(zip(header, (c.value for c in row), strict=True)) for row in body]
    return [r for r in rows if any(v is not None for v in r.values())]  # an empty table has one blank row


def cells_of(ws, name: str) -> list[dict]:
    table = ws.tables[name]
    cells = list(ws[table.ref])
    header = [c.value for c in cells[0]]
    return [dict(zip(header, row, strict=True)) for row in cells[1:]]


# --------------------------------------------------------------------------- structure


def test_sheets_in_order_and_records_hidden(wb):
    assert wb.sheetnames == [*VISIBLE, "_records"]
    assert wb["_records"].sheet_state == "hidden"
    assert all(wb[name].sheet_state == "visible" for name in VISIBLE)
    assert wb.active.title == "一覧"


@pytest.mark.parametrize("name", VISIBLE)
def test_every_sheet_has_a_filtered_table_frozen_header_and_print_setup(wb, name):
    ws = wb[name]
    if name == "評価担当課入力":  # the office's input: its own setup (see test_office.py)
        assert ws.tables and ws.freeze_panes == "C3" and ws.print_title_rows == "$2:$2"
        assert ws.row_dimensions[1].hidden and ws.protection.sheet
        return
    assert ws.tables, name
    for table in ws.tables.values():
        assert table.autoFilter is not None and table.autoFilter.ref
    # Aggregates have a title row above; 提出状況 has its totals above the list.
    header_row = {"方向性集計": 3, "部別コスト": 3, "提出状況": 5}.get(name, 1)
    assert ws.freeze_panes == ("C2" if name == "一覧" else f"A{header_row + 1}")
    assert ws.page_setup.orientation == "landscape"
    # A4 or A3, one page wide where that keeps 10 pt text at 8.5 pt or more, else at 85% across
    # pages (test_printing.py measures the PDF): what print_setup says for the column widths
    widths = [ws.column_dimensions[get_column_letter(c)].width or 8.43 for c in range(1, ws.max_column + 1)]
    split = ws.col_breaks.brk[0].id if ws.col_breaks.brk else None
    setup = masterbook.print_setup([w - 0.71 for w in widths], split=split)  # as XlsxWriter stores a width
    assert int(ws.page_setup.paperSize) == setup.paper
    assert setup.scale >= 0.85
    if setup.fit_width:
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert (ws.page_setup.fitToWidth or 1, ws.page_setup.fitToHeight) == (1, 0)  # 1 is the default
    else:
        assert not ws.sheet_properties.pageSetUpPr.fitToPage
        assert (ws.page_setup.scale or 100) == setup.percent  # 100 is the default
        if split is None:  # across pages: the first columns on each, a row's continuation next
            assert ws.print_title_cols and ws.page_setup.pageOrder == "overThenDown"
    assert ws.print_title_rows == f"${header_row}:${header_row}"
    # Japanese text gets room: no column narrower than its (wrapped) header needs.
    assert all(dim.width >= 6 for dim in ws.column_dimensions.values() if dim.width)


def test_japanese_font_everywhere(wb):
    assert wb._fonts[0].name == masterbook.FONT


# --------------------------------------------------------------------------- 一覧


def test_list_has_one_row_per_project(wb, scenario):
    rows = table_rows(wb["一覧"], "T_List")
    assert [r["番号"] for r in rows] == ["087", "088", "089", "090", "091", "098", "099", "X01"]
    status = {r["番号"]: r["提出状況"] for r in rows}
    assert status == {"087": ACCEPTED, "088": ACCEPTED, "089": NEEDS_FIX, "090": ACCEPTED, "091": ACCEPTED,
                      "098": ACCEPTED, "099": MISSING, "X01": UNEXPECTED}
    header = list(rows[0])
    assert header[:7] == ["番号", "事業名", "部", "課", "係", "事業分類", "事業体制"]
    assert "令和4年度（2022）予算額（千円）" in header
    assert header[-3:] == ["提出ファイル", "SHA-256（先頭12桁）", "受付日時"]

    r088 = next(r for r in rows if r["番号"] == "088")
    assert r088["令和4年度（2022）予算額（千円）"] == 130114
    assert r088["令和4年度（2022）決算額（千円）"] == 102034
    assert r088["令和4年度（2022）人件費計（千円）"] == 7055
    assert r088["令和4年度（2022）トータルコスト（千円）"] == total_cost(102034, 7055) == 109089
    assert [r088[k] for k in ("市民ニーズ", "進捗状況", "市の関与", "優先度")] == [3, 2, 4, 3]
    assert (r088["方向性"], r088["エラー数"], r088["注意数"]) == ("継続", 0, 1)
    assert r088["提出ファイル"] == "政策イノベーション部/088.xlsx"
    assert r088["SHA-256（先頭12桁）"] == scenario.current[0].sha256[:12]
    assert r088["受付日時"] == datetime(2023, 5, 12, 9, 2)

    r089 = next(r for r in rows if r["番号"] == "089")
    assert (r089["エラー数"], r089["注意数"]) == (2, 1)

    missing = next(r for r in rows if r["番号"] == "099")
    assert (missing["事業名"], missing["部"], missing["係"]) == ("提出のない事業", "総務部", "庶務係")
    assert missing["令和4年度（2022）決算額（千円）"] is None and missing["方向性"] is None
    assert missing["提出ファイル"] is None and missing["エラー数"] is None


def test_list_number_formats(wb):
    cells = cells_of(wb["一覧"], "T_List")
    assert cells[0]["令和4年度（2022）決算額（千円）"].number_format == "#,##0"
    assert cells[0]["受付日時"].is_date
    assert cells[0]["番号"].data_type == "s"  # '087' keeps its zero


def test_formula_like_text_stays_text_in_xlsx(wb):
    row = next(r for r in cells_of(wb["一覧"], "T_List") if r["番号"].value == "X01")
    for key, text in (("事業名", INJECTIONS[0]), ("係", INJECTIONS[1]), ("課", INJECTIONS[2])):
        assert row[key].data_type == "s" and row[key].value == text
    message = next(r for r in cells_of(wb["指摘一覧"], "T_Findings") if r["コード"].value == "V301")
    assert message["内容"].data_type == "s" and message["内容"].value.startswith("=")


# --------------------------------------------------------------------------- long tables


def test_costs_long_table(wb, scenario):
    rows = table_rows(wb["コスト推移"], "T_Costs")
    with_records = [r for r in scenario.records if r]
    assert len(rows) == sum(len(r["costs"]) for r in with_records) * 9
    assert list(rows[0]) == ["番号", "事業名", "部", "課", "年度", "和暦", "項目", "単位", "値", "提出状況"]
    items = [r["項目"] for r in rows[:9]]
    assert items == ["予算額", "決算額", "一般財源", "国庫・県支出金・地方債", "その他", "人件費計",
                     "正職員従事割合", "時間外勤務", "トータルコスト"]
    got = {(r["番号"], r["年度"], r["項目"]): r for r in rows}
    assert got[("088", 2022, "トータルコスト")]["値"] == 109089
    assert got[("088", 2022, "決算額")]["和暦"] == "令和4年度"
    assert got[("088", 2023, "正職員従事割合")]["値"] == 1.5
    assert got[("088", 2023, "正職員従事割合")]["単位"] == "人"
    assert got[("X01", 2022, "その他")]["値"] == -375
    assert got[("X01", 2022, "その他")]["提出状況"] == UNEXPECTED
    cells = cells_of(wb["コスト推移"], "T_Costs")
    formats = {c["項目"].value: c["値"].number_format for c in cells[:9]}
    assert formats["予算額"] == "#,##0" and formats["正職員従事割合"] == "0.00"


def test_indicators_long_table(wb, scenario):
    rows = table_rows(wb["指標"], "T_Indicators")
    assert len(rows) == sum(len(i["values"]) for r in scenario.records for i in r["indicators"])
    first = next(r for r in rows if r["番号"] == "088" and r["年度"] == 2019)
    assert (first["指標名"], first["単位"], first["種類"]) == ("年間のネットワーク停止時間", "分以内", "活動結果指標")
    assert (first["目標値"], first["実績"], first["和暦"]) == (280, 3, "令和元年度")
    assert first["達成率"] == pytest.approx(achievement_rate(3.0, 280.0, "分以内")) == 1.0  # ceiling met
    cell = next(c for c in cells_of(wb["指標"], "T_Indicators") if c["達成率"].value is not None)
    assert cell["達成率"].number_format == "0.0%"


# --------------------------------------------------------------------------- aggregates


def test_direction_summary_counts_shares_and_chart(wb, scenario):
    ws = wb["方向性集計"]
    rows = table_rows(ws, "T_Directions")
    # 受理 and 要修正 count; X01 (対象外) and 099 (未提出) do not.
    assert [r["部"] for r in rows] == ["政策イノベーション部"]
    row = rows[0]
    assert (row["継続"], row["拡大・拡充"], row["縮小"], row["合計"]) == (4, 2, 0, 6)
    share = cells_of(ws, "T_Directions")[0]["継続（割合）"]
    assert share.data_type == "f" and share.number_format == "0.0%"
    totals = cells_of(ws, "T_Directions")[-1]
    assert totals["部"].value == "全体"
    with zipfile.ZipFile(scenario.path) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 1
        chart = z.read(charts[0]).decode()
    assert "<c:barDir val=\"bar\"/>" in chart and "<c:grouping val=\"stacked\"/>" in chart
    # cached values readers see without recalculating
    cached = openpyxl.load_workbook(scenario.path, data_only=True)["方向性集計"]
    assert cached[share.coordinate].value == pytest.approx(4 / 6)


def test_department_costs(wb, scenario):
    rows = table_rows(wb["部別コスト"], "T_DepartmentCosts")
    seeds = scenario.records[:6]
    dept_2022 = next(r for r in rows if r["集計単位"] == "部" and r["年度"] == 2022)
    settlement = sum(c["settlement"] for r in seeds for c in r["costs"] if c["year"] == 2022)
    personnel = sum(c["personnel_cost"] for r in seeds for c in r["costs"] if c["year"] == 2022)
    assert dept_2022["部"] == "政策イノベーション部" and dept_2022["課"] is None
    assert (dept_2022["事業数"], dept_2022["決算額（千円）"], dept_2022["人件費計（千円）"]) == (6, settlement, personnel)
    assert dept_2022["トータルコスト（千円）"] == settlement + personnel
    assert dept_2022["和暦"] == "令和4年度"
    div_2022 = next(r for r in rows if r["集計単位"] == "課" and r["年度"] == 2022)
    assert div_2022["課"] == "情報政策課" and div_2022["決算額（千円）"] == settlement
    assert {r["年度"] for r in rows} == {2020, 2021, 2022, 2023, 2024}
    assert "市民部" not in {r["部"] for r in rows}  # 対象外 is not counted


# --------------------------------------------------------------------------- chasing


def test_status_sheet(wb):
    ws = wb["提出状況"]
    listed = table_rows(ws, "T_Status")
    assert len(listed) == 9
    assert {r["番号"]: r["提出状況"] for r in listed if r["番号"]} == {
        "087": ACCEPTED, "088": ACCEPTED, "089": NEEDS_FIX, "090": ACCEPTED, "091": ACCEPTED,
        "098": ACCEPTED, "099": MISSING, "X01": UNEXPECTED}
    unreadable = next(r for r in listed if r["番号"] is None)
    assert (unreadable["提出状況"], unreadable["提出ファイル"], unreadable["エラー数"]) == (UNREADABLE, "壊れた.xlsx", 1)
    summary = table_rows(ws, "T_StatusSummary")  # over the counts per 部, in their columns
    assert summary == [{"集計": "全体", MISSING: 1, NEEDS_FIX: 1, UNREADABLE: 1, UNEXPECTED: 1, ACCEPTED: 5, "合計": 9}]
    assert ws.tables["T_StatusSummary"].ref.split(":")[0][0] == ws.tables["T_StatusByDepartment"].ref[0]
    by_dept = {r["部（集計）"]: r for r in table_rows(ws, "T_StatusByDepartment")}
    assert by_dept["政策イノベーション部"][ACCEPTED] == 5 and by_dept["政策イノベーション部"][NEEDS_FIX] == 1
    assert by_dept["総務部"][MISSING] == 1 and by_dept["市民部"][UNEXPECTED] == 1
    assert by_dept["（不明）"][UNREADABLE] == 1
    assert sum(r["合計"] for r in by_dept.values()) == 9


def test_findings_of_current_and_unreadable_files_only(wb):
    rows = table_rows(wb["指摘一覧"], "T_Findings")
    assert [(r["番号"], r["コード"], r["区分"]) for r in rows] == [
        ("088", "V350", "注意"),
        ("089", "V301", "エラー"), ("089", "R501", "エラー"), ("089", "V320", "注意"),  # errors first
        (None, "F110", "エラー"),
    ]
    v301 = rows[1]
    assert (v301["シート"], v301["セル"], v301["フィールド"]) == ("マネジメントシート", "E21", "costs.2022.settlement")
    assert v301["項目"] == "令和4年度の決算額（千円）"
    assert v301["提出状況"] == NEEDS_FIX and v301["提出ファイル"] == "政策イノベーション部/089.xlsx"
    assert rows[-1]["提出状況"] == UNREADABLE and "壊れた.xlsx" in rows[-1]["内容"]
    assert "V399" not in {r["コード"] for r in rows}  # the superseded file's finding is gone


def test_history_lists_every_file(wb, scenario):
    rows = table_rows(wb["履歴"], "T_History")
    assert len(rows) == len(scenario.history)
    assert [r["受付日時"] for r in rows] == sorted(r["受付日時"] for r in rows)
    old = rows[0]
    assert (old["番号"], old["区分"], old["判定"], old["エラー数"]) == ("089", "置換済み", NEEDS_FIX, 1)
    assert old["SHA-256"] == scenario.history[0].sha256
    assert old["ファイル更新日時"] == datetime(2023, 5, 10, 18, 0)
    assert [r["区分"] for r in rows[1:]] == ["現行"] * (len(rows) - 1)
    assert rows[-1]["判定"] == UNREADABLE


def test_unreadable_file_replaced_later_is_not_listed(tmp_path):
    rec = seed_records()[0]
    broken = sub(None, file="a/088.xlsx", n=1, readable=False, current=False,
                 found=[findings.make("F105", file="088.xlsx")])
    fixed = sub(rec, file="a/088.xlsx", n=2)
    path = tmp_path / "m.xlsx"
    write_master(path, [fixed], [rec], [broken, fixed], FY)
    book = openpyxl.load_workbook(path)
    assert table_rows(book["指摘一覧"], "T_Findings") == []
    assert [r["提出状況"] for r in table_rows(book["提出状況"], "T_Status")] == [ACCEPTED]
    assert [r["区分"] for r in table_rows(book["履歴"], "T_History")] == ["置換済み", "現行"]


def test_unreadable_file_of_a_known_project_stands_for_it(tmp_path):
    """An unreadable file whose _meta names its project: that project is 読取不可, not 未提出."""
    recs = seed_records()[:2]
    broken = sub(None, file="a/088.xlsx", n=1, readable=False, meta={"project_no": "088"},
                 found=[findings.make("F110", file="088.xlsx", detail="壊れています")])
    ok = sub(recs[1], file="a/089.xlsx", n=2)
    path = tmp_path / "m.xlsx"
    write_master(path, [broken, ok], recs, [broken, ok], FY)
    book = openpyxl.load_workbook(path)
    listed = {r["番号"]: r for r in table_rows(book["一覧"], "T_List")}
    assert listed["088"]["提出状況"] == UNREADABLE and listed["088"]["事業名"] == recs[0]["project_name"]
    assert listed["088"]["提出ファイル"] == "a/088.xlsx" and listed["088"]["方向性"] is None
    status = table_rows(book["提出状況"], "T_Status")
    assert [(r["番号"], r["提出状況"]) for r in status] == [("088", UNREADABLE), ("089", ACCEPTED)]
    assert [r["番号"] for r in table_rows(book["指摘一覧"], "T_Findings")] == ["088"]
    assert read_master_records(path) == [recs[1]]


def test_direction_outside_the_list_is_counted_apart(tmp_path):
    recs = seed_records()[:3]
    recs[0]["direction"], recs[1]["direction"] = None, "継続（仮）"
    path = tmp_path / "m.xlsx"
    write_master(path, [sub(r, file=f"{r['project_no']}.xlsx", n=i) for i, r in enumerate(recs)], recs, [], FY)
    row = table_rows(openpyxl.load_workbook(path)["方向性集計"], "T_Directions")[0]
    assert (row["未記入"], row["その他の値"], row["拡大・拡充"], row["合計"]) == (1, 1, 1, 3)


def test_without_expected_the_current_records_are_expected(tmp_path):
    recs = seed_records()[:2]
    path = tmp_path / "m.xlsx"
    write_master(path, [sub(r, file=f"{r['project_no']}.xlsx", n=i) for i, r in enumerate(recs)], None, [], FY)
    rows = table_rows(openpyxl.load_workbook(path)["提出状況"], "T_Status")
    assert [r["提出状況"] for r in rows] == [ACCEPTED, ACCEPTED]


def test_empty_book_is_still_valid(tmp_path):
    path = tmp_path / "empty.xlsx"
    write_master(path, [], [], [], FY)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [*VISIBLE, "_records"]
    assert read_master_records(path) == []


# --------------------------------------------------------------------------- _records


def test_records_round_trip_exactly(scenario):
    assert read_master_records(scenario.path) == scenario.records


def test_long_record_is_split_under_the_cell_limit(scenario):
    ws = openpyxl.load_workbook(scenario.path, read_only=True)["_records"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:6] == masterbook.RECORDS_HEADER
    long_row = next(r for r in rows[1:] if r[0] == "X01")
    assert long_row[5] >= 2
    pieces = [p for p in long_row[6:] if p]
    assert len(pieces) == long_row[5]
    assert all(len(p.encode("utf-16-le")) // 2 <= masterbook.CELL_LIMIT for p in pieces)
    assert all(p == p.strip() for p in pieces)


def test_not_a_master_book_is_a_records_error(tmp_path):
    plain = tmp_path / "plain.xlsx"
    book = xlsxwriter.Workbook(plain)
    book.add_worksheet("Sheet1").write_string(0, 0, "x")
    book.close()
    text = tmp_path / "records.xlsx"
    text.write_text("project_no,name\n088,x\n", encoding="utf-8")
    for path in (plain, text, tmp_path / "missing.xlsx"):
        with pytest.raises(RecordsError) as err:
            read_master_records(path)
        assert path.name in str(err.value)
        assert any("\u3040" <= ch <= "\u30ff" for ch in str(err.value))  # Japanese


def test_edited_records_sheet_is_refused(scenario, tmp_path):
    book = openpyxl.load_workbook(scenario.path)
    ws = book["_records"]
    ws.cell(row=2, column=7).value = ws.cell(row=2, column=7).value.replace("情報", "情熱", 1)
    edited = tmp_path / "edited.xlsx"
    book.save(edited)
    with pytest.raises(RecordsError, match="一致しません"):
        read_master_records(edited)


# --------------------------------------------------------------------------- CSV


@pytest.fixture(scope="module")
def csv_files(scenario, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("csv")
    paths = write_csv(out, scenario.current, scenario.expected, FY)
    assert [p.name for p in paths] == ["一覧_2022.csv", "コスト推移_2022.csv", "指標_2022.csv"]
    return {p.name.split("_")[0]: p for p in paths}


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


def test_csv_encoding_and_line_ends(csv_files):
    for path in csv_files.values():
        data = path.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        assert data.count(b"\r\n") == data.count(b"\n")  # CRLF only, no bare LF inside cells
        data.decode("utf-8")


def test_csv_list_headers_and_numbers(csv_files):
    rows = read_csv(csv_files["一覧"])
    assert list(rows[0])[:4] == ["年度", "和暦", "番号", "事業名"]
    assert "予算額（千円）" in rows[0] and "決算額（千円）" in rows[0]
    r088 = next(r for r in rows if r["番号"] == "088")
    assert (r088["年度"], r088["和暦"]) == ("2022", "令和4年度")
    assert (r088["予算額（千円）"], r088["トータルコスト（千円）"]) == ("130114", "109089")
    missing = next(r for r in rows if r["番号"] == "099")
    assert missing["決算額（千円）"] == "" and missing["提出状況"] == MISSING
    assert all("," not in v for r in rows for k, v in r.items() if "千円" in k)


def test_csv_quotes_formula_like_text(csv_files):
    row = next(r for r in read_csv(csv_files["一覧"]) if r["番号"] == "X01")
    assert row["事業名"] == "'=SUM(1,2)"
    assert row["係"] == "'+81-29-883-1111"
    assert row["課"] == "'-課"
    costs = read_csv(csv_files["コスト推移"])
    other = next(r for r in costs if r["番号"] == "X01" and r["年度"] == "2022" and r["項目"] == "その他")
    assert other["値"] == "-375"  # a negative number is a number, not quoted


def test_csv_costs_and_indicators(csv_files):
    costs = read_csv(csv_files["コスト推移"])
    assert list(costs[0]) == ["番号", "事業名", "部", "課", "年度", "和暦", "項目", "単位", "値", "提出状況"]
    fte = next(r for r in costs if r["番号"] == "088" and r["年度"] == "2023" and r["項目"] == "正職員従事割合")
    assert (fte["値"], fte["単位"]) == ("1.5", "人")
    indicators = read_csv(csv_files["指標"])
    assert "達成率（％）" in indicators[0]
    first = next(r for r in indicators if r["番号"] == "088" and r["年度"] == "2019")
    assert (first["目標値"], first["実績"], first["達成率（％）"]) == ("280", "3", "100.0")  # 3分 against a ceiling of 280分以内
    named = next(r for r in indicators if r["番号"] == "X01")
    assert named["指標名"] == "件数 （改行あり）"  # one line per cell


# --------------------------------------------------------------------------- LibreOffice


def test_master_book_in_libreoffice(calc, scenario, tmp_path):
    with calc.open(scenario.path) as doc:
        doc.recalc()
        assert not doc.errors()
        info = doc.info()
        assert [s["name"] for s in info["sheets"]] == [*VISIBLE, "_records"]
        assert [s["visible"] for s in info["sheets"]] == [True] * len(VISIBLE) + [False]
        share = doc.cell("方向性集計!K4")  # 継続（割合）of the one 部, recomputed by Calc
        assert share["formula"] and share["value"] == pytest.approx(4 / 6)
        assert doc.value("方向性集計!I5") == 6  # the totals row
        assert doc.value("一覧!B9") == "=SUM(1,2)"  # text, not a formula
        saved = doc.save(tmp_path / "saved.xlsx")
    with zipfile.ZipFile(saved) as z:
        assert any(n.startswith("xl/charts/chart") for n in z.namelist())  # the chart survived
    assert read_master_records(saved) == scenario.records


def test_spliced_rows_read_back_like_xlsxwriter_cells(scenario, tmp_path, monkeypatch):
    """Big tables are written as XML after XlsxWriter closes the book; the cells must not differ."""
    from sheettool.collect import master as masterbook

    books = {}
    for name, threshold in (("cells", 10**9), ("spliced", 1)):
        monkeypatch.setattr(masterbook, "_SPLICE_ROWS", threshold)
        path = tmp_path / f"{name}.xlsx"
        write_master(path, scenario.current, scenario.expected, scenario.history, FY)
        books[name] = openpyxl.load_workbook(path)
    cells, spliced = books["cells"], books["spliced"]
    assert cells.sheetnames == spliced.sheetnames
    compared = 0
    for ws in cells.worksheets:
        other = spliced[ws.title]
        assert ws.dimensions == other.dimensions, ws.title
        for row_a, row_b in zip(ws.iter_rows(), other.iter_rows(), strict=True):
            for a, b in zip(row_a, row_b, strict=True):
                assert (a.value, a.data_type, a.number_format, a.alignment.wrap_text) == \
                       (b.value, b.data_type, b.number_format, b.alignment.wrap_text), (ws.title, a.coordinate)
                compared += 1
        for r, dim in ws.row_dimensions.items():
            if dim.height:
                assert other.row_dimensions[r].height == dim.height, (ws.title, r)
        assert [t.ref for t in ws.tables.values()] == [t.ref for t in other.tables.values()]
    assert compared > 3000


# --------------------------------------------------------------------------- streaming


def book_cells(path: Path) -> dict[str, list[tuple]]:
    wb = openpyxl.load_workbook(path)
    return {ws.title: [tuple((c.value, c.data_type, c.number_format) for c in row) for row in ws.iter_rows()]
            for ws in wb.worksheets}


def test_streamed_input_writes_the_same_book(scenario, tmp_path):
    """collect's way: ``current`` read once as it comes, the history without records, the year decided after."""
    seen = []

    def once():
        for s in scenario.current:
            seen.append(s.project_no)
            yield s

    history = [SubmissionInfo.of(s) for s in scenario.history]
    written = masterbook.write_all(tmp_path / "m.xlsx", tmp_path / "csv", once(), scenario.expected, history,
                                   lambda: FY if len(seen) == len(scenario.current) else None)
    assert book_cells(tmp_path / "m.xlsx") == book_cells(scenario.path)
    assert written.fiscal_year == FY
    assert [p.name for p in written.csv_paths] == ["一覧_2022.csv", "コスト推移_2022.csv", "指標_2022.csv"]
    reference = write_csv(tmp_path / "reference", scenario.current, scenario.expected, FY)
    assert [p.read_bytes() for p in written.csv_paths] == [p.read_bytes() for p in reference]
    assert written.current == [SubmissionInfo.of(s) for s in scenario.current]
    assert [s.file for s in written.unreadable] == ["壊れた.xlsx"]
    assert written.unreadable == [SubmissionInfo.of(s) for s in
                                  masterbook.open_unreadable(scenario.current, scenario.history)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["csv", "m.xlsx", "reference"]  # no temp files left


def test_a_light_history_cannot_stand_for_a_current_record(scenario, tmp_path):
    """A submission that counts now needs its record: only ``current`` (or a Submission in history) has it."""
    only_in_history = SubmissionInfo.of(scenario.current[0])
    with pytest.raises(ValueError, match="record"):
        write_master(tmp_path / "m.xlsx", scenario.current[1:], scenario.expected, [only_in_history], FY)
    assert list(tmp_path.iterdir()) == []


def _zip64_local_headers(path: Path, z: zipfile.ZipFile) -> set[str]:
    """The entries whose local header carries a zip64 extra field (header id 1)."""
    data = path.read_bytes()
    found = set()
    for info in z.infolist():
        name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
        extra = data[info.header_offset + 30 + name_len:][:extra_len]
        while len(extra) >= 4:
            tag, size = struct.unpack_from("<HH", extra)
            found.update([info.filename] if tag == 1 else [])
            extra = extra[4 + size:]
    return found


def test_big_tables_read_back_spliced(scenario, tmp_path, monkeypatch):
    """Every table and _records spliced (as a big book is), with zip64 headers as a huge part would get."""
    monkeypatch.setattr(masterbook, "_SPLICE_ROWS", 1)
    monkeypatch.setattr(masterbook, "_ZIP64_SAFE", 0)
    path = tmp_path / "spliced.xlsx"
    write_master(path, scenario.current, scenario.expected, scenario.history, FY)
    # every sheet but 評価担当課入力 and the aggregates (方向性集計, 部別コスト: small, written by XlsxWriter)
    spliced = {f"xl/worksheets/sheet{n}.xml" for n in (1, 3, 4, 7, 8, 9, 10)}
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        assert _zip64_local_headers(path, z) == spliced
        if sys.version_info >= (3, 11, 4):  # before gh-103861, force_zip64 left the directory as 2.0
            assert {i.filename for i in z.infolist() if i.extract_version >= 45} == spliced
        records_xml = z.read("xl/worksheets/sheet10.xml").decode()
    assert 't="inlineStr"' in records_xml and "_x0041_" not in records_xml  # escaped in the JSON itself
    assert read_master_records(path) == scenario.records
    assert book_cells(path)["一覧"] == book_cells(scenario.path)["一覧"]


def test_failed_write_leaves_the_previous_outputs(scenario, tmp_path, monkeypatch):
    path, csv_dir = tmp_path / "m.xlsx", tmp_path / "csv"
    masterbook.write_outputs(path, csv_dir, scenario.current, scenario.expected, scenario.history, FY)
    before = {p: p.read_bytes() for p in [path, *csv_dir.iterdir()]}
    monkeypatch.setattr(masterbook, "_SPLICE_ROWS", 1)
    rows = masterbook._records_rows

    def broken(book):  # fails while the last sheet streams into the zip, the CSV files being written
        yield next(rows(book))
        raise OSError("disk full")

    monkeypatch.setattr(masterbook, "_records_rows", broken)
    with pytest.raises(OSError, match="disk full"):
        masterbook.write_outputs(path, csv_dir, scenario.current, scenario.expected, scenario.history, FY)
    assert {p: p.read_bytes() for p in [path, *csv_dir.iterdir()]} == before  # no temp file either


def test_csv_lines_are_what_csv_writer_writes():
    rng = random.Random(7)
    alphabet = ["a", ",", '"', "\r", "\n", " ", "=", "-", "\t", "１", "'", "@", "+", "件"]
    kinds = ["text", "int", "ratio", "money", "number", "wrap"]
    for _ in range(500):
        cols = [masterbook._CsvColumn(rng.choice(kinds)) for _ in range(rng.randint(1, 6))]
        shared = ["x,y", 5, None, 2.5, "=a", True]
        for _ in range(8):
            row = [rng.choice([None, rng.randint(-9, 9), rng.random() * 100, 3.0, -0.0, True,
                               "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))),
                               masterbook.Cell(rng.randint(0, 9), "fte"), masterbook.Cell(2.5, "money"),
                               rng.choice(shared)]) for _ in cols]
            expected = io.StringIO()
            csv.writer(expected, lineterminator="\r\n").writerow(
                [masterbook._csv_value(v, c.kind) for v, c in zip(row, cols, strict=True)])
            assert masterbook._csv_line(row, cols) == expected.getvalue(), row
