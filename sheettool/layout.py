"""The layout spec (templates/<name>/layout.json), expanded for one fiscal year.

The spec is the single source of where each field sits. ``Layout.place(fy)``
turns it into absolute cells; the writer draws those and the reader reads them,
so the two cannot drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from xlsxwriter.utility import xl_cell_to_rowcol, xl_col_to_name, xl_rowcol_to_cell

from . import recordpath, resources, wareki

DEFAULT_TEMPLATE = "tsukuba"


class LayoutError(ValueError):
    """The template spec is missing or invalid."""


@dataclass(frozen=True)
class Window:
    """A run of columns holding consecutive fiscal years."""

    name: str
    columns: tuple[str, ...]
    mode: str  # "sliding" | "fixed"
    first_offset: int = 0
    first_year: int | None = None

    def years(self, fiscal_year: int) -> list[int]:
        start = self.first_year if self.mode == "fixed" else fiscal_year + self.first_offset
        return [start + i for i in range(len(self.columns))]


@dataclass(frozen=True)
class Placed:
    """One drawn item: a label, fixed text, a field, a computed cell or a year header.

    Rows and columns are 0-based; ``cell`` is the A1 address of the top-left cell.
    """

    kind: str  # "section" | "label" | "text" | "header" | "field" | "computed"
    row: int
    col: int
    last_row: int
    last_col: int
    text: str | None = None
    path: str | None = None
    role: str = "input"
    format: str | None = None
    style: str | None = None
    history: bool = False
    year: int | None = None
    formula: str | None = None
    formula_args: dict[str, Any] = field(default_factory=dict)
    lines: int = 1

    @cached_property
    def cell(self) -> str:
        return xl_rowcol_to_cell(self.row, self.col)

    @property
    def ref(self) -> str:
        if self.is_merged:
            return f"{self.cell}:{xl_rowcol_to_cell(self.last_row, self.last_col)}"
        return self.cell

    @property
    def is_merged(self) -> bool:
        return (self.last_row, self.last_col) != (self.row, self.col)

    @cached_property
    def name(self) -> str:
        """Workbook-scoped defined name (CONTRACT §2 for fields)."""
        if self.kind == "field":
            return recordpath.defined_name(self.path)
        return "c_" + self.path.replace(".", "_")

    @property
    def locked_by_role(self) -> bool:
        return self.role in ("identity", "reference", "formula", "rate")


@dataclass
class Placement:
    """The spec expanded for one fiscal year."""

    fiscal_year: int
    items: list[Placed]
    row_heights: dict[int, float]

    @cached_property
    def fields(self) -> dict[str, Placed]:
        """Record fields by path ("costs.2022.budget")."""
        return {p.path: p for p in self.items if p.kind == "field"}

    @cached_property
    def computed(self) -> dict[str, Placed]:
        return {p.path: p for p in self.items if p.kind == "computed"}

    @cached_property
    def by_name(self) -> dict[str, Placed]:
        """Fields and computed cells by defined name."""
        return {p.name: p for p in self.items if p.kind in ("field", "computed")}

    @cached_property
    def by_cell(self) -> dict[str, Placed]:
        return {p.cell: p for p in self.items}

    def at(self, path: str) -> Placed:
        return self.fields.get(path) or self.computed[path]


class Layout:
    """A template: its layout spec, sentence tables and default rates."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        spec_path = directory / "layout.json"
        if not spec_path.is_file():
            raise LayoutError(f"テンプレート定義が見つかりません: {spec_path}")
        self.spec: dict[str, Any] = resources.load_json(str(spec_path))
        errors = sorted(
            jsonschema.Draft202012Validator(resources.schema("layout")).iter_errors(self.spec),
            key=lambda e: list(e.absolute_path),
        )
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            raise LayoutError(f"テンプレート定義 {spec_path} が不正です（{where}）: {errors[0].message}")
        self.windows = {
            name: Window(name, tuple(w["columns"]), w["mode"], w.get("first_offset", 0), w.get("first_year"))
            for name, w in self.spec["windows"].items()
        }

    @property
    def template_id(self) -> str:
        return self.spec["template_id"]

    @property
    def version(self) -> str:
        return self.spec["template_version"]

    @property
    def sheet_name(self) -> str:
        return self.spec["sheet_name"]

    @cached_property
    def sentences(self) -> dict[str, dict[str, str]]:
        """Standard sentence per evaluation item and score key ("1"…"5", "-")."""
        raw = resources.load_json(str(self.directory / "sentences.json"))
        return {
            item: {k: v for k, v in table.items() if k in ("1", "2", "3", "4", "5", "-")}
            for item, table in raw.items()
            if isinstance(table, dict)
        }

    def required(self, fiscal_year: int) -> list[str]:
        """Field paths that must be filled before submission."""
        return [p.replace("{fiscal_year}", str(fiscal_year)) for p in self.spec.get("required", [])]

    def text_capacity(self, placed: Placed) -> int:
        """Roughly how many full-width characters fit in the printed box of ``placed``.

        A full-width character is about two column-width units wide.
        """
        widths = self.spec["columns"]
        units = sum(widths.get(column_letter(c), 8.43) for c in range(placed.col, placed.last_col + 1))
        return max(1, int(units / 2)) * placed.lines

    @property
    def default_rates_path(self) -> Path:
        return self.directory / "rates.json"

    def place(self, fiscal_year: int) -> Placement:
        return _place(self, fiscal_year)

    def __hash__(self) -> int:
        return hash(self.directory)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and other.directory == self.directory


@lru_cache(maxsize=8)
def load(name: str = DEFAULT_TEMPLATE) -> Layout:
    """The template called ``name`` under templates/ (or a path to its folder)."""
    directory = Path(name)
    if not directory.is_dir():
        if not re.fullmatch(r"[a-z0-9_-]+", name):
            raise LayoutError(f"テンプレート名が不正です: {name}")
        directory = resources.templates_dir() / name
    return Layout(directory.resolve())


@lru_cache(maxsize=32)
def _place(layout: Layout, fiscal_year: int) -> Placement:
    items: list[Placed] = []
    heights: dict[int, float] = {}
    line_height = layout.spec.get("line_height", 13.5)
    context = {"fiscal_label": wareki.fiscal_label(fiscal_year), "fiscal_year": fiscal_year}

    def walk(blocks: list[dict], base: int, subs: dict[str, str]) -> None:
        for block in blocks:
            row = base + block["row"] - 1  # spec rows are 1-based
            if "repeat" in block:
                for n in range(1, block["repeat"] + 1):
                    walk(block["blocks"], row + 1 + (n - 1) * block["row_step"], {**subs, block["var"]: str(n)})
                continue
            if "section" in block:
                items.append(Placed("section", row, 0, row, _last_col(layout), text=block["section"],
                                    style="section"))
                continue
            lines = block.get("lines", 1)
            if "height" in block:
                heights[row] = block["height"]
            elif lines > 1:
                heights[row] = round(line_height * lines + 4, 1)
            for cell in block["cells"]:
                items.extend(_expand_cell(layout, cell, row, lines, fiscal_year, subs, context))

    walk(layout.spec["blocks"], 0, {})
    return Placement(fiscal_year, items, heights)


def _last_col(layout: Layout) -> int:
    return max(xl_cell_to_rowcol(c + "1")[1] for c in layout.spec["columns"])


def _cols(spec: str) -> tuple[int, int]:
    first, _, last = spec.partition(":")
    return xl_cell_to_rowcol(first + "1")[1], xl_cell_to_rowcol((last or first) + "1")[1]


def _sub(text: str, subs: dict[str, str]) -> str:
    for key, value in subs.items():
        text = text.replace("{" + key + "}", value)
    return text


def _expand_cell(layout: Layout, cell: dict, row: int, lines: int, fy: int,
                 subs: dict[str, str], context: dict) -> list[Placed]:
    last_row = row + cell.get("rows", 1) - 1
    common = dict(format=cell.get("format"), style=cell.get("style"), lines=lines)
    if "window" in cell:
        window = layout.windows[cell["window"]]
        out = []
        for col_name, year in zip(window.columns, window.years(fy), strict=True):
            col = _cols(col_name)[0]
            ysubs = {**subs, "year": str(year)}
            if "header" in cell:
                text = cell["header"].replace("{fiscal_label}", wareki.fiscal_label(year))
                out.append(Placed("header", row, col, last_row, col, text=_sub(text, ysubs), year=year, **common))
            else:
                out.append(_field(cell, row, col, last_row, col, ysubs, year, common))
        return out
    col, last_col = _cols(cell["cols"])
    if "label" in cell:
        return [Placed("label", row, col, last_row, last_col, text=_sub(cell["label"], subs),
                       format=None, style=cell.get("style", "label"), lines=lines)]
    if "text" in cell:
        text = _sub(cell["text"], {k: str(v) for k, v in context.items()} | subs)
        return [Placed("text", row, col, last_row, last_col, text=text, **common)]
    return [_field(cell, row, col, last_row, last_col, subs, None, common)]


def _field(cell: dict, row: int, col: int, last_row: int, last_col: int,
           subs: dict[str, str], year: int | None, common: dict) -> Placed:
    kind = "computed" if "computed" in cell else "field"
    path = _sub(cell.get("field") or cell["computed"], subs)
    if path.startswith("rates."):
        kind = "computed"
    args = {k: _sub(v, subs) if isinstance(v, str) else v for k, v in cell.get("formula_args", {}).items()}
    return Placed(kind, row, col, last_row, last_col, path=path, role=cell.get("role", "input"),
                  history=cell.get("history", False), year=year, formula=cell.get("formula"),
                  formula_args=args, **common)


def column_letter(col: int) -> str:
    return xl_col_to_name(col)
