"""sheettool.frames against the master book it was read from (or that its store wrote): cell for cell.

Shared by test_frames.py and test_collect.py. The book is read with openpyxl on its own
(cached values), independently of sheettool.dataframes: each table is found by its header
row, and every cell is compared with the frame's value in the same row and column. 一覧
has 年度/和暦 columns in front and headers without the year label; コスト推移 is one row per
project × year in the frame (a column per item) and one row per item in the book.
"""

from __future__ import annotations

import math
import numbers
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd

from sheettool import spec
from sheettool.wareki import fiscal_label


def sheet_table(ws, first_header: str, width: int | None = None) -> tuple[list[str], list[tuple]]:
    """The header and rows of the table whose header row starts with ``first_header``."""
    rows = list(ws.iter_rows(values_only=True))
    top = next(i for i, row in enumerate(rows[:12]) if row and row[0] == first_header)
    header = list(rows[top])
    width = width or next((i for i, h in enumerate(header) if h is None), len(header))
    body = []
    for row in rows[top + 1:]:
        if all(v is None for v in row[:width]):
            break
        body.append(tuple(row[:width]))
    return [str(h) for h in header[:width]], body


def same(book: Any, frame: Any) -> bool:
    """One cell of the book and one value of a frame: blank is <NA>, numbers equal, times to the ms."""
    if frame is pd.NA or frame is None or (isinstance(frame, float) and math.isnan(frame)) or frame is pd.NaT:
        return book is None or book == ""
    if isinstance(frame, pd.Timestamp):
        return isinstance(book, datetime) and abs(frame.to_pydatetime() - book) < timedelta(milliseconds=1)
    if isinstance(book, bool) or isinstance(frame, bool):
        return book == frame
    if isinstance(book, int | float) and not isinstance(book, bool):
        return isinstance(frame, numbers.Real) and float(book) == float(frame)  # numpy's too
    return isinstance(book, str) and str(frame) == book


def assert_matches_book(fr, master: Path) -> int:
    """Every cell of 一覧, コスト推移, 指標 and 提出状況 equals the frame's; returns the cells compared."""
    tpl = spec.load(fr.template)
    wb = openpyxl.load_workbook(master, data_only=True)
    compared = 0
    try:
        for name, first in (("一覧", "番号"), ("指標", "番号"), ("提出状況", "部")):
            frame = fr[name]
            header, rows = sheet_table(wb[name], first)
            columns = list(frame.columns)
            if name == "一覧":
                assert columns[:2] == ["年度", "和暦"]
                assert frame["年度"].dropna().unique().tolist() == ([fr.fiscal_year] if len(frame) else [])
                assert frame["和暦"].dropna().unique().tolist() == ([fiscal_label(fr.fiscal_year)] if len(frame) else [])
                columns = columns[2:]
                year = f"{fiscal_label(fr.fiscal_year)}（{fr.fiscal_year}）"
                assert [h.replace(year, "") for h in header] == columns, (header, columns)
            else:
                assert header == columns, (name, header, columns)
            assert len(rows) == len(frame), name
            for i, row in enumerate(rows):
                for column, value in zip(columns, row, strict=True):
                    got = frame[column].iloc[i]
                    assert same(value, got), (name, i + 2, column, value, got)
                    compared += 1
        frame = fr["コスト推移"]
        header, rows = sheet_table(wb["コスト推移"], "番号")
        at = {h: i for i, h in enumerate(header)}
        units = {i.item: i.unit for i in tpl.master_spec.cost_items}
        index = {(no, year): i for i, (no, year) in enumerate(zip(frame["番号"], frame["年度"], strict=True))}
        assert len(index) == len(frame)  # one row per project × year
        filled = 0
        for row in rows:
            i = index[(row[at["番号"]], row[at["年度"]])]
            column = f"{row[at['項目']]}（{units[row[at['項目']]]}）" if units[row[at["項目"]]] else row[at["項目"]]
            assert row[at["単位"]] == units[row[at["項目"]]]
            for h in ("事業名", "部", "課", "和暦", "提出状況"):
                assert same(row[at[h]], frame[h].iloc[i]), (h, row)
            got = frame[column].iloc[i]
            assert same(row[at["値"]], got), ("コスト推移", row, column, got)
            filled += row[at["値"]] is not None
            compared += 1
        items = [c for c in frame.columns if c not in ("番号", "事業名", "部", "課", "年度", "和暦", "提出状況")]
        assert len(rows) == len(frame) * len(items)  # nothing in the frame the book does not have
        assert int(frame[items].notna().sum().sum()) == filled
    finally:
        wb.close()
    return compared


def assert_dtypes(fr) -> None:
    """The dtypes the README promises, column by column, from the template's master.json."""
    tpl = spec.load(fr.template)
    ms = tpl.master_spec
    integer = {"money", "count", "int", "score"}
    floats = {"fte", "hours", "number", "ratio"}

    def kind_dtype(kind: str) -> str | None:
        return "Int64" if kind in integer else "Float64" if kind in floats else None

    lst = fr["一覧"]
    for col in ("年度", "エラー数", "注意数"):
        assert str(lst[col].dtype) == "Int64", col
    for col in ("部", "課", "提出状況", "和暦"):
        assert isinstance(lst[col].dtype, pd.CategoricalDtype), col
    assert str(lst["受付日時"].dtype) == "datetime64[ns]"
    for col in ("番号", "事業名", "提出ファイル"):
        assert str(lst[col].dtype) == "string", col
    for c in ms.list:
        header = c.header.replace("{year}", "")
        want = kind_dtype(c.kind)
        leaf = tpl.field(c.path) if "{" not in c.path else None
        if want:
            assert str(lst[header].dtype) == want, header
        elif leaf is not None and spec.master.choices(tpl, leaf):
            assert isinstance(lst[header].dtype, pd.CategoricalDtype), header
            assert list(lst[header].cat.categories[:len(spec.master.choices(tpl, leaf))]) == \
                list(spec.master.choices(tpl, leaf))
        else:
            assert str(lst[header].dtype) == "string", header
    if ms.direction_path:
        column = next(c.header for c in ms.list if c.path == ms.direction_path)
        assert list(lst[column].cat.categories[:len(ms.directions)]) == list(ms.directions)
    costs = fr["コスト推移"]
    assert str(costs["年度"].dtype) == "Int64" and isinstance(costs["和暦"].dtype, pd.CategoricalDtype)
    assert costs["和暦"].cat.ordered
    for item in ms.cost_items:
        header = f"{item.item}（{item.unit}）" if item.unit else item.item
        assert str(costs[header].dtype) == kind_dtype(item.kind), header
    ind = fr["指標"]
    assert str(ind["指標番号"].dtype) == "Int64" and str(ind["年度"].dtype) == "Int64"
    for c in ms.indicator_value_columns:
        assert str(ind[c.header].dtype) == "Float64", c.header
    if ms.rate:
        assert str(ind[ms.rate["header"]].dtype) == "Float64"
    status = fr["提出状況"]
    assert isinstance(status["提出状況"].dtype, pd.CategoricalDtype)
    assert str(status["受付日時"].dtype) == "datetime64[ns]"
    assert str(status["エラー数"].dtype) == "Int64"
