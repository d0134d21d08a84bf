"""sheettool.frames: the master book's tables as pandas DataFrames, for every template.

An inbox per template (its sample records and synthetic ones generated, one of them edited
into errors, a CSV renamed .xlsx, one project expected but never sent, one nobody expected)
is collected; the frames read from the master book and from the collect store must equal
the book's sheets cell for cell, with the dtypes README promises. The LibreOffice-filled
inbox of test_collect.py is compared the same way there.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import warnings
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from cycle import run_cli
from framecheck import assert_dtypes, assert_matches_book
from helpers import ROOT
from synth import synthetic_record

import sheettool
from sheettool import spec
from sheettool.collect.ledger import workspace_for
from sheettool.collect.master import write_master
from sheettool.collect.submission import ACCEPTED, NEEDS_FIX, CheckResult, Submission
from sheettool.dataframes import FramesError, FramesWarning
from sheettool.findings import Finding
from sheettool.generate import output_path
from sheettool.spec.master import achievement_rate

TEMPLATES = spec.available()


def sample_records(tid: str) -> list[dict]:
    path = next(ROOT.glob(f"data/{tid}_*records.json"))
    return json.loads(path.read_text(encoding="utf-8"))


def write(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def an_inbox(tid: str, root: Path) -> tuple[Path, Path, list[dict]]:
    """Inbox, expected records and the records sent, for template ``tid``."""
    tpl = spec.load(tid)
    samples = sample_records(tid)
    fy = samples[0]["fiscal_year"]
    records = [*samples, *(synthetic_record(tpl, fy, seed) for seed in (11, 12, 13))]
    records[-1]["department"] = records[-1]["department"] and "別の部"  # a second 部 where the template has 部
    inbox = root / "inbox"
    assert run_cli("generate", write(root / "sent.json", records), "--out", inbox)[0] == 0
    # One comes back with its budget typed as text (要修正); one was never expected.
    broken = output_path(inbox, records[1])
    wb = openpyxl.load_workbook(broken)
    (sheet, ref), = wb.defined_names[next(n for n in wb.defined_names if n.endswith("_budget")
                                          or n.endswith("_project_cost"))].destinations
    wb[sheet][ref.replace("$", "")] = "未定"
    wb.save(broken)
    (inbox / "提出一覧.xlsx").write_text("番号,事業名\n1,a\n", encoding="utf-8")  # a CSV renamed .xlsx
    missing = copy.deepcopy(records[0])
    missing.update(project_no="Z999", project_name="提出されなかった事業")
    expected = write(root / "expected.json", [missing, *records[:-1]])
    return inbox, expected, records


@pytest.fixture(scope="module", params=TEMPLATES)
def collected(request, tmp_path_factory) -> tuple[str, Path, Path]:
    root = tmp_path_factory.mktemp(f"frames_{request.param}")
    inbox, expected, _ = an_inbox(request.param, root)
    master = root / "out" / "master.xlsx"
    master.parent.mkdir()
    rc, out, err = run_cli("collect", inbox, "--out", master, "--expected", expected)
    assert rc == 1 and "要修正 1件" in out and "読取不可 1件" in out and "未提出 1件" in out and "対象外 1件" in out, out
    return request.param, master, expected


def test_frames_of_the_master_book_are_its_sheets(collected):
    tid, master, _ = collected
    fr = sheettool.frames(master)
    assert (fr.template, fr.fiscal_year) == (tid, sample_records(tid)[0]["fiscal_year"])
    assert set(fr) == {"一覧", "コスト推移", "指標", "提出状況"} and fr.一覧 is fr["一覧"]
    assert assert_matches_book(fr, master) > 500
    assert_dtypes(fr)
    statuses = fr.一覧["提出状況"].value_counts()
    assert (statuses["要修正"], statuses["未提出"], statuses["対象外"]) == (1, 1, 1)
    assert fr.提出状況["提出状況"].value_counts()["読取不可"] == 1
    assert fr.problems == ()  # the text typed as a budget is not in the record: nothing coerced


def test_frames_of_the_store_equal_those_of_the_book(collected):
    tid, master, expected = collected
    from_book = sheettool.frames(master)
    from_store = sheettool.frames(workspace_for(master), expected=expected)
    assert (from_store.template, from_store.fiscal_year) == (from_book.template, from_book.fiscal_year)
    for name in from_book:
        pd.testing.assert_frame_equal(from_store[name], from_book[name], obj=name)
    # Without the expected list the store cannot know 未提出 or 対象外, as collect without --expected.
    alone = sheettool.frames(workspace_for(master))
    assert "未提出" not in set(alone.一覧["提出状況"].dropna())
    assert len(alone.一覧) == len(from_book.一覧) - 1


def test_analysts_can_aggregate_without_conversions(collected):
    """What the README's example does: sums per 部 and year, means of scores, shares."""
    tid, master, _ = collected
    fr = sheettool.frames(master)
    ms = spec.load(tid).master_spec
    money = next(i for i in ms.cost_items if i.kind == "money")
    column = f"{money.item}（{money.unit}）"
    # (深谷市 has no 部: dropna=False keeps its rows)
    by_dept = fr.コスト推移.groupby(["部", "課", "年度"], observed=True, dropna=False)[column].sum()
    assert str(by_dept.dtype) == "Int64"
    expected_sum = sum(int(v) for v in fr.コスト推移[column].dropna())
    assert int(by_dept.sum()) == expected_sum
    rate = ms.rate
    ind = fr.指標.dropna(subset=[rate["header"]])
    assert len(ind) > 0
    values = ind.to_dict("records")
    headers = {c.key: c.header for c in (*ms.indicator_item_columns, *ms.indicator_value_columns)}
    for v in values:  # 達成率 is the ratio achievement_rate gives for the frame's own columns
        assert v[rate["header"]] == pytest.approx(achievement_rate(
            v[headers[rate["actual"]]], v[headers[rate["target"]]], v[headers[rate.get("unit", "unit")]]))


def test_values_that_do_not_fit_their_column_are_told(tmp_path):
    """A 要修正 record may hold text where an amount belongs: <NA> in the frame, and said so."""
    record = sample_records("tsukuba")[0]
    fy = record["fiscal_year"]
    entry = next(c for c in record["costs"] if c["year"] == fy)
    entry["budget"] = "未定"
    record["direction"] = "様子見"  # not one of the choices
    sub = Submission(sha256="ab" * 32, file="a.xlsx", received_at="2023-05-10T09:00:00+09:00",
                     modified_at="2023-05-09T18:00:00+09:00", current=True,
                     result=CheckResult(file="a.xlsx", record=record, meta={}, readable=True, findings=[
                         Finding("V301", "error", "予算額が数値ではありません。")]))
    write_master(tmp_path / "m.xlsx", [sub], None, [sub], fy)
    with pytest.warns(FramesWarning, match="列の型に合わない値を <NA> にしました"):
        fr = sheettool.frames(tmp_path / "m.xlsx")
    assert fr.一覧["提出状況"].tolist() == [NEEDS_FIX]
    assert fr.一覧["予算額（千円）"].isna().all()
    assert any(p == "一覧 1行目「予算額（千円）」: 「未定」は整数ではありません" for p in fr.problems), fr.problems
    budget = fr.コスト推移.set_index("年度").loc[fy, "予算額（千円）"]
    assert budget is pd.NA
    assert "様子見" in fr.一覧["方向性"].cat.categories  # kept, after the template's own choices
    assert fr.一覧["方向性"].tolist() == ["様子見"]
    assert ACCEPTED in fr.一覧["提出状況"].cat.categories


def test_unusable_sources_are_told_in_japanese(tmp_path):
    with pytest.raises(FramesError, match="見つかりません"):
        sheettool.frames(tmp_path / "none.xlsx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FramesError, match="受付台帳のフォルダではありません"):
        sheettool.frames(tmp_path / "empty")
    other = tmp_path / "other.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "一覧"
    wb.save(other)
    with pytest.raises(FramesError, match="マスターブックではありません（コスト推移・指標・提出状況 シートがありません）"):
        sheettool.frames(other)
    (tmp_path / "text.xlsx").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(FramesError, match="マスターブックとして読み取れません"):
        sheettool.frames(tmp_path / "text.xlsx")


def test_importing_sheettool_does_not_import_pandas():
    code = ("import sys, sheettool, sheettool.cli, sheettool.collect, sheettool.generate;"
            "assert 'pandas' not in sys.modules, 'pandas imported';"
            "f = sheettool.frames; assert callable(f) and 'pandas' in sys.modules;"
            "import sheettool.dataframes; assert sheettool.frames is f")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_warning_for_a_clean_book(collected):
    _, master, _ = collected
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sheettool.frames(master)
