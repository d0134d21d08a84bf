"""Printouts, measured: the master book and a つくば template exported to PDF by LibreOffice.

Measured on the PDF (tests/pdfmeasure.py): every text run's size on paper (the print scale
applied), the paper of each page, which font draws digits, words drawn into their
neighbour's cell (text cut off there), and, on pages rendered to PNG (kept in the test's
folder to look at), where the tables' right borders are.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from cycle import run_cli
from helpers import seed_record, seed_records
from pdfmeasure import Page, font_chars, overlapping, pages, render

from sheettool import spec
from sheettool.generate import output_path

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
                                reason="pdftotext / pdftoppm (poppler-utils) not installed")

MIN_PT = 8.0
LONG_NAME = "障害者の日常生活及び社会生活を総合的に支援するための法律に基づく地域生活支援事業（移動支援・日中一時支援）"
SHEETS = ["一覧", "評価担当課入力", "コスト推移", "指標", "方向性集計", "部別コスト", "提出状況", "指摘一覧", "履歴"]


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def spelled_out(text: str, pages_: list[Page]) -> bool:
    """``text`` is on one of the pages whole: as one word, or as the lines of a wrapped cell
    (words one under the other at the same left edge, the next line below the last)."""
    text = squeeze(text)
    for page in pages_:
        for first in (w for w in page.words if text.startswith(w.text)):
            done, last = first.text, first
            while done != text:
                below = [w for w in page.words if abs(w.x0 - first.x0) < 1 and w.y0 > last.y0
                         and text[len(done):].startswith(w.text)]
                if not below:
                    break
                last = min(below, key=lambda w: w.y0)
                done += last.text
            if done == text:
                return True
    return False


def by_sheet(book: list[Page]) -> dict[str, list[Page]]:
    """The pages of each sheet (the header names the sheet at the top left)."""
    out: dict[str, list[Page]] = defaultdict(list)
    for page in book:
        out[page.first_word()].append(page)
    return out


def digits_only_in_noto(pdf: Path) -> dict[str, set[str]]:
    """Fonts other than Noto Sans CJK that draw digits or Latin letters (none expected)."""
    return {font: {c for c in chars if c.isascii() and c.isalnum()} for font, chars in font_chars(pdf).items()
            if "NotoSansCJK" not in font and any(c.isascii() and c.isalnum() for c in chars)}


# --------------------------------------------------------------------------- the master book


@pytest.fixture(scope="module")
def master_pdf(calc, tmp_path_factory) -> tuple[Path, list[Page]]:
    """A master book of the six seed projects, one with a long name, one not expected, one missing,
    one unreadable file; exported to PDF by LibreOffice."""
    root = tmp_path_factory.mktemp("printing")
    records = seed_records()
    long = copy.deepcopy(seed_record("098"))
    long.update(project_no="120", project_name=LONG_NAME, department="保健福祉部", division="障害福祉課")
    other = copy.deepcopy(seed_record("087"))
    other.update(project_no="500", project_name="臨時福祉給付金事業", department="福祉部", division="社会福祉課")
    sent = root / "sent.json"
    sent.write_text(json.dumps([*records, long, other], ensure_ascii=False), encoding="utf-8")
    inbox = root / "inbox"
    assert run_cli("generate", sent, "--out", inbox)[0] == 0
    (inbox / "総務部").mkdir()
    (inbox / "総務部" / "提出一覧.xlsx").write_text("番号,事業名\n", encoding="utf-8")
    missing = copy.deepcopy(seed_record("087"))
    missing.update(project_no="099", project_name="地域情報化推進事業")
    expected = root / "expected.json"
    expected.write_text(json.dumps([*records, long, missing], ensure_ascii=False), encoding="utf-8")
    master = root / "master.xlsx"
    rc, out, err = run_cli("collect", inbox, "--out", master, "--expected", expected)
    assert rc == 1, out + err
    with calc.open(master) as doc:
        pdf = doc.export_pdf(root / "master.pdf")
    book = pages(pdf)
    for n in range(1, len(book) + 1):  # PNGs to look at, next to the PDF
        render(pdf, n, root, dpi=60)
    return pdf, book


def test_every_page_of_the_master_book_prints_text_at_8pt_or_more(master_pdf):
    pdf, book = master_pdf
    sizes = {(p.number, p.first_word()): p.smallest for p in book}
    assert all(size >= MIN_PT for size in sizes.values()), sizes
    assert all(p.landscape and p.paper in ("A4", "A3") for p in book), [(p.number, p.paper) for p in book]


def test_every_sheet_is_printed_and_wide_ones_repeat_their_titles(master_pdf):
    _, book = master_pdf
    sheets = by_sheet(book)
    assert list(sheets) == SHEETS
    listing = sheets["一覧"]
    assert 2 <= len(listing) <= 3 and all(p.paper == "A3" for p in listing)  # across A3 pages
    for page in listing:  # 番号 and 事業名 on every page, with the header row
        assert {"番号", "事業名"} <= {w.text for w in page.words}, page.number
        for no in ("087", "088", "089", "090", "091", "098", "099", "120", "500"):
            assert no in {w.text for w in page.words}, (page.number, no)
    assert len(sheets["部別コスト"]) == 1
    assert len(sheets["方向性集計"]) == 1
    # the whole of 一覧's columns is on its pages: the last ones too
    text = squeeze(" ".join(p.text for p in listing))
    assert "受付日時" in text and "SHA-256" in text and "提出ファイル" in text


def test_no_text_is_cut_off_by_the_next_cell(master_pdf):
    """A value wider than its column used to run under the next one (提出ファイル); now it wraps."""
    _, book = master_pdf
    assert {p.number: overlapping(p) for p in book if overlapping(p)} == {}
    sheets = by_sheet(book)
    for name in ("一覧", "提出状況", "履歴"):
        assert spelled_out("政策イノベーション部/情報政策課/089_庁内情報化事業(イントラとパソコンの整備).xlsx",
                           sheets[name]), name
    assert spelled_out(LONG_NAME, sheets["一覧"])


def test_status_summary_sits_over_the_counts_it_totals(master_pdf):
    """提出状況: the totals' headers are the per-部 counts' headers, column for column."""
    _, book = master_pdf
    page = next(p for p in by_sheet(book)["提出状況"] if any(w.text == "部（集計）" for w in p.words))
    heads = [w for w in page.words if w.text in ("未提出", "要修正", "読取不可", "対象外", "受理", "合計")]
    rows = defaultdict(list)
    for w in heads:
        rows[round(w.y0)].append(w)
    summary, counts = (sorted(ws, key=lambda w: w.x0) for _, ws in sorted(rows.items())[:2])
    assert [w.text for w in summary] == [w.text for w in counts]
    assert all(abs(a.x0 - b.x0) < 1 and abs(a.x1 - b.x1) < 1 for a, b in zip(summary, counts, strict=True))


def test_digits_are_drawn_in_the_japanese_font(master_pdf):
    pdf, _ = master_pdf
    assert digits_only_in_noto(pdf) == {}


# --------------------------------------------------------------------------- the つくば template


@pytest.fixture(scope="module")
def template_pdf(calc, tmp_path_factory) -> tuple[Path, list[Page], Path]:
    root = tmp_path_factory.mktemp("printing_template")
    src = root / "r.json"
    src.write_text(json.dumps([seed_record("088")], ensure_ascii=False), encoding="utf-8")
    assert run_cli("generate", src, "--out", root / "t")[0] == 0
    with calc.open(output_path(root / "t", seed_record("088"))) as doc:
        pdf = doc.export_pdf(root / "sheet.pdf")
    return pdf, pages(pdf), root


def test_template_prints_on_three_a4_portrait_pages_in_one_font(template_pdf):
    pdf, book, _ = template_pdf
    assert [(p.paper, p.landscape) for p in book] == [("A4", False)] * 3
    assert digits_only_in_noto(pdf) == {}
    for page in book:
        scale = max(size for _, size in page.sizes) / 14  # the 14 pt title: the page is fit to its width
        assert scale >= 0.9, page.sizes  # so 10 pt cells print at 9 pt or more
        assert page.smallest >= 7.0, page.sizes  # the 8 pt labels and notes
        assert overlapping(page) == [], page.number


def test_the_subsidies_label_is_on_one_line(template_pdf):
    """「国庫、県支出金、地方債」 used to break as 「地方／債」 and lose its first line."""
    _, book, _ = template_pdf
    page = book[0]
    parts = [w for w in page.words if w.text in "国庫、県支出金、地方債" and w.text]
    text = "".join(w.text for w in sorted(parts, key=lambda w: w.x0))
    assert "国庫、県支出金、地方債" in text, parts
    assert len({round(w.y0) for w in parts if w.text in "国庫、県支出金、地方債"}) == 1


def test_the_cost_table_reaches_column_j_like_the_rest(template_pdf):
    """On the PNG: the right border of the cost rows is where the basic information's is."""
    pdf, book, root = template_pdf
    gray = render(pdf, 1, root)
    page = book[0]

    def right_border(label: str) -> int:
        word = next(w for w in page.words if w.text == label)
        y = int((word.y0 + word.y1) / 2 * gray.scale)
        return max(x for x in range(gray.width) if gray.dark(x, y, below=180))

    basic = right_border("事務事業名")
    for label in ("予算額", "一般財源", "人件費計", "正職員従事割合"):
        assert abs(right_border(label) - basic) <= 2, label
    tpl = spec.load()
    assert tpl.place(2022).fields["costs.2024.budget"].cell.startswith("J")
