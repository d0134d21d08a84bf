"""A small, fast reader for the parts of an xlsx that ``check`` needs.

Values, formulas and cell styles come from one pass over each sheet's XML,
parsed by the C ElementTree parser through ``Package.elements`` (which refuses a
DTD first, so no entity can expand, caps decompression, and parses a large part
incrementally, so memory stays near the part's size). That keeps both the
formula and its cached value and is several times faster than a general
workbook loader.
"""

from __future__ import annotations

import hashlib
import math
import posixpath
import re
import xml.parsers.expat
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from ..memo import remember
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
        rels = self._parsed("xl/_rels/workbook.xml.rels", _relationships, _RELATIONSHIP)
        sheets, self.names, self.structure_locked = self._parsed("xl/workbook.xml", _workbook, _WORKBOOK_ITEMS)
        for name, state, rid in sheets:
            target = rels.get(rid)
            if target:
                self.sheets.append(Sheet(name, target, state))

    def _parsed(self, lower: str, parse: Callable[[Any], Any], wanted: frozenset[str]) -> Any:
        """``parse(elements)`` of a workbook-level part, reused across files with the same bytes.

        ``elements`` are the part's (element, parent name) pairs for the tags in ``wanted``
        (``Package.elements``). Templates of one year share these parts byte for byte, so a
        batch parses each once; only small parts are kept (a hostile one may be megabytes).
        Missing part → ``parse(())``.
        """
        part = self._part(lower)
        if part is None:
            return parse(())
        data = self.pkg.read(part)
        if len(data) > _CACHED_MAX:
            return parse(self.pkg.elements(part, wanted, data))
        key = (parse, hashlib.sha256(data).digest())
        cached = _PARSED.get(key)
        if cached is None:
            cached = remember(_PARSED, key, parse(self.pkg.elements(part, wanted, data)), _PARSED_MAX)
        return cached

    @cached_property
    def strings(self) -> list[str]:
        part = self._part("xl/sharedstrings.xml")
        if part is None:
            return []
        data = self.pkg.read(part)
        if FAST_SHEETS and len(data) <= _FAST_MAX:
            self.pkg.check_prolog(part, data)  # as the element parser does first
            fast = _fast_strings(data)
            if fast is not None:
                return fast
        return [_text_of(si) for si, _ in self.pkg.elements(part, _SI, data)]

    @cached_property
    def locked_styles(self) -> list[bool]:
        """Per cellXfs index: is the cell locked? (Excel's default is locked.)"""
        return self._parsed("xl/styles.xml", _locked_styles, _XF)

    def is_locked(self, cell: RawCell | None) -> bool:
        styles = self.locked_styles
        if cell is None:
            return True
        return styles[cell.s] if cell.s < len(styles) else True

    def sheet(self, name: str) -> Sheet | None:
        return next((s for s in self.sheets if s.name == name), None)

    def read_sheet(self, sheet: Sheet) -> SheetData:
        """Every cell of a sheet, read incrementally (memory near the part's bytes, not a tree's).

        A sheet in the regular form Excel, LibreOffice, openpyxl and XlsxWriter write takes the
        fast path (``_fast_sheet``: expat checks the part is well-formed, one regular
        expression reads its cells); anything else is read by the element parser below, with
        the same result (tests/test_fastread.py compares both on real returns and mutants).
        """
        data = self.pkg.read(sheet.part)
        if FAST_SHEETS and len(data) <= _FAST_MAX:
            self.pkg.check_prolog(sheet.part, data)  # as the element parser does first
            fast = _fast_sheet(data)
            if fast is not None:
                cells, prot = fast
                return SheetData(cells, prot.get("sheet") in ("1", "true"), prot)
        cells: dict[str, RawCell] = {}
        prot: dict[str, str] = {}
        for elem, parent in self.pkg.elements(sheet.part, _SHEET_ITEMS, data):
            if parent == "row":
                _read_cell(elem, cells)
            elif parent == "worksheet" and _local(elem.tag) == "sheetProtection":
                prot = dict(elem.attrib)
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


FAST_SHEETS = True  # False: every sheet through the element parser (tests compare both paths)
_FAST_MAX = 1024 * 1024  # bytes; a larger part is parsed incrementally (memory near its size)

_PARSED: dict[tuple[Any, bytes], Any] = {}
_PARSED_MAX = 64
_CACHED_MAX = 256 * 1024  # bytes of a part whose parse is kept (a template's workbook.xml: 19-30 KB)

# The elements each part is read for (Package.elements)
_SI = frozenset({"si"})
_XF = frozenset({"xf"})
_RELATIONSHIP = frozenset({"Relationship"})
_WORKBOOK_ITEMS = frozenset({"sheet", "definedName", "workbookProtection"})
_SHEET_ITEMS = frozenset({"c", "sheetProtection"})


def _workbook(elements) -> tuple[list[tuple[str, str, str]], dict[str, str], bool]:
    """(sheets as (name, state, rId), workbook-scoped defined names, structure locked)."""
    sheets: list[tuple[str, str, str]] = []
    names: dict[str, str] = {}
    locked = False
    for elem, parent in elements:
        tag = _local(elem.tag)
        if tag == "sheet" and parent == "sheets":
            rid = next((v for k, v in elem.attrib.items() if _local(k) == "id"), "")
            sheets.append((elem.get("name", ""), elem.get("state", "visible"), rid))
        elif tag == "definedName" and parent == "definedNames":
            if "localSheetId" not in elem.attrib and elem.get("name"):
                names[elem.get("name")] = elem.text or ""
        elif tag == "workbookProtection" and parent == "workbook":
            locked = elem.get("lockStructure") in ("1", "true")
    return sheets, names, locked


def _relationships(elements) -> dict[str, str]:
    """rId → part name, for xl/_rels/workbook.xml.rels (targets relative to xl/)."""
    out: dict[str, str] = {}
    for rel, _ in elements:
        if rel.get("TargetMode") == "External":
            continue
        target = rel.get("Target", "")
        out[rel.get("Id", "")] = (target.lstrip("/") if target.startswith("/")
                                  else posixpath.normpath(posixpath.join("xl", target)))
    return out


def _locked_styles(elements) -> list[bool]:
    out: list[bool] = []
    for xf, parent in elements:
        if parent != "cellXfs":
            continue
        locked = True
        for prot in xf:
            if _local(prot.tag) == "protection":
                locked = prot.get("locked", "1") not in ("0", "false")
        out.append(locked)
    return out


_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_V, _F, _IS = _MAIN_NS + "v", _MAIN_NS + "f", _MAIN_NS + "is"


def _read_cell(c, cells: dict[str, RawCell]) -> None:
    """One ``<c>`` of ``<sheetData>``; the hot loop of check, kept lean."""
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


# --------------------------------------------------------------------------- the fast path
#
# What every writer of returns puts in a sheet part (Excel, LibreOffice, openpyxl, XlsxWriter):
# <sheetData> holding <row>s of <c r="A1" s="3" t="s"> cells, each with an optional <f>, <v>
# and <is><t>, no prefixes, no comments, no CDATA. ``_fast_sheet`` reads exactly that and
# gives up (None: the element parser reads the part) on anything else. Well-formedness is
# expat's verdict, with no handlers (C only); the grammar below then only has to say where
# each cell and its parts are. Entities can only be the predefined ones and character
# references: the prolog was checked for a DTD first, and expat refuses any other entity.

_WS = r"[ \t\n]*"
_ATTR_VALUE = r'"[^"<&\t\n]*"'
_CELL_ATTRS = r'(?: cm=' + _ATTR_VALUE + r')?(?: vm=' + _ATTR_VALUE + r')?(?: ph=' + _ATTR_VALUE + r')?'
# groups: ref, s, t, "<f", its attributes, its text, the <v> element, its text, the <is> element, its text
_CELL_RE = (r'<c r="([A-Z]{1,3}[1-9][0-9]{0,6})"(?: s="([^"<&\t\n]*)")?(?: t="([^"<&\t\n]*)")?' + _CELL_ATTRS
            + r' ?(?:/>|>(?:(<f)((?: [A-Za-z]+="[^"<]*")*) ?(?:/>|>([^<]*)</f>))?'
            r'(<v ?/>|<v>([^<]*)</v>)?'
            r'(<is><t(?: xml:space="preserve")?(?: ?/>|>([^<]*)</t>)</is>)?</c>)')
_CELL_SHAPE = (r'<c r="[A-Z]{1,3}[1-9][0-9]{0,6}"(?: s=' + _ATTR_VALUE + r')?(?: t=' + _ATTR_VALUE + r')?'
               + _CELL_ATTRS + r' ?(?:/>|>(?:<f(?: [A-Za-z]+="[^"<]*")*+ ?(?:/>|>[^<]*+</f>))?'
               r'(?:<v ?/>|<v>[^<]*+</v>)?'
               r'(?:<is><t(?: xml:space="preserve")?(?: ?/>|>[^<]*+</t>)</is>)?</c>)')
_ROW_SHAPE = (r'<row(?: [A-Za-z_:][\w:.-]*=' + _ATTR_VALUE + r')*+ ?(?:/>|>(?:' + _WS + _CELL_SHAPE + r')*+'
              + _WS + r'</row>)')
_SHEET_DATA = re.compile(r'(?:' + _WS + _ROW_SHAPE + r')*+' + _WS)
_EMPTY_CELLS = re.compile(r'<c r="([A-Z]{1,3}[1-9][0-9]{0,6})"(?: s="([^"<&\t\n]*)")?(?: t="([^"<&\t\n]*)")?'
                          + _CELL_ATTRS + r' ?/>')
_FULL_CELLS = re.compile(_CELL_RE.replace(" ?(?:/>|>(?:(<f)", " ?(?:>(?:(<f)", 1))
_SHARED = re.compile(r'\bt="shared"')
_OUTSIDE = re.compile(r"<(?:[\w.-]+:)?(?:row|c)[\s/>]")  # a row or cell element outside <sheetData>
_PROTECTION = re.compile(r'<sheetProtection((?: [A-Za-z]+="[^"<&]*")*) ?/>')
_PROT_ATTR = re.compile(r' ([A-Za-z]+)="([^"]*)"')
_BEFORE_PROTECTION = re.compile(_WS + r'(?:<sheetCalcPr(?: [A-Za-z]+="[^"<&]*")* ?/>' + _WS + r')?')
_REFERENCE = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|lt|gt|amp|quot|apos);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _decode(text: str) -> str:
    """XML character data with its references resolved (expat has vouched for each)."""
    if "&" not in text:
        return text
    if "&#" in text:  # a character reference: one pass, so "&amp;#60;" stays "&#60;"
        return _REFERENCE.sub(_reference, text)
    # the named ones in C; "&amp;" last, so "&amp;lt;" stays "&lt;"
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&apos;", "'").replace("&amp;", "&"))


def _reference(m: re.Match) -> str:
    ref = m.group(1)
    if ref[0] == "#":
        return chr(int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:]))
    return _NAMED[ref]


_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')


def _depth(head: str) -> int:
    """How many elements are open at the end of ``head`` (well-formed, no comments, PIs or CDATA)."""
    tags = _QUOTED.sub("", head)  # a ">" or "/>" inside an attribute value is no markup
    ends = tags.count("</")
    return tags.count("<") - 2 * ends - tags.count("/>")


MALFORMED, IRREGULAR, REGULAR = 0, 1, 2


def xml_shape(data: bytes) -> int:
    """One expat pass: MALFORMED; IRREGULAR (well-formed, with a comment, CDATA, a PI, a DOCTYPE
    or a CR, which the regular expressions here do not read); or REGULAR.

    The handlers fire only on those rare constructs, so the pass stays in C.
    """
    parser = xml.parsers.expat.ParserCreate()
    seen: list[bool] = []

    def irregular(*_: Any) -> None:
        seen.append(True)

    parser.CommentHandler = parser.StartCdataSectionHandler = irregular
    parser.ProcessingInstructionHandler = parser.StartDoctypeDeclHandler = irregular
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError:
        return MALFORMED
    return IRREGULAR if seen or b"\r" in data else REGULAR


def _root_text(data: bytes) -> tuple[str, int] | None:
    """A part's text (without a BOM) and where its root element starts (-1: none); None if not UTF-8.

    The prolog was checked already (no DTD) when the package was opened.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text[:1] == "\ufeff":
        text = text[1:]
    body = text.find("?>") + 2 if text.startswith("<?xml") else 0
    return text, text.find("<", body)

def _fast_sheet(data: bytes) -> tuple[dict[str, RawCell], dict[str, str]] | None:
    """(cells, sheetProtection attributes) of a regular sheet part, as ``read_sheet``'s element
    parser reads them; None for anything irregular (that parser then reads it)."""
    found = _root_text(data)
    if found is None:
        return None
    text, body = found
    start = text.find("<sheetData>")
    if body < 0 or start < 0 or text.count("sheetData") != 2:  # <sheetData/> or several: read in full
        return None
    end = text.find("</sheetData>", start)
    if end < 0 or xml_shape(data) != REGULAR:
        return None
    head, region, tail = text[body:start], text[start + 11:end], text[end + 12:]
    if _depth(head) != 1 or _OUTSIDE.search(head) or _OUTSIDE.search(tail):
        return None
    prot: dict[str, str] = {}
    count = tail.count("sheetProtection") + head.count("sheetProtection")
    if count:
        m = _PROTECTION.search(tail)
        if count != 1 or m is None or _BEFORE_PROTECTION.fullmatch(tail, 0, m.start()) is None:
            return None
        prot = dict(_PROT_ATTR.findall(m.group(1)))
    cells = Cells()
    empty = cells.empty
    total = 0
    pieces = region.split("</row>")
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        if i < last:
            piece += "</row>"
        rows = _ROWS.get(piece)
        if rows is None:
            rows = _rows(piece)
            if rows is None:
                return None
            remember(_ROWS, piece, rows, _ROWS_MAX)
        full, empties, n = rows
        total += n
        cells.update(full)
        empty.update(empties)
    # a cell given twice (the element parser takes the last): read in full
    if len(empty) + dict.__len__(cells) != total or not empty.keys().isdisjoint(dict.keys(cells)):
        return None
    return cells, prot


# Rows as their XML text → what they hold. Returns of one layout repeat most rows byte for byte
# (labels, styled empty cells, locked history): each is checked against the grammar and read
# once. Its RawCells are shared by the returns holding that row, and never changed after reading.
_ROWS: dict[str, tuple[dict[str, RawCell], dict[str, tuple[str, str]], int]] = {}
_ROWS_MAX = 4_000  # about 10 MB; a layout repeats a few hundred rows


def _rows(text: str) -> tuple[dict[str, RawCell], dict[str, tuple[str, str]], int] | None:
    """(cells with content, empty cells as (s, t), how many cells) of a run of ``<row>``s; None
    unless it is the regular form ``_SHEET_DATA`` describes, each cell given once."""
    if _SHEET_DATA.fullmatch(text) is None:
        return None
    empty = _EMPTY_CELLS.findall(text)  # (ref, s, t): a styled cell with nothing in it, most of a form
    found = _FULL_CELLS.findall(text)
    count = text.count("<c ")
    empties = {ref: (s, t) for ref, s, t in empty}
    if len(empty) + len(found) != count or len(empties) != len(empty):
        return None
    full: dict[str, RawCell] = {}
    for ref, s, t, f, f_attrs, f_text, v_el, v_text, is_el, t_text in found:
        if ref in empties or ref in full:
            return None
        t = t or None
        cell = full[ref] = RawCell(ref, t, None, None, _style_index(s) if s else 0)
        if f:  # as _read_cell: a shared formula's followers hold no text
            cell.f = _decode(f_text) if f_text else ("(shared)" if _SHARED.search(f_attrs) else "")
        if v_el:
            cell.v = _decode(v_text) if v_text else ("" if t == "str" else None)
        if is_el:
            cell.inline = unescape(_decode(t_text)) if t_text else ""
    return full, empties, count


class Cells(dict):
    """A sheet's cells by reference; the empty ones become ``RawCell``s only when looked at.

    A form is mostly styled empty cells, and check looks at few of them. Any use other than
    ``get`` (iteration, comparison, ``len``) first makes every cell.
    """

    __slots__ = ("empty",)

    def __init__(self) -> None:
        super().__init__()
        self.empty: dict[str, tuple[str, str]] = {}  # ref → (s, t) of a cell not made yet

    def get(self, ref: str, default: Any = None) -> Any:
        cell = dict.get(self, ref)
        if cell is None:
            found = self.empty.pop(ref, None)
            if found is None:
                return default
            s, t = found
            cell = self[ref] = RawCell(ref, t or None, None, None, _style_index(s) if s else 0)
        return cell

    def _all(self) -> Cells:
        for ref in list(self.empty):
            self.get(ref)
        return self

    def __getitem__(self, ref: str) -> RawCell:
        cell = self.get(ref)
        if cell is None:
            raise KeyError(ref)
        return cell

    def __contains__(self, ref: object) -> bool:
        return dict.__contains__(self, ref) or ref in self.empty

    def __iter__(self):
        return dict.__iter__(self._all())

    def __len__(self) -> int:
        return dict.__len__(self) + len(self.empty)

    def __eq__(self, other: object) -> bool:
        return dict.__eq__(self._all(), other._all() if isinstance(other, Cells) else other)

    __hash__ = None  # type: ignore[assignment]

    def items(self):
        return dict.items(self._all())

    def keys(self):
        return dict.keys(self._all())

    def values(self):
        return dict.values(self._all())


# Shared strings as Excel and LibreOffice write them: <si> holding a <t>, or rich text runs
# (<r> with an optional <rPr> of empty elements, then a <t>), then furigana (<rPh>, phoneticPr).
_T = r'<t(?: xml:space="preserve")?(?: ?/>|>[^<]*+</t>)'
_EMPTY_ELEMENT = r'<[A-Za-z]+(?: [A-Za-z]+=' + r'"[^"<]*"' + r')*+ ?/>'
_RUN = r'<r>(?:<rPr>(?:' + _EMPTY_ELEMENT + r')*+</rPr>)?' + _T + r'</r>'
_PHONETIC = (r'<rPh(?: [A-Za-z]+="[^"<]*")*+>' + _T + r'</rPh>|<phoneticPr(?: [A-Za-z]+="[^"<]*")*+ ?/>')
_SST_OPEN = re.compile(r'<sst(?: [\w:]+="[^"<]*")*+>')
# what follows an "<si>" to the next one: the <si>'s content, "</si>", whitespace
_SI_PIECE = re.compile(r'(?:' + _T + r'|' + _RUN + r')*+(?:' + _PHONETIC + r')*+</si>' + _WS)
# in one <si>'s piece: its texts, and furigana skipped whole
_SI_TEXT = re.compile(r'<t(?: xml:space="preserve")?>([^<]*)</t>|<rPh\b(?:[^<]|<(?!/rPh>))*</rPh>')


def _fast_strings(data: bytes) -> list[str] | None:
    """The shared strings of a regular part, as ``Book.strings``' element parser reads them; else None."""
    found = _root_text(data)
    if found is None:
        return None
    text, body = found
    if body < 0 or xml_shape(data) != REGULAR:
        return None
    root = _SST_OPEN.match(text, body)
    end = len(text.rstrip(" \t\n")) - 6
    if root is None or text[end:end + 6] != "</sst>" or end < root.end():
        return None
    pieces = text[root.end():end].split("<si>")
    if pieces[0].strip(" \t\n"):
        return None
    out = []
    for piece in pieces[1:]:
        string = _SI_PIECES.get(piece)
        if string is None:
            if _SI_PIECE.fullmatch(piece) is None:
                return None
            string = remember(_SI_PIECES, piece, "".join(unescape(_decode(t)) for t in _SI_TEXT.findall(piece) if t),
                              _SI_PIECES_MAX)
        out.append(string)
    return out


# An <si>'s XML text → its string. A layout's returns share most of them (labels, the panel's
# messages), so each is checked against the grammar and decoded once.
_SI_PIECES: dict[str, str] = {}
_SI_PIECES_MAX = 4_000


# One column's formulas, for a part that is compared, never read as data (the _check sheet).
# On the bytes (expat has vouched for the encoding); only the formulas found are decoded.
_COLUMN_CELL = (rb'<c r="(%s[1-9][0-9]{0,6})"(?: [A-Za-z]+="[^"<]*")*+ ?'
                rb'(?:/>|>(?:(<f)((?: [A-Za-z]+="[^"<]*")*+) ?(?:/>|>([^<]*)</f>))?)')
_SHARED_BYTES = re.compile(rb'\bt="shared"')


@lru_cache(maxsize=8)
def _column_cells(column: str) -> re.Pattern:
    return re.compile(_COLUMN_CELL % column.encode("ascii"))


def column_formulas(data: bytes, column: str) -> dict[str, str | None] | None:
    """{cell: formula or None} for the cells of ``column`` in a sheet part, as ``read_sheet``
    gives their ``f``; None unless the part is ``REGULAR`` XML (then read it in full).

    Cheaper than ``read_sheet`` for a large part of which one column matters. Only a part the
    checks compare and never read as data may be looked at this way: a cell hidden where the
    element parser would not look (another namespace, outside ``<sheetData>``) is taken here, and
    a formula is seen only as a cell's first child, so a caller treats a difference as a reason
    to read the part in full, never as a finding.
    """
    if xml_shape(data) != REGULAR:
        return None
    out: dict[str, str | None] = {}
    for ref, f, f_attrs, f_text in _column_cells(column).findall(data):
        if not f:
            formula = None
        elif f_text:
            formula = _formula_text(f_text)
        else:
            formula = "(shared)" if _SHARED_BYTES.search(f_attrs) else ""
        out[ref.decode("ascii")] = formula
    return out


@lru_cache(maxsize=4096)
def _formula_text(raw: bytes) -> str:
    """A formula's element text decoded; returns of one layout repeat them, so this is a lookup."""
    return _decode(raw.decode("utf-8"))
