"""The record JSON Schema, generated from a template's field tree, and validation in Japanese.

``record_schema`` builds the schema (JSON Schema 2020-12, a Japanese ``title`` on every
property) that ``templates/<id>/record.schema.json`` holds; ``sheettool template schema``
writes it and lint refuses a stale one. ``combined_schema`` is schemas/record.schema.json
(CONTRACT §1): every template's schema, chosen by the record's ``template`` (none:
the default template). ``Validator`` answers valid / invalid fast and lists the
problems of an invalid record with Japanese messages.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

from .fields import REPEAT_KEY, SERIES_KEY, Choices, Field, json_to_path, label

ID_BASE = "https://sheettool.example/"
SERIES_YEARS = (1990, 2110)
_TYPE_JA = {"integer": "整数", "number": "数値", "string": "文字列", "boolean": "有無",
            "array": "一覧", "object": "項目のまとまり", "null": "空欄"}


def _nullable(kind: str | list[str], required: bool) -> str | list[str]:
    kinds = kind if isinstance(kind, list) else [kind]
    return kinds[0] if required and len(kinds) == 1 else [*kinds, *([] if required else ["null"])]


def field_schema(f: Field, lists: dict[str, Choices], required: bool | None = None) -> dict[str, Any]:
    """The schema of one field; ``required`` (default: the field's own) makes it non-null."""
    req = f.required if required is None else required
    out: dict[str, Any] = {"title": f.titled}
    kind = f.kind
    if kind in ("text", "code"):
        out["type"] = _nullable("string", req)
        for key, name in (("min_length", "minLength"), ("max_length", "maxLength"), ("pattern", "pattern")):
            if getattr(f, key) is not None:
                out[name] = getattr(f, key)
    elif kind == "date":
        out.update(type=_nullable("string", req), format="date", pattern=r"^\d{4}-\d{2}-\d{2}$")
    elif kind in ("integer", "number"):
        out["type"] = _nullable(kind, req)
        if f.min is not None:
            out["minimum"] = f.min
        if f.max is not None:
            out["maximum"] = f.max
    elif kind == "yesno":
        out["type"] = _nullable("boolean", req)
    elif kind in ("choice", "scale") and f.options and not f.list:
        out["enum"] = [o.value for o in f.options] + ([] if req else [None])
    elif kind in ("choice", "scale"):
        values = list(lists[f.list].values)
        if kind == "scale" and all(isinstance(v, int) for v in values) and values == list(
                range(values[0], values[0] + len(values))):
            out.update(type=_nullable("integer", req), minimum=values[0], maximum=values[-1])
        else:
            out["enum"] = values + ([] if req else [None])
    elif kind == "multi":
        out.update(type=_nullable("array", req), uniqueItems=True,
                   items={"title": f.item_title or f.title, "enum": [o.value for o in f.options]})
    elif kind == "group":
        out["type"] = _nullable("object", req)
        out.update(_object(f, lists))
    elif kind in ("series", "repeat"):
        out["type"] = "array"
        if f.max_items is not None:
            out["maxItems"] = f.max_items
        key = SERIES_KEY if kind == "series" else REPEAT_KEY
        if kind == "series":
            key_schema = {"title": "年度", "type": "integer", "minimum": SERIES_YEARS[0],
                          "maximum": SERIES_YEARS[1]}
        else:
            key_schema = {"title": f.key_title or "番号", "type": "integer", "minimum": 1,
                          "maximum": f.max_items or 99}
        item = {"title": f.item_title or f.title, "type": "object", "additionalProperties": False}
        body = _object(f, lists)
        item["required"] = [key, *body.get("required", [])]
        item["properties"] = {key: key_schema, **body["properties"]}
        out["items"] = item
    elif kind == "list":
        out["type"] = _nullable("array", req)
        if f.unique:
            out["uniqueItems"] = True
        if f.max_items is not None:
            out["maxItems"] = f.max_items
        assert f.item is not None
        out["items"] = field_schema(f.item, lists, required=True)
    return out


def _object(f: Field, lists: dict[str, Choices]) -> dict[str, Any]:
    out: dict[str, Any] = {"additionalProperties": False}
    required = [name for name, child in f.fields.items() if child.required]
    if required:
        out["required"] = required
    out["properties"] = {name: field_schema(child, lists) for name, child in f.fields.items()}
    return out


def record_schema(template_id: str, root: Field, lists: dict[str, Choices], *, title: str,
                  description: str | None, default: bool) -> dict[str, Any]:
    """The whole record schema of one template. ``template`` is required unless ``default``."""
    body = _object(root, lists)
    props = {"template": {"title": "様式（テンプレートID）", "const": template_id}, **body["properties"]}
    required = [*([] if default else ["template"]), *body.get("required", [])]
    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{ID_BASE}templates/{template_id}/record.schema.json",
        "title": title,
    }
    if description:
        out["description"] = description
    out.update(type="object", additionalProperties=False, required=required, properties=props)
    return out


def combined_schema(schemas: dict[str, dict[str, Any]], default: str) -> dict[str, Any]:
    """schemas/record.schema.json: the template a record names (none: ``default``) decides its schema."""
    defs = {}
    for tid, schema in schemas.items():
        inner = copy.deepcopy(schema)
        inner.pop("$schema", None)
        inner.pop("$id", None)
        defs[tid] = inner
    branches = [{"if": {"properties": {"template": {"const": tid}}, "required": ["template"]},
                 "then": {"$ref": f"#/$defs/{tid}"}} for tid in schemas if tid != default]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{ID_BASE}schemas/record.schema.json",
        "title": "事務事業評価の記録（1事業・1評価年度）",
        "description": ("様式ごとの記録の定義（templates/<id>/record.schema.json）をまとめたもの。"
                        f"記録の template が様式を決める（無ければ {default}）。"),
        "type": "object",
        "required": ["fiscal_year", "project_no"],
        "properties": {"template": {"title": "様式（テンプレートID）", "enum": sorted(schemas)}},
        "allOf": [*branches,
                  {"if": {"not": {"required": ["template"]}}, "then": {"$ref": f"#/$defs/{default}"}},
                  {"if": {"properties": {"template": {"const": default}}, "required": ["template"]},
                   "then": {"$ref": f"#/$defs/{default}"}}],
        "$defs": defs,
    }


def rates_schema(template_id: str, fields: dict[str, Field], title: str) -> dict[str, Any]:
    """The rates file's schema (CONTRACT §3 for the default template): rates by fiscal year."""
    props = {name: field_schema(f, {}, required=True) for name, f in fields.items()}
    props["note"] = {"title": "備考", "type": "string", "maxLength": 500}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{ID_BASE}templates/{template_id}/rates.schema.json",
        "title": title,
        "description": "キーは西暦の会計年度。金額は円。",
        "type": "object",
        "propertyNames": {"pattern": "^(19|20|21)[0-9]{2}$"},
        "minProperties": 1,
        "additionalProperties": {
            "title": "年度の単価",
            "type": "object",
            "additionalProperties": False,
            "required": list(fields),
            "properties": props,
        },
    }


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class SchemaProblem:
    """One schema violation: the field path, its Japanese label and what is wrong."""

    path: str
    label: str
    problem: str
    value: Any = None


class Validator:
    """Valid / invalid by a compiled check (fastjsonschema), every problem by jsonschema."""

    def __init__(self, schema: dict[str, Any], root: Field) -> None:
        self.schema = schema
        self.root = root
        import jsonschema  # here: a run that validates nothing never imports it

        self._full = jsonschema.Draft202012Validator(schema)
        self._fast = None

    def is_valid(self, record: Any) -> bool:
        import fastjsonschema

        if self._fast is None:
            # fastjsonschema compiles draft 7 at newest; our keywords mean the same there
            draft7 = copy.deepcopy(self.schema)
            draft7["$schema"] = "http://json-schema.org/draft-07/schema#"
            self._fast = fastjsonschema.compile(draft7)
        try:
            self._fast(record)
        except fastjsonschema.JsonSchemaException:
            return False
        except (RecursionError, ValueError, TypeError, OverflowError):
            return False
        return True

    def problems(self, record: Any) -> list[SchemaProblem]:
        """All violations of ``record`` in document order (none, fast, for a valid one)."""
        if self.is_valid(record):
            return []
        errors = sorted(self._full.iter_errors(record), key=lambda e: [str(p) for p in e.absolute_path])
        return [self._problem(record, e) for e in errors]

    def _problem(self, record: Any, error: jsonschema.ValidationError) -> SchemaProblem:
        path = json_to_path(self.root, record, list(error.absolute_path))
        where = label(self.root, path) if path else "記録"
        return SchemaProblem(path, where, self._describe(error), error.instance)

    def _describe(self, error: jsonschema.ValidationError) -> str:
        v, s, inst = error.validator, error.validator_value, error.instance
        if v == "type":
            expected = "または".join(_TYPE_JA.get(t, t) for t in (s if isinstance(s, list) else [s]) if t != "null")
            return f"の値「{_show(inst)}」は{expected}ではありません。"
        if v in ("minimum", "maximum"):
            return bound_problem(inst, s if v == "minimum" else None, s if v == "maximum" else None) or ""
        if v == "enum":
            choices = "、".join(str(c) for c in s if c is not None)
            return f"の値「{_show(inst)}」は選択肢にありません。次から選んでください: {choices}。"
        if v == "const":
            return f"の値「{_show(inst)}」は「{s}」である必要があります。"
        if v == "maxLength":
            return f"は{s}文字以内にしてください（現在 {len(inst)}文字）。"
        if v == "minLength":
            return "が空です。入力してください。"
        if v == "required":
            missing = [m for m in s if m not in (inst or {})]
            props = error.schema.get("properties", {})
            labels = "、".join(props.get(m, {}).get("title", m) for m in missing)
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


def bound_problem(value: Any, minimum: float | None, maximum: float | None) -> str | None:
    """What is wrong with a number outside [minimum, maximum] (worded as the schema's problems), or None."""
    if minimum is not None and value < minimum:
        return f"は{_show(minimum)}以上にしてください（現在 {_show(value)}）。"
    if maximum is not None and value > maximum:
        return f"は{_show(maximum)}以下にしてください（現在 {_show(value)}）。"
    return None


def _show(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 1e15:
        return repr(float(value))  # 1.7976931348623157e+308 (LibreOffice's 1E+400), not 309 digits
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"
