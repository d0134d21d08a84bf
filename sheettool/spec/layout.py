"""The layout of a template (layout.json), expanded for one fiscal year.

The layout is the single source of where each field sits. ``Layout.place(fy)`` turns
it into absolute cells; the writer draws those and the reader reads them, so the two
cannot drift. Rows and columns of ``Placed`` are 0-based; the spec's rows are 1-based.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from xlsxwriter.utility import xl_cell_to_rowcol, xl_col_to_name, xl_rowcol_to_cell

from .. import wareki
from .fields import defined_name


@dataclass(frozen=True)
class Window:
    """A run of consecutive fiscal years, each with a meaning (決算, 予算, 計画 …).

    ``sliding`` windows start ``first_offset`` years from the fiscal year; ``fixed``
    ones at ``first_year`` (a plan period). ``meanings`` are (first offset, last offset,
    meaning) from the fiscal year, either end open (None).
    """

    name: str
    length: int
    mode: str
    first_offset: int = 0
    first_year: int | None = None
    meanings: tuple[tuple[int | None, int | None, str], ...] = ()

    def years(self, fiscal_year: int) -> list[int]:
        start = self.first_year if self.mode == "fixed" and self.first_year else fiscal_year + self.first_offset
        return [start + i for i in range(self.length)]

    def meaning(self, year: int, fiscal_year: int) -> str | None:
        offset = year - fiscal_year
        for lo, hi, meaning in self.meanings:
            if (lo is None or offset >= lo) and (hi is None or offset <= hi):
                return meaning
        return None

    @classmethod
    def parse(cls, name: str, data: dict[str, Any]) -> Window:
        meanings = []
        for key, meaning in (data.get("meanings") or {}).items():
            lo, sep, hi = key.partition("..")
            if not sep:
                hi = lo
            meanings.append((int(lo) if lo else None, int(hi) if hi else None, meaning))
        return cls(name, data["years"], data["mode"], data.get("first_offset", 0), data.get("first_year"),
                   tuple(meanings))


@dataclass(frozen=True)
class Placed:
    """One drawn item: a label, fixed text, a field, a computed cell or a year header."""

    kind: str  # "heading" | "label" | "text" | "header" | "field" | "computed"
    row: int
    col: int
    last_row: int
    last_col: int
    text: str | None = None
    path: str | None = None
    role: str = "input"  # input | identity | reference | rate | office
    format: str | None = None
    style: str | None = None
    history: bool = False
    year: int | None = None
    formula: str | None = None  # the name of the template formula that fills this cell
    lines: int = 1
    where: str = ""  # JSON pointer of the layout cell it came from

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
            return defined_name(self.path)
        return "c_" + self.path.replace(".", "_")

    @property
    def locked_by_role(self) -> bool:
        return self.role in ("identity", "reference", "formula", "rate", "office") or self.formula is not None


@dataclass
class Placement:
    """The layout expanded for one fiscal year."""

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
    """layout.json: columns, print setup, formats and the blocks of rows."""

    def __init__(self, spec: dict[str, Any], windows: dict[str, Window],
                 formula_of: Callable[[str, int], str | None], office: Callable[[str], bool] | None = None,
                 tables: dict[str, dict[str, str]] | None = None) -> None:
        self.spec = spec
        self.windows = windows
        self._formula_of = formula_of
        self._office = office or (lambda path: False)
        self.tables = tables or {}
        self.columns: dict[str, tuple[str, ...]] = {
            name: tuple(w["columns"]) for name, w in spec.get("windows", {}).items()}
        self._placed: dict[int, Placement] = {}

    @property
    def sheet_name(self) -> str:
        return self.spec["sheet_name"]

    def text_capacity(self, placed: Placed) -> int:
        """Roughly how many full-width characters fit in the printed box of ``placed``.

        A full-width character is about two column-width units wide.
        """
        widths = self.spec["columns"]
        units = sum(widths.get(xl_col_to_name(c), 8.43) for c in range(placed.col, placed.last_col + 1))
        return max(1, int(units / 2)) * placed.lines

    def place(self, fiscal_year: int) -> Placement:
        found = self._placed.get(fiscal_year)
        if found is None:
            if len(self._placed) >= 32:
                self._placed.clear()
            found = self._placed[fiscal_year] = _place(self, fiscal_year)
        return found


def _place(layout: Layout, fiscal_year: int) -> Placement:
    items: list[Placed] = []
    heights: dict[int, float] = {}
    line_height = layout.spec.get("line_height", 13.5)
    context: dict[str, Any] = {"fiscal_label": wareki.fiscal_label(fiscal_year), "fiscal_year": fiscal_year}
    for k in range(1, 5):  # the years around the evaluated one, as text cells name them
        context[f"fiscal_label+{k}"] = wareki.fiscal_label(fiscal_year + k)
        context[f"fiscal_label-{k}"] = wareki.fiscal_label(fiscal_year - k)
    last_col = max(xl_cell_to_rowcol(c + "1")[1] for c in layout.spec["columns"])

    def walk(blocks: list[dict], base: int, subs: dict[str, str], where: str) -> None:
        for i, block in enumerate(blocks):
            here = f"{where}/{i}"
            row = base + block["row"] - 1  # spec rows are 1-based
            if "repeat" in block:
                for n in range(1, block["repeat"] + 1):
                    walk(block["blocks"], row + 1 + (n - 1) * block["row_step"], {**subs, block["var"]: str(n)},
                         f"{here}/blocks")
                continue
            if "heading" in block:
                items.append(Placed("heading", row, 0, row, last_col, text=block["heading"], style="heading",
                                    where=here))
                continue
            lines = block.get("lines", 1)
            if "height" in block:
                heights[row] = block["height"]
            elif lines > 1:
                heights[row] = round(line_height * lines + 4, 1)
            for k, cell in enumerate(block["cells"]):
                items.extend(_expand_cell(layout, cell, row, lines, fiscal_year, subs, context,
                                          f"{here}/cells/{k}"))

    walk(layout.spec["blocks"], 0, {}, "/blocks")
    # an item merged over several rows holds the lines of all of them
    default = layout.spec.get("default_row_height", 18)
    per_row = {r: max(1, int((h - 4) / line_height)) for r, h in heights.items()}
    items = [replace(p, lines=sum(per_row.get(r, max(1, int(default / line_height)))
                                  for r in range(p.row, p.last_row + 1)))
             if p.last_row > p.row and p.kind == "field" else p for p in items]
    return Placement(fiscal_year, items, heights)


_TABLE = re.compile(r"\{table:(\w+)\}")


def _lookup(tables: dict[str, dict[str, str]], name: str, year: int) -> str:
    """A year's text from a table ("*": any other year)."""
    table = tables.get(name, {})
    return table.get(str(year), table.get("*", ""))


def _cols(spec: str) -> tuple[int, int]:
    first, _, last = spec.partition(":")
    return xl_cell_to_rowcol(first + "1")[1], xl_cell_to_rowcol((last or first) + "1")[1]


def _sub(text: str, subs: dict[str, str]) -> str:
    for key, value in subs.items():
        text = text.replace("{" + key + "}", value)
    return text


def _expand_cell(layout: Layout, cell: dict, row: int, lines: int, fy: int, subs: dict[str, str],
                 context: dict, where: str) -> list[Placed]:
    last_row = row + cell.get("rows", 1) - 1
    common = dict(format=cell.get("format"), style=cell.get("style"), lines=lines, where=where)
    if "window" in cell:
        window = layout.windows[cell["window"]]
        out = []
        # a cell may name its own columns: the years of the window from the first, as many as it has
        columns = cell.get("columns") or layout.columns[cell["window"]]
        for col_name, year in zip(columns, window.years(fy), strict=not cell.get("columns")):
            col, last = _cols(col_name)
            ysubs = {**subs, "year": str(year)}
            if "header" in cell:
                text = cell["header"].replace("{fiscal_label}", wareki.fiscal_label(year))
                text = text.replace("{meaning}", window.meaning(year, fy) or "")
                text = _TABLE.sub(lambda m, y=year: _lookup(layout.tables, m.group(1), y), text)
                out.append(Placed("header", row, col, last_row, last, text=_sub(text, ysubs), year=year,
                                  **common))
            else:
                out.append(_field(layout, cell, row, col, last_row, last, ysubs, year, common, fy))
        return out
    col, last_col = _cols(cell["cols"])
    if "label" in cell:
        return [Placed("label", row, col, last_row, last_col, text=_sub(cell["label"], subs),
                       format=None, style=cell.get("style", "label"), lines=lines, where=where)]
    if "text" in cell:
        text = _sub(cell["text"], {k: str(v) for k, v in context.items()} | subs)
        return [Placed("text", row, col, last_row, last_col, text=text, **common)]
    return [_field(layout, cell, row, col, last_row, last_col, subs, None, common, fy)]


def _field(layout: Layout, cell: dict, row: int, col: int, last_row: int, last_col: int,
           subs: dict[str, str], year: int | None, common: dict, fy: int) -> Placed:
    kind = "computed" if "computed" in cell else "field"
    path = _sub(cell.get("field") or cell["computed"], subs)
    if path.startswith("rates."):
        kind = "computed"
    role = "office" if layout._office(path) else cell.get("role", "input")
    return Placed(kind, row, col, last_row, last_col, path=path, role=role,
                  history=cell.get("history", False), year=year, formula=layout._formula_of(path, fy), **common)


def column_letter(col: int) -> str:
    return xl_col_to_name(col)
