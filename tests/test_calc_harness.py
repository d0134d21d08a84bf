"""The LibreOffice Calc harness itself (tests/calc): open, recalc, type, save, read back."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from calc.client import (
    EXCEL_2007_FILTER,
    Calc,
    CalcCrashed,
    CalcError,
    CalcRefused,
    CalcTimeout,
)

SHEET = "入力"
SERIAL_2024_04_01 = 45383  # spreadsheet serial number of 2024-04-01


def make_book(path: Path) -> Path:
    """A small protected form: inputs B2:B3 and C2 unlocked, formulas locked."""
    wb = xlsxwriter.Workbook(str(path))
    form = wb.add_worksheet(SHEET)
    data = wb.add_worksheet("Data")
    wb.add_worksheet("Hidden").hide()
    data.very_hidden()
    unlocked = wb.add_format({"locked": False})

    form.write_string("A2", "金額1")
    form.write_number("B2", 10, unlocked)
    form.write_number("B3", 20, unlocked)
    form.write_blank("C2", None, unlocked)
    form.write_formula("B4", "=SUM(B2:B3)")
    form.write_formula("B5", "=1/0")
    form.write_formula("B6", "=Data!A1*2")
    form.write_formula("B7", "=B4*Data!A1")
    form.data_validation(
        "B2:B3",
        {
            "validate": "decimal",
            "criteria": ">=",
            "value": 0,
            "error_title": "入力エラー",
            "error_message": "0以上の数値を入力してください",
        },
    )
    form.data_validation("C2", {"validate": "list", "source": ["有", "無"]})
    form.protect()
    data.write_number("A1", 3)

    wb.define_name("Total", f"='{SHEET}'!$B$4")
    wb.define_name("InputA", f"='{SHEET}'!$B$2")
    wb.close()
    return path


@pytest.fixture
def book(tmp_path: Path) -> Path:
    return make_book(tmp_path / "book.xlsx")


@pytest.fixture
def doc(calc: Calc, book: Path):
    with calc.open(book) as opened:
        yield opened


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it holds no resources.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _thread_states(pid: int) -> list[str]:
    """The state letter (R, S, D, T, ...) of every thread of process ``pid``."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            # "tid (comm) state ...": comm may contain spaces, so split after ")".
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
    return states


def _hang(pid: int, limit: float = 30.0) -> None:
    """SIGSTOP ``pid`` and return once every one of its threads has stopped.

    kill() returns before the process is stopped: the kernel wakes one thread (the main
    one), and only when that thread runs does it stop the others. Until then LibreOffice's
    UNO bridge threads still answer requests, so a recalc sent at once could succeed.
    """
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + limit
    while not all(state in "tT" for state in _thread_states(pid)):
        if time.monotonic() > deadline:
            pytest.fail(f"LibreOffice {pid} not stopped {limit} s after SIGSTOP: {_thread_states(pid)}")
        time.sleep(0.002)


# --------------------------------------------------------------------- recalc / read


def test_formula_computes_only_after_recalc(doc) -> None:
    # XlsxWriter stores no cached results and LibreOffice does not recalc xlsx on load.
    assert doc.cell("Total")["value"] == 0
    doc.recalc()
    total = doc.cell("Total")
    assert total["value"] == 30
    assert total["type"] == "formula"
    assert total["formula"] == "=SUM(B2:B3)"
    assert total["address"] == f"{SHEET}!B4"
    assert doc.value(f"{SHEET}!B6") == 6  # reads through the veryHidden sheet


def test_read_by_address_and_range(doc) -> None:
    doc.recalc()
    cells = doc.read([f"{SHEET}!A2", f"{SHEET}!B2:B3", f"{SHEET}!D9"])
    assert cells[f"{SHEET}!A2"] == {
        "address": f"{SHEET}!A2",
        "type": "text",
        "value": None,
        "string": "金額1",
        "formula": None,
        "result": None,
        "error": None,
        "error_code": 0,
    }
    column = cells[f"{SHEET}!B2:B3"]
    assert column["address"] == f"{SHEET}!B2:B3"
    assert [row[0]["value"] for row in column["cells"]] == [10, 20]
    assert cells[f"{SHEET}!D9"]["type"] == "empty"


def test_division_by_zero_is_reported_as_error(doc) -> None:
    doc.recalc()
    cell = doc.cell(f"{SHEET}!B5")
    assert cell["result"] == "error"
    assert cell["error"] == "#DIV/0!"
    assert cell["value"] is None
    errors = doc.errors(SHEET)
    assert [e["address"] for e in errors] == [f"{SHEET}!B5"]
    formulas = doc.formula_cells(SHEET)
    assert [f["address"] for f in formulas] == [f"{SHEET}!B{row}" for row in range(4, 8)]


def test_unknown_function_is_an_error(doc) -> None:
    doc.type({f"{SHEET}!C2": "=NOSUCHFUNCTION(1)"})
    assert doc.cell(f"{SHEET}!C2")["error"] == "#NAME?"


# --------------------------------------------------------------------- typing


@pytest.mark.parametrize(
    ("typed", "kind", "value"),
    [
        ("1,234", "value", 1234),
        ("-1,234.5", "value", -1234.5),
        ("(5)", "value", -5),
        ("１２３", "value", 123),  # full-width digits
        ("2024/4/1", "value", SERIAL_2024_04_01),  # a date in the ja-JP locale
        ("△5", "text", None),  # the "△" of a display format is not a minus when typed
        ("'007", "text", None),
        ("=B3*2", "formula", 40),
    ],
)
def test_typing_uses_input_recognition(doc, typed: str, kind: str, value: float | None) -> None:
    written = doc.type({"InputA": typed})["InputA"]
    assert written["type"] == kind
    assert written["value"] == value


def test_typed_value_feeds_formulas(doc) -> None:
    doc.recalc()
    doc.type({f"{SHEET}!B2": "1,234"})
    assert doc.value("Total") == 1254  # automatic recalculation after input


def test_raw_string_and_value_modes(doc) -> None:
    assert doc.type({"InputA": "1,234"}, mode="string")["InputA"]["type"] == "text"
    assert doc.type({"InputA": 7.5})["InputA"]["value"] == 7.5
    assert doc.type({"InputA": "8"}, mode="value")["InputA"]["value"] == 8
    assert doc.type({"InputA": None})["InputA"]["type"] == "empty"


def test_locked_cell_of_protected_sheet_needs_force(doc) -> None:
    with pytest.raises(CalcRefused, match="locked"):
        doc.type({"Total": "999"})
    assert doc.cell("Total")["type"] == "formula"  # nothing was written

    # A refused request writes none of its cells, not even the unlocked ones.
    with pytest.raises(CalcRefused):
        doc.type({"InputA": "5", "Total": "999"})
    assert doc.value("InputA") == 10

    pasted = doc.type({"Total": "999"}, force=True)["Total"]
    assert (pasted["type"], pasted["value"]) == ("value", 999)
    assert doc.info()["sheets"][0]["protected"] is True  # protected again


def test_unprotect_and_protect(doc) -> None:
    doc.unprotect(SHEET)
    doc.type({"Total": "1"})  # no force needed on an unprotected sheet
    doc.protect(SHEET)
    with pytest.raises(CalcRefused):
        doc.type({"Total": "2"})


def test_bad_refs_are_refused(doc) -> None:
    with pytest.raises(CalcRefused, match="neither"):
        doc.read(["NoSuchName"])
    with pytest.raises(CalcRefused, match="no sheet"):
        doc.read(["Nope!A1"])
    with pytest.raises(CalcRefused, match="range"):
        doc.type({f"{SHEET}!B2:B3": "1"})


# --------------------------------------------------------------------- info


def test_info_reports_sheets_names_protection_and_validation(doc) -> None:
    info = doc.info(f"{SHEET}!B2:B4", f"{SHEET}!C2")
    states = {s["name"]: (s["state"], s["protected"]) for s in info["sheets"]}
    # Calc has no "veryHidden": the import turns it into plain hidden, so that is
    # all UNO can report for the Data sheet.
    assert states == {
        SHEET: ("visible", True),
        "Data": ("hidden", False),
        "Hidden": ("hidden", False),
    }
    assert info["names"] == {"InputA": f"{SHEET}!$B$2", "Total": f"{SHEET}!$B$4"}

    cells = info["cells"]
    assert [cells[f"{SHEET}!B{r}"]["locked"] for r in (2, 3, 4)] == [False, False, True]
    number_rule = cells[f"{SHEET}!B2"]["validation"]
    assert number_rule["type"] == "DECIMAL"
    assert number_rule["operator"] == "GREATER_EQUAL"
    assert number_rule["formula1"] == "0"
    assert number_rule["error_message"] == "0以上の数値を入力してください"
    assert number_rule["error_style"] == "STOP"
    assert cells[f"{SHEET}!C2"]["validation"]["type"] == "LIST"
    assert cells[f"{SHEET}!C2"]["validation"]["formula1"] == '"有";"無"'
    assert cells[f"{SHEET}!B4"]["validation"] is None


# --------------------------------------------------------------------- saving


@pytest.mark.parametrize("filter_name", [None, EXCEL_2007_FILTER])
def test_save_as_xlsx_keeps_protection_validation_and_names(
    doc, tmp_path: Path, filter_name: str | None
) -> None:
    doc.recalc()
    doc.type({"InputA": "1,234"})
    saved = doc.save(tmp_path / "saved.xlsx", filter=filter_name)

    wb = openpyxl.load_workbook(saved)
    form = wb[SHEET]
    assert form["B2"].value == 1234
    assert form["B4"].value == "=SUM(B2:B3)"
    assert form.protection.sheet is True
    assert form["B2"].protection.locked is False
    assert form["B4"].protection.locked is True
    rules = {str(dv.sqref): dv for dv in form.data_validations.dataValidation}
    assert rules["B2:B3"].type == "decimal"
    assert rules["B2:B3"].error == "0以上の数値を入力してください"
    assert rules["C2"].type == "list"
    assert "Total" in wb.defined_names
    assert wb.defined_names["Total"].attr_text.replace("'", "") == f"{SHEET}!$B$4"
    # A LibreOffice save turns veryHidden into hidden.
    assert wb["Data"].sheet_state == "hidden"
    assert wb["Hidden"].sheet_state == "hidden"


def test_saved_xlsx_has_cached_values(calc: Calc, doc, tmp_path: Path) -> None:
    doc.recalc()
    saved = doc.save(tmp_path / "values.xlsx")
    values = openpyxl.load_workbook(saved, data_only=True)[SHEET]
    assert values["B4"].value == 30
    assert values["B5"].value == "#DIV/0!"
    with calc.open(saved) as again:  # reopening the LibreOffice output works too
        assert again.value("Total") == 30


def test_save_other_formats_and_pdf(doc, tmp_path: Path) -> None:
    doc.recalc()
    for name in ("copy.ods", "copy.xlsm"):
        target = doc.save(tmp_path / name)
        assert target.read_bytes()[:2] == b"PK"
    pdf = doc.export_pdf(tmp_path / "copy.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(CalcRefused, match="format"):
        doc.save(tmp_path / "copy.txt")


# --------------------------------------------------------------------- structure


def test_sheet_structure_changes(doc, tmp_path: Path) -> None:
    doc.rename_sheet("Hidden", "隠し")
    doc.insert_sheet("追加", position=0)
    doc.move_sheet(SHEET, 3)
    names = [s["name"] for s in doc.info()["sheets"]]
    assert names == ["追加", "Data", "隠し", SHEET]
    doc.move_sheet(SHEET, 0)
    assert [s["name"] for s in doc.info()["sheets"]][0] == SHEET

    with pytest.raises(CalcRefused, match="protected"):
        doc.insert_rows(SHEET, 2)
    doc.insert_rows(SHEET, 2, count=3, force=True)  # B4 moves to B7; refs follow
    doc.recalc()
    total = doc.cell("Total")
    assert (total["address"], total["formula"], total["value"]) == (
        f"{SHEET}!B7",
        "=SUM(B5:B6)",
        30,
    )
    wb = openpyxl.load_workbook(doc.save(tmp_path / "moved.xlsx"))
    assert wb.defined_names["Total"].attr_text.replace("'", "") == f"{SHEET}!$B$7"
    assert wb.sheetnames == [SHEET, "追加", "Data", "隠し"]


def test_insert_rows_follows_the_protection_options(calc: Calc, tmp_path: Path) -> None:
    path = tmp_path / "rows_allowed.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    sheet = wb.add_worksheet("S")
    sheet.write_formula("A1", "=1+1")
    sheet.protect("", {"insert_rows": True})
    wb.close()
    with calc.open(path) as opened:
        opened.insert_rows("S", 1)  # allowed by the sheet protection: no force needed
        assert opened.cell("S!A2")["formula"] == "=1+1"


# --------------------------------------------------------------------- robustness


def test_recovers_after_opening_a_missing_file(calc: Calc, book: Path, tmp_path: Path) -> None:
    pid = calc.ping()["pid"]
    with pytest.raises(CalcRefused, match="no such file"):
        calc.open(tmp_path / "missing.xlsx")
    not_a_book = tmp_path / "garbage.xlsx"
    not_a_book.write_bytes(b"this is not a workbook")
    with pytest.raises(CalcRefused):
        calc.open(not_a_book)
    with calc.open(book) as opened:
        opened.recalc()
        assert opened.value("Total") == 30
    assert calc.ping()["pid"] == pid  # same LibreOffice, no restart was needed


@pytest.mark.usefixtures("calc")  # the availability gate: skip locally, fail in CI
def test_hung_or_dead_libreoffice_is_replaced(book: Path) -> None:
    with Calc(recalc_on_load=True) as own:
        first = own.ping()["pid"]
        with own.open(book) as opened:
            # OOXMLRecalcMode=always in the profile: no recalc() call needed.
            assert opened.value("Total") == 30
            _hang(first)  # a hung LibreOffice
            with pytest.raises(CalcTimeout):
                opened.recalc(timeout=2)
            assert not _process_alive(first)
            with pytest.raises(CalcError, match="restarted"):
                opened.read(["Total"])  # the handle died with the old LibreOffice

        second = own.ping()["pid"]
        assert second != first
        os.kill(second, signal.SIGKILL)  # a crashed LibreOffice
        with pytest.raises(CalcCrashed):
            own.ping()
        third = own.ping()["pid"]
        assert third not in (first, second)
    assert not own.running
    assert not _process_alive(third)
