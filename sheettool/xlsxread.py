"""A small, fast reader for the parts of an xlsx that ``check`` needs.

Values, formulas and cell styles come from one pass over each sheet's XML,
parsed by the C ElementTree parser through ``Package.root`` (which refuses a
DTD first, so no entity can expand, and caps decompression). That keeps both
the formula and its cached value and is several times faster than a general
workbook loader.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from .filesafety import Package


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


@dataclass(slots=True)
class RawCell:
    """One ``<c>`` element: its stored value (as text), type, formula and style index."""

    ref: str
    t: str | None = None
    v: str | None = None
    f: str | None = None
    s: int = 0
    inline: str | None = None


@dataclass
class Sheet:
    name: str
    part: str
    state: str = "visible"


@dataclass
class SheetData:
    cells: dict[str, RawCell]
    protected: bool
    protection: dict[str, str] = field(default_factory=dict)


class ErrorValue(str):
    """A spreadsheet error such as #VALUE! held in a cell."""


class Book:
    """The workbook-level parts: sheets, defined names, shared strings, cell styles."""

    def __init__(self, pkg: Package) -> None:
        self.pkg = pkg
        self.sheets: list[Sheet] = []
        self.names: dict[str, str] = {}  # workbook-scoped defined names → reference text
        self.structure_locked = False
        self._read_workbook()

    def _part(self, lower: str) -> str | None:
        return next((n for n in self.pkg.names if n.lower() == lower), None)

    def _read_workbook(self) -> None:
        rels = self._relationships("xl/_rels/workbook.xml.rels")
        root = self.pkg.root("xl/workbook.xml")
        for child in root:
            tag = _local(child.tag)
            if tag == "sheets":
                for sheet in child:
                    rid = next((v for k, v in sheet.attrib.items() if _local(k) == "id"), "")
                    target = rels.get(rid)
                    if target:
                        self.sheets.append(Sheet(sheet.get("name", ""), target, sheet.get("state", "visible")))
            elif tag == "definedNames":
                for dn in child:
                    if "localSheetId" not in dn.attrib and dn.get("name"):
                        self.names[dn.get("name")] = dn.text or ""
            elif tag == "workbookProtection":
                self.structure_locked = child.get("lockStructure") in ("1", "true")

    def _relationships(self, part: str) -> dict[str, str]:
        out: dict[str, str] = {}
        actual = self._part(part)
        if actual is None:
            return out
        base = posixpath.dirname(posixpath.dirname(part))  # xl/_rels/x.rels → xl
        for rel in self.pkg.root(actual):
            if rel.get("TargetMode") == "External":
                continue
            target = rel.get("Target", "")
            out[rel.get("Id", "")] = (target.lstrip("/") if target.startswith("/")
                                      else posixpath.normpath(posixpath.join(base, target)))
        return out

    @cached_property
    def strings(self) -> list[str]:
        part = self._part("xl/sharedstrings.xml")
        if part is None:
            return []
        return [_text_of(si) for si in self.pkg.root(part)]

    @cached_property
    def locked_styles(self) -> list[bool]:
        """Per cellXfs index: is the cell locked? (Excel's default is locked.)"""
        part = self._part("xl/styles.xml")
        out: list[bool] = []
        if part is None:
            return out
        for child in self.pkg.root(part):
            if _local(child.tag) != "cellXfs":
                continue
            for xf in child:
                locked = True
                for prot in xf:
                    if _local(prot.tag) == "protection":
                        locked = prot.get("locked", "1") not in ("0", "false")
                out.append(locked)
        return out

    def is_locked(self, cell: RawCell | None) -> bool:
        styles = self.locked_styles
        if cell is None:
            return True
        return styles[cell.s] if cell.s < len(styles) else True

    def sheet(self, name: str) -> Sheet | None:
        return next((s for s in self.sheets if s.name == name), None)

    def read_sheet(self, sheet: Sheet) -> SheetData:
        cells: dict[str, RawCell] = {}
        prot: dict[str, str] = {}
        for part in self.pkg.root(sheet.part):
            tag = _local(part.tag)
            if tag == "sheetData":
                for row in part:
                    for c in row:
                        s = c.get("s")
                        cell = RawCell(c.get("r", ""), c.get("t"), s=int(s) if s else 0)
                        if not len(c):  # a styled empty cell: most of a form
                            cells[cell.ref] = cell
                            continue
                        for child in c:
                            ctag = _local(child.tag)
                            if ctag == "v":
                                # <v/> with nothing in it (openpyxl on a formula it never computed) is
                                # no stored value; only a text result can be the empty string
                                cell.v = child.text or ("" if cell.t == "str" else None)
                            elif ctag == "f":
                                # a shared formula's followers hold no text: a formula is still there
                                cell.f = child.text or ("(shared)" if child.get("t") == "shared" else "")
                            elif ctag == "is":
                                cell.inline = _text_of(child)
                        cells[cell.ref] = cell
            elif tag == "sheetProtection":
                prot = dict(part.attrib)
        return SheetData(cells, prot.get("sheet") in ("1", "true"), prot)

    def value(self, cell: RawCell | None) -> Any:
        """The cell's stored value: float, str, bool, an ErrorValue, or None when empty."""
        if cell is None:
            return None
        t = cell.t
        if t == "inlineStr":
            return cell.inline
        if cell.v is None:
            return None
        if t == "s":
            try:
                return self.strings[int(cell.v)]
            except (ValueError, IndexError):
                return None
        if t in ("str", "d"):
            return cell.v
        if t == "b":
            return cell.v in ("1", "true")
        if t == "e":
            return ErrorValue(cell.v)
        try:
            return float(cell.v)
        except ValueError:
            return cell.v


def _text_of(node) -> str:
    """Text of an ``<si>`` / ``<is>``: plain or rich runs, without furigana (rPh)."""
    parts: list[str] = []
    for child in node:
        tag = _local(child.tag)
        if tag == "t":
            parts.append(child.text or "")
        elif tag == "r":
            parts.extend(t.text or "" for t in child if _local(t.tag) == "t")
    return "".join(parts)


@lru_cache(maxsize=4096)
def split_ref(ref_text: str) -> tuple[str | None, str]:
    """"'シート'!$C$4" → ("シート", "C4"); a range gives its top-left cell."""
    text = ref_text.strip().lstrip("=")
    sheet = None
    if "!" in text:
        sheet, _, text = text.rpartition("!")
        if sheet.startswith("'") and sheet.endswith("'"):
            sheet = sheet[1:-1].replace("''", "'")
    cell = text.split(":")[0].replace("$", "")
    return sheet, cell
