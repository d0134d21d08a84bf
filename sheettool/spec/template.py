"""One template (``templates/<id>/``), loaded and compiled into the object every command uses.

The folder holds the sheet as data:

- ``template.json``: id, version, name, year windows and the meaning of their columns,
  choice lists, lookup tables, the rates' fields;
- ``fields.json``: the field tree (what a record holds);
- ``formulas.json``: each formula once, as text in the formula language (formula.py);
- ``layout.json``: where every label and field sits, print setup;
- ``rules.json``: the checks beyond the schema, as generic rule kinds with parameters;
- ``rollforward.json``: what next year's sheet carries, resets and moves;
- ``master.json``: the master book's columns and aggregates;
- ``rates.json``: the default rates; ``record.schema.json`` and ``rates.schema.json``:
  generated from the above (``sheettool template schema``), checked in.

``Template`` is passed everywhere; it caches what it derives (placements, bound
formulas, cell types) on itself, never in a module-level cache keyed by a path.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

from .. import resources
from . import fields as fields_mod
from . import formula as fx
from .celltypes import CellType, cell_type
from .fields import Choices, Field, FieldError, parse_field, parse_tree
from .layout import Layout, Placement, Window
from .master import MasterSpec
from .rules import Rule, parse_rules
from .schema import Validator, rates_schema, record_schema

DEFAULT_TEMPLATE = "tsukuba"
FILES = ("template.json", "fields.json", "formulas.json", "layout.json", "rules.json", "rollforward.json",
         "master.json")
_NAME = re.compile(r"[a-z0-9_-]+")
_SELECTION = re.compile(r"(\w+)\[(\w+)\]\.(\w+)")


class TemplateError(ValueError):
    """The template is missing or invalid; the message is Japanese (file and JSON pointer)."""


@dataclass(frozen=True)
class FormulaDef:
    """One formula of formulas.json: the cells it fills (``target``, with placeholders) and its text.

    ``source`` is one text, or one per column meaning of the target's year window
    (「実績」 years and 「計画」 years computed differently).
    """

    name: str
    title: str
    target: str
    source: str | dict[str, str]
    pattern: re.Pattern
    label: str | None = None  # how findings name the cell: "{evaluation.{item}}の文"

    def match(self, path: str) -> dict[str, str] | None:
        m = self.pattern.fullmatch(path)
        return m.groupdict() if m else None


def _pattern(target: str) -> re.Pattern:
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", target):
        out.append(re.escape(target[pos:m.start()]))
        name = m.group(1)
        out.append(f"(?P<{name}>\\d+)" if name in ("year", "n") else f"(?P<{name}>[^.]+)")
        pos = m.end()
    out.append(re.escape(target[pos:]))
    return re.compile("".join(out))


class Template:
    """A compiled template folder. Build with ``load``; raises TemplateError when it is broken."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.raw: dict[str, Any] = {name: _read(directory / name) for name in FILES}
        for name in FILES:
            _conform(directory, name, self.raw[name])
        meta = self.raw["template.json"]
        self.id: str = meta["template_id"]
        self.version: str = meta["template_version"]
        self.name: str = meta.get("name", self.id)
        self.money_unit: str = meta.get("money_unit", "円")
        try:
            self.lists = {k: Choices.parse(k, v) for k, v in meta.get("lists", {}).items()}
            self.windows = {k: Window.parse(k, v) for k, v in meta.get("windows", {}).items()}
            self.tree: Field = parse_tree(self.raw["fields.json"])
            rates = meta.get("rates") or {}
            self.rate_fields: dict[str, Field] = {
                k: parse_field(k, v, "/rates/fields") for k, v in (rates.get("fields") or {}).items()}
        except (FieldError, KeyError, TypeError) as e:
            raise TemplateError(f"{directory} の定義が正しくありません: {e}") from None
        self.rates_title: str = rates.get("title", "単価（年度別）")
        self.rates_item_title: str = rates.get("item_title", "年度の単価")
        self.rates_file: str | None = rates.get("file")
        self.rates_future: str | None = rates.get("future")
        self.tables: dict[str, dict[str, str]] = self._tables(meta.get("tables") or {})
        self.formulas: dict[str, FormulaDef] = {}
        for name, data in self.raw["formulas.json"].items():
            if name.startswith("$"):
                continue
            self.formulas[name] = FormulaDef(name, data.get("title", name), data["target"], data["formula"],
                                             _pattern(data["target"]), data.get("label"))
        self.layout = Layout(self.raw["layout.json"], self.windows, self.formula_of, self._office, self.tables)
        try:
            self.rules: list[Rule] = parse_rules(self.raw["rules.json"])
        except (ValueError, KeyError, TypeError) as e:
            raise TemplateError(f"{directory} の規則が正しくありません: {e}") from None
        self.roll: dict[str, Any] = self.raw["rollforward.json"]
        self.master: dict[str, Any] = self.raw["master.json"]
        self._types: dict[tuple[str, str | None], CellType] = {}
        self._bound: dict[tuple[str, int], fx.Expr] = {}
        self._parsed: dict[str, fx.Expr] = {}

    def __repr__(self) -> str:
        return f"Template({self.id!r}, {str(self.directory)!r})"

    # ------------------------------------------------------------------ identity

    @property
    def is_default(self) -> bool:
        return self.id == DEFAULT_TEMPLATE

    @property
    def sheet_name(self) -> str:
        return self.layout.sheet_name

    @property
    def default_rates_path(self) -> Path | None:
        return self.directory / self.rates_file if self.rates_file else None

    @cached_property
    def digest(self) -> str:
        """What identifies the sheet's definition (every spec file), for ``_meta``."""
        text = json.dumps({k: v for k, v in self.raw.items()}, ensure_ascii=False, sort_keys=True,
                          separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def _tables(self, spec: dict[str, str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for prefix, filename in spec.items():
            data = _read(self.directory / filename)
            for item, table in data.items():
                if isinstance(table, dict) and not item.startswith("$"):
                    out[f"{prefix}_{item}"] = {k: v for k, v in table.items()
                                               if isinstance(v, str) and k not in ("title",)}
        return out

    # ------------------------------------------------------------------ fields

    def get(self, record: Any, path: str) -> Any:
        return fields_mod.get(self.tree, record, path)

    def set_(self, record: dict[str, Any], path: str, value: Any) -> None:
        fields_mod.set_(self.tree, record, path, value)

    def label(self, path: str) -> str:
        """'costs.2022.budget' → '令和4年度の予算額（千円）'; rates and computed cells too."""
        parts = path.split(".")
        if parts[0] == "rates" and len(parts) == 3 and parts[1].isdigit() and parts[2] in self.rate_fields:
            from .. import wareki

            return f"{wareki.fiscal_label(int(parts[1]))}の{self.rate_fields[parts[2]].titled}"
        if fields_mod.steps(self.tree, path) is None:
            for f in self.formulas.values():
                subs = f.match(path)
                if subs is not None and f.label:
                    text = fx.substitute(f.label, subs)
                    return re.sub(r"\{([^{}]+)\}", lambda m: self.label(m.group(1)), text)
                if subs is not None:
                    return f.title
            return path
        return fields_mod.label(self.tree, path)

    def field(self, path: str) -> Field | None:
        return fields_mod.leaf_of(self.tree, path)

    def cell_type(self, path: str) -> CellType:
        """How the cell of field ``path`` is written, validated and read."""
        key = (path, None)
        found = self._types.get(key)
        if found is None:
            steps = fields_mod.steps(self.tree, path)
            if not steps:
                raise KeyError(path)
            last = steps[-1]
            leaf = last.field.item if last.field.kind == "list" and last.key is not None else last.field
            option = last.key if leaf.options and not leaf.joined and last.key is not None else None
            found = self._types[key] = cell_type(leaf, self.label(path), self.lists, option)
        return found

    def dropdown_lists(self) -> dict[str, Choices]:
        """Every list a dropdown of this template may point at, by defined name, in template order."""
        used = {f.list or ("yesno" if f.kind == "yesno" else None) for f in self.tree.leaves()}
        return {c.defined_name: c for k, c in self.lists.items() if k in used}

    # ------------------------------------------------------------------ layout

    def place(self, fiscal_year: int) -> Placement:
        return self.layout.place(fiscal_year)

    def _office(self, path: str) -> bool:
        """Entered by the evaluation office (二次評価): locked in a department's workbook."""
        node: Field | None = self.field(path)
        while node is not None:
            if node.entered_by == "office":
                return True
            node = node.parent
        return False

    def formula_of(self, path: str, fiscal_year: int | None = None) -> str | None:
        """The name of the formula that fills ``path`` (in the sheet of ``fiscal_year``), if one does.

        A formula given per column meaning fills only the years whose meaning it names.
        """
        for f in self.formulas.values():
            if f.match(path) is not None:
                if isinstance(f.source, dict) and fiscal_year is not None and \
                        self.meaning_of(path, fiscal_year) not in f.source:
                    continue
                return f.name
        return None

    # ------------------------------------------------------------------ formulas

    def bound(self, path: str, fiscal_year: int) -> fx.Expr:
        """The formula of cell ``path`` with every name resolved, noise-guarded (see formula.py)."""
        key = (path, fiscal_year)
        found = self._bound.get(key)
        if found is None:
            if len(self._bound) > 20_000:
                self._bound.clear()
            found = self._bound[key] = self._bind(path, fiscal_year)
        return found

    def _bind(self, path: str, fiscal_year: int) -> fx.Expr:
        name = self.formula_of(path, fiscal_year)
        if name is None:
            raise KeyError(path)
        f = self.formulas[name]
        subs = f.match(path) or {}
        source = f.source
        if isinstance(source, dict):
            meaning = self.meaning_of(path, fiscal_year)
            if meaning not in source:
                raise TemplateError(f"formulas.json /{name}/formula: 列の意味「{meaning}」の式がありません")
            source = source[meaning]
        text = fx.substitute(source, subs)
        tree = self._parsed.get(text)
        if tree is None:
            tree = self._parsed[text] = fx.parse(text)
        bound = fx.bind(tree, lambda n: self.resolve(n, path))
        return fx.guard_noise(bound)

    def evaluate(self, path: str, fiscal_year: int, value: Callable[[str], Any]) -> fx.Value:
        """The value of formula cell ``path``: inputs and rates from ``value(path)``, and the
        cells of other formulas it reads computed the same way."""
        active: set[str] = set()

        def get(ref: str) -> Any:
            if self.formula_of(ref, fiscal_year) is None:
                return value(ref)
            if ref in active:  # a cycle (lint refuses them): nothing to compute from
                return None
            active.add(ref)
            try:
                return self.bound(ref, fiscal_year).evaluate(fx.Env(get, self.tables))
            finally:
                active.discard(ref)

        active.add(path)
        return self.bound(path, fiscal_year).evaluate(fx.Env(get, self.tables))

    def meaning_of(self, path: str, fiscal_year: int) -> str | None:
        """The column meaning (決算, 予算, 計画 …) of the year entry ``path`` is in."""
        steps = fields_mod.steps(self.tree, path) or []
        for step in reversed(steps):
            if step.field.kind == "series" and step.key is not None:
                window = self.windows.get(step.field.window or "")
                return window.meaning(int(step.key), fiscal_year) if window else None
        return None

    def resolve(self, name: str, target: str) -> fx.Expr:
        """A name of a formula of cell ``target``: a table, a rate, a sibling field or a field path."""
        if name in self.tables:
            return fx.Table(name)
        if name.startswith("rates."):
            key = name.split(".", 1)[1]
            year = _year_of(self.tree, target)
            if key not in self.rate_fields or year is None:
                raise fx.FormulaSyntaxError(f"単価「{key}」はこの様式の単価にないか、年度の列の外で使われています")
            return fx.Ref(f"rates.{year}.{key}", _decimals(self.rate_fields[key]))
        selection = _SELECTION.fullmatch(name)
        if selection:
            return self._select(target, *selection.groups())
        parent = target.rpartition(".")[0]
        for candidate in ((f"{parent}.{name}" if parent else name), name):
            leaf = fields_mod.leaf_of(self.tree, candidate)
            if leaf is not None and leaf.is_leaf:
                return fx.Ref(candidate, _decimals(leaf))
        if self.formula_of(name) is not None:
            return fx.Ref(name)
        raise fx.FormulaSyntaxError(f"「{name}」は項目・単価・表のどれでもありません")

    def _select(self, target: str, items: str, chosen: str, member: str) -> fx.Expr:
        """``items[chosen].member``: the chosen repeat items' ``member`` (of the target's year)."""
        repeat = self.tree.fields.get(items)
        choice = self.tree.fields.get(chosen)
        if repeat is None or repeat.kind != "repeat" or choice is None or choice.kind != "multi":
            raise fx.FormulaSyntaxError(f"「{items}[{chosen}]」は繰り返し項目と、その番号の複数選択ではありません")
        year = _year_of(self.tree, target)
        terms = []
        for option in choice.options:
            path = f"{items}.{option.value}.{year}.{member}" if year is not None else f"{items}.{option.value}.{member}"
            leaf = fields_mod.leaf_of(self.tree, path)
            if leaf is None or not leaf.is_leaf:
                raise fx.FormulaSyntaxError(f"「{path}」はこの様式の項目ではありません")
            if choice.joined:
                flag: fx.Expr = fx.Member(fx.Ref(chosen), option.value, option.label)
            else:
                flag = fx.Ticked(fx.Ref(f"{chosen}.{option.key}"), choice.marks[0])
            terms.append(fx.Chosen(flag, fx.Ref(path, _decimals(leaf))))
        return fx.Select(tuple(terms))

    def condition(self, text: str, subs: dict[str, Any] | None = None) -> fx.Expr:
        """A rule's condition over field paths, bound (names are paths of the record)."""
        text = fx.substitute(text, subs or {})
        tree = self._parsed.get(text)
        if tree is None:
            tree = self._parsed[text] = fx.parse(text)
        return fx.bind(tree, self._resolve_path)

    def holds(self, text: str, record: dict[str, Any], fiscal_year: int) -> tuple[bool, dict[str, Any]]:
        """Whether condition ``text`` holds for ``record``, and the values it read (for a message)."""
        expr = self.condition(text, {"fiscal_year": fiscal_year})
        values = {path: self.get(record, path) for path in expr.refs()}
        result = expr.evaluate(fx.Env(values, self.tables))
        return result is True or (isinstance(result, Decimal) and result != 0), values

    def _resolve_path(self, name: str) -> fx.Expr:
        leaf = fields_mod.leaf_of(self.tree, name)
        if leaf is None or not leaf.is_leaf:
            raise fx.FormulaSyntaxError(f"「{name}」はこの様式の項目ではありません")
        return fx.Ref(name, _decimals(leaf))

    # ------------------------------------------------------------------ the record

    @cached_property
    def schema(self) -> dict[str, Any]:
        fields = self.raw["fields.json"]
        return record_schema(self.id, self.tree, self.lists, title=fields.get("title", self.name),
                             description=fields.get("description"), default=self.is_default)

    @cached_property
    def rates_schema(self) -> dict[str, Any]:
        schema = rates_schema(self.id, self.rate_fields, self.rates_title)
        schema["additionalProperties"]["title"] = self.rates_item_title
        return schema

    @cached_property
    def office_paths(self) -> list[str]:
        """The fields the evaluation office enters (二次評価, its comments), as paths, in field order."""
        out: list[str] = []

        def walk(f: Field, prefix: str, office: bool) -> None:
            office = office or f.entered_by == "office"
            path = f"{prefix}{f.name}"
            if f.is_leaf:
                if office:
                    out.append(path)
            elif f.kind == "group":
                for child in f.fields.values():
                    walk(child, path + ".", office)

        for f in self.tree.fields.values():
            walk(f, "", False)
        return out

    @cached_property
    def master_spec(self) -> MasterSpec:
        return MasterSpec(self)

    @cached_property
    def validator(self) -> Validator:
        return Validator(self.schema, self.tree)

    def canonical(self, record: dict[str, Any]) -> dict[str, Any]:
        """One spelling of a record: every field present, in field order.

        Series entries are sorted by year and dropped when empty; repeat items sorted by
        number and dropped without their required fields (a rule reports those); positional
        lists compacted (None when empty); a group marked ``omit_empty`` kept only when it
        holds something. ``template`` comes first, except for a default-template record
        that did not name it (CONTRACT §5).
        """
        out: dict[str, Any] = {}
        if not self.is_default or "template" in record:
            out["template"] = self.id
        for name, f in self.tree.fields.items():
            value = record.get(name)
            if f.kind == "group" and f.omit_empty:
                group = _group(f, value)
                if any(v is not None for v in group.values()):
                    out[name] = group
                continue
            out[name] = _canonical(f, value)
        return out


def _group(f: Field, value: Any) -> dict[str, Any]:
    value = value if isinstance(value, dict) else {}
    return {k: _group(c, value.get(k)) if c.kind == "group" else value.get(k) for k, c in f.fields.items()}


def _canonical(f: Field, value: Any) -> Any:
    if f.kind == "group":
        return _group(f, value)
    if f.kind == "series":
        return _entries(f, value, fields_mod.SERIES_KEY)
    if f.kind == "repeat":
        rows = []
        for item in value or []:
            if not isinstance(item, dict) or any(not item.get(k) for k, c in f.fields.items() if c.required):
                continue
            row = {fields_mod.REPEAT_KEY: item.get(fields_mod.REPEAT_KEY)}
            for k, c in f.fields.items():
                row[k] = _canonical(c, item.get(k)) if c.kind in ("series", "repeat") else item.get(k)
            rows.append(row)
        return sorted(rows, key=lambda r: r[fields_mod.REPEAT_KEY])
    if f.kind == "list":
        items = [v for v in value or [] if v is not None and v != {}]
        return items or None
    return value


def _entries(f: Field, value: Any, key: str) -> list[dict[str, Any]]:
    keys = [key, *f.fields]
    rows = [{k: e.get(k) for k in keys} for e in value or [] if isinstance(e, dict)]
    return sorted((r for r in rows if any(r[k] is not None for k in keys[1:])), key=lambda r: r[key])


def _decimals(f: Field) -> int | None:
    if f.kind == "integer":
        return 0
    return f.decimals if f.kind == "number" else None


def _year_of(tree: Field, path: str) -> int | None:
    for step in reversed(fields_mod.steps(tree, path) or []):
        if step.field.kind == "series" and step.key is not None:
            return int(step.key)
    return None


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"テンプレートのファイルが見つかりません: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TemplateError(f"テンプレートのファイル {path} を読み取れません: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TemplateError(f"テンプレートのファイル {path} の {e.lineno}行目 {e.colno}文字目がJSONとして"
                            "正しくありません。") from None


def _conform(directory: Path, name: str, data: Any) -> None:
    """The file's shape (schemas/template.schema.json), or TemplateError naming file and JSON pointer."""
    import jsonschema

    schema = resources.schema("template")
    sub = {"$ref": f"#/$defs/{name.removesuffix('.json')}", "$defs": schema["$defs"]}
    errors = sorted(jsonschema.Draft202012Validator(sub).iter_errors(data), key=lambda e: list(map(str, e.path)))
    if errors:
        e = errors[0]
        pointer = "/" + "/".join(str(p) for p in e.absolute_path)
        raise TemplateError(f"{directory / name} の {pointer} が正しくありません: {_say(e)}")


def _say(error: Any) -> str:
    v, s = error.validator, error.validator_value
    if v == "required":
        missing = [m for m in s if m not in (error.instance or {})]
        return f"必要な項目 {', '.join(missing)} がありません。"
    if v == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"知らない項目 {', '.join(extra)} があります。"
    if v == "enum":
        return f"「{error.instance}」は次のどれかにしてください: {', '.join(map(str, s))}。"
    if v == "type":
        return f"値「{error.instance}」の型が違います。"
    if v in ("oneOf", "anyOf"):
        return "どの形式にも当てはまりません。"
    if v == "pattern":
        return f"「{error.instance}」の形式が正しくありません。"
    return f"{v} の条件を満たしません（{error.message}）。"


_LOADED: dict[tuple[Path, tuple], Template] = {}


def load_unchecked(name: str | Path = DEFAULT_TEMPLATE) -> Template:
    """The template called ``name`` under templates/, or the template folder ``name``, not linted.

    Loaded once per process while its files stay as they are (edited files load again).
    """
    directory = Path(name)
    if not directory.is_dir():
        if not _NAME.fullmatch(str(name)):
            raise TemplateError(f"テンプレート名が不正です: {name}")
        directory = resources.templates_dir() / str(name)
        if not directory.is_dir():
            known = ", ".join(available()) or "（なし）"
            raise TemplateError(f"テンプレート「{name}」がありません（あるもの: {known}）。")
    directory = directory.resolve()
    signature = tuple(_stat(directory / f) for f in FILES)
    key = (directory, signature)
    found = _LOADED.get(key)
    if found is None:
        if len(_LOADED) > 16:
            _LOADED.clear()
        found = _LOADED[key] = Template(directory)
    return found


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def available() -> list[str]:
    """The ids of the bundled templates."""
    root = resources.templates_dir()
    return sorted(p.name for p in root.iterdir() if (p / "template.json").is_file()) if root.is_dir() else []
