"""Turn what a department typed into the field's value — never silently.

``read_value`` returns the value and a list of what had to be changed to get
it (全角 digits, thousands separators, △ negatives, numbers stored as text,
surrounding spaces, a dash meaning "no value"). The checker turns each
non-empty list into one warning at that cell; a value that cannot be read is
an error that keeps the raw text.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .. import wareki
from ..spec.celltypes import DASHES, CellType, from_serial
from ..xlsx.read import ErrorValue

_SPACES = " \t\r\n\u3000\u00a0"
_NEGATIVE_MARKS = ("△", "▲")
_UNITS = ("千円", "円", "人", "時間", "件", "回", "%", "％")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_YES = {"有", "あり", "有り", "○", "〇", "はい", "true", "TRUE", "1"}
_NO = {"無", "なし", "無し", "×", "いいえ", "false", "FALSE", "0"}


@dataclass
class Reading:
    """The value read from one cell, what was changed to read it, or why it could not be."""

    value: Any = None
    changes: list[str] = field(default_factory=list)
    problem: str | None = None  # a Japanese sentence: the value cannot be read
    dash: bool = False  # a score cell holding "-" (set by law), as opposed to blank


def read_value(raw: Any, ftype: CellType) -> Reading:
    """Read ``raw`` (float / str / bool / ErrorValue / None from the cell) as ``ftype``."""
    if raw is None:
        return Reading()
    if isinstance(raw, ErrorValue):
        return Reading(problem=f"セルがエラー値「{raw}」になっています")
    reading = Reading()
    if isinstance(raw, bool):
        raw = _logical(raw, ftype, reading)
    if isinstance(raw, str):
        raw = _clean_text(raw, reading, ftype)
        if raw is None:
            return reading
    kind = ftype.kind
    if kind in ("integer", "number"):
        return _number(raw, ftype, reading)
    if kind == "date":
        return _date(raw, reading)
    if kind == "joined":
        return _joined(raw, ftype, reading)
    if kind == "score":
        return _score(raw, ftype, reading)
    if kind in ("yesno", "mark"):
        return _yesno(raw, ftype, reading)
    if kind == "coded":
        return _coded(raw, ftype, reading)
    if kind == "enum":
        return _enum(raw, ftype, reading)
    if isinstance(raw, float):  # a number where text belongs: "04" may have lost its zero
        reading.value = str(int(raw)) if raw.is_integer() else repr(raw)
        reading.changes.append("数値として入力された値を文字列として読みました")
    else:
        reading.value = raw
    return reading


def _logical(raw: bool, ftype: CellType, reading: Reading) -> Any:
    """A TRUE/FALSE cell: 有/無 where that is the field's kind, else never silently a number."""
    if ftype.kind in ("yesno", "mark"):
        return ftype.to_cell(raw)
    shown = "TRUE" if raw else "FALSE"
    if ftype.kind in ("integer", "number"):
        reading.changes.append(f"論理値「{shown}」を {int(raw)} として読みました")
        return float(raw)
    if ftype.kind in ("text", "code"):
        reading.changes.append(f"論理値「{shown}」を文字列として読みました")
    return shown  # a score or a choice: the text is checked like any typed text


def _clean_text(text: str, reading: Reading, ftype: CellType) -> str | None:
    stripped = text.strip(_SPACES)
    if ftype.kind == "text" and (ftype.max_length or 0) > 100 and stripped:
        # a long text keeps the 「　」 that indents its first paragraph, as Japanese prose does
        lead = text[:len(text) - len(text.lstrip(_SPACES))]
        stripped = lead[lead.find("\u3000"):].lstrip(" \t\r\n\u00a0") + stripped if "\u3000" in lead else stripped
    if stripped != text and stripped:
        reading.changes.append("前後の空白を除きました")
    if not stripped:
        if text:
            reading.changes.append("空白だけのセルを空欄として読みました")
        return None
    if stripped in DASHES and not (ftype.kind == "score" and ftype.dash):
        reading.changes.append(f"「{stripped}」を値なし（空欄）として読みました")
        return None
    return stripped


def _number(raw: Any, ftype: CellType, reading: Reading) -> Reading:
    if isinstance(raw, str):
        parsed = _parse_number_text(raw, reading)
        if parsed is None:
            reading.problem = reading.problem or f"「{raw}」を数値として読み取れません"
            return reading
        raw = parsed
    value = float(raw)
    if ftype.kind == "integer":
        if not value.is_integer():
            reading.problem = f"「{_show(value)}」は整数ではありません（小数は入力できません）"
            return reading
        reading.value = int(value)
    else:
        reading.value = value
    return reading


_SEPARATORS = re.compile(r"[＋+、,，・\s]+")


def _joined(raw: Any, ftype: CellType, reading: Reading) -> Reading:
    """Several values in one cell: the labels of a multiple choice, or codes, separated by ＋, 、, spaces …"""
    text = unicodedata.normalize("NFKC", _show(raw) if isinstance(raw, float) else str(raw))
    parts = [p for p in _SEPARATORS.split(text) if p]
    folded = {unicodedata.normalize("NFKC", label): value for value, label in zip(ftype.values, ftype.choices,
                                                                                  strict=False)}
    out: list[Any] = []
    for part in parts:
        if folded:
            value = folded.get(part, next((v for v in ftype.values if str(v) == part), None))
        else:
            value = part if not ftype.pattern or re.fullmatch(ftype.pattern, part) else None
        if value is None:
            choices = "、".join(ftype.choices) if ftype.choices else "形式を確認"
            reading.problem = f"「{part}」は選択肢（{choices}）にありません"
            return reading
        if value not in out:
            out.append(value)
    if folded:  # in the order of the choices, as the record keeps them
        out.sort(key=list(ftype.values).index)
    if str(raw).strip() != ftype.to_cell(out):
        reading.changes.append(f"「{raw}」を「{ftype.to_cell(out)}」として読みました")
    reading.value = out or None
    return reading


_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")
_ERA_DATE = re.compile(r"^(令和|平成|R|H)\s*(元|\d{1,2})[年.](\d{1,2})[月.](\d{1,2})日?")


def _date(raw: Any, reading: Reading) -> Reading:
    """A date cell (a day number), or a date typed as text: 2024/6/10, 2024-06-10, 令和6年6月10日, R6.6.10."""
    if isinstance(raw, float):
        if not raw.is_integer() or not 36526 <= raw <= 73415:  # 2000-01-01 … 2100-12-31
            reading.problem = f"「{_show(raw)}」は日付として読み取れません"
            return reading
        reading.value = from_serial(raw)
        return reading
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    m = _DATE.match(text)
    era = _ERA_DATE.match(text)
    try:
        if m:
            value = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        elif era:
            year = wareki.to_western(era.group(1), era.group(2))
            value = date(year, int(era.group(3)), int(era.group(4)))
        else:
            raise ValueError(text)
    except ValueError:
        reading.problem = f"「{raw}」は日付として読み取れません"
        return reading
    reading.value = value.isoformat()
    reading.changes.append("文字列として入力された日付を日付として読みました")
    return reading


def _parse_number_text(text: str, reading: Reading) -> float | None:
    t = unicodedata.normalize("NFKC", text)
    if t != text and any(unicodedata.east_asian_width(c) in "FW" for c in text):
        reading.changes.append("全角の数字・記号を半角にしました")
    negative = False
    for mark in _NEGATIVE_MARKS:
        if t.startswith(mark):
            t = t[len(mark):].strip()
            negative = True
            reading.changes.append(f"「{mark}」を負の数（マイナス）として読みました")
    for unit in _UNITS:
        if t.endswith(unit) and len(t) > len(unit):
            t = t[: -len(unit)].strip()
            reading.changes.append(f"単位「{unit}」を除きました")
            break
    if "," in t and re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?", t):
        t = t.replace(",", "")
        reading.changes.append("桁区切りの「,」を除きました")
    t = t.replace("−", "-")
    if not _NUMBER.match(t):
        return None
    value = float(t)
    if not math.isfinite(value):  # 1E+400: typed, but no number a spreadsheet can hold
        reading.changes.clear()
        reading.problem = f"「{text}」は数値として大きすぎます"
        return None
    reading.changes.append("文字列として入力された数値を数値として読みました")
    return -value if negative else value


def _score(raw: Any, ftype: CellType, reading: Reading) -> Reading:
    """A point on the template's scale: 1–5 (numbers, typed or chosen), A/B/C …, or its dash."""
    numeric = all(isinstance(v, int) for v in ftype.values)
    scale = f"{ftype.values[0]}～{ftype.values[-1]}" if numeric else "・".join(map(str, ftype.values))
    what = f"評価の{'点数' if numeric else '区分'}（{scale}" + (f" または {ftype.dash}）" if ftype.dash else "）")
    if isinstance(raw, str):
        t = unicodedata.normalize("NFKC", raw).strip()
        if ftype.dash and (t in DASHES or t == ftype.dash):
            if raw != ftype.dash:
                reading.changes.append(f"「{raw}」を「{ftype.dash}」として読みました")
            reading.dash = True
            return reading
        if not numeric:
            for value in ftype.values:
                if t.upper() == str(value).upper():
                    if raw != str(value):
                        reading.changes.append(f"「{raw}」を「{value}」として読みました")
                    reading.value = value
                    return reading
            reading.problem = f"「{raw}」は{what}ではありません"
            return reading
        if t != raw:
            reading.changes.append("全角の数字を半角にしました")
        if not re.fullmatch(r"\d+(\.0*)?", t):
            reading.problem = f"「{raw}」は{what}ではありません"
            return reading
        reading.changes.append("文字列として入力された点数を数値として読みました")
        raw = float(t)
    if not numeric:
        reading.problem = f"「{_show(raw)}」は{what}ではありません"
        return reading
    value = float(raw)
    if not value.is_integer() or int(value) not in ftype.values:
        reading.problem = f"「{_show(value)}」は{what}ではありません"
        return reading
    reading.value = int(value)
    return reading


_MARKS = {"✓", "✔", "☑", "○", "〇", "●", "◯", "レ", "x", "X", "×", "1"}


def _yesno(raw: Any, ftype: CellType, reading: Reading) -> Reading:
    """有/無 (or the template's pair), or a check box: the chosen mark, the empty mark or blank."""
    yes, no = ftype.choices[0], ftype.choices[1]
    t = unicodedata.normalize("NFKC", str(_show(raw) if isinstance(raw, float) else raw)).strip()
    if t == yes or (ftype.kind == "yesno" and t in _YES) or (ftype.kind == "mark" and t in _MARKS):
        reading.value = True
    elif t == no or (ftype.kind == "yesno" and t in _NO) or (ftype.kind == "mark" and t in ("", "0")):
        reading.value = False
    elif ftype.kind == "mark":
        reading.problem = f"「{raw}」はチェック（「{yes}」）でも空欄（「{no}」）でもありません"
        return reading
    else:
        reading.problem = f"「{raw}」は「{yes}」「{no}」のどちらでもありません"
        return reading
    if t not in (yes, no):
        reading.changes.append(f"「{raw}」を「{yes if reading.value else no}」として読みました")
    return reading


def _coded(raw: Any, ftype: CellType, reading: Reading) -> Reading:
    """A code shown by its label ("09産業と…"): the label, the code, a prefixed code ("目標9") or a name."""
    text = _show(raw) if isinstance(raw, float) else unicodedata.normalize("NFKC", raw)
    value = _code_of(text, ftype)
    if value is None:
        reading.problem = f"「{raw}」は{ftype.what or ftype.title}（{_span(ftype)}）として読み取れません"
        return reading
    label = ftype.to_cell(value)
    if raw != label:
        spoken = (ftype.spoken or "「{label}」").replace("{value}", str(value)).replace("{label}", str(label))
        reading.changes.append(f"「{raw}」を{spoken}として読みました")
    reading.value = value
    return reading


def _code_of(text: str, ftype: CellType) -> Any:
    t = text.strip()
    for value, label in zip(ftype.values, ftype.choices, strict=False):
        if t in (label, str(value)):
            return value
    numeric = all(isinstance(v, int) for v in ftype.values)
    prefixes = "|".join(re.escape(p) for p in ftype.prefixes)
    lead = rf"^\s*(?:(?:{prefixes})\s*)?" if prefixes else r"^\s*"
    m = re.match(lead + (r"(\d{1,3})" if numeric else r"([0-9A-Za-z.]+)"), t)
    if m:
        code = int(m.group(1)) if numeric else m.group(1)
        if code in ftype.values:
            return code
    for value, name in zip(ftype.values, ftype.names, strict=False):
        if t == name:
            return value
    return None


def _span(ftype: CellType) -> str:
    if all(isinstance(v, int) for v in ftype.values) and ftype.values:
        return f"{ftype.values[0]}～{ftype.values[-1]}"
    return "、".join(map(str, ftype.values[:5])) + ("…" if len(ftype.values) > 5 else "")


def _enum(raw: Any, ftype: CellType, reading: Reading) -> Reading:
    text = _show(raw) if isinstance(raw, float) else raw
    values = ftype.values or ftype.choices
    for value, choice in zip(values, ftype.choices, strict=False):
        if text == choice:
            reading.value = value
            return reading
    folded = _fold(text)
    for value, choice in zip(values, ftype.choices, strict=False):
        if _fold(choice) == folded:
            reading.value = value
            reading.changes.append(f"「{text}」を選択肢の「{choice}」として読みました")
            return reading
    reading.problem = f"「{text}」は選択肢（{'、'.join(ftype.choices)}）にありません"
    return reading


def _fold(text: str) -> str:
    return re.sub(r"[\s・]", "", unicodedata.normalize("NFKC", text))


def _show(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)
