"""Turn what a department typed into the field's value — never silently.

``read_value`` returns the value and a list of what had to be changed to get
it (全角 digits, thousands separators, △ negatives, numbers stored as text,
surrounding spaces, a dash meaning "no value"). The checker turns each
non-empty list into one warning at that cell; a value that cannot be read is
an error that keeps the raw text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from . import lists
from .fieldtypes import FieldType
from .xlsxread import ErrorValue

DASHES = {"-", "－", "—", "―", "‐", "‑", "–", "ー", "ｰ", "−"}
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


def read_value(raw: Any, ftype: FieldType) -> Reading:
    """Read ``raw`` (float / str / bool / ErrorValue / None from the cell) as ``ftype``."""
    if raw is None:
        return Reading()
    if isinstance(raw, ErrorValue):
        return Reading(problem=f"セルがエラー値「{raw}」になっています")
    if isinstance(raw, bool):
        raw = float(raw) if ftype.kind != "yesno" else (lists.YES if raw else lists.NO)
    reading = Reading()
    if isinstance(raw, str):
        raw = _clean_text(raw, reading, ftype)
        if raw is None:
            return reading
    kind = ftype.kind
    if kind in ("integer", "number", "year"):
        return _number(raw, ftype, reading)
    if kind == "score":
        return _score(raw, reading)
    if kind == "yesno":
        return _yesno(raw, reading)
    if kind == "sdg":
        return _sdg(raw, reading)
    if kind == "enum":
        return _enum(raw, ftype, reading)
    if isinstance(raw, float):  # a number where text belongs: "04" may have lost its zero
        reading.value = str(int(raw)) if raw.is_integer() else repr(raw)
        reading.changes.append("数値として入力された値を文字列として読みました")
    else:
        reading.value = raw
    return reading


def _clean_text(text: str, reading: Reading, ftype: FieldType) -> str | None:
    stripped = text.strip(_SPACES)
    if stripped != text and stripped:
        reading.changes.append("前後の空白を除きました")
    if not stripped:
        if text:
            reading.changes.append("空白だけのセルを空欄として読みました")
        return None
    if stripped in DASHES and ftype.kind != "score":
        reading.changes.append(f"「{stripped}」を値なし（空欄）として読みました")
        return None
    return stripped


def _number(raw: Any, ftype: FieldType, reading: Reading) -> Reading:
    if isinstance(raw, str):
        parsed = _parse_number_text(raw, reading)
        if parsed is None:
            reading.problem = f"「{raw}」を数値として読み取れません"
            return reading
        raw = parsed
    value = float(raw)
    if ftype.kind in ("integer", "year"):
        if not value.is_integer():
            reading.problem = f"「{_show(value)}」は整数ではありません（小数は入力できません）"
            return reading
        reading.value = int(value)
    else:
        reading.value = value
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
    reading.changes.append("文字列として入力された数値を数値として読みました")
    value = float(t)
    return -value if negative else value


def _score(raw: Any, reading: Reading) -> Reading:
    if isinstance(raw, str):
        t = unicodedata.normalize("NFKC", raw).strip()
        if t in DASHES or t == "-":
            if raw != "-":
                reading.changes.append(f"「{raw}」を「-」として読みました")
            reading.dash = True
            return reading
        if t != raw:
            reading.changes.append("全角の数字を半角にしました")
        if not re.fullmatch(r"[1-5](\.0*)?", t):
            reading.problem = f"「{raw}」は評価の点数（1～5 または -）ではありません"
            return reading
        reading.changes.append("文字列として入力された点数を数値として読みました")
        raw = float(t)
    value = float(raw)
    if not value.is_integer() or not 1 <= value <= 5:
        reading.problem = f"「{_show(value)}」は評価の点数（1～5 または -）ではありません"
        return reading
    reading.value = int(value)
    return reading


def _yesno(raw: Any, reading: Reading) -> Reading:
    t = unicodedata.normalize("NFKC", str(_show(raw) if isinstance(raw, float) else raw)).strip()
    if t in _YES:
        reading.value = True
    elif t in _NO:
        reading.value = False
    else:
        reading.problem = f"「{raw}」は「有」「無」のどちらでもありません"
        return reading
    if t not in (lists.YES, lists.NO):
        reading.changes.append(f"「{raw}」を「{lists.YES if reading.value else lists.NO}」として読みました")
    return reading


def _sdg(raw: Any, reading: Reading) -> Reading:
    text = _show(raw) if isinstance(raw, float) else unicodedata.normalize("NFKC", raw)
    goal = lists.parse_sdg(text)
    if goal is None:
        reading.problem = f"「{raw}」はSDGsの目標（1～17）として読み取れません"
        return reading
    if raw != lists.sdg_label(goal):
        reading.changes.append(f"「{raw}」を目標{goal}として読みました")
    reading.value = goal
    return reading


def _enum(raw: Any, ftype: FieldType, reading: Reading) -> Reading:
    text = _show(raw) if isinstance(raw, float) else raw
    if text in ftype.choices:
        reading.value = text
        return reading
    folded = _fold(text)
    for choice in ftype.choices:
        if _fold(choice) == folded:
            reading.value = choice
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
