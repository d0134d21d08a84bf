"""``sheettool collect`` on a realistic inbox: templates filled in LibreOffice, returned, consolidated.

The six seed projects are generated as the office sends them out (this year's
results and judgement empty), filled in LibreOffice Calc as a department would
and saved as .xlsx under ``inbox/<部>/<課>/``. Besides the six: 088 is
resubmitted later with a correction, 090 comes back with errors, a CSV renamed
.xlsx cannot be read, project 500 was not expected, and project 099 was
expected but never sent. One ``collect`` run through ``sheettool.cli.main``
then feeds every assertion on the master book, the CSV, the JSON Lines and the
ledger. A second run, an interrupted run, hostile file names and the master
book as the input of ``generate`` / ``rollforward`` follow.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from cycle import (
    LAYOUT,
    SHEET,
    T0,
    book_values,
    fill,
    generate,
    integrity,
    run_cli,
    sent_out,
    table,
    tree,
    write_records,
)
from framecheck import assert_dtypes, assert_matches_book
from helpers import generate_seed_templates, seed_record, seed_records

import sheettool
from sheettool.check import check_file
from sheettool.cli import main
from sheettool.collect.ledger import Ledger, workspace_for
from sheettool.collect.master import read_master_records
from sheettool.generate import output_path
from sheettool.spec.master import achievement_rate

ROOT = Path(__file__).resolve().parent.parent
PLACE = LAYOUT.place(2022)
FY_LABEL = "令和4年度（2022）"
DEPT, DIV = "政策イノベーション部", "情報政策課"
SEED_NOS = ["087", "088", "089", "090", "091", "098"]
# Formula-like text a department types into cells the master book shows (係, 指標名).
INJECTED = {
    "section": "=SUM(1,2)",
    "indicators.1.name": "+81-29-883-1111 への問合せ件数",
    "indicators.2.name": "-課の電子申請件数",
    "indicators.3.name": "@担当のログイン件数",
}


def cell(path: str) -> str:
    return PLACE.fields[path].cell


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the inbox


@dataclass
class Inbox:
    root: Path
    inbox: Path
    templates: dict[str, Path]
    expected: Path
    master: Path
    jsonl: Path
    records: dict[str, dict]  # project → the record as its current file holds it
    files: dict[str, str] = field(default_factory=dict)  # label → path relative to the inbox
    rc: int = -1
    out: str = ""

    @property
    def workspace(self) -> Path:
        return workspace_for(self.master)

    @property
    def csv_dir(self) -> Path:
        return self.master.with_name("master_csv")

    def path(self, label: str) -> Path:
        return self.inbox / self.files[label]


def unexpected_record() -> dict:
    rec = seed_record("098")
    rec.update(project_no="500", project_name="臨時福祉給付金事業", department="福祉部",
               division="社会福祉課", section="給付係")
    return rec


def missing_record() -> dict:
    rec = seed_record("087")
    rec.update(project_no="099", project_name="地域情報化推進事業")
    return rec


def run_collect(case: Inbox) -> tuple[int, str, str]:
    return run_cli("collect", case.inbox, "--out", case.master, "--expected", case.expected, "--json", case.jsonl)


@pytest.fixture(scope="module")
def case(calc, tmp_path_factory) -> Inbox:
    root = tmp_path_factory.mktemp("collect")
    seeds = {r["project_no"]: r for r in seed_records()}
    extra = unexpected_record()
    templates = generate([sent_out(r) for r in [*seeds.values(), extra]], root / "templates")
    expected = write_records(root / "expected.json", [*seeds.values(), missing_record()])
    case = Inbox(root, root / "inbox", templates, expected, root / "out" / "master.xlsx",
                 root / "out" / "current.jsonl", {})
    case.master.parent.mkdir()

    def put(label: str, no: str, record: dict, *, name: str | None = None, mtime: float, **kw) -> None:
        target = output_path(case.inbox, record)
        if name:
            target = target.with_name(name)
        fill(calc, templates[no], record, target, mtime=mtime, **kw)
        case.files[label] = target.relative_to(case.inbox).as_posix()

    # Four projects returned complete; 087's 係 and indicator names look like formulas.
    for i, no in enumerate(("089", "091", "098")):
        put(no, no, seeds[no], mtime=T0 + 60 * i)
        case.records[no] = seeds[no]
    rec087 = copy.deepcopy(seeds["087"])
    rec087["section"] = INJECTED["section"]
    for n in (1, 2, 3):
        rec087["indicators"][n - 1]["name"] = INJECTED[f"indicators.{n}.name"]
    put("087", "087", rec087, mtime=T0 + 300, as_text={"f_section": INJECTED["section"]})
    case.records["087"] = rec087
    # 088 first with a wrong 一般財源 and 改善・見直し without a reason, then corrected later.
    wrong = copy.deepcopy(seeds["088"])
    wrong["costs"][2].update(general_fund=120340, settlement=120340)
    wrong.update(direction="改善・見直し", direction_reason=None)
    put("088 v1", "088", wrong, mtime=T0 + 400)
    put("088 v2", "088", seeds["088"], name="088_情報通信ネットワーク運営業務_修正版.xlsx", mtime=T0 + 7200)
    case.records["088"] = seeds["088"]
    # 090 with errors: 進捗状況 left blank, 縮小 without a reason.
    bad = copy.deepcopy(seeds["090"])
    bad["evaluation"]["progress"] = None
    bad.update(direction="縮小", direction_reason=None)
    put("090", "090", bad, mtime=T0 + 500)
    case.records["090"] = bad
    # A project nobody expected.
    put("500", "500", extra, mtime=T0 + 600)
    case.records["500"] = extra
    # A CSV renamed .xlsx.
    csv_file = case.inbox / "総務部" / "総務課" / "提出一覧.xlsx"
    csv_file.parent.mkdir(parents=True)
    csv_file.write_text("番号,事業名\n088,情報通信ネットワーク運営業務\n", encoding="utf-8")
    os.utime(csv_file, (T0 + 700, T0 + 700))
    case.files["csv"] = csv_file.relative_to(case.inbox).as_posix()

    case.rc, case.out, err = run_collect(case)
    assert err == ""
    return case


@pytest.fixture(scope="module")
def wb(case):
    book = openpyxl.load_workbook(case.master)
    yield book
    book.close()


def by_no(rows: list[dict], key: str = "番号") -> dict[str, dict]:
    return {r[key]: r for r in rows}


# --------------------------------------------------------------------------- the filled files themselves


def test_the_departments_files_read_back_as_typed(case):
    """The LibreOffice round trip is sound, so what follows tests collect, not the filling."""
    for label in ("087", "088 v2", "089", "091", "098", "500"):
        result = check_file(case.path(label))
        assert result.record == case.records[label.split()[0]], label
        assert not [f for f in result.findings if f.is_error], label
    assert check_file(case.path("088 v1")).record["costs"][2]["settlement"] == 120340
    assert check_file(case.path("087")).record["section"] == "=SUM(1,2)"


# --------------------------------------------------------------------------- run, summary, exit code


def test_first_run_summary_and_exit_code(case):
    assert case.rc == 1  # finished, but the inbox holds errors (090) and an unreadable file
    assert case.out.splitlines() == [
        "ファイル 9件（新たに読み取り 9件）: 受理 5件、要修正 1件、読取不可 1件、対象外 1件、未提出 1件。",
        # what to chase, by name (a long list ends in "ほかN件": test_the_summary_bounds_the_names)
        "  要修正 1件:",
        f"    090 基幹電算業務運営事業（{DEPT} {DIV}）",
        "  読取不可 1件:",
        "    総務部/総務課/提出一覧.xlsx",
        "  未提出 1件:",
        f"    099 地域情報化推進事業（{DEPT} {DIV}）",
        f"  出力: {case.master}",
        *(f"  出力: {case.csv_dir / name}" for name in ("一覧_2022.csv", "コスト推移_2022.csv", "指標_2022.csv")),
        f"  出力: {case.jsonl}",
    ]
    assert sorted(case.files) == ["087", "088 v1", "088 v2", "089", "090", "091", "098", "500", "csv"]
    with Ledger.open(case.workspace) as ledger:
        stats = ledger.stats()
    assert (stats["submissions"], stats["current"], stats["needs_fix"], stats["unreadable"]) == (9, 7, 2, 1)


def test_list_sheet(case, wb):
    assert wb.sheetnames[:9] == ["一覧", "評価担当課入力", "コスト推移", "指標", "方向性集計", "部別コスト", "提出状況", "指摘一覧", "履歴"]
    rows = table(wb["一覧"])
    assert [r["番号"] for r in rows] == ["087", "088", "089", "090", "091", "098", "099", "500"]
    rows = by_no(rows)
    status = {no: r["提出状況"] for no, r in rows.items()}
    assert status == {"087": "受理", "088": "受理", "089": "受理", "090": "要修正", "091": "受理", "098": "受理",
                      "099": "未提出", "500": "対象外"}
    settle, personnel, total = (f"{FY_LABEL}{x}（千円）" for x in ("決算額", "人件費計", "トータルコスト"))
    r089 = rows["089"]
    assert (r089["事業名"], r089["部"], r089["課"], r089["係"]) == \
        ("庁内情報化事業(イントラとパソコンの整備)", DEPT, DIV, "情報システム係")
    assert (r089[f"{FY_LABEL}予算額（千円）"], r089[settle], r089[personnel], r089[total]) == \
        (241095, 232402, 7422, 232402 + 7422)
    assert (r089["市民ニーズ"], r089["進捗状況"], r089["市の関与"], r089["優先度"], r089["方向性"]) == \
        (3, 4, 4, 3, "拡大・拡充")
    assert (r089["エラー数"], r089["提出ファイル"]) == (0, case.files["089"])
    assert r089["SHA-256（先頭12桁）"] == sha(case.path("089"))[:12]
    assert isinstance(r089["受付日時"], datetime)
    r090 = rows["090"]
    assert (r090["エラー数"], r090["進捗状況"], r090["方向性"], r090[settle]) == (2, None, "縮小", 370915)
    r099 = rows["099"]  # names from the expected list, nothing else
    assert (r099["事業名"], r099["部"], r099[settle], r099["提出ファイル"], r099["エラー数"]) == \
        ("地域情報化推進事業", DEPT, None, None, None)
    r500 = rows["500"]
    assert (r500["事業名"], r500["部"], r500["課"], r500[settle], r500["提出ファイル"]) == \
        ("臨時福祉給付金事業", "福祉部", "社会福祉課", 8238, case.files["500"])


def test_corrected_project_shows_the_second_file(case, wb):
    row = by_no(table(wb["一覧"]))["088"]
    assert row["提出ファイル"] == case.files["088 v2"] == f"{DEPT}/{DIV}/088_情報通信ネットワーク運営業務_修正版.xlsx"
    assert row[f"{FY_LABEL}決算額（千円）"] == 102034  # not the 120,340 of the first file
    assert row[f"{FY_LABEL}トータルコスト（千円）"] == 102034 + 7055
    assert (row["方向性"], row["提出状況"], row["エラー数"]) == ("継続", "受理", 0)
    assert row["SHA-256（先頭12桁）"] == sha(case.path("088 v2"))[:12]
    with Ledger.open(case.workspace) as ledger:
        versions = ledger.history("088")
        current = {s.project_no: s for s in ledger.current()}
    assert [(s.file, s.result.status, s.current) for s in versions] == [
        (case.files["088 v1"], "要修正", False), (case.files["088 v2"], "受理", True)]
    assert current["088"].sha256 == sha(case.path("088 v2"))
    assert current["088"].result.record == seed_record("088")
    assert [f.code for f in versions[0].result.findings if f.is_error] == ["R506"]


def test_costs_sheet(case, wb):
    rows = table(wb["コスト推移"])
    assert len(rows) == 7 * 5 * 9  # projects with a record × cost years × items
    assert {r["番号"] for r in rows} == {"087", "088", "089", "090", "091", "098", "500"}
    index = {(r["番号"], r["年度"], r["項目"]): r for r in rows}
    r = index[("088", 2022, "決算額")]
    assert (r["和暦"], r["単位"], r["値"], r["提出状況"], r["事業名"]) == \
        ("令和4年度", "千円", 102034, "受理", "情報通信ネットワーク運営業務")
    assert index[("088", 2022, "トータルコスト")]["値"] == 109089
    assert index[("089", 2021, "その他")]["値"] == 9924
    assert index[("087", 2020, "正職員従事割合")]["値"] == 1.0
    assert index[("087", 2020, "時間外勤務")]["単位"] == "時間"
    assert index[("090", 2024, "人件費計")]["値"] == 14232
    assert index[("090", 2022, "予算額")]["提出状況"] == "要修正"
    assert index[("500", 2022, "決算額")]["提出状況"] == "対象外"
    assert not any(r["番号"] == "099" for r in rows)


def test_indicators_sheet(case, wb):
    rows = table(wb["指標"])
    index = {(r["番号"], r["指標番号"], r["年度"]): r for r in rows}
    assert len({(r["番号"], r["指標番号"]) for r in rows}) == 1 + 1 + 2 + 1 + 1 + 3 + 1  # indicators per project
    r = index[("087", 2, 2022)]
    assert (r["指標名"], r["単位"], r["種類"], r["目標値"], r["実績"]) == \
        ("-課の電子申請件数", "件", "活動結果指標", 30000, 89362)
    assert r["達成率"] == pytest.approx(89362 / 30000)
    assert r["達成率"] == pytest.approx(achievement_rate(89362, 30000, "件"))
    r = index[("088", 1, 2022)]  # 分以内: a ceiling, the rate is inverted
    assert (r["指標名"], r["目標値"], r["実績"]) == ("年間のネットワーク停止時間", 280, 0)
    assert r["達成率"] == achievement_rate(0.0, 280.0, "分以内")
    assert index[("098", 1, 2021)]["実績"] == 14959
    assert index[("098", 1, 2021)]["和暦"] == "令和3年度"


def test_direction_summary(case, wb):
    ws = wb["方向性集計"]
    assert "令和4年度" in ws["A1"].value
    rows = table(ws, header_row=3)
    assert [r["部"] for r in rows] == [DEPT, "全体"]  # 対象外 (福祉部) and 未提出 are left out
    dept = rows[0]
    assert (dept["継続"], dept["拡大・拡充"], dept["縮小"], dept["改善・見直し"], dept["完了"], dept["合計"]) == \
        (4, 1, 1, 0, 0, 6)
    formula = dept["継続（割合）"]
    assert isinstance(formula, str) and formula.startswith("=IF(")
    cached = openpyxl.load_workbook(case.master, data_only=True)["方向性集計"]
    assert table(cached, header_row=3)[0]["継続（割合）"] == pytest.approx(4 / 6)
    assert ws._charts  # the stacked bar chart


def test_department_costs(case, wb):
    rows = table(wb["部別コスト"], header_row=3)
    index = {(r["集計単位"], r["部"], r["課"], r["年度"]): r for r in rows}
    assert {r["部"] for r in rows} == {DEPT}  # 500 (対象外) does not count
    settle_2022 = 7638 + 102034 + 232402 + 370915 + 10780 + 8238
    personnel_2022 = 11193 + 7055 + 7422 + 7422 + 10827 + 13711
    dept = index[("部", DEPT, None, 2022)]
    assert (dept["事業数"], dept["決算額（千円）"], dept["人件費計（千円）"], dept["トータルコスト（千円）"]) == \
        (6, settle_2022, personnel_2022, settle_2022 + personnel_2022)
    assert index[("課", DEPT, DIV, 2022)]["決算額（千円）"] == settle_2022
    assert sorted(y for (lvl, _, _, y) in index if lvl == "部") == [2020, 2021, 2022, 2023, 2024]


def test_status_sheet(case, wb):
    ws = wb["提出状況"]
    # the totals sit over the counts per 部 (right of the list), in the same columns
    header = [c.value for c in ws[5]]
    right = header.index("部（集計）") + 1
    summary = {ws.cell(2, right + k).value: ws.cell(3, right + k).value for k in range(0, 7)}
    assert summary == {"集計": "全体", "未提出": 1, "要修正": 1, "読取不可": 1, "対象外": 1, "受理": 5, "合計": 9}
    assert [ws.cell(2, right + k).value for k in range(1, 7)] == header[right:right + 6]
    rows = table(ws, header_row=5)
    got = [(r["部"], r["番号"], r["提出状況"], r["提出ファイル"]) for r in rows]
    assert sorted(got, key=str) == sorted([
        (DEPT, "087", "受理", case.files["087"]), (DEPT, "088", "受理", case.files["088 v2"]),
        (DEPT, "089", "受理", case.files["089"]), (DEPT, "090", "要修正", case.files["090"]),
        (DEPT, "091", "受理", case.files["091"]), (DEPT, "098", "受理", case.files["098"]),
        (DEPT, "099", "未提出", None), ("福祉部", "500", "対象外", case.files["500"]),
        (None, None, "読取不可", "総務部/総務課/提出一覧.xlsx"),
    ], key=str)
    r090 = by_no(rows)["090"]
    assert (r090["エラー数"], r090["事業名"]) == (2, "基幹電算業務運営事業")
    # counts per 部 to the right of the list
    per_dept = {ws.cell(r, right).value: [ws.cell(r, right + k).value for k in range(1, 7)]
                for r in range(6, 9)}
    assert per_dept[DEPT] == [1, 1, 0, 0, 5, 7]  # 未提出 要修正 読取不可 対象外 受理 合計
    assert per_dept["福祉部"] == [0, 0, 0, 1, 0, 1]
    assert per_dept["（不明）"] == [0, 0, 1, 0, 0, 1]  # the unreadable file names no project


def test_findings_sheet(case, wb):
    rows = table(wb["指摘一覧"])
    errors = [(r["番号"], r["提出ファイル"], r["シート"], r["セル"], r["フィールド"], r["コード"], r["提出状況"])
              for r in rows if r["区分"] == "エラー"]
    assert errors == [
        ("090", case.files["090"], SHEET, cell("evaluation.progress"), "evaluation.progress", "R501", "要修正"),
        ("090", case.files["090"], SHEET, cell("direction_reason"), "direction_reason", "R506", "要修正"),
        (None, "総務部/総務課/提出一覧.xlsx", None, None, None, "F103", "読取不可"),
    ]
    r506 = next(r for r in rows if r["コード"] == "R506")
    assert "「縮小」" in r506["内容"] and r506["セル"] == "D81" and r506["項目"]
    assert "テキスト形式" in next(r for r in rows if r["コード"] == "F103")["内容"]
    # the first file of 088 was replaced: its R506 is history, not a finding to chase
    assert not any(r["提出ファイル"] == case.files["088 v1"] for r in rows)
    warnings = {(r["番号"], r["コード"], r["セル"]) for r in rows if r["区分"] == "注意"}
    assert ("087", "R503", cell("indicators.3.unit")) in warnings  # the published sheet has no unit there
    assert all(r["区分"] in ("エラー", "注意") for r in rows)


def test_history_sheet(case, wb):
    rows = table(wb["履歴"])
    assert len(rows) == 9
    by_file = {r["提出ファイル"]: r for r in rows}
    assert set(by_file) == set(case.files.values())
    v1, v2 = by_file[case.files["088 v1"]], by_file[case.files["088 v2"]]
    assert (v1["判定"], v1["区分"], v1["エラー数"], v1["番号"]) == ("要修正", "置換済み", 1, "088")
    assert (v2["判定"], v2["区分"], v2["エラー数"]) == ("受理", "現行", 0)
    assert v1["SHA-256"] == sha(case.path("088 v1")) and v2["SHA-256"] == sha(case.path("088 v2"))
    assert (v2["ファイル更新日時"] - v1["ファイル更新日時"]).total_seconds() == 6800
    unreadable = by_file["総務部/総務課/提出一覧.xlsx"]
    assert (unreadable["判定"], unreadable["区分"], unreadable["番号"]) == ("読取不可", "現行", None)
    assert by_file[case.files["090"]]["判定"] == "要修正"
    assert [r["受付日時"] for r in rows] == sorted(r["受付日時"] for r in rows)


def test_csv_files(case):
    files = sorted(p.name for p in case.csv_dir.iterdir())
    assert files == ["コスト推移_2022.csv", "一覧_2022.csv", "指標_2022.csv"]
    raw = (case.csv_dir / "一覧_2022.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(rows[0])[:6] == ["年度", "和暦", "番号", "事業名", "部", "課"]
    assert "決算額（千円）" in rows[0] and "受付日時" in rows[0]
    r088 = by_no(rows)["088"]
    assert (r088["年度"], r088["和暦"], r088["決算額（千円）"], r088["人件費計（千円）"], r088["提出状況"]) == \
        ("2022", "令和4年度", "102034", "7055", "受理")
    assert r088["提出ファイル"] == case.files["088 v2"]
    assert by_no(rows)["099"]["提出状況"] == "未提出" and by_no(rows)["099"]["決算額（千円）"] == ""
    costs = list(csv.DictReader(io.StringIO((case.csv_dir / "コスト推移_2022.csv").read_text("utf-8-sig"))))
    assert list(costs[0]) == ["番号", "事業名", "部", "課", "年度", "和暦", "項目", "単位", "値", "提出状況"]
    hit = [r for r in costs if (r["番号"], r["年度"], r["項目"]) == ("089", "2021", "国庫・県支出金・地方債")]
    assert [r["値"] for r in hit] == ["425"]
    indicators = list(csv.DictReader(io.StringIO((case.csv_dir / "指標_2022.csv").read_text("utf-8-sig"))))
    hit = [r for r in indicators if (r["番号"], r["指標番号"], r["年度"]) == ("087", "2", "2022")]
    assert [(r["目標値"], r["実績"], r["達成率（％）"]) for r in hit] == [("30000", "89362", "297.9")]


def test_json_lines_hold_one_current_record_per_project(case):
    lines = case.jsonl.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["project_no"] for r in records] == ["087", "088", "089", "090", "091", "098", "500"]
    for rec in records:
        assert rec == case.records[rec["project_no"]]
    assert records[1]["costs"][2]["settlement"] == 102034  # the corrected 088


def test_formula_like_text_stays_text(case, wb):
    row = by_no(table(wb["一覧"]))["087"]
    assert row["係"] == "=SUM(1,2)"
    ws = wb["一覧"]
    col = [c.value for c in ws[1]].index("係") + 1
    r = next(i for i in range(2, ws.max_row + 1) if ws.cell(i, 1).value == "087")
    assert ws.cell(r, col).data_type == "s"
    ind = wb["指標"]
    header = [c.value for c in ind[1]]
    names = {ind.cell(i, header.index("指標名") + 1) for i in range(2, ind.max_row + 1)
             if ind.cell(i, 1).value == "087"}
    shown = {c.value for c in names}
    assert set(list(INJECTED.values())[1:]) <= shown
    assert all(c.data_type == "s" for c in names)
    # the CSV quotes them so a spreadsheet does not run them
    listing = {r["番号"]: r for r in csv.DictReader(io.StringIO((case.csv_dir / "一覧_2022.csv").read_text("utf-8-sig")))}
    assert listing["087"]["係"] == "'=SUM(1,2)"
    indicators = (case.csv_dir / "指標_2022.csv").read_text("utf-8-sig")
    for text in list(INJECTED.values())[1:]:
        assert f",'{text}," in indicators
    # the record itself keeps the department's text unchanged
    assert read_master_records(case.master)[0]["section"] == "=SUM(1,2)"


def test_the_summary_bounds_the_names(tmp_path):
    """Many projects to chase: five by name, then "ほかN件" (提出状況 has them all)."""
    inbox = generate_seed_templates(tmp_path)
    missing = []
    for i in range(9):
        rec = seed_record("087")
        rec.update(project_no=f"{200 + i}", project_name=f"未提出の事業{i}")
        missing.append(rec)
    expected = write_records(tmp_path / "expected.json", [*seed_records(), *missing])
    rc, out, err = run_cli("collect", inbox, "--out", tmp_path / "m.xlsx", "--expected", expected)
    assert (rc, err) == (0, "")  # nothing wrong in the inbox: the missing ones are only named
    lines = out.splitlines()
    at = lines.index("  未提出 9件:")
    assert lines[at + 1:at + 7] == [
        *(f"    {200 + i} 未提出の事業{i}（{DEPT} {DIV}）" for i in range(5)),
        "    ほか4件（マスターブックの「提出状況」シートにすべてあります）"]
    assert "要修正" not in "".join(lines[1:at]) and lines[at + 7].startswith("  出力: ")


def test_frames_hold_the_master_books_figures(case):
    """sheettool.frames of the book and of its store: the book's cells, with the promised dtypes."""
    fr = sheettool.frames(case.master)
    assert (fr.template, fr.fiscal_year, fr.problems) == ("tsukuba", 2022, ())
    assert assert_matches_book(fr, case.master) > 1000
    assert_dtypes(fr)
    store = sheettool.frames(case.workspace, expected=case.expected)
    for name in fr:
        pd.testing.assert_frame_equal(store[name], fr[name], obj=name)
    listing = fr.一覧.set_index("番号")
    assert listing.loc["088", "決算額（千円）"] == 102034  # the corrected file's figure
    assert listing.loc["090", "提出状況"] == "要修正" and listing.loc["090", "進捗状況"] is pd.NA
    assert listing.loc["087", "係"] == "=SUM(1,2)"  # text, as typed
    assert listing.loc["099", "提出状況"] == "未提出" and listing.loc["099", "受付日時"] is pd.NaT
    assert listing.loc["088", "受付日時"] == pd.Timestamp(by_no(table(openpyxl.load_workbook(
        case.master)["一覧"]))["088"]["受付日時"])
    assert list(fr.一覧["方向性"].cat.categories) == list(LAYOUT.master_spec.directions)
    costs = fr.コスト推移.set_index(["番号", "年度"])
    assert costs.loc[("089", 2021), "国庫・県支出金・地方債（千円）"] == 425
    assert costs.loc[("087", 2020), "正職員従事割合（人）"] == 1.0
    assert list(fr.コスト推移["和暦"].cat.categories) == [f"令和{n}年度" for n in range(2, 7)]
    assert fr.提出状況["提出状況"].value_counts().to_dict() == {
        "受理": 5, "要修正": 1, "未提出": 1, "対象外": 1, "読取不可": 1, "様式違い": 0, "受付不可": 0, "除外": 0}


# --------------------------------------------------------------------------- the ledger across runs


def ledger_state(workspace: Path, *, with_times: bool = True) -> dict:
    with Ledger.open(workspace) as ledger:
        def row(s):
            base = (s.sha256, s.file, s.modified_at, s.result.status, s.current, s.result.record,
                    [f.to_json() for f in s.result.findings])
            return (*base, s.received_at) if with_times else base
        return {"current": [row(s) for s in ledger.current()], "history": [row(s) for s in ledger.history()]}


def zip_parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist() if name != "docProps/core.xml"}


def test_second_run_changes_nothing(case):
    before = ledger_state(case.workspace)
    archive = tree(case.workspace / "archive")
    book, parts = book_values(case.master), zip_parts(case.master)
    csvs, jsonl = tree(case.csv_dir), case.jsonl.read_bytes()
    rc, out, _ = run_collect(case)
    assert rc == 1
    # the counts of 提出状況: 500 is 対象外, not 受理
    assert out.startswith("ファイル 9件（新たに読み取り 0件）: 受理 5件、要修正 1件、読取不可 1件、対象外 1件、未提出 1件。")
    assert ledger_state(case.workspace) == before
    assert tree(case.workspace / "archive") == archive
    assert sorted(archive) == sorted(f"{h[:2]}/{h}.xlsx" for h in (sha(case.path(k)) for k in case.files))
    assert book_values(case.master) == book
    assert zip_parts(case.master) == parts  # byte for byte, apart from the creation time in docProps/core.xml
    assert tree(case.csv_dir) == csvs and case.jsonl.read_bytes() == jsonl
    with Ledger.open(case.workspace) as ledger:
        assert ledger.verify() == []


def _stats(case: Inbox) -> dict[str, tuple[int, int]]:
    files = [case.master, case.jsonl, *case.csv_dir.iterdir()]
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}


def _collect_api(case: Inbox):
    from sheettool.collect import collect

    expected = json.loads(case.expected.read_text(encoding="utf-8"))
    return collect(case.inbox, case.master, expected=expected, json_out=case.jsonl, progress=False)


def test_a_rerun_on_an_unchanged_inbox_rewrites_nothing_and_says_the_same(case):
    rc, out, _ = run_collect(case)  # outputs as they are after a run
    written = _stats(case)
    again_rc, again, _ = run_collect(case)
    assert (again_rc, again) == (rc, out)
    assert _stats(case) == written  # not one output rewritten
    skipped = _collect_api(case)
    assert _stats(case) == written
    with Ledger.open(case.workspace) as ledger:
        ledger.set_outputs_state(None)  # forget what was written: everything is written again
    full = _collect_api(case)
    assert _stats(case) != written
    for name in ("seen", "read", "current", "history", "unreadable", "expected", "fiscal_year", "outputs",
                 "template", "foreign", "rejected", "inbox_notes", "missing", "to_chase"):
        assert getattr(skipped, name) == getattr(full, name), name
    assert run_collect(case)[1] == out


def test_outputs_touched_or_removed_are_written_again(case):
    run_collect(case)
    case.jsonl.unlink()
    run_collect(case)
    assert case.jsonl.is_file()
    before = _stats(case)
    target = next(case.csv_dir.iterdir())
    target.write_bytes(target.read_bytes() + b"x")  # the office edited a CSV file
    run_collect(case)
    assert target.read_bytes()[-1:] != b"x"
    assert _stats(case)[case.master.name] != before[case.master.name]


def test_a_file_changed_under_the_same_size_and_mtime_is_read_again(case, tmp_path):
    import shutil

    copy_ = Inbox(**{**case.__dict__, "inbox": tmp_path / "inbox", "master": tmp_path / "out" / "master.xlsx",
                     "jsonl": tmp_path / "out" / "current.jsonl"})
    shutil.copytree(case.inbox, copy_.inbox)
    copy_.master.parent.mkdir()
    assert run_collect(copy_)[1].startswith("ファイル 9件（新たに読み取り 9件）")
    assert run_collect(copy_)[1].startswith("ファイル 9件（新たに読み取り 0件）")
    victim = copy_.path(next(iter(copy_.files)))
    st = victim.stat()
    data = bytearray(victim.read_bytes())
    data[-30] ^= 0x01  # in the zip's directory: same size, other content
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert victim.stat().st_size == st.st_size and victim.stat().st_mtime_ns == st.st_mtime_ns
    assert run_collect(copy_)[1].startswith("ファイル 9件（新たに読み取り 1件）")


def test_master_book_feeds_generate_and_rollforward(case, tmp_path, capsys):
    assert main(["generate", str(case.master), "--out", str(tmp_path / "again")]) == 0
    # 099 was expected and never sent: its expected record is in the master book too
    assert "8件のテンプレートを作成しました" in capsys.readouterr().out
    regenerated = check_file(output_path(tmp_path / "again", seed_record("088")))
    assert regenerated.record == seed_record("088")
    assert regenerated.record["costs"][2]["general_fund"] == 102034
    assert main(["rollforward", str(case.master), "--records-only", str(tmp_path / "r2023.json")]) == 0
    said = capsys.readouterr().out
    assert "繰越: 8件（うち提出なし 1件）、除外: 0件、追加: 0件" in said and "提出なしで繰越 099" in said
    rolled = json.loads((tmp_path / "r2023.json").read_text(encoding="utf-8"))
    assert [r["project_no"] for r in rolled] == ["087", "088", "089", "090", "091", "098", "500", "099"]
    assert {r["fiscal_year"] for r in rolled} == {2023}
    assert rolled[1]["previous"]["improvement_goal"] == seed_record("088")["results"]["improvement_goal"]


# --------------------------------------------------------------------------- an interrupted run


def big_inbox(case: Inbox, root: Path) -> Path:
    """The inbox of the case plus 60 more complete workbooks with their own project numbers."""
    inbox = root / "big"
    for label, rel in case.files.items():
        target = inbox / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(case.path(label).read_bytes())
        os.utime(target, ns=(case.path(label).stat().st_mtime_ns,) * 2)
    records = []
    for i in range(60):
        rec = seed_records()[i % 6]
        rec.update(project_no=f"{301 + i}", project_name=f"{rec['project_name']}（{i + 1}）")
        records.append(rec)
    made = generate(records, root / "more")
    for i, path in enumerate(sorted(made.values())):
        target = inbox / "追加分" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        os.utime(target, (T0 + 1000 + i, T0 + 1000 + i))
    return inbox


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sheettool.cli", *args]


def wait_for_group_to_die(pgid: int, timeout: float = 30) -> None:
    """Wait until every process of group ``pgid`` has exited (zombies count as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rpartition(")")[2].split()
                if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                    alive.append(stat)
        if not alive:
            return
        time.sleep(0.02)


def kill_partway(args: list[str], archive: Path, *, after: int, timeout: float = 120) -> int:
    """Start ``args``, SIGKILL it (and its workers) once ``after`` files are archived; the count then."""
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if archive.is_dir() and sum(1 for _ in archive.glob("*/*.xlsx")) >= after:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "collect finished before it could be interrupted"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        wait_for_group_to_die(proc.pid)
    assert proc.returncode == -signal.SIGKILL
    return sum(1 for _ in archive.glob("*/*.xlsx"))


def masked(values: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """Book values with the 受付日時 columns (when a store first saw a file) blanked."""
    out = {}
    for name, rows in values.items():
        received = {i for row in rows[:5] for i, v in enumerate(row) if v == "受付日時"}
        out[name] = [tuple(None if i in received and isinstance(v, datetime) else v for i, v in enumerate(row))
                     for row in rows]
    return out


def csv_without_times(folder: Path) -> dict[str, list[list[str]]]:
    out = {}
    for path in sorted(folder.iterdir()):
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
        drop = rows[0].index("受付日時") if "受付日時" in rows[0] else None
        out[path.name] = [[v for i, v in enumerate(row) if i != drop] for row in rows]
    return out


def test_interrupted_run_resumes_to_the_state_of_an_uninterrupted_one(case, tmp_path):
    inbox = big_inbox(case, tmp_path)
    total = sum(1 for p in inbox.rglob("*.xlsx"))
    assert total == 69
    reference = tmp_path / "ref" / "master.xlsx"
    reference.parent.mkdir()  # collect makes no folder for its --out file
    done = subprocess.run(cli("collect", str(inbox), "--out", str(reference), "--json", str(tmp_path / "ref.jsonl")),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "ファイル 69件（新たに読み取り 69件）: 受理 66件、要修正 1件、読取不可 1件。" in done.stdout

    master = tmp_path / "run" / "master.xlsx"
    master.parent.mkdir()
    archive = workspace_for(master) / "archive"
    args = cli("collect", str(inbox), "--out", str(master), "--json", str(tmp_path / "run.jsonl"))
    # killed once while checking one file at a time, once with worker processes
    first = kill_partway([*args, "--jobs", "1"], archive, after=10)
    assert 10 <= first < total
    second = kill_partway([*args, "--jobs", "2"], archive, after=first + 20)
    assert first < second < total
    with Ledger.open(workspace_for(master)) as ledger:
        assert ledger.verify() == []
        recorded = ledger.stats()["submissions"]
    # workers archive ahead of the ledger recording, so the archive may lead by a few files
    assert first - 1 <= recorded < total
    assert integrity(workspace_for(master) / "ledger.sqlite3") == "ok"
    assert not master.exists()  # the book is written once every file is recorded

    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"ファイル 69件（新たに読み取り {total - recorded}件）" in done.stdout
    with Ledger.open(workspace_for(master)) as ledger:
        assert ledger.verify() == []
    assert integrity(workspace_for(master) / "ledger.sqlite3") == "ok"
    assert ledger_state(workspace_for(master), with_times=False) == \
        ledger_state(workspace_for(reference), with_times=False)
    assert tree(archive) == tree(workspace_for(reference) / "archive")
    assert masked(book_values(master)) == masked(book_values(reference))
    assert csv_without_times(master.with_name("master_csv")) == csv_without_times(reference.with_name("master_csv"))
    assert (tmp_path / "run.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    # no partial archive write of a killed run is left behind
    assert all(re.fullmatch(r"[0-9a-f]{64}\.xlsx", p.name) for p in archive.rglob("*") if p.is_file())


def test_next_run_tidies_a_killed_runs_partial_archive_write(case, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "089.xlsx").write_bytes(case.path("089").read_bytes())
    master = tmp_path / "master.xlsx"
    assert main(["collect", str(inbox), "--out", str(master)]) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = workspace_for(master) / "archive" / "ab"
    folder.mkdir()
    stale = folder / f".tmp-{dead.pid}-k1ll3d.part"
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    live = folder / f".tmp-{writer.pid}-busy.part"  # a writer that is still running: left alone
    foreign = folder / ".tmp-somebody.part"
    # a killed worker nobody has reaped yet: its pid still answers kill(pid, 0)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    while Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        time.sleep(0.01)
    unreaped = folder / f".tmp-{zombie.pid}-zombie.part"
    for part in (stale, live, foreign, unreaped):
        part.write_bytes(b"PK\x03\x04 half a workbook")
    try:
        assert main(["collect", str(inbox), "--out", str(master)]) == 0
    finally:
        writer.kill()
        writer.wait()
        zombie.wait()
    assert not stale.exists() and not unreaped.exists()
    assert live.exists() and foreign.exists()


# --------------------------------------------------------------------------- unreadable files and replacements


def test_unreadable_only_inbox_still_gives_a_master_book_and_a_fixed_file_clears_it(case, tmp_path):
    inbox = tmp_path / "inbox"
    sent = inbox / "総務部" / "総務課" / "087.xlsx"
    sent.parent.mkdir(parents=True)
    sent.write_text("番号,事業名\n087,情報化推進事業\n", encoding="utf-8")
    os.utime(sent, (T0, T0))
    master = tmp_path / "out" / "master.xlsx"
    master.parent.mkdir()  # collect makes no folder for its --out file
    rc, out, err = run_cli("collect", inbox, "--out", master)
    # nothing readable and nothing expected: the year is unknown, the book is written all the same
    assert (rc, err) == (1, "")
    assert out.startswith("ファイル 1件（新たに読み取り 1件）: 受理 0件、要修正 0件、読取不可 1件。")
    wb = openpyxl.load_workbook(master)
    assert wb["提出状況"]["A1"].value == "提出状況 評価年度不明"
    assert [(r["提出状況"], r["提出ファイル"]) for r in table(wb["提出状況"], header_row=5)] == \
        [("読取不可", "総務部/総務課/087.xlsx")]
    assert table(wb["一覧"]) == []
    assert sorted(p.name for p in (tmp_path / "out" / "master_csv").iterdir()) == \
        ["コスト推移.csv", "一覧.csv", "指標.csv"]
    # the department sends the workbook under the same name: nothing is left to chase
    sent.write_bytes(case.path("087").read_bytes())
    os.utime(sent, (T0 + 60, T0 + 60))
    rc, out, err = run_cli("collect", inbox, "--out", master)
    assert (rc, err) == (0, "")
    assert out.startswith("ファイル 1件（新たに読み取り 1件）: 受理 1件、要修正 0件、読取不可 0件。")
    wb = openpyxl.load_workbook(master)
    assert [(r["番号"], r["提出状況"]) for r in table(wb["提出状況"], header_row=5)] == [("087", "受理")]
    assert {(r["コード"], r["区分"]) for r in table(wb["指摘一覧"])} == {("R503", "注意")}  # the CSV's F103 is gone
    history = {r["判定"]: r["区分"] for r in table(wb["履歴"])}
    assert history == {"読取不可": "置換済み", "受理": "現行"}
    assert (tmp_path / "out" / "master_csv" / "一覧_2022.csv").is_file()


def test_broken_line_in_the_expected_list_is_reported(case, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "089.xlsx").write_bytes(case.path("089").read_bytes())
    expected = tmp_path / "expected.jsonl"
    expected.write_text(json.dumps(seed_record("089"), ensure_ascii=False) + "\n{\"project_no\": \"090\",\n",
                        encoding="utf-8")
    rc, out, err = run_cli("collect", inbox, "--out", tmp_path / "master.xlsx", "--expected", expected)
    assert rc == 1
    assert "エラー: 提出予定の記録 2行目: JSONとして読めません" in err and "Traceback" not in err
    assert "受理 1件、要修正 0件、読取不可 0件、対象外 0件、未提出 0件。" in out


# --------------------------------------------------------------------------- hostile names


def test_odd_file_names_cannot_write_outside_the_workspace(case, tmp_path):
    inbox = tmp_path / "inbox"
    sources = [case.path(k) for k in ("087", "089", "091", "098", "500", "090")]
    names = [
        "..xlsx",
        "...xlsx",
        "..\\..\\..\\outside.xlsx",
        "%2e%2e%2foutside.xlsx",
        "-o outside.xlsx",
        "改行\nと\tタブ.xlsx",
    ]
    (inbox / "...").mkdir(parents=True)
    for i, (name, src) in enumerate(zip(names, sources, strict=True)):
        folder = inbox / "..." if i % 2 else inbox
        (folder / name).write_bytes(src.read_bytes())
    (inbox / os.fsdecode(b"\xff\xfe.xlsx")).write_bytes(case.path("088 v2").read_bytes())
    outside = tmp_path / "secret.xlsx"
    outside.write_bytes(case.path("088 v1").read_bytes())
    (inbox / "link.xlsx").symlink_to(outside)
    work = tmp_path / "work"
    work.mkdir()
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    rc = main(["collect", str(inbox), "--out", str(work / "master.xlsx")])
    assert rc == 1  # 090's errors
    new = set(tmp_path.rglob("*")) - set(before)
    assert [p for p in new if work not in p.parents] == []
    assert {p.relative_to(work).parts[0] for p in new} == {"master.xlsx", "master.sheettool", "master_csv"}
    changed = [p for p, m in before.items() if p.exists() and p.is_file() and p.stat().st_mtime_ns != m]
    assert changed == []
    assert not (tmp_path / "outside.xlsx").exists() and not (tmp_path.parent / "outside.xlsx").exists()
    for p in (workspace_for(work / "master.xlsx") / "archive").rglob("*"):
        if p.is_file():
            assert re.fullmatch(r"[0-9a-f]{64}\.xlsx", p.name)
            assert p.parent.name == p.name[:2]
    rows = table(openpyxl.load_workbook(work / "master.xlsx")["履歴"])
    files = sorted(r["提出ファイル"] for r in rows)
    assert files == sorted(["..xlsx", ".../...xlsx", "..\\..\\..\\outside.xlsx", ".../%2e%2e%2foutside.xlsx",
                            "-o outside.xlsx", ".../改行\nと\tタブ.xlsx", "\\xff\\xfe.xlsx"])
    assert "secret" not in " ".join(files) and "link" not in " ".join(files)  # the symlink is not followed
