"""sheettool.xlsx.safety: every bad file gets exactly one clear finding, safely."""

from __future__ import annotations

import contextlib
import io
import shutil
import statistics
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import badfiles
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sheettool.xlsx.safety import (
    Kind,
    Limits,
    Package,
    UnreadableFile,
    _parse_xml,
    open_package,
    sniff,
)

MB = 1_000_000
MEMORY_CEILING = 50 * MB

# factory, expected code, expected sniff() kind (None: sniff itself refuses)
REFUSED: list[tuple[Callable[[Path], Path], str, Kind | None]] = [
    (badfiles.write_empty, "F105", Kind.EMPTY),
    (badfiles.write_csv_renamed, "F103", Kind.TEXT),
    (badfiles.write_csv_utf8_bom_renamed, "F103", Kind.TEXT),
    (badfiles.write_pdf_renamed, "F104", Kind.PDF),
    (badfiles.write_png_renamed, "F109", Kind.UNKNOWN),
    (badfiles.write_docx_renamed, "F108", Kind.ZIP),
    (badfiles.write_ods, "F106", Kind.ODS),
    (badfiles.write_xlsb, "F107", Kind.XLSB),
    (badfiles.write_xls, "F101", Kind.XLS),
    (badfiles.write_encrypted, "F102", Kind.ENCRYPTED),
    (badfiles.write_ole_other, "F109", Kind.UNKNOWN),
    (badfiles.write_truncated_zip, "F110", Kind.BROKEN_ZIP),
    (badfiles.write_truncated_tail, "F110", Kind.BROKEN_ZIP),
    (badfiles.write_zip_bomb, "F112", Kind.XLSX),
    (badfiles.write_zip_bomb_lying, "F112", Kind.XLSX),
    (badfiles.write_zip_bomb_sneaky, "F112", Kind.XLSX),  # caught when the part is read
    (badfiles.write_overlong_stored, "F112", Kind.XLSX),
    (badfiles.write_too_many_entries, "F111", None),
    (badfiles.write_dotdot_entry, "F113", Kind.XLSX),
    (badfiles.write_absolute_entry, "F113", Kind.XLSX),
    (badfiles.write_duplicate_entry, "F113", Kind.XLSX),
    (badfiles.write_missing_workbook, "F114", Kind.XLSX),
    (badfiles.write_missing_sheets, "F114", Kind.XLSX),
    (badfiles.write_billion_laughs_workbook, "F115", Kind.XLSX),
    (badfiles.write_billion_laughs_sheet, "F115", Kind.XLSX),
    (badfiles.write_quadratic_blowup, "F115", Kind.XLSX),
    (badfiles.write_xxe_sheet, "F115", Kind.XLSX),
    (badfiles.write_utf16_dtd, "F115", Kind.XLSX),
    (badfiles.write_dtd_behind_comment, "F115", Kind.XLSX),
    (badfiles.write_utf7_sheet, "F116", Kind.XLSX),
    (badfiles.write_encrypted_entry, "F117", Kind.XLSX),
]

# factory, expected kind, expected warning codes
WARNED: list[tuple[Callable[[Path], Path], Kind, list[str]]] = [
    (badfiles.write_xlsm, Kind.XLSM, ["F118"]),
    (badfiles.write_xlsm_without_macros, Kind.XLSM, []),
    (badfiles.write_external_links, Kind.XLSX, ["F119"]),
    (badfiles.write_activex, Kind.XLSX, ["F120"]),
    (badfiles.write_embedding, Kind.XLSX, ["F121"]),
]


def _id(case: tuple) -> str:
    return case[0].__name__.removeprefix("write_")


def _open_and_read_all(path: Path, limits: Limits = Limits()) -> Package:  # noqa: B008
    """What a checker does: open, read and parse every part, hand the bytes on."""
    pkg = open_package(path, limits)
    for name in pkg.names:
        if name.endswith("/"):
            continue
        if name.lower().endswith((".xml", ".rels")):
            pkg.parse(name)
        else:
            pkg.read(name)
    pkg.open_bytes()
    return pkg


def _peak_bytes(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
    except UnreadableFile:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# --------------------------------------------------------------------------
# One finding per bad file


@pytest.mark.parametrize("case", REFUSED, ids=_id)
def test_refused_with_one_error(case: tuple, tmp_path: Path) -> None:
    factory, code, _ = case
    path = factory(tmp_path)
    with pytest.raises(UnreadableFile) as caught:
        _open_and_read_all(path)
    finding = caught.value.finding
    assert (finding.code, finding.severity) == (code, "error")
    assert path.name in finding.message
    assert "{" not in finding.message  # every placeholder was filled


@pytest.mark.parametrize("case", REFUSED, ids=_id)
def test_sniff_classifies_by_content(case: tuple, tmp_path: Path) -> None:
    factory, code, kind = case
    path = factory(tmp_path)
    if kind is None:
        with pytest.raises(UnreadableFile) as caught:
            sniff(path)
        assert caught.value.finding.code == code
    else:
        assert sniff(path) is kind


@pytest.mark.parametrize("case", WARNED, ids=_id)
def test_ignored_content_gives_warnings(case: tuple, tmp_path: Path) -> None:
    factory, kind, codes = case
    pkg = _open_and_read_all(factory(tmp_path))
    assert pkg.kind is kind
    assert [w.code for w in pkg.warnings] == codes
    assert all(w.severity == "warning" for w in pkg.warnings)


def test_macro_warning_says_macros_are_ignored(tmp_path: Path) -> None:
    pkg = open_package(badfiles.write_xlsm(tmp_path))
    assert "マクロは無視して読み取ります" in pkg.warnings[0].message


def test_messages_name_the_format_and_the_remedy(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile) as xls:
        open_package(badfiles.write_xls(tmp_path))
    assert "Excel97-2003形式（.xls）" in xls.value.finding.message.replace(" ", "")
    assert "Excel ブック（*.xlsx）" in xls.value.finding.message
    with pytest.raises(UnreadableFile) as enc:
        open_package(badfiles.write_encrypted(tmp_path))
    assert "パスワードで保護（暗号化）" in enc.value.finding.message


# --------------------------------------------------------------------------
# A normal workbook


def test_normal_xlsx_passes_clean(tmp_path: Path) -> None:
    path = badfiles.write_normal_xlsx(tmp_path)
    pkg = _open_and_read_all(path)
    assert pkg.kind is Kind.XLSX
    assert pkg.warnings == []
    assert sniff(path) is Kind.XLSX


def test_read_returns_the_same_bytes_as_zipfile(tmp_path: Path) -> None:
    path = badfiles.write_normal_xlsx(tmp_path)
    pkg = open_package(path)
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            assert pkg.read(name) == zf.read(name)
    assert "XL/WORKBOOK.XML" in pkg  # part names are case-insensitive


def test_parse_and_open_bytes(tmp_path: Path) -> None:
    pkg = open_package(badfiles.write_normal_xlsx(tmp_path))
    assert pkg.parse("xl/workbook.xml").tag.endswith("}workbook")
    wb = openpyxl.load_workbook(pkg.open_bytes())
    assert wb.sheetnames == ["事業概要", "指標"]


def test_reading_a_missing_part_is_a_finding(tmp_path: Path) -> None:
    pkg = open_package(badfiles.write_normal_xlsx(tmp_path))
    with pytest.raises(UnreadableFile) as caught:
        pkg.read("xl/calcChain.xml")
    assert caught.value.finding.code == "F114"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for path in (tmp_path / "nothing.xlsx", tmp_path):
        with pytest.raises(UnreadableFile) as caught:
            open_package(path)
        assert caught.value.finding.code == "F100"


# --------------------------------------------------------------------------
# Limits


@pytest.mark.parametrize("limits", [
    Limits(max_file_bytes=1_000),
    Limits(max_entries=5),
    Limits(max_part_bytes=2_000),
    Limits(max_total_bytes=10_000),
], ids=["file", "entries", "part", "total"])
def test_each_limit_is_enforced(limits: Limits, tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile) as caught:
        open_package(badfiles.write_normal_xlsx(tmp_path), limits)
    assert caught.value.finding.code == "F111"


def test_oversized_non_workbook_is_named_by_format(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile) as caught:
        open_package(badfiles.write_pdf_renamed(tmp_path), Limits(max_file_bytes=100))
    assert caught.value.finding.code == "F104"


def test_default_limits_leave_room_for_real_files() -> None:
    limits = Limits()
    assert limits.max_file_bytes >= 4 * 5 * MB  # 4x the largest legitimate return
    assert limits.max_ratio >= 5 * 20  # 5x the highest ratio measured on real sheets


# --------------------------------------------------------------------------
# Bombs: bounded memory


@pytest.mark.parametrize("factory", [
    badfiles.write_zip_bomb,
    badfiles.write_zip_bomb_lying,
    badfiles.write_zip_bomb_sneaky,
    badfiles.write_overlong_stored,
    badfiles.write_billion_laughs_workbook,
    badfiles.write_billion_laughs_sheet,
    badfiles.write_quadratic_blowup,
    badfiles.write_xxe_sheet,
], ids=lambda f: f.__name__.removeprefix("write_"))
def test_bombs_stay_within_memory(factory: Callable[[Path], Path], tmp_path: Path) -> None:
    path = factory(tmp_path)
    assert _peak_bytes(lambda: _open_and_read_all(path)) < MEMORY_CEILING
    assert _peak_bytes(lambda: sniff(path)) < MEMORY_CEILING


_RSS_SCRIPT = """
import resource, sys
from pathlib import Path
sys.path[:0] = [sys.argv[2], sys.argv[3]]
import badfiles
from sheettool.xlsx.safety import UnreadableFile, open_package

names = sys.argv[4:]
paths = [getattr(badfiles, name)(Path(sys.argv[1])) for name in names]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for path in paths:
    try:
        pkg = open_package(path)
        for part in pkg.names:
            pkg.parse(part) if part.endswith(".xml") else pkg.read(part)
        pkg.open_bytes()
    except UnreadableFile:
        pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_bombs_stay_within_resident_memory(tmp_path: Path) -> None:
    """Peak RSS of a fresh process: counts zlib's and expat's own allocations too."""
    names = ["write_zip_bomb", "write_zip_bomb_lying", "write_zip_bomb_sneaky",
             "write_billion_laughs_sheet", "write_quadratic_blowup", "write_xxe_sheet"]
    tests = Path(__file__).parent
    done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(tmp_path), str(tests),
                           str(tests.parent), *names],
                          capture_output=True, text=True, check=True, timeout=120)
    grown_kib = int(done.stdout)
    assert grown_kib * 1024 < MEMORY_CEILING


def test_sneaky_bomb_is_stopped_while_reading(tmp_path: Path) -> None:
    """Its headers are plausible, so it opens; the capped read catches the lie."""
    pkg = open_package(badfiles.write_zip_bomb_sneaky(tmp_path))
    with pytest.raises(UnreadableFile) as caught:
        pkg.read("xl/worksheets/sheet1.xml")
    assert caught.value.finding.code == "F112"
    assert _peak_bytes(lambda: pkg.parse("xl/worksheets/sheet1.xml")) < 1 * MB


@pytest.mark.parametrize("body", [
    badfiles.billion_laughs("workbook"),
    badfiles.quadratic_blowup("sst"),
    badfiles.external_entity("worksheet"),
], ids=["billion-laughs", "quadratic", "xxe"])
def test_parse_forbids_dtds_even_without_the_prolog_scan(body: bytes) -> None:
    def parse() -> None:
        _parse_xml(body, file="f.xlsx", part="xl/workbook.xml")

    with pytest.raises(UnreadableFile) as caught:
        parse()
    assert caught.value.finding.code == "F115"
    assert _peak_bytes(parse) < MEMORY_CEILING


@pytest.mark.parametrize(("factory", "code"), [
    (badfiles.write_billion_laughs_workbook, "F115"),
    (badfiles.write_billion_laughs_sheet, "F115"),
    (badfiles.write_quadratic_blowup, "F115"),
    (badfiles.write_xxe_sheet, "F115"),
    (badfiles.write_utf16_dtd, "F115"),
    (badfiles.write_dtd_behind_comment, "F116"),  # the scan cannot see past 4 KiB of comment
    (badfiles.write_utf7_sheet, "F116"),
], ids=lambda v: v.__name__.removeprefix("write_") if callable(v) else v)
def test_open_bytes_refuses_xml_bombs_without_parsing(factory: Callable[[Path], Path], code: str,
                                                      tmp_path: Path) -> None:
    """Before handing the bytes to openpyxl or calamine, every XML prolog is checked."""
    pkg = open_package(factory(tmp_path))
    with pytest.raises(UnreadableFile) as caught:
        pkg.open_bytes()
    assert caught.value.finding.code == code


def test_parse_reports_malformed_xml() -> None:
    with pytest.raises(UnreadableFile) as caught:
        _parse_xml(b"<workbook><sheets></workbook>", file="f.xlsx", part="xl/workbook.xml")
    assert caught.value.finding.code == "F116"


# --------------------------------------------------------------------------
# Fuzzing: nothing but UnreadableFile escapes

VALID = badfiles.normal_xlsx_bytes()


def _only_unreadable(directory: Path, data: bytes) -> None:
    path = directory / "fuzz.xlsx"
    path.write_bytes(data)
    with contextlib.suppress(UnreadableFile):
        sniff(path)
    try:
        _open_and_read_all(path)
    except UnreadableFile as exc:
        assert exc.finding.severity == "error"


FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(prefix=st.sampled_from([b"", b"PK\x03\x04", bytes.fromhex("D0CF11E0A1B11AE1"), b"%PDF-"]),
       data=st.binary(max_size=4096))
def test_fuzz_random_bytes(tmp_path: Path, prefix: bytes, data: bytes) -> None:
    _only_unreadable(tmp_path, prefix + data)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(VALID)))
def test_fuzz_truncated(tmp_path: Path, cut: int) -> None:
    _only_unreadable(tmp_path, VALID[:cut])


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 7)),
                      min_size=1, max_size=8))
def test_fuzz_bit_flips(tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for pos, bit in flips:
        data[pos] ^= 1 << bit
    _only_unreadable(tmp_path, bytes(data))


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 511), st.integers(0, 255)), min_size=1,
                      max_size=6))
def test_fuzz_ole_directory(tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    """Corrupt the header and directory of a real OLE2 file: still one finding."""
    data = bytearray(badfiles.encrypted_ooxml_bytes())
    directory = (struct.unpack_from("<I", data, 0x30)[0] + 1) * 512
    for pos, value in flips:
        data[pos if pos < 256 else directory + pos - 256] = value
    _only_unreadable(tmp_path, bytes(data))


# --------------------------------------------------------------------------
# Cost


def test_open_is_cheap(tmp_path: Path) -> None:
    """A generous guard: measured overhead is 0.1-0.3 ms of CPU beyond zipfile's opening."""
    path = badfiles.write_normal_xlsx(tmp_path)

    def median(action: Callable[[], object]) -> float:
        times = []
        for _ in range(200):
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    overhead = median(lambda: open_package(path)) - median(lambda: zipfile.ZipFile(path).infolist())
    assert overhead < 0.003


# --------------------------------------------------------------------------
# Files written by real software (LibreOffice), when it is installed

SOFFICE = shutil.which("soffice")


def _soffice(tmp_path: Path, target: str, source: Path) -> Path:
    out = tmp_path / "out"
    subprocess.run([SOFFICE, f"-env:UserInstallation=file://{tmp_path / 'profile'}", "--headless",
                    "--convert-to", target, "--outdir", str(out), str(source)],
                   check=True, capture_output=True, timeout=180)
    return next(out.iterdir())


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice not installed")
def test_libreoffice_reads_our_xls_and_writes_files_we_accept(tmp_path: Path) -> None:
    legacy = badfiles.write_xls(tmp_path).rename(tmp_path / "legacy.xls")
    csv = _soffice(tmp_path, "csv:Text - txt - csv (StarCalc):44,34,76", legacy)
    assert csv.read_text(encoding="utf-8").strip() == "2024,道路維持管理事業"
    csv.unlink()

    resaved = _soffice(tmp_path, "xlsx", badfiles.write_normal_xlsx(tmp_path))
    pkg = _open_and_read_all(resaved)
    assert (pkg.kind, pkg.warnings) == (Kind.XLSX, [])
    resaved.unlink()

    real_xls = _soffice(tmp_path, "xls", badfiles.write_normal_xlsx(tmp_path))
    assert sniff(real_xls) is Kind.XLS
    assert io.BytesIO(real_xls.read_bytes()).read(8) == bytes.fromhex("D0CF11E0A1B11AE1")
