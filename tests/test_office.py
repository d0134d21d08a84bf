"""What the evaluation office enters after collect (二次評価, its comments): typed into the master
book in LibreOffice, kept in the ledger, never lost when the book is rewritten, in the master book
and CSV, and carried into next year's sheet."""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

import openpyxl
import pytest
from cycle import run_cli
from helpers import ROOT

from sheettool import spec
from sheettool.check import check_file
from sheettool.collect.office import SHEET
from sheettool.generate import output_path

KORIYAMA = spec.load("koriyama")


def sample() -> dict:
    record = json.loads((ROOT / "data" / "koriyama_R7_records.json").read_text(encoding="utf-8"))[0]
    record = copy.deepcopy(record)
    record["secondary_evaluation"] = None  # the office has not evaluated yet
    record["stage"] = None
    for entry in record["yearly"]:
        if entry["year"] == record["fiscal_year"]:
            entry["evaluation_result"] = None
    return record


def cells_of(master: Path, no: str) -> dict[str, str]:
    """The input sheet's cell address of each office field in project ``no``'s row."""
    wb = openpyxl.load_workbook(master, read_only=True)
    rows = list(wb[SHEET].iter_rows(values_only=True))
    wb.close()
    marks = rows[0]
    row = next(i for i, r in enumerate(rows, start=1) if r and str(r[0]) == no)
    return {m: f"{SHEET}!{openpyxl.utils.get_column_letter(c)}{row}" for c, m in enumerate(marks, start=1)
            if m in KORIYAMA.office_paths}


@pytest.fixture()
def collected(tmp_path) -> tuple[Path, Path, dict]:
    record = sample()
    src = tmp_path / "records.json"
    src.write_text(json.dumps([record], ensure_ascii=False), encoding="utf-8")
    assert run_cli("generate", src, "--out", tmp_path / "t")[0] == 0
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(output_path(tmp_path / "t", record), inbox / "74.xlsx")
    master = tmp_path / "m.xlsx"
    rc, out, err = run_cli("collect", inbox, "--out", master)
    assert rc in (0, 1), err
    return inbox, master, record


def test_the_office_types_its_evaluation_into_the_master_book_and_it_is_kept(calc, collected, tmp_path):
    inbox, master, record = collected
    cells = cells_of(master, "74")
    assert set(cells) == set(KORIYAMA.office_paths)
    with calc.open(master) as doc:
        doc.type({cells["secondary_evaluation.result"]: "継続", cells["secondary_evaluation.method.fairness"]: "3",
                  cells["secondary_evaluation.continuity.needs"]: "大",
                  cells["secondary_evaluation.comment"]: "　行政手続のオンライン化を全庁で進めること。",
                  cells["stage"]: "10003"})
        doc.save(master)
    rc, out, err = run_cli("collect", inbox, "--out", master, "--json", tmp_path / "m.jsonl")
    assert "評価担当課入力の変更 5件を台帳に記録しました" in out, out + err
    line = json.loads((tmp_path / "m.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert line["secondary_evaluation"]["result"] == "継続"
    assert line["secondary_evaluation"]["method"]["fairness"] == 3
    assert line["secondary_evaluation"]["comment"] == "　行政手続のオンライン化を全庁で進めること。"
    assert line["stage"] == "10003"
    evaluated = next(e for e in line["yearly"] if e["year"] == record["fiscal_year"])
    assert evaluated["evaluation_result"] == "継続"  # the sheet's formula, recomputed from the office's value
    wb = openpyxl.load_workbook(master, read_only=True)
    header = next(wb["一覧"].iter_rows(max_row=1, values_only=True))
    row = next(wb["一覧"].iter_rows(min_row=2, max_row=2, values_only=True))
    assert row[header.index("二次評価結果")] == "継続"
    wb.close()
    with open(master.with_name("m_csv") / "一覧_2024.csv", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["二次評価結果"] == "継続"
    # the book rewritten (or deleted): nothing the office entered is lost, and the sheet shows it again
    master.unlink()
    rc, out, err = run_cli("collect", inbox, "--out", master)
    assert "評価担当課入力の変更" not in out
    again = cells_of(master, "74")
    wb = openpyxl.load_workbook(master, read_only=True)
    ws = wb[SHEET]
    shown = {path: ws[ref.split("!")[1]].value for path, ref in again.items()}
    wb.close()
    assert shown["secondary_evaluation.result"] == "継続" and shown["stage"] == "10003"
    # and next year's sheet shows it as 前年度の二次評価（参考）, locked
    rolled = tmp_path / "next.json"
    rc, out, err = run_cli("rollforward", master, "--records-only", rolled, "--out", tmp_path / "next")
    assert rc == 0, err
    nxt = json.loads(rolled.read_text(encoding="utf-8"))[0]
    assert nxt["previous_secondary"] == {"result": "継続", "comment": "　行政手続のオンライン化を全庁で進めること。"}
    assert nxt["secondary_evaluation"]["result"] is None
    result = check_file(output_path(tmp_path / "next", nxt))
    assert result.record["previous_secondary"]["result"] == "継続"
    assert "f_previous_secondary_result" in result.meta["locked_values"]


def test_an_office_entry_that_cannot_be_read_is_said_and_not_kept(calc, collected, tmp_path):
    inbox, master, _ = collected
    cells = cells_of(master, "74")
    with calc.open(master) as doc:
        doc.type({cells["secondary_evaluation.method.fairness"]: "9", cells["secondary_evaluation.result"]: "継続"},
                 force=True)
        doc.save(master)
    rc, out, err = run_cli("collect", inbox, "--out", master, "--json", tmp_path / "m.jsonl")
    assert "C804" in err and "評価の点数（1～4）ではありません" in err
    line = json.loads((tmp_path / "m.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert line["secondary_evaluation"]["method"]["fairness"] is None
    assert line["secondary_evaluation"]["result"] == "継続"


def test_a_department_cannot_enter_the_office_fields(collected):
    """In the department's workbook the 二次評価 area is locked (and its values tamper-checked)."""
    _, _, record = collected
    placement = KORIYAMA.place(record["fiscal_year"])
    for path in KORIYAMA.office_paths:
        assert placement.fields[path].locked_by_role, path
