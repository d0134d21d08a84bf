"""Records from published 事務事業マネジメントシート text (CONTRACT §1, §4 import-text).

The input is the tab-separated text a PDF extractor makes of the published sheets
(see ``seeds/tsukuba_management_sheets_R4.txt``). The extractor keeps the printed
labels but not the cell grid: a value may sit one tab further right or left, two
printed cells may share one tab cell (``(千円) 37,293``), and a label may be glued to
its value with a space (``業務 パソコン不足が…``). So every section is read by its
labels, never by line or column numbers.

A sheet that cannot be read raises :class:`ImportTextError` with a Japanese message
naming the sheet, its project number, the section and the line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import wareki

__all__ = ["ImportTextError", "parse_text"]

_N = TypeVar("_N", int, float)


class ImportTextError(ValueError):
    """The text is not a readable 事務事業マネジメントシート.

    ``sheet`` is 1-based; ``line`` is the 1-based line number in the whole text.
    Either may be None when the problem is not tied to one sheet or line.
    """

    def __init__(self, message: str, *, sheet: int | None = None,
                 project_no: str | None = None, section: str | None = None,
                 line: int | None = None) -> None:
        super().__init__(message)
        self.sheet = sheet
        self.project_no = project_no
        self.section = section
        self.line = line


# --- constants -------------------------------------------------------------

_TITLE = re.compile(
    r"^(?:(?P<era>令和|平成)\s*(?P<year>元|\d{1,2})\s*年度)?\s*事務事業マネジメントシート$")

# Section headings, in the printed order. Each is a line of its own.
_BASIC, _OVERVIEW, _COSTS, _PARTICIPATION = "事業の基本情報", "事業の概要", "コストの推移", "市民参加の取組状況"
_INDICATORS, _RESULTS, _EVALUATION, _DIRECTION = "指標の推移", "事業の成果と課題", "評価", "方向性"
_SECTIONS = (_BASIC, _OVERVIEW, _COSTS, _PARTICIPATION, _INDICATORS, _RESULTS,
             _EVALUATION, _DIRECTION)

_DASHES = frozenset({"—", "－", "-", "―", "‐"})

_STATUS = ("新規", "継続", "移管", "統合", "再編")
_CATEGORY = ("自治事務（任意）", "自治事務（義務）", "法定受託事務")
_DELIVERY = ("職員のみ", "一部委託", "全部委託", "指定管理", "その他")
_DIRECTIONS = ("拡大・拡充", "継続", "改善・見直し", "縮小", "統合", "休止・廃止", "完了")
_KINDS = ("活動結果指標", "成果指標")

# コストの推移: printed row label -> (record key, value parser name)
_COST_ROWS = {
    "予算額": ("budget", "int"),
    "決算額": ("settlement", "int"),
    "一般財源": ("general_fund", "int"),
    "国庫、県支出金、地方債": ("subsidies_bonds", "int"),
    "その他": ("other", "int"),
    "正職員従事割合": ("staff_fte", "float"),
    "正職員時間外勤務": ("overtime_hours", "float"),
    "会計年度任用職員有無": ("part_time_staff", "bool"),
    "人件費計": ("personnel_cost", "int"),
}
# Only the breakdown of 決算額 can be negative (a real sheet has その他 -375).
_NON_NEGATIVE = frozenset({"budget", "staff_fte", "overtime_hours", "personnel_cost"})
_COST_KEYS = ("budget", "settlement", "general_fund", "subsidies_bonds", "other",
              "staff_fte", "overtime_hours", "part_time_staff", "personnel_cost")


# --- lines and problems ----------------------------------------------------

@dataclass(frozen=True)
class _Line:
    no: int                   # 1-based line number in the whole text
    cells: tuple[str, ...]    # tab cells, stripped; empty cells kept

    @property
    def values(self) -> list[str]:
        return [c for c in self.cells if c]

    def excerpt(self) -> str:
        text = " ".join(self.values)
        return text if len(text) <= 40 else text[:40] + "…"


class _Problem(Exception):
    """A section parser's complaint; turned into ImportTextError with the sheet context."""

    def __init__(self, detail: str, line: _Line | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.line = line


def _key(text: str) -> str:
    """Compare labels loosely: NFKC folds （）/() and full-width letters; spaces vanish."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _text(pieces: Iterable[str]) -> str | None:
    """A text value: the pieces joined by one space (how the extractor renders a
    wrapped line), None when empty or a lone dash."""
    value = " ".join(p for p in pieces if p).strip()
    return None if not value or value in _DASHES else value


def _enum(value: str | None, choices: Sequence[str], what: str, line: _Line | None) -> str | None:
    """One of ``choices`` (matched on the loose key, so 自治事務(任意) is 自治事務（任意）)."""
    if value is None:
        return None
    for choice in choices:
        if _key(choice) == _key(value):
            return choice
    raise _Problem(f"{what}「{value}」は {'、'.join(choices)} のどれでもありません", line)


def _number_text(token: str) -> str:
    """Thousands separators go; △/▲ (the Japanese minus sign in money tables) become '-'."""
    t = unicodedata.normalize("NFKC", token).replace(",", "")
    return "-" + t[1:] if t[:1] in ("△", "▲") else t


_MAX_NUMBER = 999_999_999  # the schema's bound for money and indicator values


def _to_int(token: str, what: str, line: _Line) -> int | None:
    if token in _DASHES:
        return None
    t = _number_text(token)
    if not re.fullmatch(r"-?\d+", t):
        raise _Problem(f"{what}「{token}」は整数ではありません", line)
    return _bounded(int(t), token, what, line)


def _to_float(token: str, what: str, line: _Line) -> float | None:
    if token in _DASHES:
        return None
    t = _number_text(token)
    if not re.fullmatch(r"-?\d+(?:\.\d+)?", t):
        raise _Problem(f"{what}「{token}」は数値ではありません", line)
    return _bounded(float(t), token, what, line)


def _bounded(value: _N, token: str, what: str, line: _Line) -> _N:
    if abs(value) > _MAX_NUMBER:
        raise _Problem(f"{what}「{token}」は大きすぎます（{_MAX_NUMBER:,}まで）", line)
    return value


def _to_bool(token: str, what: str, line: _Line) -> bool | None:
    if token in _DASHES:
        return None
    if token in ("有", "無"):
        return token == "有"
    raise _Problem(f"{what}「{token}」は「有」か「無」ではありません", line)


_PARSERS: dict[str, Callable[[str, str, _Line], Any]] = {
    "int": _to_int, "float": _to_float, "bool": _to_bool}


def _fiscal_years(line: _Line) -> list[int]:
    """Western years of every 令和 2年度 / R01年度 label on a line, in order."""
    years = []
    for era, n in re.findall(r"(令和|平成|R|H)\s*(元|\d{1,2})\s*年度", " ".join(line.values)):
        years.append(wareki.to_western(era, n))
    return years


# --- label scanning --------------------------------------------------------

@dataclass
class _Fields:
    """Values found after each label: one row of cells per line the label's values are on."""

    rows: dict[str, list[list[str]]]
    lines: dict[str, _Line]          # the line each label was first seen on

    def has(self, label: str) -> bool:
        return label in self.rows

    def cells(self, label: str) -> list[str]:
        return [c for row in self.rows.get(label, []) for c in row]

    def text(self, label: str) -> str | None:
        return _text(self.cells(label))


def _scan(lines: Sequence[_Line], labels: Sequence[str], *, multi_row: Iterable[str] = (),
          prefix_labels: Iterable[str] = (), prefix_parent: str | None = None) -> _Fields:
    """Assign every non-empty cell to the label before it, reading lines left to right.

    A line that does not start with a label continues a field: the open
    ``multi_row`` field (戦略プラン and SDGs are printed as several rows, and the
    extractor puts the later rows on lines of their own), otherwise the last label
    (a wrapped text). ``prefix_labels`` are the parts of ``prefix_parent`` (課題:
    業務, 組織、予算等); inside that field they may also be glued to their value
    with a space (``業務 パソコン不足が…``) when they start a line or follow a label.
    """
    by_key = {_key(label): label for label in labels}
    multi, prefixes = frozenset(multi_row), tuple(prefix_labels)
    prefix_scope = {prefix_parent, *prefixes} - {None}
    rows: dict[str, list[list[str]]] = {}
    first_lines: dict[str, _Line] = {}
    last: str | None = None
    open_multi: str | None = None
    for line in lines:
        current = open_multi or last
        row_here: dict[str, list[str]] = {}  # this line's row of each label
        prev_was_label = True  # the start of a line counts as "after a label"
        for index, cell in enumerate(line.values):
            label, rest = by_key.get(_key(cell)), ""
            if label is None and prev_was_label and current in prefix_scope:
                label, rest = _split_prefix_label(cell, prefixes)
            if label is None:
                if current is None:
                    raise _Problem(f"「{cell}」はこの欄の項目名ではありません", line)
                _row(rows, row_here, current).append(cell)
                prev_was_label = False
                continue
            if index == 0 and label != open_multi:
                open_multi = None  # a new row label closes a multi-row field
            if label in multi:
                open_multi = label
            current = last = label
            first_lines.setdefault(label, line)
            row = _row(rows, row_here, label)
            if rest:
                row.append(rest)
            prev_was_label = not rest
    return _Fields(rows, first_lines)


def _row(rows: dict[str, list[list[str]]], row_here: dict[str, list[str]], label: str) -> list[str]:
    if label not in row_here:
        row_here[label] = []
        rows.setdefault(label, []).append(row_here[label])
    return row_here[label]


def _split_prefix_label(cell: str, prefixes: Sequence[str]) -> tuple[str | None, str]:
    for label in prefixes:
        m = re.match(rf"{re.escape(label)}\s+(.+)$", cell, re.S)
        if m:
            return label, m.group(1).strip()
    return None, ""


def _require(fields: _Fields, labels: Iterable[str], section_line: _Line) -> None:
    missing = [label for label in labels if not fields.has(label)]
    if missing:
        raise _Problem(f"項目「{'」「'.join(missing)}」がありません", section_line)


# --- 事業の基本情報 ---------------------------------------------------------------

_BASIC_LABELS = ("事務事業名", "予算科目", "担当部課", "市長公約", "係名", "戦略プラン", "新規・継続",
                 "事業分類", "事業体制", "個別計画", "事業期間", "根拠法令等", "SDGs")


def _parse_basic(lines: Sequence[_Line], heading: _Line) -> dict[str, Any]:
    f = _scan(lines, _BASIC_LABELS, multi_row=("戦略プラン", "SDGs"))
    _require(f, _BASIC_LABELS, heading)
    project_no, project_name = _split_project(f.text("事務事業名"), f.lines["事務事業名"])
    budget_code, budget_name = _split_budget(f.text("予算科目"))
    department, division = _split_department(f.text("担当部課"), f.lines["担当部課"])
    return {
        "project_no": project_no,
        "project_name": project_name,
        "budget_code": budget_code,
        "budget_name": budget_name,
        "department": department,
        "division": division,
        "section": f.text("係名"),
        "mayor_pledge": _mayor_pledge(f.cells("市長公約"), f.lines["市長公約"]),
        "strategy_plan": _strategy_plan(f.rows["戦略プラン"], f.lines["戦略プラン"]),
        "individual_plan": f.text("個別計画"),
        "legal_basis": f.text("根拠法令等"),
        "status": _enum(f.text("新規・継続"), _STATUS, "新規・継続", f.lines["新規・継続"]),
        "category": _enum(f.text("事業分類"), _CATEGORY, "事業分類", f.lines["事業分類"]),
        "delivery": _enum(f.text("事業体制"), _DELIVERY, "事業体制", f.lines["事業体制"]),
        "period": f.text("事業期間"),
        "sdgs": _sdgs(f.cells("SDGs"), f.lines["SDGs"]),
    }


def _split_project(value: str | None, line: _Line) -> tuple[str, str]:
    """'088 情報通信ネットワーク運営業務' -> ('088', '情報通信ネットワーク運営業務')."""
    m = re.fullmatch(r"([0-9A-Za-z][0-9A-Za-z_-]{0,11})\s+(.+)", value or "", re.S)
    if not m:
        raise _Problem(f"事務事業名「{value or ''}」から事業番号と事業名を読み取れません", line)
    return m.group(1), m.group(2).strip()


def _split_budget(value: str | None) -> tuple[str | None, str | None]:
    """'01-020108-15 情報通信…' -> code and name; the name stays as printed, even when
    the PDF cut it off."""
    if value is None:
        return None, None
    m = re.fullmatch(r"(\d[\d-]*\d)(?:\s+(.*))?", value, re.S)
    if not m:
        return None, value
    return m.group(1), _text([m.group(2) or ""])


def _split_department(value: str | None, line: _Line) -> tuple[str, str]:
    """'政策イノベーション部情報政策課' -> ('政策イノベーション部', '情報政策課'): up to the first 部."""
    end = (value or "").find("部") + 1
    if value is None or end == 0 or end == len(value):
        raise _Problem(f"担当部課「{value or ''}」を部と課に分けられません", line)
    return value[:end], value[end:].strip()


def _mayor_pledge(cells: list[str], line: _Line) -> list[str] | None:
    """One entry per printed cell, kept as printed ('04' stays '04')."""
    pledges = [token for cell in cells for token in cell.split() if token not in _DASHES]
    if len(pledges) > 3:
        raise _Problem(f"市長公約が{len(pledges)}件あります（3件まで）", line)
    for pledge in pledges:
        if len(pledge) > 10:
            raise _Problem(f"市長公約「{pledge}」は公約番号ではありません", line)
    return pledges or None


_STRATEGY_ROW = re.compile(
    r"(?P<pillar>\S+)(?:\s+(?P<measure>\d+))?(?:\s+(?P<item>\d+))?(?:\s+(?P<title>.+))?", re.S)


def _strategy_plan(rows: list[list[str]], line: _Line) -> list[dict[str, str | None]] | None:
    """Rows like 'IV-3 | 3 | 2 | 行政手続きの電子化に向けた取組' -> pillar/measure/item/title."""
    entries = []
    for row in rows:
        cells = [c for c in row if c not in _DASHES]
        if not cells:
            continue
        m = _STRATEGY_ROW.fullmatch("\t".join(cells))
        if m is None:  # unreachable for non-empty cells, kept as a guard
            raise _Problem("戦略プランの行を読み取れません", line)
        # The pillar is kept as printed; NFKC only for the check (Ⅳ-3 is IV-3).
        if not re.fullmatch(r"[A-Za-z0-9]{1,5}(?:-\d{1,3})?",
                            unicodedata.normalize("NFKC", m.group("pillar"))):
            raise _Problem(f"戦略プランの政策「{m.group('pillar')}」は IV-3 のような番号ではありません",
                           line)
        title = m.group("title")
        entries.append({"pillar": m.group("pillar"), "measure": m.group("measure"),
                        "item": m.group("item"),
                        "title": title.replace("\t", " ").strip() if title else None})
    if len(entries) > 2:
        raise _Problem(f"戦略プランが{len(entries)}件あります（2件まで）", line)
    _spread_titles(entries)
    return entries or None


def _spread_titles(entries: list[dict[str, str | None]]) -> None:
    """When the PDF printed every row's title in the first row's cell, separated by
    a space, and left the other rows' title cells empty, give each row its part."""
    titled = [e for e in entries if e["title"]]
    if len(entries) < 2 or len(titled) != 1 or titled[0] is not entries[0]:
        return
    parts = (entries[0]["title"] or "").split()
    if len(parts) == len(entries):
        for entry, part in zip(entries, parts, strict=True):
            entry["title"] = part


def _sdgs(cells: list[str], line: _Line) -> list[int] | None:
    """'09産業と技術革新の…' -> 9; the goal text may be cut off, the number is enough."""
    goals: list[int] = []
    for cell in cells:
        if cell in _DASHES:
            continue
        m = re.match(r"(\d{1,2})", unicodedata.normalize("NFKC", cell))
        if not m or not 1 <= int(m.group(1)) <= 17:
            raise _Problem(f"SDGs「{cell}」から目標番号（1〜17）を読み取れません", line)
        if int(m.group(1)) not in goals:
            goals.append(int(m.group(1)))
    return goals or None


# --- 事業の概要 / 市民参加の取組状況 -------------------------------------------------

def _parse_overview(lines: Sequence[_Line], heading: _Line) -> dict[str, Any]:
    labels = {"target": "対象", "purpose": "目的", "summary": "概要 (取組内容)"}
    f = _scan(lines, tuple(labels.values()))
    _require(f, labels.values(), heading)
    return {key: f.text(label) for key, label in labels.items()}


def _parse_participation(lines: Sequence[_Line], heading: _Line) -> dict[str, Any]:
    labels = {"share": "共有、理解", "plan": "企画・立案、計画", "execute": "実行",
              "evaluate": "評価、検証"}
    f = _scan(lines, tuple(labels.values()))
    _require(f, labels.values(), heading)
    return {key: f.text(label) for key, label in labels.items()}


# --- コストの推移 ----------------------------------------------------------------

def _parse_costs(lines: Sequence[_Line], heading: _Line) -> list[dict[str, Any]]:
    years = next((ys for ys in map(_fiscal_years, lines) if len(ys) >= 2), None)
    if years is None:
        raise _Problem("年度の見出し（令和 N年度）がありません", heading)
    found: dict[str, tuple[list[str], _Line]] = {}
    for line in lines:
        hit = _cost_row(line)
        if hit is None:
            continue
        label, tokens = hit
        if label in found:
            raise _Problem(f"「{label}」の行が二つあります", line)
        if len(tokens) != len(years):
            raise _Problem(f"「{label}」の値が{len(tokens)}個あります（{len(years)}年度分のはずです）",
                           line)
        found[label] = (tokens, line)
    missing = [label for label in _COST_ROWS if label not in found]
    if missing:
        raise _Problem(f"行「{'」「'.join(missing)}」がありません", heading)

    by_key: dict[str, list[Any]] = {}
    for label, (key, kind) in _COST_ROWS.items():
        tokens, line = found[label]
        by_key[key] = [_PARSERS[kind](t, label, line) for t in tokens]
        if key in _NON_NEGATIVE and any(v is not None and v < 0 for v in by_key[key]):
            raise _Problem(f"「{label}」に負の値があります", line)
    return [{"year": year, **{key: by_key[key][i] for key in _COST_KEYS}}
            for i, year in enumerate(years)]


def _cost_row(line: _Line) -> tuple[str, list[str]] | None:
    """(row label, value tokens) for a cost row; None for headings and blank lines.

    Group labels (事業費, 人件費, 内訳) come before the row label and are skipped.
    The unit cell '(千円)' may share a cell with the first value, so the values
    are taken as whitespace-separated tokens after the unit.
    """
    values = line.values
    for index, cell in enumerate(values):
        for label in _COST_ROWS:
            m = re.fullmatch(rf"{re.escape(label)}(?P<rest>(?:[\s(（].*)?)",
                             unicodedata.normalize("NFKC", cell), re.S)
            if m:
                text = unicodedata.normalize("NFKC", " ".join([m.group("rest"), *values[index + 1:]]))
                text = re.sub(r"^\s*\([^()]*\)", "", text)  # the unit: (千円) (人) (時間) (-)
                return label, text.split()
    return None


# --- 指標の推移 ------------------------------------------------------------------

def _cell_label(cell: str, label: str) -> tuple[bool, int | None]:
    """Whether ``cell`` is ``label``, optionally preceded by the slot number ('1 目標値')."""
    m = re.fullmatch(rf"(?:(\d+)\s*)?{re.escape(label)}", _key(cell))
    if not m:
        return False, None
    return True, int(m.group(1)) if m.group(1) else None


def _find(line: _Line, label: str) -> tuple[int, int | None] | None:
    """(index among the line's values, slot number printed with it) of ``label``."""
    for index, cell in enumerate(line.values):
        hit, number = _cell_label(cell, label)
        if hit:
            return index, number
    return None


def _parse_indicators(lines: Sequence[_Line], heading: _Line) -> list[dict[str, Any]]:
    """Five printed slots; the ones with an empty 指標名 '()' are not indicators."""
    indicators: list[dict[str, Any]] = []
    used: set[int] = set()
    previous = 0
    for block, hint in _indicator_blocks(lines):
        indicator = _parse_indicator(block, hint or previous + 1)
        previous = indicator["no"]
        if not 1 <= previous <= 5 or previous in used:
            raise _Problem(f"指標番号 {previous} が正しくありません（1〜5、重複なし）", block[0])
        used.add(previous)
        if indicator["name"]:
            indicators.append(indicator)
        elif indicator["description"] or any(
                v["target"] or v["actual"] for v in indicator["values"]):
            raise _Problem(f"指標{previous}に指標名がないのに値や概要があります", block[0])
    return indicators


def _indicator_blocks(lines: Sequence[_Line]) -> list[tuple[list[_Line], int | None]]:
    """Split at each 指標名 line; a slot number alone on a line before it is kept as a hint."""
    blocks: list[tuple[list[_Line], int | None]] = []
    hint: int | None = None
    for line in lines:
        if not line.values:
            continue
        if _find(line, "指標名") is not None:
            blocks.append(([line], hint))
            hint = None
        elif len(line.values) == 1 and line.values[0].isdecimal():
            hint = int(line.values[0])
        elif blocks:
            blocks[-1][0].append(line)
        else:
            raise _Problem("指標名の前に読み取れない行があります", line)
    return blocks


def _parse_indicator(block: list[_Line], default_no: int) -> dict[str, Any]:
    name_line = block[0]
    index, number = _find(name_line, "指標名") or (0, None)
    numbers = [number] + [int(c) for c in name_line.values[:index] if c.isdecimal()]
    name, unit, kind = _indicator_name(name_line.values[index + 1:], name_line)

    years: list[int] | None = None
    rows: dict[str, tuple[list[str], _Line]] = {}
    description: list[str] | None = None
    for line in block[1:]:
        if years is None and len(_fiscal_years(line)) >= 2:
            years = _fiscal_years(line)
            continue
        for label in ("目標値", "実績", "指標の概要"):
            hit = _find(line, label)
            if hit is not None:
                numbers.append(hit[1])
                rest = line.values[hit[0] + 1:]
                if label == "指標の概要":
                    description = rest
                else:
                    rows[label] = (" ".join(rest).split(), line)
                break
        else:
            if description is None:
                raise _Problem("指標の行を読み取れません", line)
            description.extend(line.values)  # a wrapped 指標の概要

    if years is None:
        raise _Problem("指標の年度の見出し（R01年度 …）がありません", name_line)
    values = _indicator_values(years, rows, name_line)
    return {
        "no": next((n for n in numbers if n is not None), default_no),
        "name": name,
        "unit": unit,
        "kind": kind,
        "description": _text(description or []),
        "values": values,
    }


def _indicator_name(cells: list[str], line: _Line) -> tuple[str, str | None, str | None]:
    """'LGWAN接続系端末台数 (台)' -> name, unit; the unit may be a cell of its own ('(回)').

    The unit is the text inside the final half-width parentheses; '()' means none.
    """
    kinds = [c for c in cells if c in _KINDS]
    if len(kinds) > 1:
        raise _Problem("指標の種類が二つあります", line)
    text = " ".join(c for c in cells if c not in _KINDS).strip()
    m = re.fullmatch(r"(.*?)\s*\(([^()]*)\)", text, re.S)
    name, unit = (m.group(1), m.group(2).strip()) if m else (text, "")
    return name.strip(), unit or None, kinds[0] if kinds else None


def _indicator_values(years: list[int], rows: dict[str, tuple[list[str], _Line]],
                      name_line: _Line) -> list[dict[str, Any]]:
    parsed: dict[str, list[float | None]] = {}
    for label in ("目標値", "実績"):
        if label not in rows:
            raise _Problem(f"指標の「{label}」の行がありません", name_line)
        tokens, line = rows[label]
        if len(tokens) != len(years):
            raise _Problem(f"指標の「{label}」の値が{len(tokens)}個あります（{len(years)}年度分のはずです）",
                           line)
        parsed[label] = [_to_float(t, label, line) for t in tokens]
    return [{"year": year, "target": parsed["目標値"][i], "actual": parsed["実績"][i]}
            for i, year in enumerate(years)]


# --- 事業の成果と課題 / 評価 / 方向性 -------------------------------------------------

def _parse_results(lines: Sequence[_Line], heading: _Line) -> dict[str, Any]:
    """課題 has two printed parts, 業務 and 組織、予算等; the extractor sometimes glues
    the part's label to its text with a space, hence the prefix labels."""
    main = ("前年度の課題への対応", "成果", "課題", "改善目標")
    parts = ("業務", "組織、予算等")
    f = _scan(lines, main + parts, prefix_labels=parts, prefix_parent="課題")
    _require(f, main, heading)
    return {
        "response_to_last_year": f.text("前年度の課題への対応"),
        "achievements": f.text("成果"),
        # Text right after 課題 with no part label is read as the 業務 part.
        "issues_operations": f.text("業務") if f.has("業務") else f.text("課題"),
        "issues_organization": f.text("組織、予算等"),
        "improvement_goal": f.text("改善目標"),
    }


def _parse_evaluation(lines: Sequence[_Line], heading: _Line) -> dict[str, Any]:
    """Scores 1–5, or None for '-'. The standard sentence printed beside a score is
    derived from the score, so it is not kept."""
    labels = {"citizen_needs": "市民ニーズ", "progress": "進捗状況", "city_involvement": "市の関与",
              "priority": "優先度"}
    f = _scan(lines, tuple(labels.values()))
    _require(f, labels.values(), heading)
    scores: dict[str, int | None] = {}
    for key, label in labels.items():
        cells = f.cells(label)
        token = cells[0].split()[0] if cells else "-"
        score = _to_int(token, label, f.lines[label])
        if score is not None and not 1 <= score <= 5:
            raise _Problem(f"{label}の評価「{token}」は1〜5ではありません", f.lines[label])
        scores[key] = score
    return scores


def _parse_direction(lines: Sequence[_Line], heading: _Line) -> dict[str, Any]:
    f = _scan(lines, ("方向性", "理由"))
    _require(f, ("方向性", "理由"), heading)
    return {
        "direction": _enum(f.text("方向性"), _DIRECTIONS, "方向性", f.lines["方向性"]),
        "direction_reason": f.text("理由"),
    }


# --- sheets ------------------------------------------------------------------

@dataclass
class _Sheet:
    number: int          # 1-based
    title: _Line
    body: list[_Line]

    def project_no(self) -> str | None:
        """The project number, read early so that every error message can name it."""
        for line in self.body:
            hit = _find(line, "事務事業名")
            if hit is not None:
                rest = line.values[hit[0] + 1:]
                m = re.match(r"[0-9A-Za-z][0-9A-Za-z_-]*", rest[0]) if rest else None
                return m.group(0) if m else None
        return None

    def error(self, section: str | None, detail: str, line: _Line | None) -> ImportTextError:
        no = self.project_no()
        where = f"「{section}」" if section else "表題"
        at = f"行 {line.no}「{line.excerpt()}」" if line else f"行 {self.title.no}"
        return ImportTextError(
            f"シート{self.number}（事業番号 {no or '不明'}）の{where}を読み取れません: {at}: {detail}",
            sheet=self.number, project_no=no, section=section, line=line.no if line else None)


def _lines(text: str) -> list[_Line]:
    text = text.removeprefix("\ufeff")
    return [_Line(no, tuple(c.strip() for c in raw.split("\t")))
            for no, raw in enumerate(text.splitlines(), start=1)]


def _is_title(line: _Line) -> bool:
    return len(line.values) == 1 and _TITLE.fullmatch(line.values[0]) is not None


def _split_sheets(lines: list[_Line]) -> list[_Sheet]:
    """One sheet per title line; anything before the first title (a page header) is ignored."""
    sheets: list[_Sheet] = []
    for line in lines:
        if _is_title(line):
            sheets.append(_Sheet(len(sheets) + 1, line, []))
        elif sheets:
            sheets[-1].body.append(line)
    return sheets


def _split_sections(sheet: _Sheet) -> dict[str, tuple[_Line, list[_Line]]]:
    """heading -> (heading line, lines under it).

    A heading seen twice means two sheets ran together (a lost title line), except
    for a line reading just '方向性' under 方向性: that is the 方向性 row left empty.
    """
    sections: dict[str, tuple[_Line, list[_Line]]] = {}
    current: list[_Line] | None = None
    for line in sheet.body:
        values = line.values
        heading = values[0] if len(values) == 1 and values[0] in _SECTIONS else None
        if heading is not None and heading in sections:
            if heading != _DIRECTION or current is not sections[_DIRECTION][1]:
                raise sheet.error(heading, f"見出し「{heading}」が二度あります"
                                           "（次のシートの表題が欠けていませんか）", line)
            heading = None
        if heading is not None:
            current = []
            sections[heading] = (line, current)
        elif current is not None:
            current.append(line)
        elif values:
            raise sheet.error(None, "見出しの前に読み取れない行があります", line)
    return sections


_SECTION_PARSERS: tuple[tuple[str, Callable[[Sequence[_Line], _Line], Any]], ...] = (
    (_BASIC, _parse_basic),
    (_OVERVIEW, _parse_overview),
    (_COSTS, _parse_costs),
    (_PARTICIPATION, _parse_participation),
    (_INDICATORS, _parse_indicators),
    (_RESULTS, _parse_results),
    (_EVALUATION, _parse_evaluation),
    (_DIRECTION, _parse_direction),
)


def _parse_sheet(sheet: _Sheet) -> dict[str, Any]:
    m = _TITLE.fullmatch(sheet.title.values[0])
    if m is None or m.group("era") is None:
        raise sheet.error(None, "表題から評価年度（令和N年度）を読み取れません", sheet.title)
    year = wareki.to_western(m.group("era"), m.group("year"))

    sections = _split_sections(sheet)
    parts: dict[str, Any] = {}
    for name, parse in _SECTION_PARSERS:
        if name not in sections:
            # Reported in reading order, so a sheet cut off mid-table names that table.
            last = sheet.body[-1] if sheet.body else sheet.title
            raise sheet.error(name, f"見出し「{name}」がありません（シートは 行 {sheet.title.no}〜{last.no}）",
                              None)
        heading, lines = sections[name]
        try:
            parts[name] = parse(lines, heading)
        except _Problem as problem:
            raise sheet.error(name, problem.detail, problem.line) from None
        except (ValueError, LookupError, TypeError, AttributeError) as exc:
            # A safety net: an unforeseen layout must still give a Japanese message.
            raise sheet.error(name, f"想定外の形式です（{type(exc).__name__}）", heading) from exc
    return _record(year, parts)


def _record(year: int, parts: dict[str, Any]) -> dict[str, Any]:
    """Assemble in the schema's property order ('previous' is not in the text)."""
    return {
        "fiscal_year": year,
        **parts[_BASIC],     # project_no … sdgs, already in order
        **parts[_OVERVIEW],  # target, purpose, summary
        "costs": parts[_COSTS],
        "participation": parts[_PARTICIPATION],
        "indicators": parts[_INDICATORS],
        "results": parts[_RESULTS],
        "evaluation": parts[_EVALUATION],
        **parts[_DIRECTION],
        "office_comment": None,  # the evaluation office's, entered after collect
    }


def parse_text(text: str) -> list[dict[str, Any]]:
    """One record (CONTRACT §1) per 事務事業マネジメントシート in ``text``, in order.

    Raises ImportTextError when the text holds no sheet or a sheet cannot be read.
    Enums, list sizes and number bounds of the schema are enforced here; text
    lengths (maxLength) are not, so validate the records before storing them.
    """
    sheets = _split_sheets(_lines(text))
    if not sheets:
        raise ImportTextError(
            "事務事業マネジメントシートが見つかりません: "
            "表題「令和 N年度 事務事業マネジメントシート」の行がありません")
    return [_parse_sheet(sheet) for sheet in sheets]
