"""The field tree of a template (fields.json): what a record holds, and where each value lives.

A field is a leaf (text, code, integer, number, choice, yesno, scale, multi) or a
container: a group (an object), a series (entries keyed by ``year`` over one of the
template's year windows), a repeat (numbered items keyed by ``no``, such as indicator
slots) or a list (positional items). A field path names one value, as CONTRACT §2:
list entries are keyed by year, by number or by 1-based position —
``costs.2022.budget``, ``indicators.1.2021.actual`` (a series marked ``inline`` is keyed
directly under its repeat item), ``sdgs.1``, ``strategy_plan.1.pillar``. A multiple
choice placed as check boxes (■/□) has one path per option: ``delivery.2``; so has a single
choice with ``options`` (one box per option, exactly one ticked).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import wareki

LEAVES = ("text", "code", "integer", "number", "date", "choice", "yesno", "scale", "multi")
CONTAINERS = ("group", "series", "repeat", "list")
SERIES_KEY = "year"
REPEAT_KEY = "no"


class FieldError(ValueError):
    """fields.json does not describe a field tree; the message is Japanese."""


@dataclass(frozen=True)
class Choices:
    """A choice list (template.json ``lists``): values, what the sheet shows, and how to read it.

    ``labels`` are what a cell shows for each value (the values themselves when absent);
    ``names`` are other spellings a reader accepts (a goal's name without its number);
    ``prefixes`` may precede a typed code ("目標9"); ``dash`` is the value meaning "not
    applicable" ("-"), stored as null; ``marks`` are the (chosen, not chosen) marks of
    check boxes.
    """

    key: str
    values: tuple[Any, ...]
    labels: tuple[str, ...]
    names: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    dash: str | None = None
    prompt: str | None = None
    marks: tuple[str, str] = ("■", "□")
    what: str | None = None  # how a message names a value of the list: "SDGsの目標"
    spoken: str | None = None  # how a reading names one: "目標{value}"

    @property
    def defined_name(self) -> str:
        return f"list_{self.key}"

    @property
    def shown(self) -> tuple[str, ...]:
        """The dropdown's entries: every label, then the dash."""
        return self.labels + ((self.dash,) if self.dash else ())

    def label_of(self, value: Any) -> str | None:
        for v, label in zip(self.values, self.labels, strict=True):
            if v == value:
                return label
        return None

    @classmethod
    def parse(cls, key: str, data: Any) -> Choices:
        if isinstance(data, list):
            return cls(key, tuple(data), tuple(str(v) for v in data))
        values = tuple(data["values"])
        labels = tuple(data.get("labels") or [str(v) for v in values])
        if len(labels) != len(values):
            raise FieldError(f"選択肢「{key}」の labels と values の数が違います")
        return cls(key, values, labels, tuple(data.get("names") or ()), tuple(data.get("prefixes") or ()),
                   data.get("dash"), data.get("prompt"), tuple(data.get("marks") or ("■", "□")),
                   data.get("what"), data.get("spoken"))


@dataclass(frozen=True)
class Option:
    """One check box of a multiple choice (or of a single choice shown as boxes)."""

    key: str
    value: Any
    label: str


@dataclass(frozen=True, eq=False)
class Field:
    """One node of the field tree. Units, bounds and lengths are as the record holds them."""

    name: str
    kind: str
    title: str
    unit: str | None = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    list: str | None = None
    unique: bool = False
    max_items: int | None = None
    window: str | None = None
    inline: bool = False
    item_title: str | None = None
    key_title: str | None = None
    label_prefix: bool = False
    omit_empty: bool = False
    entered_by: str = "department"  # or "office": never typed by a department (二次評価)
    placed: bool = True  # False: not on the city's sheet (read back as null)
    options: tuple[Option, ...] = ()
    marks: tuple[str, str] = ("■", "□")  # a check box's (chosen, not chosen) marks
    joined: str | None = None  # a multiple choice or list shown in one cell, items joined by this
    in_years: str | None = None  # a year entry's field only in these years ("..2": up to fiscal year + 2)
    fields: dict[str, Field] = field(default_factory=dict)
    item: Field | None = None
    parent: Field | None = field(default=None, compare=False, repr=False)

    @property
    def titled(self) -> str:
        """The title with its unit: 予算額（千円）."""
        return f"{self.title}（{self.unit}）" if self.unit else self.title

    @property
    def is_leaf(self) -> bool:
        """A value of one cell: a leaf kind, or a list shown joined in one cell."""
        return self.kind in LEAVES or (self.kind == "list" and bool(self.joined))

    @property
    def keyed(self) -> bool:
        return self.kind in ("series", "repeat") or (self.kind == "list" and not self.joined)

    def exists_in(self, offset: int) -> bool:
        """Whether a year entry's field exists ``offset`` years from the fiscal year (``in_years``)."""
        if not self.in_years:
            return True
        lo, sep, hi = self.in_years.partition("..")
        hi = hi if sep else lo
        return (not lo or offset >= int(lo)) and (not hi or offset <= int(hi))

    def inline_series(self) -> Field | None:
        """A repeat item's series keyed directly under the item (``indicators.1.2021``)."""
        return next((f for f in self.fields.values() if f.kind == "series" and f.inline), None)

    def leaves(self) -> Iterator[Field]:
        if self.is_leaf:
            yield self
        for child in self.fields.values():
            yield from child.leaves()
        if self.item is not None:
            yield from self.item.leaves()


_ATTRS = {"kind", "title", "unit", "required", "min", "max", "decimals", "min_length", "max_length",
          "pattern", "list", "unique", "max_items", "window", "inline", "item_title", "key_title",
          "label_prefix", "omit_empty", "entered_by", "placed", "options", "marks", "joined", "in_years",
          "fields", "item"}


def parse_field(name: str, data: dict[str, Any], where: str = "") -> Field:
    """One field (and its children) from its fields.json entry; ``where`` is its JSON pointer."""
    where = f"{where}/{name}"
    if not isinstance(data, dict) or data.get("kind") not in LEAVES + CONTAINERS:
        raise FieldError(f"{where}: kind は {', '.join(LEAVES + CONTAINERS)} のいずれかです")
    unknown = set(data) - _ATTRS
    if unknown:
        raise FieldError(f"{where}: 知らない属性 {', '.join(sorted(unknown))}")
    kind = data["kind"]
    children = {k: parse_field(k, v, f"{where}/fields") for k, v in (data.get("fields") or {}).items()}
    item = parse_field("item", data["item"], where) if "item" in data else None
    if kind == "list" and item is None:
        raise FieldError(f"{where}: list には item が必要です")
    if kind in ("group", "series", "repeat") and not children:
        raise FieldError(f"{where}: {kind} には fields が必要です")
    if kind == "series" and not data.get("window"):
        raise FieldError(f"{where}: series には window が必要です")
    options = tuple(Option(str(o.get("key", i)), o.get("value", o.get("label")), o.get("label", str(o.get("value"))))
                    for i, o in enumerate(data.get("options") or [], start=1))
    attrs = {k: v for k, v in data.items() if k not in ("fields", "item", "options", "marks")}
    if "marks" in data:
        attrs["marks"] = tuple(data["marks"])
    node = Field(name=name, fields=children, item=item, options=options, **attrs)
    for child in (*children.values(), *([item] if item else [])):
        object.__setattr__(child, "parent", node)
    return node


def parse_tree(data: dict[str, Any]) -> Field:
    """The root group of fields.json."""
    fields = data.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise FieldError("/fields: 項目の定義がありません")
    root = parse_field("", {"kind": "group", "title": data.get("title", ""), "fields": fields}, "")
    return root


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class Step:
    """One step of a concrete path: into ``field``, then (for keyed ones) to the entry ``key``."""

    field: Field
    key: str | None = None


def steps(root: Field, path: str) -> tuple[Step, ...] | None:
    """The steps of ``path`` from ``root``, or None when the tree has no such field.

    Remembered per tree and path: check asks for each field's steps several times per file,
    and a template's paths are few (a few thousand).
    """
    key = (id(root), path)
    hit = _STEPS.get(key)
    if hit is not None and hit[0] is root:
        return hit[1]
    found = _steps(root, path)
    if len(_STEPS) >= _STEPS_MAX:
        _STEPS.clear()
    _STEPS[key] = (root, None if found is None else tuple(found))
    return _STEPS[key][1]


_STEPS: dict[tuple[int, str], tuple[Field, tuple[Step, ...] | None]] = {}
_STEPS_MAX = 1 << 16


def _steps(root: Field, path: str) -> list[Step] | None:
    parts = path.split(".")
    node = root
    out: list[Step] = []
    i = 0
    while i < len(parts):
        if node.options and not node.joined:  # an option of a check-box set: the last step
            if i != len(parts) - 1 or not any(o.key == parts[i] for o in node.options):
                return None
            out[-1] = Step(node, parts[i])
            return out
        child = node.fields.get(parts[i])
        if child is None:
            return None
        i += 1
        if child.keyed:
            if i >= len(parts):
                out.append(Step(child))
                return out
            out.append(Step(child, parts[i]))
            i += 1
            node = child.item if child.kind == "list" else child
            if child.kind == "repeat":
                inline = child.inline_series()
                if inline is not None and i < len(parts) and parts[i].isdigit():
                    out.append(Step(inline, parts[i]))
                    i += 1
                    node = inline
            if node.is_leaf:
                if i != len(parts):
                    return None
                return out
        else:
            out.append(Step(child))
            node = child
    return out


def leaf_of(root: Field, path: str) -> Field | None:
    """The field a concrete path ends at (a leaf, or a container for a whole entry)."""
    found = steps(root, path)
    if not found:
        return None
    last = found[-1]
    if last.field.kind == "list" and last.key is not None:
        return last.field.item
    return last.field


def _find(items: Any, key: str, value: int) -> Any:
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get(key) == value:
            return item
    return None


def _entry(node: Any, step: Step) -> Any:
    f = step.field
    items = node.get(f.name) if isinstance(node, dict) else None
    if f.kind == "series":
        return _find(items, SERIES_KEY, int(step.key))
    if f.kind == "repeat":
        return _find(items, REPEAT_KEY, int(step.key))
    if f.kind == "list":
        pos = int(step.key) - 1
        return items[pos] if isinstance(items, list) and 0 <= pos < len(items) else None
    raise AssertionError(f.kind)


def get(root: Field, record: Any, path: str) -> Any:
    """The value at ``path`` in ``record``, or None where any step is missing.

    An option of a multiple choice gives True or False (chosen or not).
    """
    found = steps(root, path)
    if found is None:
        return None
    node = record
    for step in found:
        f = step.field
        if f.options and step.key is not None:
            chosen = node.get(f.name) if isinstance(node, dict) else None
            option = next(o for o in f.options if o.key == step.key)
            if f.kind == "multi":
                return isinstance(chosen, list) and option.value in chosen
            return chosen == option.value
        if f.keyed and step.key is not None:
            node = _entry(node, step)
        else:
            node = node.get(f.name) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def set_(root: Field, record: dict[str, Any], path: str, value: Any) -> None:
    """Put ``value`` at ``path``, creating entries and groups as needed.

    Positional lists are padded with None (callers compact them); an option of a
    multiple choice is added to (True) or removed from (False) the chosen list.
    """
    found = steps(root, path)
    if found is None:
        raise KeyError(path)
    node: Any = record
    for k, step in enumerate(found):
        f = step.field
        last = k == len(found) - 1
        if f.options and step.key is not None and f.kind != "multi":
            option = next(o for o in f.options if o.key == step.key)
            if value:
                node[f.name] = option.value
            elif node.get(f.name) == option.value:
                node[f.name] = None
            return
        if f.kind == "multi" and step.key is not None:
            option = next(o for o in f.options if o.key == step.key)
            chosen = node.setdefault(f.name, None) or []
            if value and option.value not in chosen:
                chosen = [o.value for o in f.options if o.value in chosen or o.value == option.value]
            elif not value and option.value in chosen:
                chosen = [c for c in chosen if c != option.value]
            node[f.name] = chosen or None
            return
        if f.kind in ("series", "repeat") and step.key is not None:
            key = SERIES_KEY if f.kind == "series" else REPEAT_KEY
            items = node.setdefault(f.name, [])
            if items is None:
                items = node[f.name] = []
            entry = _find(items, key, int(step.key))
            if entry is None:
                entry = {key: int(step.key)}
                items.append(entry)
            node = entry
        elif f.kind == "list" and step.key is not None:
            items = node.setdefault(f.name, [])
            if items is None:
                items = node[f.name] = []
            pos = int(step.key) - 1
            while len(items) <= pos:
                items.append(None)
            if last:
                items[pos] = value
                return
            if items[pos] is None:
                items[pos] = {}
            node = items[pos]
        elif last:
            node[f.name] = value
            return
        else:
            child = node.get(f.name)
            if not isinstance(child, dict):
                child = node[f.name] = {}
            node = child


def label(root: Field, path: str) -> str:
    """Japanese label for messages: 'costs.2022.budget' → '令和4年度の予算額（千円）'.

    Series entries say their year, repeat items their number (指標1の), list entries their
    position (戦略プラン（1件目）の政策); a group marked ``label_prefix`` names itself.
    """
    found = steps(root, path)
    if not found:
        return path
    prefix = ""
    for k, step in enumerate(found):
        f = step.field
        last = k == len(found) - 1
        if f.kind == "series" and step.key is not None:
            prefix += wareki.fiscal_label(int(step.key)) + "の"
        elif f.kind == "repeat" and step.key is not None:
            prefix += f"{f.item_title or f.title}{step.key}の"
        elif f.kind == "list" and step.key is not None:
            head = f"{f.title}（{step.key}件目）"
            if last:
                return prefix + head
            prefix += head + "の"
        elif f.options and step.key is not None:
            option = next(o for o in f.options if o.key == step.key)
            return f"{prefix}{f.titled}（{option.label}）"
        elif last:
            return prefix + f.titled
        elif f.kind == "group" and f.label_prefix:
            prefix += f.title + "の"
    return prefix + found[-1].field.titled


def json_to_path(root: Field, record: Any, json_path: list[Any]) -> str:
    """['costs', 2, 'budget'] → 'costs.2022.budget': a schema error's place as a field path."""
    out: list[str] = []
    node: Any = record
    f: Field | None = root
    for part in json_path:
        child = node[part] if _has(node, part) else None
        if isinstance(part, int):
            key = None
            if f is not None and f.kind == "series":
                key = child.get(SERIES_KEY) if isinstance(child, dict) else None
            elif f is not None and f.kind == "repeat":
                key = child.get(REPEAT_KEY) if isinstance(child, dict) else None
            if f is not None and f.inline and out:
                out.pop()  # an inline series is keyed directly under its repeat item
            out.append(str(key) if key is not None else str(part + 1))
            f = f.item if f is not None and f.kind == "list" else f
        else:
            out.append(str(part))
            f = f.fields.get(part) if f is not None else None
        node = child
    return ".".join(out)


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    if isinstance(node, list):
        return isinstance(part, int) and 0 <= part < len(node)
    return False


def defined_name(path: str) -> str:
    """The workbook-scoped defined name of a field (CONTRACT §2)."""
    return "f_" + path.replace(".", "_")
