"""Open returned workbooks safely: classify by content, bound every size, refuse bombs.

Returned files are untrusted. Neither openpyxl nor calamine limits how far a
part may decompress, so everything here is decided from the zip's central
directory *before* any XML is parsed, and every read stops at a hard cap while
it decompresses, whatever the zip headers claim.

Typical use::

    try:
        pkg = open_package(path)            # format, zip directory, sizes, names
        report(*pkg.warnings)               # macros, external links, ... (ignored)
        root = pkg.parse("xl/workbook.xml") # capped read + defusedxml
        wb = openpyxl.load_workbook(pkg.open_bytes())  # or hand the bytes on
    except UnreadableFile as exc:
        report(exc.finding)                 # severity error: exit code 2

``open_bytes()`` hands the very bytes that were checked to another reader, so
the file cannot change between the check and the read, after refusing any
XML part with a DTD. A reader given the bytes still decompresses through
zipfile, which stops at each part's declared size, and those sizes are
what ``open_package`` bounded.
"""

from __future__ import annotations

import codecs
import enum
import io
import mmap
import os
import re
import stat
import struct
import xml.etree.ElementTree as _FastET
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from .. import findings
from ..findings import Finding

__all__ = ["Kind", "Limits", "Package", "UnreadableFile", "open_package", "package_from_bytes", "part_cap", "sniff"]

KiB = 1024
MiB = 1024 * KiB


class Kind(enum.Enum):
    """What a file is, judged by its content (never by its extension)."""

    XLSX = "xlsx"
    XLSM = "xlsm"  # OOXML workbook with macros or a macro-enabled content type
    XLSB = "xlsb"  # Excel binary workbook (zip holding xl/workbook.bin)
    XLS = "xls"  # Excel 97-2003 (OLE2 compound file holding a Workbook stream)
    ENCRYPTED = "encrypted"  # password-to-open OOXML (OLE2 with EncryptionInfo/EncryptedPackage)
    ODS = "ods"
    ZIP = "zip"  # a readable zip that is not a workbook (docx, pptx, plain archive)
    BROKEN_ZIP = "broken-zip"  # starts like a zip, but the zip cannot be read (truncated, corrupt)
    PDF = "pdf"
    TEXT = "text"  # CSV, TSV, HTML or other text
    EMPTY = "empty"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Limits:
    """Hard limits for one returned file. Sizes are in bytes.

    Our templates are 30–60 KB zipped (a few hundred KB unzipped); a file
    that Excel or LibreOffice saves after filling one in stays well under
    5 MB. Legitimate sheet XML compresses 8–16:1 (measured on 2.7–12 MB
    sheets of repetitive cells written by xlsxwriter and openpyxl), while
    deflate bombs reach about 1000:1.

    - ``max_file_bytes`` 20 MiB: 4x the largest legitimate return.
    - ``max_entries`` 1,000 zip entries: a template has about 15; a workbook
      with 200 sheets, images and comments still has a few hundred.
    - ``max_xml_part_bytes`` 8 MiB uncompressed per XML part, the parts that get
      parsed. A one-sheet evaluation workbook filled to every field's limit and
      saved by LibreOffice has a 60 KB sheet, 32 KB of shared strings, 30 KB
      workbook and 19 KB styles; 200,000 formatted empty cells (a user who
      formatted whole columns) make about 4 MiB of sheet. Sheets and shared
      strings are parsed incrementally (xlsx/read.py), so a part costs little
      more than its bytes; a tree of the others needs ~19x its size.
    - ``max_part_bytes`` 20 MiB uncompressed per other part (images, embedded
      files: never parsed, only counted): as large as the largest file.
    - ``max_total_bytes`` 64 MiB uncompressed over all parts: 400x a filled
      return, room for a few photographs.
    - ``max_ratio`` 100:1 (uncompressed / compressed), checked only for parts
      larger than ``ratio_min_bytes`` (1 MiB), since tiny parts compress
      arbitrarily well and cannot hurt.
    - ``max_prolog_bytes`` 4 KiB: for ``Package.scan_xml``, each XML part
      must reach its root element within this many bytes; the prolog is where
      a DTD (entity bombs, external entities) would have to be. Excel's
      prologs are ~60 bytes.
    """

    max_file_bytes: int = 20 * MiB
    max_entries: int = 1_000
    max_xml_part_bytes: int = 8 * MiB
    max_part_bytes: int = 20 * MiB
    max_total_bytes: int = 64 * MiB
    max_ratio: float = 100.0
    ratio_min_bytes: int = 1 * MiB
    max_prolog_bytes: int = 4 * KiB


class UnreadableFile(Exception):
    """The file cannot be read as a workbook; ``finding`` (severity error) says why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"{finding.code}: {finding.message}")
        self.finding = finding


def _fail(code: str, file: str, **params: object) -> NoReturn:
    raise UnreadableFile(findings.make(code, file=file, **params))


# Each kind that is not an OOXML workbook is refused with its own message.
_REFUSED: dict[Kind, str] = {
    Kind.XLS: "F101",
    Kind.ENCRYPTED: "F102",
    Kind.TEXT: "F103",
    Kind.PDF: "F104",
    Kind.EMPTY: "F105",
    Kind.ODS: "F106",
    Kind.XLSB: "F107",
    Kind.ZIP: "F108",
    Kind.UNKNOWN: "F109",
    Kind.BROKEN_ZIP: "F110",
}
_WORKBOOK_KINDS = (Kind.XLSX, Kind.XLSM)

# What zipfile and struct raise on hostile bytes; anything else is our bug.
_PARSE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,  # includes UnicodeDecodeError for bad utf-8 names
    OverflowError,
    IndexError,
    KeyError,
    NotImplementedError,
)


# --------------------------------------------------------------------------
# Reading the file


@dataclass
class _Source:
    """The file's bytes (or a read-only map of them) and what we know so far."""

    file: str
    buf: bytes | mmap.mmap
    kind: Kind = Kind.UNKNOWN
    zf: zipfile.ZipFile | None = None
    what: str = ""  # for Kind.ZIP: what the zip seems to be
    detail: str = ""  # for Kind.BROKEN_ZIP: what is broken


def _open_regular(path: Path) -> io.BufferedReader:
    try:
        f = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    except OSError as exc:
        _fail("F100", path.name, detail=f"{path.name}: {exc.strerror or type(exc).__name__}")
    # A FIFO or device would block or never end; only regular files are read.
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        _fail("F100", path.name, detail=f"{path.name} は通常のファイルではありません")
    return f


def sniff(path: str | os.PathLike[str], limits: Limits = Limits()) -> Kind:  # noqa: B008 - frozen
    """Classify ``path`` by its content.

    Reads only what classification needs (magic bytes, the zip directory, the
    OLE2 directory) through a read-only memory map, so any size of file is
    cheap. Raises UnreadableFile only when the file cannot be opened or is a
    zip whose directory is too large to look at safely.
    """
    path = Path(path)
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return Kind.EMPTY
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            src = _Source(path.name, mm)
            try:
                _classify(src, limits)
            finally:
                if src.zf is not None:
                    src.zf.close()
            return src.kind


def _classify(src: _Source, limits: Limits) -> None:
    """Set ``src.kind`` (and ``src.zf`` for a readable zip) from the content."""
    buf = src.buf
    head = buf[:8 * KiB]
    if not head:
        src.kind = Kind.EMPTY
    elif head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        _classify_zip(src, limits)
    elif head[:8] == _OLE_MAGIC:
        src.kind = _ole_kind(buf)
    elif b"%PDF-" in head[:1024]:  # the PDF header may follow a little junk
        src.kind = Kind.PDF
    elif _looks_like_text(head, complete=len(buf) <= len(head)):
        src.kind = Kind.TEXT
    else:
        src.kind = Kind.UNKNOWN


def _looks_like_text(head: bytes, *, complete: bool) -> bool:
    """True for CSV/TSV/HTML and the like in UTF-8, UTF-16 (BOM) or Shift_JIS."""
    if head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    if b"\x00" in head:
        return False
    for encoding in ("utf-8", "cp932"):
        text = _decode_prefix(head, encoding, complete=complete)
        if text is not None:
            controls = sum(1 for ch in text if ch < " " and ch not in "\t\r\n\f")
            return controls * 100 <= len(text)
    return False


def _decode_prefix(head: bytes, encoding: str, *, complete: bool) -> str | None:
    # A prefix may cut a multi-byte character in half at its end.
    for cut in (0,) if complete else (0, 1, 2, 3):
        try:
            return head[: len(head) - cut].decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


# --------------------------------------------------------------------------
# OLE2 compound files: legacy .xls and encrypted OOXML

_OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_OLE_MARKERS = 0xFFFFFFFA  # sector ids from here up are markers (end of chain, free, ...)
_ENCRYPTION_STREAMS = {"encryptioninfo", "encryptedpackage"}
_WORKBOOK_STREAMS = {"workbook", "book"}  # BIFF8 and BIFF5


def _ole_kind(buf: bytes | mmap.mmap) -> Kind:
    names = _ole_names(buf)
    if names & _ENCRYPTION_STREAMS:
        return Kind.ENCRYPTED
    if names & _WORKBOOK_STREAMS:
        return Kind.XLS
    return Kind.UNKNOWN


def _ole_names(buf: bytes | mmap.mmap) -> set[str]:
    """Lower-cased names in the OLE2 directory; a scan if the structure is broken."""
    try:
        return _ole_directory_names(buf)
    except (struct.error, ValueError, IndexError):
        return _ole_scan_names(buf)


def _ole_directory_names(buf: bytes | mmap.mmap) -> set[str]:
    """Follow the directory chain from the header through the FAT (MS-CFB 2.2, 2.6)."""
    shift = struct.unpack_from("<H", buf, 0x1E)[0]
    if shift not in (9, 12):
        raise ValueError("sector size")
    size = 1 << shift
    n_sectors = (len(buf) - size) // size
    per_fat = size // 4
    fat_sectors = _ole_fat_sectors(buf, size, n_sectors)

    def offset(sector: int) -> int:
        return (sector + 1) * size

    names: set[str] = set()
    sector = struct.unpack_from("<I", buf, 0x30)[0]
    for _ in range(n_sectors + 1):  # a chain longer than the file is a loop
        if sector >= _OLE_MARKERS:
            return names
        if sector >= n_sectors:
            raise ValueError("directory outside the file")
        names.update(_ole_entry_names(buf, offset(sector), size))
        fat = fat_sectors[sector // per_fat]
        sector = struct.unpack_from("<I", buf, offset(fat) + 4 * (sector % per_fat))[0]
    raise ValueError("directory chain loops")


def _ole_fat_sectors(buf: bytes | mmap.mmap, size: int, n_sectors: int) -> list[int]:
    """FAT sector ids: 109 in the header, the rest in the DIFAT chain."""
    ids = list(struct.unpack_from("<109I", buf, 0x4C))
    difat = struct.unpack_from("<I", buf, 0x44)[0]
    per = size // 4 - 1  # the last slot of a DIFAT sector links to the next
    for _ in range(n_sectors):
        if difat >= n_sectors:
            break
        ids.extend(struct.unpack_from(f"<{per}I", buf, (difat + 1) * size))
        difat = struct.unpack_from("<I", buf, (difat + 1) * size + 4 * per)[0]
    return [i for i in ids if i < n_sectors]


def _ole_entry_names(buf: bytes | mmap.mmap, base: int, size: int) -> set[str]:
    names = set()
    for entry in range(base, base + size, 128):
        name_len, kind = struct.unpack_from("<HB", buf, entry + 64)
        if kind in (1, 2) and 2 <= name_len <= 64 and name_len % 2 == 0:  # storage, stream
            raw = buf[entry : entry + name_len - 2]
            names.add(raw.decode("utf-16-le", "replace").lower())
    return names


def _ole_scan_names(buf: bytes | mmap.mmap) -> set[str]:
    """Fallback for a damaged FAT: find the directory entries themselves.

    Directory entries are 128-byte aligned and carry their own name length,
    so an aligned match with a consistent length field is a real entry.
    """
    found = set()
    for name in ("EncryptionInfo", "EncryptedPackage", "Workbook", "Book"):
        pattern = name.encode("utf-16-le") + b"\x00\x00"
        pos = buf.find(pattern, 512)
        for _ in range(10_000):  # bounded: a crafted file could repeat the pattern
            if pos < 0:
                break
            if (pos % 128 == 0 and pos + 128 <= len(buf)
                    and struct.unpack_from("<HB", buf, pos + 64) in ((len(pattern), 1),
                                                                      (len(pattern), 2))):
                found.add(name.lower())
                break
            pos = buf.find(pattern, pos + 1)
    return found


# --------------------------------------------------------------------------
# Zip containers

_CD_BYTES_PER_ENTRY = 1 * KiB  # central directory bytes allowed per permitted entry
_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"


def _classify_zip(src: _Source, limits: Limits) -> None:
    try:
        _check_directory_size(src, limits)
        src.zf = zipfile.ZipFile(src.buf if isinstance(src.buf, mmap.mmap)
                                 else io.BytesIO(src.buf))
    except _PARSE_ERRORS as exc:
        src.kind, src.detail = Kind.BROKEN_ZIP, _zip_error_detail(exc)
        return
    try:
        src.kind, src.what = _zip_kind(src, limits)
    except UnreadableFile as exc:
        if exc.finding.code != "F110":
            raise
        src.kind, src.detail = Kind.BROKEN_ZIP, exc.finding.params.get("detail", "")


def _check_directory_size(src: _Source, limits: Limits) -> None:
    """Refuse a huge central directory before zipfile builds an object per entry.

    Mirrors how zipfile locates the end record (last 22 bytes, else the last
    signature within the comment range) so both see the same directory.
    """
    buf = src.buf
    if len(buf) >= 22 and buf[-22:-18] == _EOCD and buf[-2:] == b"\x00\x00":
        pos = len(buf) - 22
    else:
        pos = buf.rfind(_EOCD, max(0, len(buf) - 22 - 0xFFFF))
        if pos < 0 or pos + 22 > len(buf):
            raise _NoEndRecord
    entries, cd_bytes = struct.unpack_from("<HI", buf, pos + 10)
    if pos >= 20 and buf[pos - 20 : pos - 16] == _ZIP64_LOCATOR:
        rec = pos - 20 - 56
        if rec >= 0 and buf[rec : rec + 4] == _ZIP64_EOCD:
            entries, cd_bytes = struct.unpack_from("<QQ", buf, rec + 32)
    if entries > limits.max_entries:
        _fail("F111", src.file,
              detail=f"内部の構成要素が多すぎます（{entries:,} 個、上限 {limits.max_entries:,} 個）")
    if cd_bytes > limits.max_entries * _CD_BYTES_PER_ENTRY:
        _fail("F111", src.file, detail=f"ZIPの目次（中央ディレクトリ）が {cd_bytes:,} バイトあります")


class _NoEndRecord(zipfile.BadZipFile):
    """No end-of-central-directory record: the usual sign of a truncated file."""


def _zip_error_detail(exc: BaseException) -> str:
    if isinstance(exc, _NoEndRecord) or "not a zip file" in str(exc).lower():
        return "ZIPの末尾（中央ディレクトリ）がありません。途中までしか保存・送信されていない可能性があります"
    return "ZIPの構造が壊れています"


def _zip_kind(src: _Source, limits: Limits) -> tuple[Kind, str]:
    """Tell workbooks from other zips by their part names (and two tiny reads)."""
    assert src.zf is not None
    infos = {i.filename.lower(): i for i in src.zf.infolist()}
    if "mimetype" in infos:
        mimetype = _inflate(src, infos["mimetype"], 256, prefix=True)
        if b"opendocument.spreadsheet" in mimetype:
            return Kind.ODS, ""
        return Kind.ZIP, "OpenDocument 形式の文書"
    if "xl/workbook.bin" in infos:
        return Kind.XLSB, ""
    if "[content_types].xml" in infos and any(n.startswith("xl/") for n in infos):
        if _has_macros(infos) or _macro_enabled(src, infos["[content_types].xml"], limits):
            return Kind.XLSM, ""
        return Kind.XLSX, ""
    if "word/document.xml" in infos:
        return Kind.ZIP, "Word 文書"
    if "ppt/presentation.xml" in infos:
        return Kind.ZIP, "PowerPoint プレゼンテーション"
    return Kind.ZIP, "ZIP 圧縮ファイル"


def _has_macros(infos: dict[str, zipfile.ZipInfo]) -> bool:
    # VBA, or Excel 4.0 macro sheets (XLM), which need no vbaProject.bin
    return "xl/vbaproject.bin" in infos or any(n.startswith("xl/macrosheets/") for n in infos)


def _macro_enabled(src: _Source, info: zipfile.ZipInfo, limits: Limits) -> bool:
    # A byte search is enough to classify and parses nothing untrusted.
    types = _inflate(src, info, min(limits.max_part_bytes, 1 * MiB), prefix=True)
    return b"macroenabled" in types.lower()


# --------------------------------------------------------------------------
# Checking a workbook's zip directory

_CONTROL = re.compile(r"[\x00-\x1f]")
_BAD_SEGMENTS = frozenset({"", ".", ".."})


def _unsafe_name(name: str) -> bool:
    """Absolute (/x, \\x, C:x), a control character, or an empty, "." or ".." segment."""
    if not name or name[0] in "/\\" or name[1:2] == ":" or _CONTROL.search(name):
        return True
    segments = name.rstrip("/").replace("\\", "/").split("/")  # a trailing / marks a folder
    return not _BAD_SEGMENTS.isdisjoint(segments)


def _check_entries(src: _Source, limits: Limits) -> dict[str, zipfile.ZipInfo]:
    """Entry count, names, encryption, sizes and ratios, from the directory alone."""
    assert src.zf is not None
    infos = src.zf.infolist()
    if len(infos) > limits.max_entries:
        _fail("F111", src.file,
              detail=f"内部の構成要素が多すぎます（{len(infos):,} 個、上限 {limits.max_entries:,} 個）")
    by_lower: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        # Part names are case-insensitive (OPC); two readers could pick different twins.
        if _unsafe_name(name) or name.lower() in by_lower:
            _refuse_name(src.file, name, duplicate=name.lower() in by_lower)
        by_lower[name.lower()] = info
        if info.flag_bits & 0x1 or info.compress_type not in _METHODS:
            _refuse_method(src.file, info)
        _check_size(src.file, info, limits)
        total += info.file_size
        if total > limits.max_total_bytes:
            _fail("F111", src.file, detail=f"展開後の合計が {_mib(total)} を超えます"
                  f"（上限 {_mib(limits.max_total_bytes)}）")
    return by_lower


def _refuse_name(file: str, name: str, *, duplicate: bool) -> NoReturn:
    if duplicate:
        _fail("F113", file, part=name, detail="同じ名前の構成要素が重複しています")
    _fail("F113", file, part=name, detail="ファイルの外を指すか、不正な文字を含む名前です")


_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # all that Excel and LibreOffice write


def _refuse_method(file: str, info: zipfile.ZipInfo) -> NoReturn:
    if info.flag_bits & 0x1:
        _fail("F117", file, part=info.filename, detail="ZIPの暗号化")
    _fail("F117", file, part=info.filename, detail=f"圧縮方式 {info.compress_type}")


def _check_size(file: str, info: zipfile.ZipInfo, limits: Limits) -> None:
    # More compressed data than its declared content could need means the
    # declared size is a lie (deflate expands by at most 1/8 even with fixed
    # Huffman codes; stored data must match exactly).
    slack = 0 if info.compress_type == zipfile.ZIP_STORED else info.file_size // 8 + 1 * KiB
    if info.compress_size > info.file_size + slack:
        _fail("F112", file, part=info.filename,
              detail=f"宣言された {info.file_size:,} バイトに対して圧縮データが"
              f" {info.compress_size:,} バイトあります")
    # Ratio next: a part that is both huge and absurdly compressible is a bomb.
    if (info.file_size > limits.ratio_min_bytes
            and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
        ratio = info.file_size / max(info.compress_size, 1)
        _fail("F112", file, part=info.filename,
              detail=f"圧縮率 {ratio:,.0f} 倍、展開後 {_mib(info.file_size)}")
    cap = part_cap(info.filename, limits)
    if info.file_size > cap:
        _fail("F111", file, detail=f"構成要素 {info.filename} が展開後 {_mib(info.file_size)}"
              f"（上限 {_mib(cap)}）")


def part_cap(name: str, limits: Limits) -> int:
    """The most bytes part ``name`` may decompress to: XML parts (parsed) have the lower cap."""
    if name.lower().endswith(_XML_SUFFIXES):
        return min(limits.max_xml_part_bytes, limits.max_part_bytes)
    return limits.max_part_bytes


def _mib(n: int) -> str:
    return f"{n / MiB:,.1f} MiB"


_WORKSHEET = re.compile(r"xl/worksheets/[^/]+\.xml")


def _check_required(file: str, infos: dict[str, zipfile.ZipInfo]) -> None:
    for part in ("[Content_Types].xml", "xl/workbook.xml"):
        if part.lower() not in infos:
            _fail("F114", file, part=part)
    if not any(map(_WORKSHEET.fullmatch, infos)):
        _fail("F114", file, part="ワークシート（xl/worksheets/）")


# --------------------------------------------------------------------------
# Reading one part with a hard cap

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_CHUNK = 64 * KiB


def _inflate(src: _Source, info: zipfile.ZipInfo, cap: int, *, prefix: bool = False) -> bytes:
    """Decompress one part straight from the buffer, stopping at ``cap``.

    The cap is enforced on the output while decompressing, so a header that
    understates the size cannot make us allocate more. With ``prefix`` the
    first ``cap`` bytes are returned (no size or CRC check); otherwise the
    part must match its declared size and CRC exactly.
    """
    start, end = _data_span(src, info)
    limit = cap if prefix else min(cap, info.file_size)
    if info.compress_type == zipfile.ZIP_STORED:
        out = src.buf[start : min(end, start + limit + 1)]
    else:
        out = _deflate_capped(src, info, start, end, limit)
    if prefix:
        return bytes(out[:limit])
    if len(out) > limit:
        detail = (f"宣言された {info.file_size:,} バイトを超えて展開されます"
                  if info.file_size <= cap else f"展開後 {_mib(cap)} を超えます")
        _fail("F112", src.file, part=info.filename, detail=detail)
    if len(out) != info.file_size or zlib.crc32(out) != info.CRC:
        _fail("F110", src.file, detail=f"構成要素 {info.filename} の内容が壊れています")
    return bytes(out)


def _data_span(src: _Source, info: zipfile.ZipInfo) -> tuple[int, int]:
    """Where the part's compressed bytes lie, after checking its local header."""
    buf, off = src.buf, info.header_offset
    sig = b""
    if 0 <= off <= len(buf) - _LOCAL_HEADER.size:
        sig, _, flags, _, _, _, _, _, _, name_len, extra_len = _LOCAL_HEADER.unpack_from(buf, off)
    if sig != b"PK\x03\x04":
        _fail("F110", src.file, detail=f"構成要素 {info.filename} の見出しがありません")
    raw_name = buf[off + 30 : off + 30 + name_len]
    # The same check zipfile makes: the local name must match the directory's.
    if raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace") != info.orig_filename:
        _fail("F110", src.file, detail=f"構成要素 {info.filename} の見出しが一致しません")
    start = off + 30 + name_len + extra_len
    end = start + info.compress_size
    if end > len(buf):
        _fail("F110", src.file, detail=f"構成要素 {info.filename} が途中で切れています")
    return start, end


def _deflate_capped(src: _Source, info: zipfile.ZipInfo, start: int, end: int,
                    limit: int) -> bytearray:
    """Inflate at most ``limit + 1`` bytes: one more than allowed proves the excess."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    pos = start
    chunk = min(_CHUNK, limit + 1 * KiB)  # a short read needs only a little input
    try:
        while True:
            data = inflater.unconsumed_tail
            if not data:
                data = src.buf[pos : min(pos + chunk, end)]
                pos += len(data)
            piece = inflater.decompress(data, limit + 1 - len(out))
            out += piece
            stalled = not piece and len(inflater.unconsumed_tail) >= len(data)
            if len(out) > limit or inflater.eof or stalled:
                return out
    except zlib.error:
        _fail("F110", src.file, detail=f"構成要素 {info.filename} の圧縮データが壊れています")


# --------------------------------------------------------------------------
# XML: refuse DTDs before any parser sees them

_XML_SUFFIXES = (".xml", ".rels", ".vml")
_ROOT_START = re.compile(r"<[^\s!?/<>=\"']")
_DTD = "dtd"
_MORE = "more"  # the prolog did not end within the bytes looked at
_PROLOG_FIRST_LOOK = 512
_ENCODING = re.compile(r"""encoding\s*=\s*["']([^"']*)["']""")


def _prolog_problem(head: bytes, *, complete: bool = True) -> str | None:
    """None if the prolog is plain; ``_DTD``; or a description of what is wrong.

    With ``complete`` false, ``head`` is only the start of the part and
    ``_MORE`` asks for more of it when the prolog runs past its end.

    A DTD may only appear in the prolog, before the root element, and every
    entity bomb or external entity needs one. So a prolog that reaches its
    root element without ``<!`` declarations cannot expand anything.
    """
    text = _decode_xml_head(head)
    if not text:
        return None  # an empty part has nothing to expand; parse() will say it is empty
    i = 0
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if text.startswith("<?", i):
            close = text.find("?>", i)
            if close < 0:
                return "XML 宣言が終わりません" if complete else _MORE
            problem = _declared_encoding_problem(text[i : close]) if i == 0 else None
            if problem:
                return problem
            i = close + 2
        elif text.startswith("<!--", i):
            close = text.find("-->", i + 4)
            if close < 0:
                return "先頭のコメントが長すぎます" if complete else _MORE
            i = close + 3
        elif text.startswith("<!", i):
            return _DTD
        elif _ROOT_START.match(text, i):
            return None
        elif i >= len(text) - 1 and not complete:
            return _MORE
        else:
            return "XML として始まっていません"


# Fast path for what Excel, LibreOffice and xlsxwriter write: an optional BOM
# and XML declaration, then the root element. Anything else takes the long way.
_PLAIN_PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*(<\?xml[ \t\r\n][^<>?]*\?>)?[ \t\r\n]*<[A-Za-z_]")
_PLAIN_ENCODING = re.compile(rb"""encoding\s*=\s*["'](utf-8|utf-16)["']""", re.IGNORECASE)


def _plain_prolog(head: bytes) -> bool:
    match = _PLAIN_PROLOG.match(head)
    if match is None:
        return False
    declaration = match.group(1)
    return (declaration is None or b"encoding" not in declaration
            or _PLAIN_ENCODING.search(declaration) is not None)


def _decode_xml_head(head: bytes) -> str:
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                          (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom):].decode(encoding, "replace")
    if head.startswith(b"<\x00"):
        return head.decode("utf-16-le", "replace")
    if head.startswith(b"\x00<"):
        return head.decode("utf-16-be", "replace")
    return head.decode("utf-8", "replace")


def _declared_encoding_problem(declaration: str) -> str | None:
    # OOXML (ECMA-376 Part 2) allows only UTF-8 and UTF-16; others could hide a DTD.
    match = _ENCODING.search(declaration)
    if match and match.group(1).lower().replace("_", "-") not in ("utf-8", "utf-16"):
        return f"対応していない文字コード {match.group(1)}"
    return None


def _check_xml_prologs(src: _Source, infos: dict[str, zipfile.ZipInfo], limits: Limits) -> None:
    # _inflate reports its own failures; nothing else here touches raw structure.
    for lower, info in infos.items():
        if lower.endswith(_XML_SUFFIXES):
            problem = _part_prolog_problem(src, info, limits)
            if problem == _DTD:
                _fail("F115", src.file, part=info.filename)
            if problem:
                _fail("F116", src.file, part=info.filename, detail=problem)


def _part_prolog_problem(src: _Source, info: zipfile.ZipInfo, limits: Limits) -> str | None:
    # Almost every prolog ends within ~100 bytes: look at a little first, more only if needed.
    cap = min(_PROLOG_FIRST_LOOK, limits.max_prolog_bytes)
    while True:
        head = _inflate(src, info, cap, prefix=True)
        if _plain_prolog(head):
            return None
        problem = _prolog_problem(head, complete=len(head) < cap or cap >= limits.max_prolog_bytes)
        if problem is not _MORE:
            return problem
        cap = limits.max_prolog_bytes


def _parse_xml(data: bytes, *, file: str, part: str) -> Element:
    """Parse with DTDs, entities and external references forbidden."""
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DefusedXmlException:
        _fail("F115", file, part=part)
    except (ParseError, ValueError, LookupError) as exc:
        _fail("F116", file, part=part, detail=str(exc) or type(exc).__name__)


# --------------------------------------------------------------------------
# The package

_WARNINGS = (  # (code, part-name prefix) for content we ignore but mention
    ("F119", "xl/externallinks/"),
    ("F120", "xl/activex/"),
    ("F121", "xl/embeddings/"),
)


class Package:
    """A returned OOXML workbook whose zip directory passed every check.

    ``warnings`` lists what is ignored (macros, external links, ActiveX,
    embedded objects). ``read`` and ``parse`` fetch one part, bounded by
    the limits; like ``scan_xml`` and ``open_bytes`` they raise
    UnreadableFile for a bad part.
    """

    def __init__(self, src: _Source, infos: dict[str, zipfile.ZipInfo], limits: Limits) -> None:
        self.file = src.file
        self.kind = src.kind
        self.limits = limits
        self.warnings: list[Finding] = []
        self._src = src
        self._infos = infos
        self._xml_scanned = False

    @property
    def names(self) -> list[str]:
        """Part names as stored in the zip."""
        return [info.filename for info in self._infos.values()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._infos

    def info(self, name: str) -> zipfile.ZipInfo:
        """The zip directory entry of part ``name`` (KeyError if there is none)."""
        return self._infos[name.lower()]

    def read(self, name: str) -> bytes:
        """The part's bytes; decompression stops at the part's cap (``part_cap``)."""
        info = self._infos.get(name.lower())
        if info is None:
            _fail("F114", self.file, part=name)
        return _inflate(self._src, info, part_cap(info.filename, self.limits))

    def parse(self, name: str) -> Element:
        """The part parsed with defusedxml: no DTDs, entities or external references."""
        return _parse_xml(self.read(name), file=self.file, part=name)

    def root(self, name: str) -> Element:
        """The part parsed by the C parser, after refusing a DTD in its prolog.

        Several times faster than ``parse``. Just as safe: every entity bomb
        or external entity needs a DTD, and a DTD may only stand in the
        prolog, which is checked first (expat rejects one anywhere else).
        """
        return self.root_of(name, self.read(name))

    def root_of(self, name: str, data: bytes) -> Element:
        """``root`` for the bytes of part ``name`` already read with ``read``."""
        self.check_prolog(name, data)
        try:
            return _FastET.fromstring(data)
        except (ParseError, ValueError, LookupError) as exc:
            _fail("F116", self.file, part=name, detail=str(exc) or type(exc).__name__)

    def check_prolog(self, name: str, data: bytes) -> None:
        """Refuse part ``name`` (its bytes ``data``) if its prolog holds a DTD or is not plain XML.

        What makes the C parser safe for ``root_of`` and for incremental parsing (``elements``).
        """
        head = data[: self.limits.max_prolog_bytes]
        if not _plain_prolog(head[:_PROLOG_FIRST_LOOK]):
            problem = _prolog_problem(head, complete=True)
            if problem == _DTD:
                _fail("F115", self.file, part=name)
            if problem:
                _fail("F116", self.file, part=name, detail=problem)

    def elements(self, name: str, wanted: frozenset[str], data: bytes | None = None,
                 ) -> Iterator[tuple[Element, str]]:
        """Part ``name`` parsed incrementally: each complete element whose local name is in
        ``wanted``, with its parent's local name, then removed from the tree.

        Only elements within ``_ELEMENT_DEPTH`` levels of the root count (a wanted element
        inside another is part of it). Memory stays near the part's bytes however many
        elements it holds (a tree of the whole part needs ~19x); a part of up to
        ``_TREE_MAX`` bytes, which is every real one, is parsed as a tree at once, which is
        faster. An element is only valid until the next one is yielded.
        """
        data = self.read(name) if data is None else data
        if len(data) <= _TREE_MAX:
            yield from _tree_elements(self.root_of(name, data), wanted)
            return
        self.check_prolog(name, data)
        parser = _FastET.XMLPullParser(events=("start", "end"))
        stack: list[tuple[Element, bool, bool]] = []
        try:
            for start in range(0, max(len(data), 1), _FEED):
                parser.feed(data[start : start + _FEED])
                yield from _wanted_events(parser, stack, wanted)
            parser.close()
            yield from _wanted_events(parser, stack, wanted)
        except (ParseError, ValueError, LookupError) as exc:
            _fail("F116", self.file, part=name, detail=str(exc) or type(exc).__name__)

    def scan_xml(self) -> None:
        """Refuse the file if any XML part could expand entities, without parsing it.

        Looks at the first few hundred bytes of every XML part: a DTD there
        (F115) or anything but plain XML before the root element (F116).
        ``parse`` does not need this (defusedxml refuses DTDs itself); it is
        for handing the whole file to another reader, so ``open_bytes`` runs
        it. Costs 10-25 us per XML part, which is why ``open_package`` does not.
        """
        if not self._xml_scanned:
            _check_xml_prologs(self._src, self._infos, self.limits)
            self._xml_scanned = True

    def open_bytes(self) -> io.BytesIO:
        """The checked bytes as a fresh stream, for openpyxl or calamine.

        Runs ``scan_xml`` first, so no part handed over can carry an entity
        bomb or external entity, whichever XML parser that reader uses.
        """
        self.scan_xml()
        return io.BytesIO(self._src.buf)


_FEED = 256 * KiB  # bytes handed to the incremental parser at a time
_TREE_MAX = 1 * MiB  # a part up to this size is parsed as one tree (~19 MiB at most)
_ELEMENT_DEPTH = 3  # worksheet/sheetData/row/c is the deepest element read


def _tree_elements(root: Element, wanted: frozenset[str]) -> Iterator[tuple[Element, str]]:
    """``Package.elements`` from a parsed tree: the same elements, in document order."""
    local: dict[str, str] = {}  # tag → local name; a part has few distinct tags
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        parent = node.tag.rpartition("}")[2]
        below = []
        for child in node:
            tag = child.tag
            name = local.get(tag)
            if name is None:
                name = local[tag] = tag.rpartition("}")[2] if isinstance(tag, str) else ""
            if name in wanted:
                yield child, parent
            elif depth + 1 < _ELEMENT_DEPTH and len(child):
                below.append((child, depth + 1))
        stack.extend(reversed(below))


def _wanted_events(parser: _FastET.XMLPullParser, stack: list[tuple[Element, bool, bool]],
                   wanted: frozenset[str]) -> Iterator[tuple[Element, str]]:
    """The wanted elements completed so far; every other finished element leaves the tree."""
    for event, elem in parser.read_events():
        if event == "start":
            inside = bool(stack) and (stack[-1][1] or stack[-1][2])  # within a wanted element
            stack.append((elem, inside, elem.tag.rpartition("}")[2] in wanted))
            continue
        _, inside, is_wanted = stack.pop()
        if inside:
            continue  # kept with the wanted element it belongs to
        if is_wanted and len(stack) <= _ELEMENT_DEPTH:
            yield elem, stack[-1][0].tag.rpartition("}")[2] if stack else ""
        if stack:
            stack[-1][0].remove(elem)  # its siblings went the same way: this is the only child


def open_package(path: str | os.PathLike[str], limits: Limits = Limits()) -> Package:  # noqa: B008
    """Open a returned workbook after checking it is a safe, readable xlsx/xlsm.

    Raises UnreadableFile (one finding, severity error) for anything else:
    other formats, corrupt or truncated zips, size limits, zip bombs, unsafe
    names, missing parts. Everything is decided from the zip directory, so it
    costs a few microseconds per part beyond zipfile's own opening. XML bombs
    are refused when a part is parsed (``parse``) or the file is handed on
    (``open_bytes``); a lie about a part's size is caught when it is read.
    """
    path = Path(path)
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limits.max_file_bytes:
            _refuse_large(path, size, limits)
        # read(n) allocates n bytes up front, so ask for the size, not the limit;
        # one byte more shows a file that grew meanwhile.
        data = f.read(size + 1)
    if len(data) > limits.max_file_bytes:
        _refuse_large(path, len(data), limits)
    return package_from_bytes(path.name, data, limits)


def package_from_bytes(name: str, data: bytes, limits: Limits = Limits()) -> Package:  # noqa: B008
    """``open_package`` for bytes already read (so what is checked is what is archived).

    ``name`` only labels the findings. Bytes over ``limits.max_file_bytes`` are refused.
    """
    if len(data) > limits.max_file_bytes:
        _fail("F111", name, detail=f"ファイルサイズ {_mib(len(data))}（上限 {_mib(limits.max_file_bytes)}）")
    src = _Source(name, data)
    _classify(src, limits)
    if src.kind not in _WORKBOOK_KINDS:
        _fail(_REFUSED[src.kind], src.file, what=src.what, detail=src.detail)
    try:
        infos = _check_entries(src, limits)
        _check_required(src.file, infos)
    except _PARSE_ERRORS as exc:  # e.g. an offset past the end that slipped through
        _fail("F110", src.file, detail=_zip_error_detail(exc))
    finally:
        src.zf.close()  # over in-memory bytes: nothing left to release but the object
    package = Package(src, infos, limits)
    package.warnings = _warnings(src, infos)
    return package


def _refuse_large(path: Path, size: int, limits: Limits) -> NoReturn:
    # Name the format if it is not a workbook: that is the more useful message.
    kind = sniff(path, limits)
    if kind not in (*_WORKBOOK_KINDS, Kind.BROKEN_ZIP, Kind.UNKNOWN):
        _fail(_REFUSED[kind], path.name, what="", detail="")
    _fail("F111", path.name,
          detail=f"ファイルサイズ {_mib(size)}（上限 {_mib(limits.max_file_bytes)}）")


def _warnings(src: _Source, infos: dict[str, zipfile.ZipInfo]) -> list[Finding]:
    prefixes = tuple(prefix for _, prefix in _WARNINGS)
    present = {p for name in infos if name.startswith(prefixes) for p in prefixes
               if name.startswith(p)}
    found = [findings.make("F118", file=src.file)] if _has_macros(infos) else []
    found += [findings.make(code, file=src.file) for code, p in _WARNINGS if p in present]
    return found
