"""``check --annotate OUT.xlsx``: a copy of the returned workbook with every finding marked.

The copy is rebuilt from the returned file's own parts, never loaded and saved by a
workbook library (which drops cached values, extensions and drawings, and rewrites the
styles): every zip part is copied byte for byte, then only what is needed is edited.

- The cells of findings get a fill (red for errors, yellow for warnings) through new
  ``cellXfs`` entries cloned from each cell's own style (styles.xml), and a comment
  (a new comments part and VML drawing with their relationships, or added to the
  sheet's own when it has them).
- A 指摘一覧 sheet listing every finding comes first and is the active sheet (a new
  worksheet part, with its workbook, content-type and relationship entries; sheet-local
  defined names move one place along).
- Active content stays inert: every formula that is not exactly the template's own at
  its own cell (``CheckResult.trusted_formulas``) — a WEBSERVICE, HYPERLINK or external
  reference typed into an input, a changed formula — becomes its text ("=…", an inline
  string). The calculation chain then no longer matches and is dropped (Excel rebuilds
  it). Nothing asks for recalculation on load (``fullCalcOnLoad`` is removed): the
  template's formulas keep the results the department's program saved.

Element positions come from expat (byte offsets of a real parse), so CDATA, odd
prefixes or ">" in attribute values cannot mislead the edits; every part written is
parsed again before the copy is put in place. A workbook whose parts cannot be edited
safely gets no copy (A704), never a half-inert one.
"""

from __future__ import annotations

import io
import posixpath
import re
import xml.parsers.expat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

from .. import findings
from ..fileio import atomic_write_bytes
from ..findings import Finding
from ..outputs import same_file
from ..xlsx.read import Book
from ..xlsx.safety import Package, UnreadableFile, open_package
from ..xlsx.text import escape_text, text_item
from .result import CheckResult

SHEET = "指摘一覧"
_HEADERS = ("重要度", "コード", "シート", "セル", "項目", "内容")
_WIDTHS = (8, 8, 18, 8, 28, 100)
_FILLS = {"error": "FFFFC7CE", "warning": "FFFFEB9C"}
AUTHOR = "sheettool"

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
_CT = {
    "worksheet": "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml",
    "comments": "application/vnd.openxmlformats-officedocument.spreadsheetml.comments+xml",
    "vml": "application/vnd.openxmlformats-officedocument.vmlDrawing",
}
_REF = re.compile(r"([A-Z]{1,3})([1-9][0-9]{0,6})")
_MAX_COL, _MAX_ROW = 16384, 1048576
# CT_Worksheet children that follow legacyDrawing: it goes before the first of them.
_AFTER_LEGACY = ("legacyDrawingHF", "drawingHF", "picture", "oleObjects", "controls",
                 "webPublishItems", "tableParts", "extLst")
# CT_Workbook children that follow definedNames.
_AFTER_NAMES = ("calcPr", "oleSize", "customWorkbookViews", "pivotCaches", "smartTagPr",
                "smartTagTypes", "webPublishing", "fileRecoveryPr", "webPublishObjects", "extLst")
_START_TAG = re.compile(rb"""<[^\s/>]+(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*/?>""")
_ATTR = re.compile(rb"""(\s+)([^\s=/>]+)(\s*=\s*)("[^"]*"|'[^']*')""")


class AnnotateError(Exception):
    """The annotated copy could not be written; ``finding`` says why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


def annotate(source: Path, result: CheckResult, out: Path) -> None:
    """Write ``out``: ``source`` with each finding's cell highlighted and commented."""
    if same_file(out, source):
        raise AnnotateError(findings.make("A701", file=str(out)))
    try:
        pkg = open_package(source)
        pkg.scan_xml()
        book = Book(pkg)
        data = annotated_bytes(pkg, book, result)
    except UnreadableFile:
        raise AnnotateError(findings.make("A702", file=source.name)) from None
    except _CannotEdit as e:
        raise AnnotateError(findings.make("A704", file=source.name, detail=str(e))) from None
    try:
        atomic_write_bytes(out, data)
    except OSError as e:
        raise AnnotateError(findings.make("A703", file=str(out), detail=e.strerror or str(e))) from None


class _CannotEdit(Exception):
    """A part is not shaped so that it can be edited safely (the message says which)."""


def annotated_bytes(pkg: Package, book: Book, result: CheckResult) -> bytes:
    """The annotated copy of the checked package ``pkg`` (see the module docstring)."""
    copy = _Copy(pkg)
    sheets = {s.name: s for s in book.sheets}
    marks = _marks(result.findings, sheets)
    styles = _Styles(copy)
    neutralized = False
    for name, sheet in sheets.items():
        edit = _SheetEdit(copy, sheet.part, name, result.trusted_formulas)
        if edit.neutralize():
            neutralized = True
        edit.mark(marks.get(name, {}), styles)
        edit.unselect()
        if marks.get(name):
            _Comments(copy, sheet.part, edit).add(marks[name])
        edit.commit()
    listing = _listing_sheet(result.findings, styles)
    _Workbook(copy).add_first_sheet(listing, len(result.findings), drop_calc_chain=neutralized)
    styles.commit()
    return copy.zip()


# --------------------------------------------------------------------------- the package


class _Copy:
    """The parts of the returned package, with the edits made so far."""

    def __init__(self, pkg: Package) -> None:
        self.pkg = pkg
        self.names = list(pkg.names)
        self._lower = {n.lower(): n for n in self.names}
        self.changed: dict[str, bytes] = {}
        self.added: dict[str, bytes] = {}
        self.removed: set[str] = set()

    def name(self, part: str) -> str | None:
        """The stored name of ``part`` (part names are case-insensitive), or None."""
        lower = part.lower()
        if lower in self._lower and self._lower[lower] not in self.removed:
            return self._lower[lower]
        return next((n for n in self.added if n.lower() == lower), None)

    def read(self, part: str) -> bytes | None:
        name = self.name(part)
        if name is None:
            return None
        if name in self.added:
            return self.added[name]
        if name in self.changed:
            return self.changed[name]
        return self.pkg.read(name)

    def write(self, part: str, data: bytes) -> None:
        name = self.name(part)
        if name is None:
            self.added[part] = data
        elif name in self.added:
            self.added[name] = data
        else:
            self.changed[name] = data

    def remove(self, part: str) -> None:
        name = self.name(part)
        if name is not None:
            self.added.pop(name, None)
            self.removed.add(name)

    def free(self, pattern: str) -> str:
        """The first unused part name ``pattern.format(n)`` for n = 1, 2, …"""
        n = 1
        while self.name(pattern.format(n)) is not None:
            n += 1
        return pattern.format(n)

    def zip(self) -> bytes:
        for name, data in (*self.changed.items(), *self.added.items()):
            if name.lower().endswith((".xml", ".rels", ".vml")):
                _well_formed(name, data)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
            for name in self.names:
                if name in self.removed:
                    continue
                info = self.pkg.info(name)
                data = self.changed.get(name)
                if data is None:
                    data = self.pkg.read(name)
                copy = zipfile.ZipInfo(name, info.date_time)
                copy.compress_type = zipfile.ZIP_DEFLATED
                copy.external_attr = info.external_attr
                out.writestr(copy, data)
            for name, data in self.added.items():
                out.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data,
                             compress_type=zipfile.ZIP_DEFLATED)
        return buf.getvalue()


def _well_formed(name: str, data: bytes) -> None:
    parser = xml.parsers.expat.ParserCreate()
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as e:
        raise _CannotEdit(f"{name}: {e}") from None


# --------------------------------------------------------------------------- XML by byte offsets


@dataclass
class _El:
    """One element of a part: where it starts and ends, its tag's text, its attributes."""

    ns: str
    local: str
    start: int  # offset of "<"
    tag_end: int  # offset after the start tag's ">"
    end: int = -1  # offset after the end tag (or the empty-element tag)
    attrs: dict[str, str] = field(default_factory=dict)  # "ns local" or "local" → value
    depth: int = 0
    text: list[str] = field(default_factory=list)
    parent: _El | None = None

    @property
    def empty(self) -> bool:
        return self.end == self.tag_end

    def get(self, local: str) -> str | None:
        """An unqualified attribute (r, s, t, …)."""
        return self.attrs.get(local)


class _Xml:
    """A part parsed once for the offsets of the elements named in ``wanted`` (local names)."""

    def __init__(self, data: bytes, wanted: Iterable[str], *, text_of: Iterable[str] = ()) -> None:
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        if not data.lstrip()[:1] == b"<" or data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise _CannotEdit("UTF-8 ではない XML")
        self.data = data
        self.elements: list[_El] = []
        self.prefixes: dict[int, bytes] = {}
        self.root: _El | None = None
        wanted, text_of = set(wanted), set(text_of)
        stack: list[_El | None] = []
        parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
        parser.buffer_text = True

        def start(name: str, attrs: dict[str, str]) -> None:
            ns, _, local = name.rpartition(" ")
            offset = parser.CurrentByteIndex
            tag = _START_TAG.match(data, offset)
            if tag is None:
                raise _CannotEdit(f"開始タグを読めません（{local}）")
            parent = next((e for e in reversed(stack) if e is not None), None)
            el = _El(ns, local, offset, tag.end(), attrs=dict(attrs), depth=len(stack), parent=parent)
            if tag.group(0).endswith(b"/>"):
                el.end = tag.end()
            raw_name = data[offset + 1:tag.end()].split(None, 1)[0].rstrip(b"/>")
            self.prefixes[offset] = raw_name.rpartition(b":")[0] + b":" if b":" in raw_name else b""
            if self.root is None:
                self.root = el
            keep = local in wanted or el is self.root or local in text_of
            if keep:
                self.elements.append(el)
            stack.append(el if keep else None)

        def end(name: str) -> None:
            el = stack.pop()
            if el is not None and el.end < 0:
                close = data.find(b">", parser.CurrentByteIndex)
                el.end = close + 1

        def chars(text: str) -> None:
            el = stack[-1] if stack else None
            if el is not None and el.local in text_of:
                el.text.append(text)

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = chars
        try:
            parser.Parse(data, True)
        except xml.parsers.expat.ExpatError as e:
            raise _CannotEdit(str(e)) from None

    def prefix(self, el: _El) -> bytes:
        return self.prefixes.get(el.start, b"")

    def find(self, local: str, parent: _El | None = None) -> list[_El]:
        return [e for e in self.elements if e.local == local and (parent is None or e.parent is parent)]

    def first(self, local: str, parent: _El | None = None) -> _El | None:
        found = self.find(local, parent)
        return found[0] if found else None

    def prefix_for(self, uri: str) -> bytes | None:
        """A prefix the root declares for ``uri`` (b"r:"), b"" for the default namespace, or None."""
        assert self.root is not None
        tag = self.data[self.root.start:self.root.tag_end]
        for m in _ATTR.finditer(tag):
            name, value = m.group(2), m.group(4)[1:-1].decode("utf-8", "replace")
            if value == uri and name.startswith(b"xmlns"):
                return name[6:] + b":" if name.startswith(b"xmlns:") else b""
        return None


class _Edits:
    """Non-overlapping replacements of byte ranges, applied at once."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.edits: list[tuple[int, int, bytes]] = []

    def replace(self, start: int, end: int, text: bytes) -> None:
        self.edits.append((start, end, text))

    def insert(self, at: int, text: bytes) -> None:
        self.edits.append((at, at, text))

    def apply(self) -> bytes:
        out, last = [], 0
        for start, end, text in sorted(self.edits, key=lambda e: (e[0], e[1])):
            if start < last:
                raise _CannotEdit("重なる編集")
            out += [self.data[last:start], text]
            last = end
        out.append(self.data[last:])
        return b"".join(out)


def _set_attrs(tag: bytes, values: dict[bytes, bytes | None]) -> bytes:
    """A start tag with attributes set (value) or removed (None); others kept as written."""
    pending = dict(values)

    def sub(m: re.Match[bytes]) -> bytes:
        name = m.group(2)
        if name not in pending:
            return m.group(0)
        value = pending.pop(name)
        return b"" if value is None else m.group(1) + name + b'="' + value + b'"'

    head_end = len(tag) - (2 if tag.endswith(b"/>") else 1)
    body = _ATTR.sub(sub, tag[:head_end])
    extra = b"".join(b" " + k + b'="' + v + b'"' for k, v in pending.items() if v is not None)
    return body.rstrip() + extra + tag[head_end:]


def _attr(value: str) -> bytes:
    return quoteattr(value)[1:-1].encode("utf-8")


def _col_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _split(ref: str) -> tuple[int, int] | None:
    m = _REF.fullmatch(ref or "")
    if not m:
        return None
    col, row = _col_number(m.group(1)), int(m.group(2))
    return (row, col) if col <= _MAX_COL and row <= _MAX_ROW else None


# --------------------------------------------------------------------------- relationships


class _Rels:
    """A .rels part: its relationships, and new ones added before its end tag."""

    def __init__(self, copy: _Copy, owner: str) -> None:
        folder, name = posixpath.split(owner)
        self.copy = copy
        self.folder = folder
        self.part = posixpath.join(folder, "_rels", name + ".rels")
        data = copy.read(self.part)
        self.data = data if data is not None else (
            b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            b'<Relationships xmlns="' + _PKG_REL_NS.encode() + b'"></Relationships>')
        self.xml = _Xml(self.data, ["Relationship"])
        self.rels = [(e.get("Id") or "", e.get("Type") or "", e.get("Target") or "", e.get("TargetMode"))
                     for e in self.xml.find("Relationship")]
        self.new: list[bytes] = []
        self.dropped = False

    def target(self, rid: str) -> str | None:
        """The part a relationship id points at (None for an external or unknown one)."""
        for id_, _, target, mode in self.rels:
            if id_ == rid and mode != "External":
                return posixpath.normpath(posixpath.join(self.folder, target)) if not target.startswith("/") \
                    else target.lstrip("/")
        return None

    def of_type(self, kind: str) -> list[tuple[str, str]]:
        """(id, part) of the internal relationships whose type ends with ``/kind``."""
        return [(id_, self.target(id_)) for id_, type_, _, mode in self.rels
                if type_.rsplit("/", 1)[-1] == kind and mode != "External" and self.target(id_)]

    def type_base(self) -> str:
        """The relationship-type namespace the package uses (transitional or strict)."""
        known = [t.rsplit("/", 1)[0] for _, t, _, _ in self.rels if "/relationships/" in t + "/"]
        return known[0] if known else _REL_NS

    def add(self, kind: str, part: str) -> str:
        ids = {id_ for id_, *_ in self.rels}
        n = len(ids) + 1
        while f"rId{n}" in ids:
            n += 1
        rid = f"rId{n}"
        target = posixpath.relpath(part, self.folder or ".")
        self.rels.append((rid, f"{self.type_base()}/{kind}", target, None))
        self.new.append(f'<Relationship Id="{rid}" Type="{self.type_base()}/{kind}" Target="{target}"/>'
                        .encode())
        return rid

    def remove(self, part: str) -> None:
        """Drop the relationships pointing at ``part``."""
        edits = _Edits(self.data)
        for el in self.xml.find("Relationship"):
            if self.target(el.get("Id") or "") == part:
                edits.replace(el.start, el.end, b"")
        self.rels = [r for r in self.rels if self.target(r[0]) != part]
        self.data = edits.apply()
        self.xml = _Xml(self.data, ["Relationship"])
        self.dropped = True

    def commit(self) -> None:
        if not self.new and not self.dropped:
            return
        root = self.xml.root
        assert root is not None
        if root.empty:
            tag = self.data[root.start:root.tag_end]
            body = tag[:-2] + b">" + b"".join(self.new) + b"</" + self.xml.prefix(root) + b"Relationships>"
            data = self.data[:root.start] + body + self.data[root.end:]
        else:
            close = self.data.rfind(b"</", 0, root.end)
            data = self.data[:close] + b"".join(self.new) + self.data[close:]
        self.copy.write(self.part, data)


class _ContentTypes:
    def __init__(self, copy: _Copy) -> None:
        self.copy = copy
        self.data = copy.read("[Content_Types].xml") or b""
        self.xml = _Xml(self.data, ["Default", "Override"])
        self.defaults = {(e.get("Extension") or "").lower() for e in self.xml.find("Default")}
        self.overrides = {(e.get("PartName") or "").lower(): e for e in self.xml.find("Override")}
        self.edits = _Edits(self.data)
        self.new: list[bytes] = []

    def override(self, part: str, content_type: str) -> None:
        name = "/" + part
        if name.lower() not in self.overrides:
            self.new.append(f'<Override PartName="{name}" ContentType="{content_type}"/>'.encode())
            self.overrides[name.lower()] = None  # type: ignore[assignment]

    def default(self, extension: str, content_type: str) -> None:
        if extension not in self.defaults:
            self.new.append(f'<Default Extension="{extension}" ContentType="{content_type}"/>'.encode())
            self.defaults.add(extension)

    def drop(self, part: str) -> None:
        el = self.overrides.get("/" + part.lower())
        if el is not None:
            self.edits.replace(el.start, el.end, b"")

    def commit(self) -> None:
        root = self.xml.root
        assert root is not None
        close = self.data.rfind(b"</", 0, root.end)
        # Defaults come first in the schema's sequence? No: CT_Types is a choice of both, any order.
        self.edits.insert(close, b"".join(self.new))
        self.copy.write(self.copy.name("[Content_Types].xml") or "[Content_Types].xml", self.edits.apply())


# --------------------------------------------------------------------------- styles


class _Styles:
    """styles.xml: the fills of marked cells, cloned cell formats, the listing's formats."""

    def __init__(self, copy: _Copy) -> None:
        self.copy = copy
        self.part = copy.name("xl/styles.xml")
        self.data = copy.read(self.part) if self.part else None
        self.xml = _Xml(self.data, ["fills", "fill", "fonts", "font", "cellXfs", "xf"]) if self.data else None
        self.ok = False
        if self.xml is not None:
            root = self.xml.root
            self.fills_el = self.xml.first("fills", root)
            self.fonts_el = self.xml.first("fonts", root)
            self.xfs_el = self.xml.first("cellXfs", root)
            self.ok = None not in (self.fills_el, self.fonts_el, self.xfs_el) and not self.xfs_el.empty
        if self.ok:
            self.fills = self.xml.find("fill", self.fills_el)
            self.fonts = self.xml.find("font", self.fonts_el)
            self.xfs = self.xml.find("xf", self.xfs_el)
            self.p = self.xml.prefix(self.xfs_el)
        self.new_fills: list[bytes] = []
        self.new_fonts: list[bytes] = []
        self.new_xfs: list[bytes] = []
        self._fill_ids: dict[str, int] = {}
        self._marked: dict[tuple[int, str], int] = {}
        self._listing: tuple[int, int] | None = None

    def marked(self, xf: int, severity: str) -> int | None:
        """The cellXfs index of style ``xf`` with the fill of ``severity`` (None: no styles to edit)."""
        if not self.ok:
            return None
        key = (xf if 0 <= xf < len(self.xfs) else 0, severity)
        if key not in self._marked:
            fill = self._fill(severity)
            source = self.xfs[key[0]] if self.xfs else None
            tag = self.data[source.start:source.tag_end] if source is not None else b"<" + self.p + b"xf/>"
            body = self.data[source.tag_end:source.end] if source is not None and not source.empty else b""
            tag = _set_attrs(tag, {b"fillId": str(fill).encode(), b"applyFill": b"1"})
            if body:
                tag = tag[:-2] + b">" if tag.endswith(b"/>") else tag
            self._marked[key] = self._add_xf(tag + body)
        return self._marked[key]

    def _fill(self, severity: str) -> int:
        if severity not in self._fill_ids:
            p = self.xml.prefix(self.fills_el)
            rgb = _FILLS[severity].encode()
            self.new_fills.append(b"<" + p + b'fill><' + p + b'patternFill patternType="solid"><' + p
                                  + b'fgColor rgb="' + rgb + b'"/><' + p + b'bgColor indexed="64"/></'
                                  + p + b"patternFill></" + p + b"fill>")
            self._fill_ids[severity] = len(self.fills) + len(self.new_fills) - 1
        return self._fill_ids[severity]

    def _add_xf(self, xml: bytes) -> int:
        self.new_xfs.append(xml)
        return len(self.xfs) + len(self.new_xfs) - 1

    def listing(self) -> tuple[int, int]:
        """(header, body) cellXfs of the 指摘一覧 sheet: bold text, wrapped text (0, 0 without styles)."""
        if not self.ok:
            return 0, 0
        if self._listing is None:
            p = self.xml.prefix(self.fonts_el)
            first = self.data[self.fonts[0].start:self.fonts[0].end] if self.fonts else b""
            # the default font made bold, its children in the schema's order whatever the file's
            parts = [b"<" + p + b"b/>"]
            for child in (b"sz", b"name", b"family", b"charset", b"scheme"):
                m = re.search(rb"<(?:\w+:)?" + child + rb"""\s+val\s*=\s*("[^"]*"|'[^']*')""", first)
                if m:
                    parts.append(b"<" + p + child + b" val=" + m.group(1) + b"/>")
            self.new_fonts.append(b"<" + p + b"font>" + b"".join(parts) + b"</" + p + b"font>")
            bold = len(self.fonts) + len(self.new_fonts) - 1
            x = self.p
            header = self._add_xf(b"<" + x + b'xf numFmtId="49" fontId="' + str(bold).encode()
                                  + b'" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyFont="1"/>')
            body = self._add_xf(b"<" + x + b'xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0"'
                                b' applyNumberFormat="1" applyAlignment="1"><' + x
                                + b'alignment vertical="top" wrapText="1"/></' + x + b"xf>")
            self._listing = (header, body)
        return self._listing

    def commit(self) -> None:
        if not self.ok or not (self.new_xfs or self.new_fills or self.new_fonts):
            return
        edits = _Edits(self.data)
        for el, items, new in ((self.fills_el, self.fills, self.new_fills),
                               (self.fonts_el, self.fonts, self.new_fonts),
                               (self.xfs_el, self.xfs, self.new_xfs)):
            if not new:
                continue
            tag = self.data[el.start:el.tag_end]
            count = str(len(items) + len(new)).encode()
            if el.empty:
                p = self.xml.prefix(el)
                edits.replace(el.start, el.end, _set_attrs(tag, {b"count": count})[:-2] + b">" + b"".join(new)
                              + b"</" + p + el.local.encode() + b">")
            else:
                edits.replace(el.start, el.tag_end, _set_attrs(tag, {b"count": count}))
                edits.insert(self.data.rfind(b"</", 0, el.end), b"".join(new))
        self.copy.write(self.part, edits.apply())


# --------------------------------------------------------------------------- one sheet


def _marks(found: list[Finding], sheets: dict) -> dict[str, dict[tuple[int, int], list[Finding]]]:
    """Findings by sheet and (row, column) of their cell, for cells that exist on a sheet."""
    out: dict[str, dict[tuple[int, int], list[Finding]]] = {}
    for f in found:
        at = _split(f.cell) if f.sheet in sheets and f.cell else None
        if at is not None:
            out.setdefault(f.sheet, {}).setdefault(at, []).append(f)
    return out


def _ref(row: int, col: int) -> str:
    letters = ""
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row}"


class _SheetEdit:
    """One worksheet part: formulas made inert, cells marked, the tab unselected."""

    def __init__(self, copy: _Copy, part: str, name: str, trusted: frozenset[tuple[str, str]]) -> None:
        self.copy, self.part, self.name, self.trusted = copy, part, name, trusted
        self.data = copy.read(part)
        if self.data is None:
            raise _CannotEdit(f"{part} がありません")
        self.xml = _Xml(self.data, ["sheetData", "row", "c", "f", "v", "is", "sheetView", "legacyDrawing",
                                    "dimension", *_AFTER_LEGACY], text_of=["f"])
        self.edits = _Edits(self.data)
        self.cells: dict[str, _El] = {}
        for c in self.xml.find("c"):
            ref = c.get("r")
            if ref:
                self.cells[ref] = c
        self.new_content: dict[int, bytes] = {}  # cell start → its new inner XML
        self.new_style: dict[int, int] = {}  # cell start → new s
        self.inline: set[int] = set()  # cells becoming inline strings
        self.legacy_rid: str | None = None

    # -- formulas

    def neutralize(self) -> bool:
        """Every formula that is not the template's own becomes its text. True if any did."""
        masters: dict[str, str] = {}
        for f in self.xml.find("f"):
            if f.get("t") == "shared" and f.get("ref") is not None and f.get("si") is not None:
                masters[f.get("si")] = "".join(f.text)
        done = False
        for c in self.xml.find("c"):
            f = self.xml.first("f", c)
            if f is None:
                continue
            ref = c.get("r") or ""
            text = "".join(f.text)
            if (self.name, ref) in self.trusted and text:
                continue
            if not text and f.get("t") == "shared":
                text = masters.get(f.get("si") or "", "")
            p = self.xml.prefix(c)
            shown = "=" + text if text else "=（共有数式）"
            self.new_content[c.start] = (b"<" + p + b"is><" + p + b"t xml:space=\"preserve\">"
                                         + escape_text(shown).encode("utf-8") + b"</" + p + b"t></" + p + b"is>")
            self.inline.add(c.start)
            done = True
        return done

    # -- marks

    def mark(self, marks: dict[tuple[int, int], list[Finding]], styles: _Styles) -> None:
        missing: dict[int, list[tuple[int, int]]] = {}
        for (row, col), items in sorted(marks.items()):
            severity = "error" if any(f.is_error for f in items) else "warning"
            c = self.cells.get(_ref(row, col))
            base = int(c.get("s")) if c is not None and (c.get("s") or "").isdigit() else 0
            xf = styles.marked(base, severity)
            if xf is None:
                continue
            if c is not None:
                self.new_style[c.start] = xf
            else:
                missing.setdefault(row, []).append((col, xf))
        self._insert_cells(missing)

    def _insert_cells(self, missing: dict[int, list[tuple[int, int]]]) -> None:
        """Empty styled cells for marked cells the sheet does not have (rows made where needed)."""
        if not missing:
            return
        sheet_data = self.xml.first("sheetData")
        if sheet_data is None:
            return
        p = self.xml.prefix(sheet_data)
        rows = {int(r.get("r")): r for r in self.xml.find("row", sheet_data) if (r.get("r") or "").isdigit()}
        new_rows: list[tuple[int, bytes]] = []
        for row, cols in missing.items():
            cells = b"".join(b"<" + p + b'c r="' + _ref(row, col).encode() + b'" s="' + str(xf).encode() + b'"/>'
                             for col, xf in sorted(cols))
            el = rows.get(row)
            if el is None:
                new_rows.append((row, b"<" + p + b'row r="' + str(row).encode() + b'">' + cells + b"</" + p + b"row>"))
                continue
            if el.empty:
                tag = self.data[el.start:el.tag_end]
                self.edits.replace(el.start, el.end, tag[:-2] + b">" + cells + b"</" + p + b"row>")
                continue
            for col, xf in sorted(cols):
                cell = b"<" + p + b'c r="' + _ref(row, col).encode() + b'" s="' + str(xf).encode() + b'"/>'
                after = [c for c in self.xml.find("c", el) if (_split(c.get("r") or "") or (0, 0))[1] > col]
                at = after[0].start if after else self.data.rfind(b"</", 0, el.end)
                self.edits.insert(at, cell)
        if not new_rows:
            return
        if sheet_data.empty:
            tag = self.data[sheet_data.start:sheet_data.tag_end]
            self.edits.replace(sheet_data.start, sheet_data.end, tag[:-2] + b">"
                               + b"".join(x for _, x in sorted(new_rows)) + b"</" + p + b"sheetData>")
            return
        ordered = sorted(rows.items())
        for row, row_xml in new_rows:
            after = [el for r, el in ordered if r > row]
            at = after[0].start if after else self.data.rfind(b"</", 0, sheet_data.end)
            self.edits.insert(at, row_xml)

    # -- the tab

    def unselect(self) -> None:
        """No other sheet stays selected once 指摘一覧 is (two selected tabs are a sheet group)."""
        for view in self.xml.find("sheetView"):
            if view.get("tabSelected") in ("1", "true"):
                tag = self.data[view.start:view.tag_end]
                self.edits.replace(view.start, view.tag_end, _set_attrs(tag, {b"tabSelected": None}))

    def legacy_drawing(self) -> tuple[str, str | None] | None:
        """(r:id, its VML part) of the sheet's legacyDrawing, if it has one."""
        el = self.xml.first("legacyDrawing")
        if el is None:
            return None
        rid = next((v for k, v in el.attrs.items() if k.endswith(" id")), None)
        return (rid, None) if rid else None

    def add_legacy_drawing(self, rid: str) -> None:
        root = self.xml.root
        follower = next((e for e in self.xml.elements if e.parent is root and e.local in _AFTER_LEGACY), None)
        at = follower.start if follower is not None else self.data.rfind(b"</", 0, root.end)
        p = self.xml.prefix(root)
        self.edits.insert(at, b"<" + p + b'legacyDrawing xmlns:r="' + _REL_NS.encode() + b'" r:id="'
                          + rid.encode() + b'"/>')

    def commit(self) -> None:
        for c in self.xml.find("c"):
            if c.start not in self.new_style and c.start not in self.new_content:
                continue
            tag = self.data[c.start:c.tag_end]
            attrs: dict[bytes, bytes | None] = {}
            if c.start in self.new_style:
                attrs[b"s"] = str(self.new_style[c.start]).encode()
            if c.start in self.inline:  # no longer a formula: no cell or value metadata either
                attrs.update({b"t": b"inlineStr", b"cm": None, b"vm": None})
            tag = _set_attrs(tag, attrs)
            if c.start in self.new_content:
                p = self.xml.prefix(c)
                head = tag[:-2] + b">" if tag.endswith(b"/>") else tag
                self.edits.replace(c.start, c.end, head + self.new_content[c.start] + b"</" + p + b"c>")
            else:
                self.edits.replace(c.start, c.tag_end, tag)
        if self.edits.edits:
            self.copy.write(self.part, self.edits.apply())


# --------------------------------------------------------------------------- comments


class _Comments:
    """A sheet's comments: a new comments part and VML drawing, or the sheet's own extended."""

    def __init__(self, copy: _Copy, part: str, sheet: _SheetEdit) -> None:
        self.copy, self.part, self.sheet = copy, part, sheet
        self.rels = _Rels(copy, part)

    def add(self, marks: dict[tuple[int, int], list[Finding]]) -> None:
        texts = {at: "\n".join(f"【{'エラー' if f.is_error else '注意'}】{f.message}" for f in items)
                 for at, items in sorted(marks.items())}
        own_comments = self.rels.of_type("comments")
        legacy = self.sheet.legacy_drawing()
        vml_part = self.rels.target(legacy[0]) if legacy else None
        types = _ContentTypes(self.copy)
        if own_comments and vml_part and self.copy.read(vml_part) is not None:
            self._extend(own_comments[0][1], vml_part, texts)
        elif own_comments or legacy:
            return  # a drawing we cannot pair with its comments: 指摘一覧 still lists every finding
        else:
            comments = self.copy.free("xl/comments{}.xml")
            vml = self.copy.free("xl/drawings/vmlDrawing{}.vml")
            self.copy.write(comments, _comments_xml(texts))
            self.copy.write(vml, _vml_xml(texts, first_shape=1025))
            self.rels.add("comments", comments)
            rid = self.rels.add("vmlDrawing", vml)
            self.sheet.add_legacy_drawing(rid)
            types.override(comments, _CT["comments"])
            types.default("vml", _CT["vml"])
            types.commit()
        self.rels.commit()

    def _extend(self, comments_part: str, vml_part: str, texts: dict[tuple[int, int], str]) -> None:
        data = self.copy.read(comments_part) or b""
        xml = _Xml(data, ["authors", "author", "commentList", "comment", "text"])
        authors, listing = xml.first("authors"), xml.first("commentList")
        if authors is None or listing is None or authors.empty:
            return
        p = xml.prefix(authors)
        edits = _Edits(data)
        author_id = len(xml.find("author", authors))
        edits.insert(data.rfind(b"</", 0, authors.end), b"<" + p + b"author>" + AUTHOR.encode() + b"</" + p + b"author>")
        existing = {c.get("ref"): c for c in xml.find("comment", listing)}
        new = {}
        for (row, col), text in texts.items():
            ref = _ref(row, col)
            run = b"<" + p + b"r><" + p + b"t xml:space=\"preserve\">" + escape_text("\n" + text).encode() \
                + b"</" + p + b"t></" + p + b"r>"
            if ref in existing:
                body = xml.first("text", existing[ref])
                if body is not None and not body.empty:
                    edits.insert(data.rfind(b"</", 0, body.end), run)
                continue
            new[(row, col)] = text
            edits.insert(data.rfind(b"</", 0, listing.end) if not listing.empty else listing.end,
                         b"<" + p + b'comment ref="' + ref.encode() + b'" authorId="' + str(author_id).encode()
                         + b'"><' + p + b"text>" + run + b"</" + p + b"text></" + p + b"comment>")
        if listing.empty and new:
            return  # an empty-element commentList: leave the comments alone
        self.copy.write(comments_part, edits.apply())
        if new:
            vml = self.copy.read(vml_part) or b""
            ids = [int(n) for n in re.findall(rb"_x0000_s(\d+)", vml)] or [1024]
            shapes = _vml_shapes(new, max(ids) + 1)
            if b"_x0000_t202" not in vml:
                shapes = _SHAPETYPE + shapes
            close = vml.rfind(b"</xml>")
            if close < 0:
                return
            self.copy.write(vml_part, vml[:close] + shapes + vml[close:])


def _comments_xml(texts: dict[tuple[int, int], str]) -> bytes:
    items = "".join(f'<comment ref="{_ref(row, col)}" authorId="0"><text><r><t xml:space="preserve">'
                    f"{escape_text(text)}</t></r></text></comment>" for (row, col), text in texts.items())
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<comments xmlns="{_MAIN}">'
            f"<authors><author>{AUTHOR}</author></authors><commentList>{items}</commentList></comments>"
            ).encode()


_SHAPETYPE = (b'<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe">'
              b'<v:stroke joinstyle="miter"/><v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>')


def _vml_xml(texts: dict[tuple[int, int], str], first_shape: int) -> bytes:
    return (b'<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office"'
            b' xmlns:x="urn:schemas-microsoft-com:office:excel"><o:shapelayout v:ext="edit">'
            b'<o:idmap v:ext="edit" data="1"/></o:shapelayout>' + _SHAPETYPE
            + _vml_shapes(texts, first_shape) + b"</xml>")


def _vml_shapes(texts: dict[tuple[int, int], str], first_shape: int) -> bytes:
    """One hidden note shape per comment, anchored beside its cell (as Excel and XlsxWriter draw them)."""
    out = []
    for n, ((row, col), text) in enumerate(texts.items()):
        lines = min(4 + text.count("\n") * 2 + len(text) // 40, 20)
        top = max(row - 2, 0)
        anchor = f"{col}, 15, {top}, 10, {col + 4}, 15, {top + lines}, 4"
        out.append(
            f'<v:shape id="_x0000_s{first_shape + n}" type="#_x0000_t202" style="position:absolute;'
            f"margin-left:{60 * col}pt;margin-top:{15 * top}pt;width:300pt;height:{15 * lines}pt;"
            f'z-index:{n + 1};visibility:hidden" fillcolor="#ffffe1" o:insetmode="auto">'
            '<v:fill color2="#ffffe1"/><v:shadow on="t" color="black" obscured="t"/>'
            '<v:path o:connecttype="none"/><v:textbox style="mso-direction-alt:auto">'
            '<div style="text-align:left"></div></v:textbox><x:ClientData ObjectType="Note">'
            f"<x:MoveWithCells/><x:SizeWithCells/><x:Anchor>{anchor}</x:Anchor><x:AutoFill>False</x:AutoFill>"
            f"<x:Row>{row - 1}</x:Row><x:Column>{col - 1}</x:Column></x:ClientData></v:shape>")
    return "".join(out).encode("utf-8")


# --------------------------------------------------------------------------- 指摘一覧


def _listing_sheet(found: list[Finding], styles: _Styles) -> bytes:
    header, body = styles.listing()
    rows = [_row(1, _HEADERS, header)]
    for i, f in enumerate(found, start=2):
        rows.append(_row(i, ("エラー" if f.is_error else "注意", f.code, f.sheet or "", f.cell or "",
                             f.field or "", f.message), body))
    cols = "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>' for i, w in enumerate(_WIDTHS, start=1))
    last = max(len(found) + 1, 1)
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN}">'
            f'<dimension ref="A1:F{last}"/><sheetViews><sheetView tabSelected="1" workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="13.5"/><cols>{cols}</cols><sheetData>{"".join(rows)}</sheetData>'
            f'<autoFilter ref="A1:F{last}"/><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75"'
            ' header="0.3" footer="0.3"/></worksheet>').encode()


def _row(n: int, values: tuple[str, ...], xf: int) -> str:
    # Inline strings: text that starts with "=" stays text; text_item escapes control characters.
    cells = "".join(f'<c r="{_ref(n, i)}" s="{xf}" t="inlineStr"><is>{text_item(str(v))}</is></c>'
                    for i, v in enumerate(values, start=1))
    return f'<row r="{n}">{cells}</row>'


class _Workbook:
    """xl/workbook.xml: the listing sheet first and active, names moved along, no calc chain."""

    def __init__(self, copy: _Copy) -> None:
        self.copy = copy
        self.part = copy.name("xl/workbook.xml")
        self.data = copy.read(self.part)
        self.xml = _Xml(self.data, ["sheets", "sheet", "definedNames", "definedName", "bookViews",
                                    "workbookView", "externalReferences", "functionGroups", "calcPr",
                                    *_AFTER_NAMES])
        self.rels = _Rels(copy, self.part)

    def add_first_sheet(self, sheet_xml: bytes, count: int, *, drop_calc_chain: bool) -> None:
        xml, data = self.xml, self.data
        sheets_el = xml.first("sheets")
        if sheets_el is None or sheets_el.empty:
            raise _CannotEdit("xl/workbook.xml にシートの一覧がありません")
        existing = xml.find("sheet", sheets_el)
        name = _free_name(SHEET, {s.get("name") for s in existing})
        part = self.copy.free("xl/worksheets/sheet{}.xml")
        self.copy.write(part, sheet_xml)
        rid = self.rels.add("worksheet", part)
        ids = [int(s.get("sheetId")) for s in existing if (s.get("sheetId") or "").isdigit()]
        p = xml.prefix(sheets_el)
        id_attr = next((k for s in existing for k in s.attrs if k.endswith(" id")), f"{_REL_NS} id")
        rel_ns = id_attr.rpartition(" ")[0]
        declared = xml.prefix_for(rel_ns)
        rel_id = (declared + b"id" if declared else
                  b'xmlns:r="' + rel_ns.encode() + b'" r:id')  # declared right there when the root does not
        edits = _Edits(data)
        edits.insert(sheets_el.tag_end, b"<" + p + b'sheet name="' + _attr(name) + b'" sheetId="'
                     + str(max(ids, default=0) + 1).encode() + b'" ' + rel_id + b'="' + rid.encode() + b'"/>')
        self._move_names(edits, name, count)
        self._activate(edits, p, sheets_el)
        for calc in self.xml.find("calcPr"):  # opening the copy recalculates nothing
            tag = self.data[calc.start:calc.tag_end]
            if b"fullCalcOnLoad" in tag:
                edits.replace(calc.start, calc.tag_end, _set_attrs(tag, {b"fullCalcOnLoad": None}))
        types = _ContentTypes(self.copy)
        types.override(part, _CT["worksheet"])
        if drop_calc_chain:
            for _, chain in self.rels.of_type("calcChain"):
                self.rels.remove(chain)
                self.copy.remove(chain)
                types.drop(chain)
        types.commit()
        self.copy.write(self.part, edits.apply())
        self.rels.commit()

    def _move_names(self, edits: _Edits, sheet: str, count: int) -> None:
        names = self.xml.first("definedNames")
        filter_name = ('<definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
                       f"{escape_text(_quoted(sheet))}!$A$1:$F${max(count + 1, 1)}</definedName>").encode()
        if names is not None:
            p = self.xml.prefix(names)
            for dn in self.xml.find("definedName", names):
                local = dn.get("localSheetId")
                if local is not None and local.isdigit():
                    tag = self.data[dn.start:dn.tag_end]
                    edits.replace(dn.start, dn.tag_end, _set_attrs(tag, {b"localSheetId": str(int(local) + 1).encode()}))
            filter_name = filter_name.replace(b"<definedName", b"<" + p + b"definedName").replace(
                b"</definedName", b"</" + p + b"definedName")
            if names.empty:
                tag = self.data[names.start:names.tag_end]
                edits.replace(names.start, names.end, tag[:-2] + b">" + filter_name + b"</" + p + b"definedNames>")
            else:
                edits.insert(names.tag_end, filter_name)
            return
        root = self.xml.root
        follower = next((e for e in self.xml.elements if e.parent is root and e.local in _AFTER_NAMES), None)
        at = follower.start if follower is not None else self.data.rfind(b"</", 0, root.end)
        p = self.xml.prefix(root)
        edits.insert(at, b"<" + p + b"definedNames>" + filter_name.replace(b"<definedName", b"<" + p + b"definedName")
                     .replace(b"</definedName", b"</" + p + b"definedName") + b"</" + p + b"definedNames>")

    def _activate(self, edits: _Edits, p: bytes, sheets_el: _El) -> None:
        views = self.xml.find("workbookView")
        if not views:
            edits.insert(sheets_el.start, b"<" + p + b"bookViews><" + p + b'workbookView activeTab="0"/></'
                         + p + b"bookViews>")
            return
        for view in views:
            tag = self.data[view.start:view.tag_end]
            values: dict[bytes, bytes | None] = {b"activeTab": b"0"}
            if view.get("firstSheet") is not None:
                values[b"firstSheet"] = b"0"
            edits.replace(view.start, view.tag_end, _set_attrs(tag, values))


def _free_name(name: str, taken: set[str | None]) -> str:
    lowered = {t.lower() for t in taken if t}
    if name.lower() not in lowered:
        return name
    n = 2
    while f"{name}({n})".lower() in lowered:
        n += 1
    return f"{name}({n})"


def _quoted(sheet: str) -> str:
    return "'" + sheet.replace("'", "''") + "'"
