"""What kind of value each cell holds, from the field tree and the template's choice lists.

One ``CellType`` per field gives the writer its cell value and data validation and
the reader its parsing, so bounds and choices are stated once (in fields.json and
template.json) and never copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from .fields import Choices, Field

NUMERIC = ("integer", "number")
# What the reader (check/normalize.py) and the live check (spec/live.py) take for "no value".
DASHES = ("-", "－", "—", "―", "‐", "‑", "–", "ー", "ｰ", "−")


@dataclass(frozen=True)
class CellType:
    """``kind``: integer, number, date, text, code, enum, yesno, coded, score, mark or joined.

    ``joined`` is a list of values in one cell, separated by ``separator`` (the labels of a
    multiple choice, or codes matching ``pattern``).

    ``coded`` is an integer or code shown by its label ("09産業と…"); ``score`` a scale
    ("1"…"5", "A"…"C"), possibly with a dash; ``mark`` one check box of a choice set.
    """

    kind: str
    label: str  # full label for messages: 令和4年度の予算額（千円）
    title: str = ""  # the title alone, shared by every year: 予算額（千円）
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    list_name: str | None = None
    values: tuple[Any, ...] = ()  # what each choice stands for in the record (coded, score)
    names: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    dash: str | None = None
    prompt: str | None = None
    decimals: int | None = None
    what: str | None = None  # how a message names a coded value: "SDGsの目標"
    spoken: str | None = None  # how a reading names it: "目標{value}"
    separator: str | None = None  # of a joined cell
    pattern: str | None = None  # of each item of a joined cell without choices

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC

    def to_cell(self, value: Any) -> str | int | float | None:
        """The value as written into the cell."""
        if value is None:
            return None
        if self.kind == "yesno":
            return self.choices[0] if value else self.choices[1]
        if self.kind == "mark":
            return self.choices[0] if value else self.choices[1]
        if self.kind == "coded":
            for v, label in zip(self.values, self.choices, strict=False):
                if v == value:
                    return label
            return str(value)
        if self.kind == "score" and isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
        if self.kind == "integer":
            return int(value)
        if self.kind == "number":
            return float(value)
        if self.kind == "date":
            return excel_serial(value)
        if self.kind == "joined":
            items = value if isinstance(value, list | tuple) else [value]
            labels = dict(zip(self.values, self.choices, strict=False))
            return self.separator.join(str(labels.get(v, v)) for v in items) or None
        return str(value)

    def validation(self) -> dict[str, Any] | None:
        """XlsxWriter ``data_validation`` options (Japanese prompts), or None.

        Worded without the year, so cells of one kind share one validation.
        """
        label = self.title or self.label
        title = _short(label, 32)
        if self.kind in ("enum", "yesno", "coded", "score", "mark"):
            source = f"={self.list_name}" if self.list_name else [c for c in self.choices if c]
            opts = {"validate": "list", "source": source,
                    "input_message": self.prompt or "一覧から選んでください。",
                    "error_message": f"{label}は一覧から選んでください。"}
        elif self.kind in NUMERIC:
            lo, hi = self.minimum, self.maximum
            what = "整数" if self.kind == "integer" else "数値"
            opts = {"validate": "integer" if self.kind == "integer" else "decimal",
                    "criteria": "between", "minimum": lo, "maximum": hi,
                    "input_message": f"{_num(lo)}～{_num(hi)}の{what}を半角で入力してください。",
                    "error_message": (f"{label}には{_num(lo)}～{_num(hi)}の{what}を入力してください。"
                                      "全角文字や単位は入力できません。")}
        elif self.kind == "joined":
            shown = "、".join(self.choices) if self.choices else "例: 8.4 9.1"
            opts = {"validate": "length", "criteria": "<=", "value": 255,
                    "input_message": _short(f"「{self.separator}」で区切って入力してください（{shown}）。", 255),
                    "error_message": f"{label}が長すぎます。"}
        elif self.kind == "date":
            opts = {"validate": "date", "criteria": "between", "minimum": date(2000, 1, 1),
                    "maximum": date(2100, 12, 31),
                    "input_message": "日付を入力してください（例: 2024/6/10）。",
                    "error_message": f"{label}には日付を入力してください（例: 2024/6/10）。"}
        elif self.kind in ("text", "code") and self.max_length:
            opts = {"validate": "length", "criteria": "<=", "value": self.max_length,
                    "input_message": f"{self.max_length}文字以内で入力してください。",
                    "error_message": f"{label}は{self.max_length}文字以内で入力してください。"}
        else:
            return None
        opts.update(input_title=title, error_title="入力内容を確認してください", error_type="stop",
                    ignore_blank=True)
        return opts

    @property
    def ime_mode(self) -> str:
        """Excel imeMode: off for numbers and codes, hiragana for Japanese text."""
        return "hiragana" if self.kind == "text" else "off"


_EPOCH = date(1899, 12, 30)  # Excel's day 0 (for dates from 1900-03-01)


def excel_serial(value: Any) -> int | None:
    """An ISO date ("2024-06-10") as the day number a spreadsheet stores."""
    try:
        return (date.fromisoformat(str(value)) - _EPOCH).days
    except ValueError:
        return None


def from_serial(serial: float) -> str:
    """The ISO date of a spreadsheet day number."""
    return (_EPOCH + timedelta(days=int(serial))).isoformat()


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_DEFAULT_LIST = {"yesno": "yesno"}


def cell_type(leaf: Field, label: str, lists: dict[str, Choices], option: str | None = None) -> CellType:
    """The cell type of ``leaf`` (one ``option`` of it, for a check box of a choice set)."""
    title = leaf.titled
    list_key = leaf.list or _DEFAULT_LIST.get(leaf.kind)
    choices = lists.get(list_key) if list_key else None
    if leaf.parent is not None and leaf.parent.kind == "list" and choices is not None:
        title = leaf.parent.titled  # a dropdown slot of a list is named after the list
    if leaf.joined:
        values = tuple(o.value for o in leaf.options)
        labels = tuple(o.label for o in leaf.options)
        item = leaf.item
        return CellType("joined", label, title, choices=labels, values=values, separator=leaf.joined,
                        pattern=item.pattern if item is not None else None)
    if option is not None:
        marks = leaf.marks
        return CellType("mark", label, title, choices=marks,
                        prompt=f"選ぶときは「{marks[0]}」、選ばないときは「{marks[1] or '空欄'}」にしてください。")
    kind = leaf.kind
    if kind == "yesno":
        assert choices is not None
        return CellType("yesno", label, title, choices=choices.labels[:2], list_name=choices.defined_name)
    if kind in ("choice", "scale") or (kind in ("integer", "code") and choices is not None):
        assert choices is not None
        common = dict(choices=choices.shown, list_name=choices.defined_name, values=choices.values,
                      names=choices.names, prefixes=choices.prefixes, dash=choices.dash, prompt=choices.prompt,
                      what=choices.what, spoken=choices.spoken)
        if kind == "scale":
            return CellType("score", label, title, **common)
        if kind == "choice":
            return CellType("enum", label, title, **common)
        return CellType("coded", label, title, **common)
    if kind in NUMERIC:
        return CellType(kind, label, title, leaf.min, leaf.max, decimals=leaf.decimals)
    if kind == "date":
        return CellType("date", label, title)
    return CellType("code" if kind == "code" else "text", label, title, max_length=leaf.max_length)
