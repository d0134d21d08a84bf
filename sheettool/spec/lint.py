"""``sheettool template lint DIR``: what is wrong with a template folder, in Japanese, with file and pointer.

The shape of each file is checked when it is loaded (schemas/template.schema.json); here
the files are checked against each other: every placed field is defined, every input
is placed exactly once, every formula reads only placed cells, rates and tables, every
path a rule, the roll-forward or the master book names exists, and the generated
schemas are current. ``generate`` and ``check`` refuse a template with problems.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from . import fields as fields_mod
from . import formula as fx
from .fields import Field
from .template import Template

SAMPLE_YEAR = 2024  # the layout is placed for one year; paths are the same shape in every year


@dataclass(frozen=True)
class Problem:
    file: str
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.file} {self.pointer}: {self.message}"


def lint(tpl: Template) -> list[Problem]:
    """Every problem of ``tpl``; empty when the template can be used."""
    out: list[Problem] = []
    out += _windows(tpl)
    out += _fields(tpl)
    placement = tpl.place(SAMPLE_YEAR)
    out += _placed(tpl, placement)
    out += _formulas(tpl, placement)
    out += _rules(tpl)
    out += _rollforward(tpl)
    out += _master(tpl)
    out += _generated(tpl)
    return out


def _windows(tpl: Template) -> list[Problem]:
    out = []
    for name, columns in tpl.layout.columns.items():
        window = tpl.windows.get(name)
        if window is None:
            out.append(Problem("layout.json", f"/windows/{name}", f"年度の窓「{name}」は template.json にありません。"))
        elif len(columns) != window.length:
            out.append(Problem("layout.json", f"/windows/{name}/columns",
                               f"列が{len(columns)}個ですが、年度の窓「{name}」は{window.length}年度です。"))
    for name in tpl.windows:
        if name not in tpl.layout.columns:
            out.append(Problem("template.json", f"/windows/{name}", f"年度の窓「{name}」の列が layout.json にありません。"))
    return out


def _fields(tpl: Template) -> list[Problem]:
    out = []

    def walk(f: Field, pointer: str) -> None:
        if f.list and f.list not in tpl.lists:
            out.append(Problem("fields.json", f"{pointer}/list", f"選択肢「{f.list}」は template.json の lists にありません。"))
        if f.kind in ("choice", "scale") and not f.list and not f.options:
            out.append(Problem("fields.json", pointer, "選択肢（list か options）の指定がありません。"))
        if f.kind == "yesno" and "yesno" not in tpl.lists and not f.list:
            out.append(Problem("fields.json", pointer, "有無の選択肢（lists の yesno）がありません。"))
        if f.kind == "series" and f.window not in tpl.windows:
            out.append(Problem("fields.json", f"{pointer}/window", f"年度の窓「{f.window}」は template.json にありません。"))
        if f.kind == "multi" and not f.options:
            out.append(Problem("fields.json", pointer, "複数選択（multi）に options がありません。"))
        for name, child in f.fields.items():
            walk(child, f"{pointer}/fields/{name}")
        if f.item is not None:
            walk(f.item, f"{pointer}/item")

    for name, f in tpl.tree.fields.items():
        walk(f, f"/fields/{name}")
    return out


def expected_paths(tpl: Template, fiscal_year: int) -> dict[str, Field]:
    """The concrete paths the layout must place for one year: every leaf, each year entry and item once."""
    window_years = {name: set(w.years(fiscal_year)) for name, w in tpl.windows.items()}
    out: dict[str, Field] = {}

    def walk(f: Field, prefix: str) -> None:
        path = f"{prefix}{f.name}"
        if not f.placed:
            return
        if f.options and not f.joined:  # a check-box set: one box per option
            for o in f.options:
                out[f"{path}.{o.key}"] = f
        elif f.is_leaf:
            out[path] = f
        elif f.kind == "group":
            for child in f.fields.values():
                walk(child, path + ".")
        elif f.kind == "series":
            for year in sorted(window_years.get(f.window or "", ())):
                key = path if not f.inline else prefix.rstrip(".")
                for child in f.fields.values():
                    if child.exists_in(year - fiscal_year):
                        walk(child, f"{key}.{year}.")
        elif f.kind == "repeat":
            for n in range(1, (f.max_items or 1) + 1):
                for child in f.fields.values():
                    walk(child, f"{path}.{n}.")
        elif f.kind == "list":  # positions are as many as the layout has room for: the first must exist
            item = f.item
            assert item is not None
            if item.is_leaf:
                out[f"{path}.1"] = item
            else:
                for child in item.fields.values():
                    if child.required:
                        walk(child, f"{path}.1.")

    for f in tpl.tree.fields.values():
        walk(f, "")
    return out


def _placed(tpl: Template, placement: Any) -> list[Problem]:
    out = []
    counts = Counter(p.path for p in placement.items if p.kind == "field")
    where = {p.path: p.where for p in placement.items if p.kind in ("field", "computed")}
    for path, n in counts.items():
        if fields_mod.steps(tpl.tree, path) is None:
            out.append(Problem("layout.json", where[path], f"項目「{path}」は fields.json にありません。"))
        elif n > 1:
            out.append(Problem("layout.json", where[path], f"項目「{path}」が{n}回置かれています（1回にしてください）。"))
    for p in placement.items:
        if p.kind == "computed" and p.path.startswith("rates."):
            key = p.path.split(".")[-1]
            if key not in tpl.rate_fields:
                out.append(Problem("layout.json", p.where, f"単価「{key}」は template.json の rates にありません。"))
        elif p.kind == "computed" and p.formula is None:
            out.append(Problem("layout.json", p.where, f"計算項目「{p.path}」を埋める数式が formulas.json にありません。"))
    for path in expected_paths(tpl, placement.fiscal_year):
        if path not in counts:
            out.append(Problem("layout.json", "/blocks", f"項目「{path}」（{tpl.label(path)}）がシートに置かれていません。"))
    return out


def _formulas(tpl: Template, placement: Any) -> list[Problem]:
    out = []
    targets = {p.path: p for p in placement.items if p.formula}
    used = Counter(p.formula for p in targets.values())
    for name, f in tpl.formulas.items():
        pointer = f"/{name}/formula"
        sources = f.source.values() if isinstance(f.source, dict) else [f.source]
        try:
            for text in sources:
                fx.parse(text)
        except fx.FormulaSyntaxError as e:
            out.append(Problem("formulas.json", pointer, str(e)))
            continue
        if not used[name]:
            out.append(Problem("formulas.json", f"/{name}/target", f"数式「{name}」の対象「{f.target}」がシートにありません。"))
    for path, placed in targets.items():
        try:
            expr = tpl.bound(path, placement.fiscal_year)
        except (fx.FormulaSyntaxError, Exception) as e:  # noqa: BLE001 -- every failure is a finding here
            out.append(Problem("formulas.json", f"/{placed.formula}/formula", f"{path}: {e}"))
            continue
        for ref in expr.refs():
            if ref not in placement.fields and ref not in placement.computed:
                out.append(Problem("formulas.json", f"/{placed.formula}/formula",
                                   f"{path} の数式が読む「{ref}」はシートに置かれたセルでも単価でもありません。"))
    out += _cycles(tpl, placement, targets)
    return out


def _cycles(tpl: Template, placement: Any, targets: dict[str, Any]) -> list[Problem]:
    graph: dict[str, list[str]] = {}
    for path in targets:
        try:
            graph[path] = [r for r in tpl.bound(path, placement.fiscal_year).refs() if r in targets]
        except Exception:  # noqa: BLE001 -- reported above
            graph[path] = []
    out, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                out.append(Problem("formulas.json", f"/{targets[node].formula}",
                                   "数式が循環しています: " + " → ".join([*trail, node, nxt])))
            elif nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])
    return out


def _exists(tpl: Template, path: str) -> bool:
    """A field path (placeholders allowed) names a field of the tree."""
    concrete = re.sub(r"\{fiscal_year([+-]\d+)?\}", str(SAMPLE_YEAR), path).replace("{year}", str(SAMPLE_YEAR))
    concrete = concrete.replace("{n}", "1")
    return fields_mod.steps(tpl.tree, concrete) is not None


def _condition(tpl: Template, text: str, file: str, pointer: str) -> list[Problem]:
    try:
        tpl.condition(text, {"fiscal_year": SAMPLE_YEAR})
    except fx.FormulaSyntaxError as e:
        return [Problem(file, pointer, str(e))]
    return []


def _rules(tpl: Template) -> list[Problem]:
    out = []
    for rule in tpl.rules:
        for i, path in enumerate(rule.fields):
            if not _exists(tpl, path):
                out.append(Problem("rules.json", f"{rule.where}/fields/{i}", f"項目「{path}」は fields.json にありません。"))
        if rule.when:
            out += _condition(tpl, rule.when, "rules.json", f"{rule.where}/when")
        if rule.formula and rule.formula not in tpl.formulas:
            out.append(Problem("rules.json", f"{rule.where}/formula", f"数式「{rule.formula}」は formulas.json にありません。"))
        if rule.kind == "complete_repeat":
            repeat = tpl.tree.fields.get(rule.repeat or "")
            if repeat is None or repeat.kind != "repeat":
                out.append(Problem("rules.json", f"{rule.where}/repeat", f"繰り返し項目「{rule.repeat}」がありません。"))
                continue
            if rule.key not in repeat.fields:
                out.append(Problem("rules.json", f"{rule.where}/key", f"「{rule.repeat}」に項目「{rule.key}」がありません。"))
            for i, need in enumerate(rule.needs):
                if not _exists(tpl, f"{rule.repeat}.1.{need.field}"):
                    out.append(Problem("rules.json", f"{rule.where}/needs/{i}/field",
                                       f"「{rule.repeat}」に項目「{need.field}」がありません。"))
    return out


def _rollforward(tpl: Template) -> list[Problem]:
    roll, out = tpl.roll, []
    if roll.get("exclude_if"):
        out += _condition(tpl, roll["exclude_if"], "rollforward.json", "/exclude_if")
    for key in ("exclude_shows",):
        if roll.get(key) and not _exists(tpl, roll[key]):
            out.append(Problem("rollforward.json", f"/{key}", f"項目「{roll[key]}」は fields.json にありません。"))
    for path in roll.get("set") or {}:
        if not _exists(tpl, path):
            out.append(Problem("rollforward.json", f"/set/{path}", f"項目「{path}」は fields.json にありません。"))
    for source, target in (roll.get("move") or {}).items():
        for path in (source, target):
            if not _exists(tpl, path):
                out.append(Problem("rollforward.json", f"/move/{source}", f"項目「{path}」は fields.json にありません。"))
    for i, path in enumerate(roll.get("reset") or []):
        if not _exists(tpl, path):
            out.append(Problem("rollforward.json", f"/reset/{i}", f"項目「{path}」は fields.json にありません。"))
    for path, transitions in (roll.get("shift") or {}).items():
        series = _series(tpl, path)
        if series is None:
            out.append(Problem("rollforward.json", f"/shift/{path}", f"「{path}」は年度の並ぶ項目（series）ではありません。"))
            continue
        window = tpl.windows.get(series.window or "")
        meanings = {m for _, _, m in window.meanings} if window else set()
        for i, t in enumerate(transitions):
            source = _series(tpl, t["series"]) if t.get("series") else series
            if source is None:
                out.append(Problem("rollforward.json", f"/shift/{path}/{i}/series",
                                   f"「{t['series']}」は年度の並ぶ項目（series）ではありません。"))
                continue
            source_window = tpl.windows.get(source.window or "")
            for end, known in (("from", {m for _, _, m in source_window.meanings} if source_window else set()),
                               ("to", meanings)):
                if t[end] not in known:
                    out.append(Problem("rollforward.json", f"/shift/{path}/{i}/{end}",
                                       f"列の意味「{t[end]}」はこの年度の窓にありません"
                                       f"（あるもの: {'、'.join(sorted(known))}）。"))
            if t["keep"] != "all":
                for k in t["keep"]:
                    if k not in series.fields:
                        out.append(Problem("rollforward.json", f"/shift/{path}/{i}/keep",
                                           f"「{path}」に項目「{k}」がありません。"))
    return out


def _series(tpl: Template, path: str) -> Field | None:
    head, _, tail = path.partition(".")
    f = tpl.tree.fields.get(head)
    if f is not None and tail:
        f = f.fields.get(tail)
    return f if f is not None and f.kind == "series" else None


def _master(tpl: Template) -> list[Problem]:
    m, out = tpl.master, []
    derived = m.get("derived") or {}
    for key, d in derived.items():
        series = _series(tpl, d["series"])
        if series is None:
            out.append(Problem("master.json", f"/derived/{key}/series", f"「{d['series']}」は年度の並ぶ項目ではありません。"))
            continue
        try:
            probe = f"{d['series']}.{SAMPLE_YEAR}.{key}"
            fx.bind(fx.parse(d["formula"]), lambda n, probe=probe: tpl.resolve(n, probe))
        except fx.FormulaSyntaxError as e:
            out.append(Problem("master.json", f"/derived/{key}/formula", str(e)))

    def entry_key_ok(series: str | None, key: str) -> bool:
        s = _series(tpl, series or "")
        return s is not None and (key in s.fields or key in derived)

    for i, col in enumerate(m.get("list") or []):
        path = col.get("path", "")
        head, _, last = path.rpartition(".")
        if not (_exists(tpl, path) or (last in derived and _exists(tpl, head))):
            out.append(Problem("master.json", f"/list/{i}/path", f"項目「{path}」は fields.json にありません。"))
    costs = m.get("costs") or {}
    for i, item in enumerate(costs.get("items") or []):
        if not entry_key_ok(costs.get("series"), item["key"]):
            out.append(Problem("master.json", f"/costs/items/{i}/key", f"「{item['key']}」は {costs.get('series')} の項目でも derived でもありません。"))
    for i, col in enumerate(m.get("department_costs") or []):
        if not entry_key_ok(costs.get("series"), col.get("key", "")):
            out.append(Problem("master.json", f"/department_costs/{i}/key", f"「{col.get('key')}」は {costs.get('series')} の項目でも derived でもありません。"))
    ind = m.get("indicators") or {}
    if ind:
        repeat = tpl.tree.fields.get(ind.get("repeat", ""))
        if repeat is None or repeat.kind != "repeat":
            out.append(Problem("master.json", "/indicators/repeat", f"繰り返し項目「{ind.get('repeat')}」がありません。"))
        else:
            series = repeat.fields.get(ind.get("series", ""))
            for part in ("item_columns", "value_columns"):
                for i, col in enumerate(ind.get(part) or []):
                    owner = repeat if part == "item_columns" else series
                    if owner is None or col.get("key") not in owner.fields:
                        out.append(Problem("master.json", f"/indicators/{part}/{i}/key", f"項目「{col.get('key')}」がありません。"))
    direction = (m.get("direction") or {}).get("path")
    if direction and not _exists(tpl, direction):
        out.append(Problem("master.json", "/direction/path", f"項目「{direction}」は fields.json にありません。"))
    return out


GENERATED = ("record.schema.json", "rates.schema.json")


def generated_files(tpl: Template) -> dict[str, str]:
    """The files ``template schema`` writes into the template folder, as their text."""
    out = {"record.schema.json": _dump(tpl.schema)}
    if tpl.rate_fields:
        out["rates.schema.json"] = _dump(tpl.rates_schema)
    return out


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _generated(tpl: Template) -> list[Problem]:
    out = []
    for name, text in generated_files(tpl).items():
        path = tpl.directory / name
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            why = "がありません" if current is None else "が fields.json・template.json から作り直したものと違います（古い）"
            out.append(Problem(name, "/", f"生成されたスキーマ{why}。sheettool template schema {tpl.directory} で作り直してください。"))
    return out


def write_generated(tpl: Template) -> list[str]:
    """Write the template folder's generated schemas; returns the names of the files that changed."""
    changed = []
    for name, text in generated_files(tpl).items():
        path = tpl.directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    return changed


def bundled_schema_files() -> dict[str, str]:
    """schemas/record.schema.json (every bundled template's, CONTRACT §1) and schemas/rates.schema.json
    (the default template's rates, CONTRACT §3), as their text."""
    from .schema import combined_schema
    from .template import DEFAULT_TEMPLATE, available, load_unchecked

    templates = {tid: load_unchecked(tid) for tid in available()}
    default = templates[DEFAULT_TEMPLATE]
    rates = dict(default.rates_schema)
    rates["$id"] = "https://sheettool.example/schemas/rates.schema.json"
    return {"record.schema.json": _dump(combined_schema({t: tpl.schema for t, tpl in templates.items()},
                                                          DEFAULT_TEMPLATE)),
            "rates.schema.json": _dump(rates)}
