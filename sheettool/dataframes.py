"""``sheettool.frames``: the master book's tables as pandas DataFrames, for analysts.

``frames(source)`` takes a master book written by ``sheettool collect`` (it reads the
sheets 一覧, コスト推移, 指標 and 提出状況) or a collect store folder (``MASTER.sheettool/``:
the current submissions of its ledger, made into the same tables by the code that
writes the book). Which columns there are comes from the template's master.json
(``MasterSpec``), so every template works. The frames:

- 一覧: one row per project, shaped as its CSV: 年度 (Western fiscal year) and 和暦
  columns, headers without the year label.
- コスト推移: one row per project × year, one column per cost item with its unit in
  the header ("決算額（千円）", "正職員従事割合（人）"); the book's sheet has a row per item.
- 指標: one row per project × indicator × year, with 達成率 as a ratio (1.0 = 100%).
- 提出状況: every expected or received project, then the unreadable files.

dtypes: ``Int64`` for money, counts, scores and years; ``Float64`` for FTE, hours,
indicator values and rates; ``category`` for 部, 課, 提出状況, 和暦 (ordered by year) and
the template's choice fields (its values in the template's order, plus any other value
a 要修正 record holds); ``datetime64`` for 受付日時 (the wall-clock time as recorded, to
the millisecond, as the book keeps it); ``string`` for other text. A value that does not
fit its column (text in a 要修正 record's amount) becomes <NA>, and is told in
``Frames.problems`` and by a ``FramesWarning``: never silently.

This module imports pandas; ``sheettool`` itself imports it only when ``sheettool.frames``
is first used.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from . import wareki
from .collect import master as masterbook
from .collect.master import COSTS, INDICATORS, LIST, STATUS, STATUS_ORDER, Cell, Col
from .records import RecordsError
from .spec import Template, TemplateError, available, load
from .spec.master import MasterSpec, choices

NAMES = (LIST, COSTS, INDICATORS, STATUS)
_INTEGER_KINDS = {"money", "count", "int", "score"}
_FLOAT_KINDS = {"fte", "hours", "number", "ratio"}
_GROUPS = {"部", "課"}  # categories of the values seen, in order of appearance
_HEADER_SEARCH = 12  # rows looked at for a table's header (提出状況 has a summary above it)
_PROBLEMS_SHOWN = 10


class FramesError(ValueError):
    """The source cannot be read as a master book or a collect store; the message is Japanese."""


class FramesWarning(UserWarning):
    """Values that did not fit their column's dtype and were made <NA> (see ``Frames.problems``)."""


@dataclass(frozen=True, eq=False)
class Frames(Mapping[str, pd.DataFrame]):
    """The four DataFrames by name (``f["一覧"]`` or ``f.一覧``), with the book's year and template."""

    一覧: pd.DataFrame
    コスト推移: pd.DataFrame
    指標: pd.DataFrame
    提出状況: pd.DataFrame
    fiscal_year: int | None  # None: the book says 評価年度不明
    template: str  # the template id, as in template.json
    problems: tuple[str, ...] = field(default=())

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in NAMES:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)

    def __repr__(self) -> str:
        shapes = "、".join(f"{name} {len(self[name])}行" for name in NAMES)
        return f"<Frames {self.template} {self.fiscal_year}: {shapes}>"


def frames(source: str | Path, *, template: str | Path | None = None,
           expected: Sequence[dict[str, Any]] | str | Path | None = None) -> Frames:
    """一覧, コスト推移, 指標 and 提出状況 of a master book (.xlsx) or a collect store folder.

    ``template`` names the template when the source does not say (a book from an older
    sheettool) or overrides it. ``expected`` (records, or a records file or master book)
    is for a store: what ``collect --expected`` was given, so 未提出 and 対象外 show as in
    the book; a master book already holds them. Raises FramesError (Japanese message).
    """
    path = Path(source)
    if path.is_dir():
        return _from_store(path, template, _expected(expected))
    if expected is not None:
        raise FramesError("expected は受付台帳のフォルダを読むときだけ指定できます（マスターブックには提出予定が含まれています）。")
    if not path.is_file():
        raise FramesError(f"マスターブックまたは受付台帳のフォルダが見つかりません: {path}")
    return _from_book(path, template)


# --------------------------------------------------------------------------- a collect store


def _expected(expected: Sequence[dict[str, Any]] | str | Path | None) -> list[dict[str, Any]] | None:
    if expected is None:
        return None
    if isinstance(expected, str | Path):
        from . import sources

        try:
            items = sources.load_records(expected)
        except RecordsError as e:
            raise FramesError(str(e)) from None
        return [item.data for item in items if isinstance(item.data, dict)]
    return [r for r in expected if isinstance(r, dict)]


def _from_store(folder: Path, template: str | Path | None, expected: list[dict[str, Any]] | None) -> Frames:
    """As ``collect`` makes the book from its store: the same template, year and submissions."""
    from .collect import _expected_years, _most_common, _template_id, master_template
    from .collect.ledger import DB_NAME, Ledger, LedgerError

    if not (folder / DB_NAME).is_file():
        raise FramesError(f"{folder} は受付台帳のフォルダではありません（{DB_NAME} がありません）。"
                          "sheettool collect が作る「マスターブック名.sheettool」フォルダを指定してください。")
    expected_years = _expected_years(expected)
    years: Counter = Counter()

    def counted(current: Iterator[Any]) -> Iterator[Any]:  # the year of the book, as collect counts it
        for sub in current:
            if sub.result.record and not expected_years:
                years[sub.result.record["fiscal_year"]] += 1
            yield sub

    try:
        with Ledger.open(folder) as ledger, ledger.snapshot():
            history = ledger.history_info()
            tpl = _load(template) if template else master_template(None, expected, ledger.current_templates())
            mine = None if expected is None else [r for r in expected if _template_id(r) == tpl.id]
            fiscal_year, made = masterbook.tables(counted(ledger.iter_current(tpl.id)), mine, history,
                                     lambda: _most_common(expected_years or years), tpl=tpl)
    except (LedgerError, sqlite3.Error) as e:
        raise FramesError(f"受付台帳 {folder} を読み取れません: {e}") from None
    except TemplateError as e:
        raise FramesError(str(e)) from None
    return _frames(tpl, fiscal_year, made)


# --------------------------------------------------------------------------- a master book


def _from_book(path: Path, template: str | Path | None) -> Frames:
    from .xlsx import safety

    try:
        data = safety.open_package(path, masterbook._MASTER_LIMITS).open_bytes()
    except safety.UnreadableFile as e:
        raise FramesError(f"{path.name} をマスターブックとして読み取れません: {e.finding.message}") from None
    import openpyxl

    try:
        wb = openpyxl.load_workbook(data, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types on malformed parts
        raise FramesError(f"{path.name} をマスターブックとして読み取れません（{type(e).__name__}）。") from None
    try:
        missing = [name for name in NAMES if name not in wb.sheetnames]
        if missing:
            raise FramesError(f"{path.name} は sheettool collect のマスターブックではありません"
                              f"（{'・'.join(missing)} シートがありません）。")
        props = {p.name: p.value for p in wb.custom_doc_props}
        fiscal_year = _int(props.get("sheettool_fiscal_year"))
        tpl, list_header = _book_template(path, wb[LIST], template or props.get("sheettool_template"), fiscal_year)
        spec = tpl.master_spec
        made: dict[str, tuple[list[Col], list[list[Any]]]] = {}
        book_cols = masterbook.list_columns(spec, fiscal_year)
        rows = _sheet_rows(path, wb[LIST], book_cols, list_header)
        label = wareki.fiscal_label(fiscal_year) if fiscal_year is not None else None
        made[LIST] = (masterbook.list_columns(spec, fiscal_year, csv=True),
                      [[fiscal_year, label, *row] for row in rows])
        for name, cols in ((COSTS, masterbook.cost_columns(spec)), (INDICATORS, masterbook.indicator_columns(spec)),
                           (STATUS, masterbook.STATUS_COLS)):
            made[name] = (cols, _sheet_rows(path, wb[name], cols))
    finally:
        wb.close()
    return _frames(tpl, fiscal_year, made)


def _load(template: str | Path) -> Template:
    try:
        return load(template)
    except TemplateError as e:
        raise FramesError(str(e)) from None


def _book_template(path: Path, ws: Any, named: str | Path | None, fiscal_year: int | None) -> tuple[Template, int]:
    """The template whose 一覧 headers the book has (the one named, else every one installed), and
    the header's row."""
    candidates = [_load(named)] if named else [_load(t) for t in available()]
    head = _head(ws)
    for tpl in candidates:
        want = [c.header for c in masterbook.list_columns(tpl.master_spec, fiscal_year)]
        row = _header_row(head, want)
        if row is not None:
            return tpl, row
    which = f"様式「{candidates[0].name}」" if named else "どの様式"
    raise FramesError(f"{path.name} の {LIST} シートの見出しが{which}のマスターブックとも一致しません。"
                      "sheettool collect で作成したマスターブックを指定してください。")


def _head(ws: Any) -> list[tuple[Any, ...]]:
    ws.reset_dimensions()  # a book saved again may carry a wrong <dimension>
    return list(ws.iter_rows(min_row=1, max_row=_HEADER_SEARCH, values_only=True))


def _header_row(head: list[tuple[Any, ...]], want: list[str]) -> int | None:
    for r, row in enumerate(head, start=1):
        if [("" if v is None else str(v)) for v in row[:len(want)]] == want:
            return r
    return None


def _sheet_rows(path: Path, ws: Any, cols: list[Col], header: int | None = None) -> list[list[Any]]:
    """The table under its header (found by its headers), up to its first empty row."""
    want = [c.header for c in cols]
    if header is None:
        header = _header_row(_head(ws), want)
    if header is None:
        raise FramesError(f"{path.name} の {ws.title} シートに表の見出し（{'、'.join(want[:4])} …）が見つかりません。"
                          "sheettool collect で作成したマスターブックを指定してください。")
    out = []
    for row in ws.iter_rows(min_row=header + 1, max_col=len(cols), values_only=True):
        if all(v is None or v == "" for v in row):
            break
        out.append(list(row) + [None] * (len(cols) - len(row)))
    return out


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- typed frames


def _frames(tpl: Template, fiscal_year: int | None, made: dict[str, tuple[list[Col], list[list[Any]]]]) -> Frames:
    problems: list[str] = []
    built = {}
    for name in NAMES:
        cols, rows = made[name]
        if name == COSTS:
            cols, rows = _wide_costs(tpl.master_spec, cols, rows)
        built[name] = _frame(tpl, name, cols, rows, problems)
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:_PROBLEMS_SHOWN])
        more = f"\n  ほか{len(problems) - _PROBLEMS_SHOWN}件" if len(problems) > _PROBLEMS_SHOWN else ""
        warnings.warn(FramesWarning(f"列の型に合わない値を <NA> にしました（{len(problems)}件）:\n{shown}{more}"),
                      stacklevel=4)  # the caller of frames()
    return Frames(**built, fiscal_year=fiscal_year, template=tpl.id, problems=tuple(problems))


def _wide_costs(spec: MasterSpec, cols: list[Col], rows: list[list[Any]]) -> tuple[list[Col], list[list[Any]]]:
    """コスト推移 with one column per item: rows of (project, year), in the order they come."""
    at = {c.header: i for i, c in enumerate(cols)}
    key_cols = [cols[at[h]] for h in ("番号", "事業名", "部", "課", "年度", "和暦")]
    items = [(i.item, Col(f"{i.item}（{i.unit}）" if i.unit else i.item, i.kind)) for i in spec.cost_items]
    position = {item: n for n, (item, _) in enumerate(items)}
    wide: dict[tuple[Any, Any], list[Any]] = {}
    for row in rows:
        key = (_hashable(row[at["番号"]]), _hashable(row[at["年度"]]))
        out = wide.get(key)
        if out is None:
            out = wide[key] = [*(row[at[c.header]] for c in key_cols), *([None] * len(items)), row[at["提出状況"]]]
        n = position.get(row[at["項目"]])
        if n is not None:
            value = row[at["値"]]
            out[len(key_cols) + n] = value.value if isinstance(value, Cell) else value
    return [*key_cols, *(col for _, col in items), cols[at["提出状況"]]], list(wide.values())


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _frame(tpl: Template, name: str, cols: list[Col], rows: list[list[Any]], problems: list[str]) -> pd.DataFrame:
    data = {}
    for c, col in enumerate(cols):
        values = [row[c] for row in rows]
        data[col.header] = _series(tpl, name, col, values, problems)
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


def _series(tpl: Template, name: str, col: Col, values: list[Any], problems: list[str]) -> pd.Series:
    def bad(i: int, value: Any, what: str) -> None:
        problems.append(f"{name} {i + 1}行目「{col.header}」: 「{value}」は{what}ではありません")

    if col.kind in _INTEGER_KINDS:
        return pd.Series([_integer(v, lambda v, i=i: bad(i, v, "整数")) for i, v in enumerate(values)], dtype="Int64")
    if col.kind in _FLOAT_KINDS:
        return pd.Series([_number(v, lambda v, i=i: bad(i, v, "数値")) for i, v in enumerate(values)], dtype="Float64")
    if col.kind == "datetime":
        times = [_time(v, lambda v, i=i: bad(i, v, "日時")) for i, v in enumerate(values)]
        return pd.Series(pd.to_datetime(pd.Series(times, dtype="object")), dtype="datetime64[ns]").dt.round("ms")
    texts = [None if v is None or v == "" else (v if isinstance(v, str) else _text(v)) for v in values]
    order = _categories(tpl, col, texts)
    if order is None:
        return pd.Series(texts, dtype="string")
    return pd.Series(pd.Categorical(texts, categories=order, ordered=col.header == "和暦"))


def _categories(tpl: Template, col: Col, texts: list[str | None]) -> list[str] | None:
    """The categories of a text column, or None for plain text."""
    seen = list(dict.fromkeys(t for t in texts if t is not None))
    if col.header in _GROUPS or col.header == "部（集計）":
        return seen
    if col.header == "提出状況":
        return [*STATUS_ORDER, *(t for t in seen if t not in STATUS_ORDER)]
    if col.header == "和暦":
        return sorted(seen, key=lambda t: wareki.parse_fiscal_label(t) or 0)
    leaf = tpl.field(col.path) if col.path and "{" not in col.path else None
    known = choices(tpl, leaf) if leaf is not None else None
    if known is None:
        return None
    return [*known, *(t for t in seen if t not in known)]


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _integer(value: Any, bad: Any) -> Any:
    if value is None or value == "":
        return pd.NA
    if isinstance(value, bool):
        bad(value)
        return pd.NA
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal) and value == value and value == int(value):
        return int(value)
    bad(value)
    return pd.NA


def _number(value: Any, bad: Any) -> Any:
    if value is None or value == "":
        return pd.NA
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return float(value)
    bad(value)
    return pd.NA


def _time(value: Any, bad: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=None)  # the wall-clock time, as the book
    except ValueError:
        bad(value)
        return None
