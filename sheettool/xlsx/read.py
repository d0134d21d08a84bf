"""A small, fast reader for the parts of an xlsx that ``check`` needs.

Values, formulas and cell styles come from one pass over each sheet's XML,
parsed by the C ElementTree parser through ``Package.root`` (which refuses a
DTD first, so no entity can expand, and caps decompression). That keeps both
the formula and its cached value and is several times faster than a general
workbook loader.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from .safety import Package
from .text import unescape


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
        rels = self._parsed("xl/_rels/workbook.xml.rels", _relationships)
        sheets, self.names, self.structure_locked = self._parsed("xl/workbook.xml", _workbook)
        for name, state, rid in sheets:
            target = rels.get(rid)
            if target:
                self.sheets.append(Sheet(name, target, state))

    def _parsed(self, lower: str, parse: Callable[[Any], Any]) -> Any:
        """``parse(root)`` of a workbook-level part, reused across files with the same bytes.

        Templates of one year share these parts byte for byte, so a batch parses each once.
        Missing part → ``parse(None)``.
        """
        part = self._part(lower)
        if part is None:
            return parse(None)
        data = self.pkg.read(part)
        key = (parse, data)
        cached = _PARSED.get(key)
        if cached is None:
            cached = parse(self.pkg.root_of(part, data))
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[key] = cached
        return cached

    @cached_property
    def strings(self) -> list[str]:
        part = self._part("xl/sharedstrings.xml")
        if part is None:
            return []
        return [_text_of(si) for si in self.pkg.root(part)]

    @cached_property
    def locked_styles(self) -> list[bool]:
        """Per cellXfs index: is the cell locked? (Excel's default is locked.)"""
        return self._parsed("xl/styles.xml", _locked_styles)

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
                _read_cells(part, cells)
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
        if t == "str":
            return unescape(cell.v)
        if t == "d":
            return cell.v
        if t == "b":
            return cell.v in ("1", "true")
        if t == "e":
            return ErrorValue(cell.v)
        try:
            number = float(cell.v)
        except ValueError:
            return cell.v
        # NaN, inf or 1E+400 is no number a spreadsheet holds: it stays the text stored, read as typed
        return number if math.isfinite(number) else cell.v


_PARSED: dict[tuple[Any, bytes], Any] = {}
_PARSED_MAX = 64


def _workbook(root) -> tuple[list[tuple[str, str, str]], dict[str, str], bool]:
    """(sheets as (name, state, rId), workbook-scoped defined names, structure locked)."""
    sheets: list[tuple[str, str, str]] = []
    names: dict[str, str] = {}
    locked = False
    for child in root if root is not None else ():
        tag = _local(child.tag)
        if tag == "sheets":
            for sheet in child:
                rid = next((v for k, v in sheet.attrib.items() if _local(k) == "id"), "")
                sheets.append((sheet.get("name", ""), sheet.get("state", "visible"), rid))
        elif tag == "definedNames":
            for dn in child:
                if "localSheetId" not in dn.attrib and dn.get("name"):
                    names[dn.get("name")] = dn.text or ""
        elif tag == "workbookProtection":
            locked = child.get("lockStructure") in ("1", "true")
    return sheets, names, locked


def _relationships(root) -> dict[str, str]:
    """rId → part name, for xl/_rels/workbook.xml.rels (targets relative to xl/)."""
    out: dict[str, str] = {}
    if root is None:
        return out
    for rel in root:
        if rel.get("TargetMode") == "External":
            continue
        target = rel.get("Target", "")
        out[rel.get("Id", "")] = (target.lstrip("/") if target.startswith("/")
                                  else posixpath.normpath(posixpath.join("xl", target)))
    return out


def _locked_styles(root) -> list[bool]:
    out: list[bool] = []
    if root is None:
        return out
    for child in root:
        if _local(child.tag) != "cellXfs":
            continue
        for xf in child:
            locked = True
            for prot in xf:
                if _local(prot.tag) == "protection":
                    locked = prot.get("locked", "1") not in ("0", "false")
            out.append(locked)
    return out


_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_V, _F, _IS = _MAIN_NS + "v", _MAIN_NS + "f", _MAIN_NS + "is"


def _read_cells(sheet_data, cells: dict[str, RawCell]) -> None:
    """Every ``<c>`` of ``<sheetData>``; the hot loop of check, kept lean."""
    for row in sheet_data:
        for c in row:
            get = c.get
            s = get("s")
            cell = RawCell(get("r", ""), get("t"), s=_style_index(s) if s else 0)
            cells[cell.ref] = cell
            for child in c:  # a styled empty cell (most of a form) has none
                ctag = child.tag
                if ctag != _V and ctag != _F and ctag != _IS:
                    ctag = _MAIN_NS + _local(ctag)  # a prefix other than the default namespace
                if ctag == _V:
                    # <v/> with nothing in it (openpyxl on a formula it never computed) is
                    # no stored value; only a text result can be the empty string
                    cell.v = child.text or ("" if cell.t == "str" else None)
                elif ctag == _F:
                    # a shared formula's followers hold no text: a formula is still there
                    cell.f = child.text or ("(shared)" if child.get("t") == "shared" else "")
                elif ctag == _IS:
                    cell.inline = _text_of(child)


UNKNOWN_STYLE = 1 << 31  # a style index that is not a number: no style of the book (locked, as Excel's default)


def _style_index(text: str) -> int:
    return int(text) if text.isascii() and text.isdigit() else UNKNOWN_STYLE


def _text_of(node) -> str:
    """Text of an ``<si>`` / ``<is>``: plain or rich runs, without furigana (rPh)."""
    parts: list[str] = []
    for child in node:
        tag = _local(child.tag)
        if tag == "t":
            parts.append(unescape(child.text or ""))
        elif tag == "r":  # each <t> holds its own escapes
            parts.extend(unescape(t.text or "") for t in child if _local(t.tag) == "t")
    return "".join(parts)


_CELL = re.compile(r"([A-Z]{1,3})([1-9][0-9]{0,6})")
MAX_COLUMN, MAX_ROW = 16_384, 1_048_576  # XFD, Excel's last column; its last row


def is_cell(ref: str) -> bool:
    """Is ``ref`` one cell of a worksheet (A1 … XFD1048576)?"""
    m = _CELL.fullmatch(ref)
    if m is None or int(m.group(2)) > MAX_ROW:
        return False
    column = 0
    for ch in m.group(1):
        column = column * 26 + ord(ch) - 64
    return column <= MAX_COLUMN


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
