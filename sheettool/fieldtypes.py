"""What kind of value each field holds, derived from the record schema.

One ``FieldType`` per field gives the writer its cell value and data
validation, and the reader its parsing, so bounds and choices are stated once
(in schemas/record.schema.json) and never copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from . import lists, schema

NUMERIC = ("integer", "number", "score", "yesno", "year")


@dataclass(frozen=True)
class FieldType:
    """``kind`` is integer, number, text, code, enum, yesno, sdg, score or year."""

    kind: str
    label: str  # full label for messages: 令和4年度の予算額（千円）
    title: str = ""  # the schema title alone, shared by every year: 予算額（千円）
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    list_name: str | None = None

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "number", "year")

    def to_cell(self, value: Any) -> str | int | float | None:
        """The value as written into the cell."""
        if value is None:
            return None
        if self.kind == "yesno":
            return lists.YES if value else lists.NO
        if self.kind == "sdg":
            return lists.sdg_label(value)
        if self.kind in ("integer", "year", "score"):
            return int(value)
        if self.kind == "number":
            return float(value)
        return str(value)

    def validation(self) -> dict[str, Any] | None:
        """XlsxWriter ``data_validation`` options (Japanese prompts), or None.

        Worded without the year, so cells of one kind share one validation.
        """
        label = self.title or self.label
        title = _short(label, 32)
        if self.kind in ("enum", "yesno", "sdg", "score"):
            opts = {"validate": "list", "source": f"={self.list_name}",
                    "input_message": "一覧から選んでください。",
                    "error_message": f"{label}は一覧から選んでください。"}
            if self.kind == "score":
                opts["input_message"] = "1～5の点数を選んでください。法令等で実施が定められている場合は「-」。"
        elif self.kind in ("integer", "number"):
            lo, hi = self.minimum, self.maximum
            what = "整数" if self.kind == "integer" else "数値"
            opts = {"validate": "integer" if self.kind == "integer" else "decimal",
                    "criteria": "between", "minimum": lo, "maximum": hi,
                    "input_message": f"{_num(lo)}～{_num(hi)}の{what}を半角で入力してください。",
                    "error_message": (f"{label}には{_num(lo)}～{_num(hi)}の{what}を入力してください。"
                                      "全角文字や単位は入力できません。")}
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


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@cache
def field_type(path: str, fmt: str | None = None) -> FieldType:
    """The type of the field at ``path``; ``fmt`` is the spec's format for the cell."""
    prop = schema.property_schema(path)
    label = schema.field_label(path)
    title = prop.get("title", label)
    types = prop.get("type", [])
    types = types if isinstance(types, list) else [types]
    leaf = path.split(".")[-1]
    if fmt == "sdg" or path.startswith("sdgs."):
        return FieldType("sdg", label, "SDGs", choices=lists.SDG_LABELS, list_name="list_sdgs")
    if fmt == "score" or path.startswith("evaluation."):
        return FieldType("score", label, title, choices=lists.SCORE_CHOICES, list_name="list_score")
    if "boolean" in types:
        return FieldType("yesno", label, title, choices=(lists.YES, lists.NO), list_name="list_yesno")
    if "enum" in prop:
        choices = tuple(c for c in prop["enum"] if c is not None)
        return FieldType("enum", label, title, choices=choices, list_name=f"list_{leaf}")
    if fmt == "year":
        return FieldType("year", label, title, prop.get("minimum"), prop.get("maximum"))
    if "integer" in types:
        return FieldType("integer", label, title, prop.get("minimum"), prop.get("maximum"))
    if "number" in types:
        return FieldType("number", label, title, prop.get("minimum"), prop.get("maximum"))
    kind = "code" if fmt == "code" else "text"
    return FieldType(kind, label, title, max_length=prop.get("maxLength"))


def dropdown_lists() -> dict[str, tuple[str, ...]]:
    """Every list a dropdown may point at, by defined name."""
    out: dict[str, tuple[str, ...]] = {
        "list_sdgs": lists.SDG_LABELS,
        "list_score": lists.SCORE_CHOICES,
        "list_yesno": (lists.YES, lists.NO),
    }
    for path in ("status", "category", "delivery", "direction", "indicators.1.kind"):
        ft = field_type(path)
        out[ft.list_name] = ft.choices
    return out
