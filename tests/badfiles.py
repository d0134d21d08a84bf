"""A factory of hostile and broken returned files, for the file-safety tests.

Every ``write_*`` function takes a directory, writes one file into it (named
``.xlsx`` whatever it really is, as a department might send it) and returns
its path. Nothing here needs more than the standard library and xlsxwriter:
the OLE2 compound files (legacy .xls, encrypted OOXML) and the malformed
zips are built byte by byte.
"""

from __future__ import annotations

import base64
import functools
import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import xlsxwriter

MiB = 1024 * 1024

# --------------------------------------------------------------------------
# A normal workbook


def normal_xlsx_bytes() -> bytes:
    """A small template-like workbook: two sheets, Japanese text, validation, a comment."""
    out = io.BytesIO()
    wb = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = wb.add_format({"bold": True, "border": 1})
    sheet = wb.add_worksheet("事業概要")
    sheet.write_row(0, 0, ["年度", "事業名", "担当課", "人件費"], bold)
    sheet.write_row(1, 0, [2024, "道路維持管理事業", "道路管理課", 1234567])
    sheet.write_formula(2, 3, "=SUM(D2:D2)")
    sheet.data_validation(1, 0, 50, 0, {"validate": "integer", "criteria": "between",
                                        "minimum": 2000, "maximum": 2100})
    sheet.write_comment(1, 1, "正式な事業名を記入してください")
    wb.define_name("事業名", "=事業概要!$B$2")
    wb.add_worksheet("指標").write_row(0, 0, ["指標名", "単位", "目標値"], bold)
    wb.close()
    return out.getvalue()


def write_normal_xlsx(directory: Path) -> Path:
    return _write(directory, "normal.xlsx", normal_xlsx_bytes())


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = Path(directory) / name
    path.write_bytes(data)
    return path


def rezip(data: bytes, replace: dict[str, bytes] | None = None,
          remove: tuple[str, ...] = ()) -> bytes:
    """Copy a zip, replacing or adding parts (``replace``) and dropping ``remove``."""
    replace = dict(replace or {})
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename in remove:
                continue
            body = replace.pop(info.filename, None)
            dst.writestr(info.filename, src.read(info) if body is None else body)
        for name, body in replace.items():
            dst.writestr(name, body)
    return out.getvalue()


_XLSX_MAIN = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
_XLSM_MAIN = b"application/vnd.ms-excel.sheet.macroEnabled.main+xml"


def _macro_enabled_types(data: bytes, extra: bytes = b"") -> bytes:
    """[Content_Types].xml of ``data`` as Excel writes it for .xlsm, plus ``extra``."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        types = zf.read("[Content_Types].xml")
    return types.replace(_XLSX_MAIN, _XLSM_MAIN).replace(b"</Types>", extra + b"</Types>")


# --------------------------------------------------------------------------
# Not a workbook at all


def write_empty(directory: Path) -> Path:
    return _write(directory, "empty.xlsx", b"")


def write_csv_renamed(directory: Path) -> Path:
    """A Shift_JIS CSV, as Japanese Excel saves it, renamed to .xlsx."""
    text = "年度,事業名,担当課,人件費\r\n2024,道路維持管理事業,道路管理課,1234567\r\n"
    return _write(directory, "csv.xlsx", text.encode("cp932"))


def write_csv_utf8_bom_renamed(directory: Path) -> Path:
    text = "\ufeff年度,事業名\r\n2024,道路維持管理事業\r\n"
    return _write(directory, "csv-utf8.xlsx", text.encode("utf-8"))


def write_pdf_renamed(directory: Path) -> Path:
    pdf = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
           b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
           b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")
    return _write(directory, "pdf.xlsx", pdf)


def write_png_renamed(directory: Path) -> Path:
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sIIBBBBB", 13, b"IHDR", 1, 1, 8, 0, 0, 0, 0)
    return _write(directory, "image.xlsx", png + bytes(64))


def write_docx_renamed(directory: Path) -> Path:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        zf.writestr("word/document.xml", '<?xml version="1.0"?><w:document/>')
    return _write(directory, "docx.xlsx", out.getvalue())


def write_ods(directory: Path) -> Path:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        # ODF: "mimetype" first and stored, so the type is readable at a fixed offset.
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet",
                    compress_type=zipfile.ZIP_STORED)
        zf.writestr("content.xml", '<?xml version="1.0"?><office:document-content/>')
        zf.writestr("META-INF/manifest.xml", '<?xml version="1.0"?><manifest:manifest/>')
    return _write(directory, "ods.xlsx", out.getvalue())


def write_xlsb(directory: Path) -> Path:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        zf.writestr("xl/workbook.bin", b"\x83\x01\x00")
        zf.writestr("xl/worksheets/sheet1.bin", b"\x81\x01\x00")
    return _write(directory, "xlsb.xlsx", out.getvalue())


# --------------------------------------------------------------------------
# OLE2 compound files (MS-CFB, version 3: 512-byte sectors)

_ENDOFCHAIN, _FREESECT, _FATSECT, _NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
_SECTOR, _MINI, _CUTOFF = 512, 64, 4096


@dataclass
class OleNode:
    """A stream (``data`` is bytes) or a storage (``data`` is None, with children)."""

    name: str
    data: bytes | None = None
    children: list[OleNode] = field(default_factory=list)


def ole2_bytes(children: list[OleNode]) -> bytes:
    """A compound file whose root storage holds ``children``.

    Streams under 4096 bytes go to the mini stream, as the spec requires;
    siblings form a balanced binary tree in the spec's name order.
    """
    entries = _flatten(OleNode("Root Entry", None, children))
    sectors: list[bytes] = []
    fat: list[int] = []

    def alloc(blob: bytes) -> int:
        if not blob:
            return _ENDOFCHAIN
        blob += bytes(-len(blob) % _SECTOR)
        start = len(sectors)
        for k in range(0, len(blob), _SECTOR):
            sectors.append(blob[k : k + _SECTOR])
            fat.append(len(sectors) if k + _SECTOR < len(blob) else _ENDOFCHAIN)
        return start

    mini = bytearray()
    minifat: list[int] = []
    starts: dict[int, int] = {}
    for index, (node, _parent) in enumerate(entries):
        if node.data is None:
            continue
        if len(node.data) >= _CUTOFF:
            starts[index] = alloc(node.data)
        elif node.data:
            starts[index] = len(mini) // _MINI
            count = -(-len(node.data) // _MINI)
            minifat += [starts[index] + k + 1 for k in range(count - 1)] + [_ENDOFCHAIN]
            mini += node.data + bytes(-len(node.data) % _MINI)
    root_start = alloc(bytes(mini))
    minifat += [_FREESECT] * (-len(minifat) % (_SECTOR // 4))  # unused slots are free
    minifat_start = alloc(struct.pack(f"<{len(minifat)}I", *minifat)) if minifat else _ENDOFCHAIN
    n_minifat = -(-len(minifat) * 4 // _SECTOR)
    links = _tree_links(entries)
    directory = b"".join(_dir_entry(node, i, links[i], starts.get(i, _ENDOFCHAIN), root_start,
                                    len(mini)) for i, (node, _) in enumerate(entries))
    directory += _empty_dir_entry() * (-len(entries) % (_SECTOR // 128))
    dir_start = alloc(directory)
    n_fat = 1
    while n_fat * (_SECTOR // 4) < len(fat) + n_fat:
        n_fat += 1
    fat_ids = list(range(len(sectors), len(sectors) + n_fat))
    fat += [_FATSECT] * n_fat
    fat += [_FREESECT] * (n_fat * (_SECTOR // 4) - len(fat))
    header = struct.pack("<8s16sHHHHH6sIIIIIIIII", bytes.fromhex("D0CF11E0A1B11AE1"), bytes(16),
                         0x3E, 3, 0xFFFE, 9, 6, bytes(6), 0, n_fat, dir_start, 0, _CUTOFF,
                         minifat_start, n_minifat, _ENDOFCHAIN, 0)
    header += struct.pack("<109I", *(fat_ids + [_FREESECT] * (109 - n_fat)))
    return header + b"".join(sectors) + struct.pack(f"<{len(fat)}I", *fat)


def _flatten(root: OleNode) -> list[tuple[OleNode, int]]:
    out: list[tuple[OleNode, int]] = []

    def visit(node: OleNode, parent: int) -> None:
        out.append((node, parent))
        me = len(out) - 1
        for child in node.children:
            visit(child, me)

    visit(root, -1)
    return out


def _order(name: str) -> tuple[int, str]:
    return len(name), name.upper()  # MS-CFB 2.6.4: shorter names first, then case-folded


def _tree_links(entries: list[tuple[OleNode, int]]) -> dict[int, tuple[int, int, int]]:
    """(left, right, child) per entry: each storage's children as a balanced tree."""
    links = {i: [_NOSTREAM, _NOSTREAM, _NOSTREAM] for i in range(len(entries))}

    def build(ids: list[int]) -> int:
        if not ids:
            return _NOSTREAM
        mid = len(ids) // 2
        links[ids[mid]][0] = build(ids[:mid])
        links[ids[mid]][1] = build(ids[mid + 1 :])
        return ids[mid]

    for parent in range(len(entries)):
        kids = [i for i, (_, p) in enumerate(entries) if p == parent]
        links[parent][2] = build(sorted(kids, key=lambda i: _order(entries[i][0].name)))
    return {i: (left, right, child) for i, (left, right, child) in links.items()}


def _dir_entry(node: OleNode, index: int, links: tuple[int, int, int], start: int,
               root_start: int, mini_size: int) -> bytes:
    name = node.name.encode("utf-16-le")
    if index == 0:
        kind, start, size = 5, root_start, mini_size
    elif node.data is None:
        kind, start, size = 1, 0, 0
    else:
        kind, size = 2, len(node.data)
    return struct.pack("<64sHBBIII16sIQQIQ", name, len(name) + 2, kind, 1, *links,
                       bytes(16), 0, 0, 0, start, size)


def _empty_dir_entry() -> bytes:
    return struct.pack("<64sHBBIII16sIQQIQ", bytes(64), 0, 0, 0, _NOSTREAM, _NOSTREAM,
                       _NOSTREAM, bytes(16), 0, 0, 0, 0, 0)


def biff8_workbook(sheet: str = "Sheet1", text: str = "道路維持管理事業",
                   number: float = 2024.0) -> bytes:
    """A minimal BIFF8 Workbook stream: one sheet, a number in A1, text in B1."""

    def rec(kind: int, body: bytes = b"") -> bytes:
        return struct.pack("<HH", kind, len(body)) + body

    def bof(dt: int) -> bytes:
        return rec(0x0809, struct.pack("<HHHHII", 0x0600, dt, 0x0DBB, 0x07CC, 0, 0x06))

    def unicode16(value: str) -> bytes:  # XLUnicodeString, UTF-16LE ("high byte") form
        return struct.pack("<HB", len(value), 1) + value.encode("utf-16-le")

    name = sheet.encode("latin-1")
    globals_head = bof(0x0005) + rec(0x0042, struct.pack("<H", 1200))
    boundsheet_len = 4 + 8 + len(name)
    sheet_pos = len(globals_head) + boundsheet_len + 4  # + EOF record
    globals_ = (globals_head
                + rec(0x0085, struct.pack("<IBBBB", sheet_pos, 0, 0, len(name), 0) + name)
                + rec(0x000A))
    cells = (bof(0x0010)
             + rec(0x0200, struct.pack("<IIHHH", 0, 1, 0, 2, 0))
             + rec(0x0203, struct.pack("<HHHd", 0, 0, 0, number))
             + rec(0x0204, struct.pack("<HHH", 0, 1, 0) + unicode16(text))
             + rec(0x000A))
    return globals_ + cells


def write_xls(directory: Path) -> Path:
    """A real (LibreOffice-readable) Excel 97-2003 file, renamed to .xlsx."""
    data = ole2_bytes([OleNode("Workbook", biff8_workbook())])
    return _write(directory, "legacy.xlsx", data)


def _lp_unicode(value: str) -> bytes:
    """MS-OFFCRYPTO UNICODE-LP-P4: length-prefixed UTF-16, padded to 4 bytes."""
    raw = value.encode("utf-16-le")
    return struct.pack("<I", len(raw)) + raw + bytes(-len(raw) % 4)


def _data_spaces() -> OleNode:
    """The \\x06DataSpaces storage Office writes next to an encrypted package."""
    version = _lp_unicode("Microsoft.Container.DataSpaces") + struct.pack("<HHHHHH", 1, 0, 1, 0, 1, 0)
    entry = (struct.pack("<I", 1) + struct.pack("<I", 0) + _lp_unicode("EncryptedPackage")
             + _lp_unicode("StrongEncryptionDataSpace"))
    space_map = struct.pack("<II", 8, 1) + struct.pack("<I", len(entry) + 4) + entry
    space_info = struct.pack("<II", 8, 1) + _lp_unicode("StrongEncryptionTransform")
    transform_id = _lp_unicode("{FF9A3F03-56EF-4613-BDD5-5A41C1D07246}")
    header = struct.pack("<I", 1) + transform_id
    primary = (struct.pack("<I", len(header) + 4) + header
               + _lp_unicode("Microsoft.Container.EncryptionTransform")
               + struct.pack("<HHHHHH", 1, 0, 1, 0, 1, 0)
               + struct.pack("<I", 0) + struct.pack("<III", 0, 0, 4))
    return OleNode("\x06DataSpaces", None, [
        OleNode("Version", version),
        OleNode("DataSpaceMap", space_map),
        OleNode("DataSpaceInfo", None, [OleNode("StrongEncryptionDataSpace", space_info)]),
        OleNode("TransformInfo", None, [
            OleNode("StrongEncryptionTransform", None, [OleNode("\x06Primary", primary)]),
        ]),
    ])


def encrypted_ooxml_bytes(seed: int = 1) -> bytes:
    """An agile-encrypted OOXML container (MS-OFFCRYPTO 2.3.4.10), ciphertext random.

    The layout is what Excel writes for a password-to-open .xlsx; only the
    encrypted bytes are noise, since no reader may get that far anyway.
    """
    rnd = random.Random(seed)

    def b64(n: int) -> str:
        return base64.b64encode(rnd.randbytes(n)).decode()

    xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        '<encryption xmlns="http://schemas.microsoft.com/office/2006/encryption" '
        'xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
        f'<keyData saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" '
        f'cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" saltValue="{b64(16)}"/>'
        f'<dataIntegrity encryptedHmacKey="{b64(64)}" encryptedHmacValue="{b64(64)}"/>'
        '<keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
        f'<p:encryptedKey spinCount="100000" saltSize="16" blockSize="16" keyBits="256" hashSize="64" '
        f'cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" '
        f'saltValue="{b64(16)}" encryptedVerifierHashInput="{b64(16)}" '
        f'encryptedVerifierHashValue="{b64(64)}" encryptedKeyValue="{b64(32)}"/>'
        '</keyEncryptor></keyEncryptors></encryption>'
    )
    info = struct.pack("<HHI", 4, 4, 0x40) + xml.encode()
    package = struct.pack("<Q", 6000) + rnd.randbytes(6016)
    return ole2_bytes([_data_spaces(), OleNode("EncryptionInfo", info),
                       OleNode("EncryptedPackage", package)])


def write_encrypted(directory: Path) -> Path:
    return _write(directory, "encrypted.xlsx", encrypted_ooxml_bytes())


def write_ole_other(directory: Path) -> Path:
    """An OLE2 file that is neither a workbook nor encrypted (like a .doc)."""
    return _write(directory, "word97.xlsx", ole2_bytes([OleNode("WordDocument", bytes(600))]))


# --------------------------------------------------------------------------
# Broken and malicious zips


def write_truncated_zip(directory: Path) -> Path:
    data = normal_xlsx_bytes()
    return _write(directory, "truncated.xlsx", data[: len(data) // 2])


def write_truncated_tail(directory: Path) -> Path:
    """Only the last few bytes are missing: the end-of-directory record is cut."""
    data = normal_xlsx_bytes()
    return _write(directory, "truncated-tail.xlsx", data[:-10])


@dataclass
class RawEntry:
    """One zip entry written as-is: ``payload`` is already compressed."""

    name: str
    payload: bytes
    size: int  # declared uncompressed size
    crc: int = 0
    method: int = zipfile.ZIP_DEFLATED
    flags: int = 0


def deflated(name: str, data: bytes, *, declared_size: int | None = None) -> RawEntry:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    payload = c.compress(data) + c.flush()
    size = len(data) if declared_size is None else declared_size
    return RawEntry(name, payload, size, zlib.crc32(data))


def raw_zip(entries: list[RawEntry]) -> bytes:
    """A zip written by hand, so sizes, names and flags can lie."""
    body = bytearray()
    central = bytearray()
    for e in entries:
        name = e.name.encode("utf-8")
        flags = e.flags | 0x800
        offset = len(body)
        body += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, e.method, 0, 0x21,
                            e.crc, len(e.payload), e.size, len(name), 0) + name + e.payload
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, e.method, 0,
                               0x21, e.crc, len(e.payload), e.size, len(name), 0, 0, 0, 0, 0,
                               offset) + name
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(central), len(body), 0)
    return bytes(body + central + end)


def _normal_entries(skip: tuple[str, ...] = ()) -> list[RawEntry]:
    with zipfile.ZipFile(io.BytesIO(normal_xlsx_bytes())) as zf:
        return [deflated(i.filename, zf.read(i)) for i in zf.infolist() if i.filename not in skip]


@functools.cache
def _bomb_stream(head: bytes, filler: bytes, total: int) -> tuple[bytes, int, int]:
    """Deflate of ``head`` then whole MiBs of ``filler``: (stream, size, CRC-32).

    Built from one fully-flushed block repeated (each block stands alone after
    a full flush), so a gigabyte costs a megabyte to store; the true CRC makes
    the bomb a valid zip entry that a trusting reader would inflate to the end.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    megabyte = filler * (MiB // len(filler))
    block = c.compress(megabyte) + c.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
    count = (total - len(head)) // MiB
    crc = zlib.crc32(head)
    for _ in range(count):
        crc = zlib.crc32(megabyte, crc)
    return first + block * count + final, len(head) + count * MiB, crc


_SHEET_HEAD = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
BOMB_SIZE = 1024 * MiB


def write_zip_bomb(directory: Path) -> Path:
    """A sheet that truly expands to 1 GiB, honestly declared (ratio ~1000:1)."""
    sheet = "xl/worksheets/sheet1.xml"
    stream, size, crc = _bomb_stream(_SHEET_HEAD, b" ", BOMB_SIZE)
    bomb = RawEntry(sheet, stream, size, crc)
    return _write(directory, "bomb.xlsx", raw_zip([*_normal_entries(skip=(sheet,)), bomb]))


def write_zip_bomb_lying(directory: Path) -> Path:
    """The same 1 GiB sheet, but its headers claim 20 KB: only reading can tell."""
    sheet = "xl/worksheets/sheet1.xml"
    stream, _, crc = _bomb_stream(_SHEET_HEAD, b" ", BOMB_SIZE)
    bomb = RawEntry(sheet, stream, 20_000, crc)
    return _write(directory, "bomb-lying.xlsx", raw_zip([*_normal_entries(skip=(sheet,)), bomb]))


def write_zip_bomb_sneaky(directory: Path) -> Path:
    """A lie the directory cannot expose: 19 KB of deflate claiming 20,000 bytes.

    The compressed size is plausible for the declared size, so the zip opens;
    the data really expands to 18 MiB, which only the capped read can notice.
    """
    sheet = "xl/worksheets/sheet1.xml"
    stream, _, crc = _bomb_stream(_SHEET_HEAD, b" ", 18 * MiB)
    bomb = RawEntry(sheet, stream, 20_000, crc)
    return _write(directory, "bomb-sneaky.xlsx", raw_zip([*_normal_entries(skip=(sheet,)), bomb]))


def write_overlong_stored(directory: Path) -> Path:
    """A stored (uncompressed) part whose data runs past its declared size."""
    sheet = "xl/worksheets/sheet1.xml"
    data = _SHEET_HEAD + b" " * 100_000 + b"</worksheet>"
    part = RawEntry(sheet, data, 1_000, zlib.crc32(data), method=zipfile.ZIP_STORED)
    return _write(directory, "stored-lying.xlsx", raw_zip([*_normal_entries(skip=(sheet,)), part]))


def write_too_many_entries(directory: Path) -> Path:
    extra = [deflated(f"xl/media/pad{i}.bin", b"") for i in range(1_500)]
    return _write(directory, "many.xlsx", raw_zip([*_normal_entries(), *extra]))


def write_dotdot_entry(directory: Path) -> Path:
    entries = [*_normal_entries(), deflated("../../evil.xml", b"<x/>")]
    return _write(directory, "dotdot.xlsx", raw_zip(entries))


def write_absolute_entry(directory: Path) -> Path:
    entries = [*_normal_entries(), deflated("/etc/cron.d/evil", b"* * * * * root true\n")]
    return _write(directory, "absolute.xlsx", raw_zip(entries))


def write_duplicate_entry(directory: Path) -> Path:
    """Two parts whose names differ only in case: readers may pick different ones."""
    entries = [*_normal_entries(), deflated("xl/Workbook.xml", b"<workbook/>")]
    return _write(directory, "duplicate.xlsx", raw_zip(entries))


def write_encrypted_entry(directory: Path) -> Path:
    """A zip-level (ZipCrypto) encrypted part, as 7-Zip or Explorer can make."""
    entries = _normal_entries()
    entries[-1].flags |= 0x1
    return _write(directory, "zipcrypto.xlsx", raw_zip(entries))


def write_missing_workbook(directory: Path) -> Path:
    data = rezip(normal_xlsx_bytes(), remove=("xl/workbook.xml",))
    return _write(directory, "no-workbook.xlsx", data)


def write_missing_sheets(directory: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(normal_xlsx_bytes())) as zf:
        sheets = tuple(n for n in zf.namelist() if n.startswith("xl/worksheets/"))
    return _write(directory, "no-sheets.xlsx", rezip(normal_xlsx_bytes(), remove=sheets))


# --------------------------------------------------------------------------
# XML bombs and external entities

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def billion_laughs(root: str) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE {root} [\n'
            + "\n".join(entities) + f"\n]>\n<{root} {_NS}>&lol9;</{root}>").encode()


def quadratic_blowup(root: str) -> bytes:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE {root} [<!ENTITY a "{"a" * 50_000}">]>\n'
            f"<{root} {_NS}>" + "&a;" * 50_000 + f"</{root}>").encode()


def external_entity(root: str) -> bytes:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
            f"<{root} {_NS}><sheetData><row><c t=\"inlineStr\"><is><t>&xxe;</t></is></c></row>"
            f"</sheetData></{root}>").encode()


def _replaced(directory: Path, name: str, part: str, body: bytes) -> Path:
    return _write(directory, name, rezip(normal_xlsx_bytes(), {part: body}))


def write_billion_laughs_workbook(directory: Path) -> Path:
    return _replaced(directory, "lol-workbook.xlsx", "xl/workbook.xml", billion_laughs("workbook"))


def write_billion_laughs_sheet(directory: Path) -> Path:
    return _replaced(directory, "lol-sheet.xlsx", "xl/worksheets/sheet1.xml",
                     billion_laughs("worksheet"))


def write_quadratic_blowup(directory: Path) -> Path:
    return _replaced(directory, "quadratic.xlsx", "xl/sharedStrings.xml", quadratic_blowup("sst"))


def write_xxe_sheet(directory: Path) -> Path:
    return _replaced(directory, "xxe.xlsx", "xl/worksheets/sheet1.xml", external_entity("worksheet"))


def write_utf16_dtd(directory: Path) -> Path:
    """The billion laughs again, in UTF-16: a byte search for <!DOCTYPE would miss it."""
    body = billion_laughs("workbook").decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    return _replaced(directory, "utf16-dtd.xlsx", "xl/workbook.xml", body.encode("utf-16"))


def write_dtd_behind_comment(directory: Path) -> Path:
    """A DOCTYPE pushed past the prolog scan by a long comment."""
    lol = billion_laughs("workbook").decode()
    body = lol.replace("<!DOCTYPE", "<!--" + "x" * 10_000 + "-->\n<!DOCTYPE", 1)
    return _replaced(directory, "comment-dtd.xlsx", "xl/workbook.xml", body.encode())


def write_utf7_sheet(directory: Path) -> Path:
    """A declared encoding outside UTF-8/UTF-16, which could smuggle markup."""
    body = b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE x+AD4-<worksheet/>'
    return _replaced(directory, "utf7.xlsx", "xl/worksheets/sheet1.xml", body)


# --------------------------------------------------------------------------
# Workbooks that open, with content we ignore


def write_xlsm(directory: Path) -> Path:
    data = normal_xlsx_bytes()
    types = _macro_enabled_types(data, b'<Default Extension="bin" '
                                 b'ContentType="application/vnd.ms-office.vbaProject"/>')
    vba = ole2_bytes([OleNode("VBA", None, [OleNode("dir", b"\x01" * 100)]),
                      OleNode("PROJECT", b'ID="{00000000-0000-0000-0000-000000000000}"\r\n')])
    return _write(directory, "macro.xlsm", rezip(data, {"[Content_Types].xml": types,
                                                        "xl/vbaProject.bin": vba}))


def write_xlsm_without_macros(directory: Path) -> Path:
    """Saved as .xlsm (macro-enabled content type) but holding no macro code."""
    data = normal_xlsx_bytes()
    types = _macro_enabled_types(data)
    return _write(directory, "nomacro.xlsm", rezip(data, {"[Content_Types].xml": types}))


def write_external_links(directory: Path) -> Path:
    link = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<externalLink {_NS}><externalBook r:id="rId1" xmlns:r="http://schemas.openxmlformats'
            '.org/officeDocument/2006/relationships"/></externalLink>').encode()
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
            '"http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/externalLinkPath"'
            ' Target="file:///C:/Users/someone/予算.xlsx" TargetMode="External"/></Relationships>'
            ).encode()
    data = rezip(normal_xlsx_bytes(), {"xl/externalLinks/externalLink1.xml": link,
                                       "xl/externalLinks/_rels/externalLink1.xml.rels": rels})
    return _write(directory, "links.xlsx", data)


def write_activex(directory: Path) -> Path:
    ax = (b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<ax:ocx xmlns:ax="http://schemas'
          b'.microsoft.com/office/2006/activeX" ax:classid="{8BD21D40-EC42-11CE-9E0D-00AA006002F3}" '
          b'ax:persistence="persistStreamInit"/>')
    data = rezip(normal_xlsx_bytes(), {"xl/activeX/activeX1.xml": ax,
                                       "xl/activeX/activeX1.bin": b"\x00" * 64})
    return _write(directory, "activex.xlsx", data)


def write_embedding(directory: Path) -> Path:
    ole = ole2_bytes([OleNode("\x01Ole10Native", b"\x00" * 200)])
    data = rezip(normal_xlsx_bytes(), {"xl/embeddings/oleObject1.bin": ole})
    return _write(directory, "embedded.xlsx", data)


# --------------------------------------------------------------------------

Factory = Callable[[Path], Path]
