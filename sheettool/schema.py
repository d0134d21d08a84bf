"""The record schema: validation with Japanese messages, and field titles.

Messages are built from each property's Japanese ``title`` in
schemas/record.schema.json, so wording and bounds live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema

from . import resources, wareki
from .recordpath import NUMBER_KEYED, POSITIONAL, YEAR_KEYED

_TYPE_JA = {"integer": "整数", "number": "数値", "string": "文字列", "boolean": "有無",
            "array": "一覧", "object": "項目のまとまり", "null": "空欄"}


@dataclass(frozen=True)
class SchemaProblem:
    """One schema violation: the field path, its Japanese label and what is wrong."""

    path: str
    label: str
    problem: str
    value: Any = None


@cache
def record_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(resources.schema("record"))


@cache
def rates_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(resources.schema("rates"))


@cache
def _fast_record_check():
    """A compiled validator (fastjsonschema) that only answers valid / invalid.

    It is ~20× faster than jsonschema and checked against it in the tests;
    the keywords our schema uses mean the same in draft 7, which is the
    newest draft fastjsonschema compiles.
    """
    import copy

    import fastjsonschema

    compiled_schema = copy.deepcopy(resources.schema("record"))
    compiled_schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(compiled_schema)


def is_valid_record(record: Any) -> bool:
    import fastjsonschema

    try:
        _fast_record_check()(record)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def validate_record(record: Any) -> list[SchemaProblem]:
    """All schema violations of ``record``, in document order.

    Valid records (nearly all) take the compiled fast path; jsonschema
    then lists every violation of an invalid one.
    """
    if is_valid_record(record):
        return []
    errors = sorted(record_validator().iter_errors(record), key=lambda e: [str(p) for p in e.absolute_path])
    return [_problem(record, e) for e in errors]


def field_path(record: Any, json_path: list[Any]) -> str:
    """['costs', 2, 'budget'] → 'costs.2022.budget' (list entries keyed as in CONTRACT §2)."""
    out: list[str] = []
    node: Any = record
    i = 0
    while i < len(json_path):
        part = json_path[i]
        child = node[part] if _has(node, part) else None
        if isinstance(part, int):
            key = None
            if isinstance(child, dict):
                parent = out[-1] if out else ""
                key = {"costs": "year", "values": "year", "indicators": "no"}.get(parent)
            label = child.get(key) if key and isinstance(child, dict) else None
            if out and out[-1] == "values":
                out.pop()  # indicator values are keyed directly by year
            out.append(str(label) if label is not None else str(part + 1))
        else:
            out.append(str(part))
        node = child
        i += 1
    return ".".join(out)


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    if isinstance(node, list):
        return isinstance(part, int) and 0 <= part < len(node)
    return False


def property_schema(path: str) -> dict[str, Any]:
    """The schema of the field at ``path`` ('costs.2022.budget' → costs.items.properties.budget)."""
    return _property_schema(tuple(path.split(".")))


@cache
def _property_schema(parts: tuple[str, ...]) -> dict[str, Any]:
    node = resources.schema("record")
    i = 0
    while i < len(parts):
        part = parts[i]
        props = node.get("properties", {})
        if part in props:
            node = props[part]
            if (part in YEAR_KEYED or part in NUMBER_KEYED or part in POSITIONAL) and i + 1 < len(parts):
                node = node["items"]
                i += 1  # skip the key
        elif part.isdigit() and "values" in props:
            node = props["values"]["items"]
        else:
            return {}
        i += 1
    return node


def field_label(path: str) -> str:
    """Japanese label for messages: 'costs.2022.budget' → '令和4年度の予算額（千円）'."""
    parts = path.split(".")
    title = property_schema(path).get("title", path)
    prefix = ""
    if parts[0] == "costs" and len(parts) > 1 and parts[1].isdigit():
        prefix = wareki.fiscal_label(int(parts[1])) + "の"
    elif parts[0] == "indicators" and len(parts) > 1:
        prefix = f"指標{parts[1]}の"
        if len(parts) > 3 and parts[2].isdigit():
            prefix += wareki.fiscal_label(int(parts[2])) + "の"
    elif parts[0] in POSITIONAL and len(parts) > 1:
        parent = property_schema(parts[0]).get("title", parts[0])
        return f"{parent}（{parts[1]}件目）" + (f"の{title}" if len(parts) > 2 else "")
    elif len(parts) > 1:
        parent = property_schema(parts[0]).get("title", "")
        if parts[0] in ("participation", "evaluation"):
            prefix = parent + "の"
    return prefix + title


def _problem(record: Any, error: jsonschema.ValidationError) -> SchemaProblem:
    path = field_path(record, list(error.absolute_path))
    label = field_label(path) if path else "記録"
    return SchemaProblem(path, label, _describe(error), error.instance)


def _describe(error: jsonschema.ValidationError) -> str:
    v, s, inst = error.validator, error.validator_value, error.instance
    if v == "type":
        expected = "または".join(_TYPE_JA.get(t, t) for t in (s if isinstance(s, list) else [s]) if t != "null")
        return f"の値「{_show(inst)}」は{expected}ではありません。"
    if v == "minimum":
        return f"は{_show(s)}以上にしてください（現在 {_show(inst)}）。"
    if v == "maximum":
        return f"は{_show(s)}以下にしてください（現在 {_show(inst)}）。"
    if v == "enum":
        choices = "、".join(str(c) for c in s if c is not None)
        return f"の値「{_show(inst)}」は選択肢にありません。次から選んでください: {choices}。"
    if v == "maxLength":
        return f"は{s}文字以内にしてください（現在 {len(inst)}文字）。"
    if v == "minLength":
        return "が空です。入力してください。"
    if v == "required":
        missing = [m for m in s if m not in (inst or {})]
        labels = "、".join(property_schema(m).get("title", m) for m in missing)
        return f"に必須の項目がありません: {labels}。"
    if v == "additionalProperties":
        extra = sorted(set(inst) - set(error.schema.get("properties", {})))
        return f"に定義されていない項目があります: {', '.join(extra)}。"
    if v == "pattern":
        return f"の形式が正しくありません（「{_show(inst)}」）。"
    if v == "uniqueItems":
        return "に同じ値が重複しています。"
    if v == "maxItems":
        return f"は{s}件までです（現在 {len(inst)}件）。"
    if v in ("minItems", "minProperties"):
        return "が空です。"
    if v == "propertyNames":
        return f"のキー「{_show(inst)}」が正しくありません。"
    return f"が正しくありません（{error.message}）。"


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"
