"""The final zip: XlsxWriter's parts, with the spliced sheets' rows streamed in."""

from __future__ import annotations

import re
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import Any

from xlsxwriter.utility import xl_col_to_name

from ...fileio import atomic_output
from .tablewriter import _Splice

_DIMENSION = re.compile(r'<dimension ref="[^"]*"/>')
_ROW_NUMBER = re.compile(r'<row r="(\d+)"')
_TABLE_NAME = re.compile(rb'displayName="([^"]*)"')
_BATCH_CHARS = 1 << 18  # XML handed to the compressing thread at a time


def _assemble(parts: Path, splices: list[_Splice], path: Path) -> None:
    """The final book at ``path`` (atomically): XlsxWriter's parts, each spliced sheet with its rows.

    Streamed: a big sheet's rows are made and compressed into the zip batch by batch.
    """
    by_part = {f"xl/worksheets/sheet{s.sheet + 1}.xml": s for s in splices}
    ranges = {name.encode("utf-8"): refs for s in splices for name, refs in s.tables.items()}
    with atomic_output(path) as raw, zipfile.ZipFile(parts) as src, \
            zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            part = src.read(info.filename)
            splice = by_part.get(info.filename)
            if splice is not None:
                _write_spliced(dst, info, part.decode("utf-8"), splice)
                continue
            if info.filename.startswith("xl/tables/"):
                part = _table_range(part, ranges)
            dst.writestr(info, part, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)


def _write_spliced(dst: zipfile.ZipFile, info: zipfile.ZipInfo, xml: str, splice: _Splice) -> None:
    """XlsxWriter's sheet part with the rows of its big table(s) at the end of ``<sheetData>``."""
    written = [int(n) for n in _ROW_NUMBER.findall(xml)]
    if written and max(written) > splice.first_row:
        raise AssertionError(f"{info.filename}: rows already written where the table goes")
    ref = f"A1:{xl_col_to_name(splice.last_col)}{splice.last_row + 1}"
    xml = _DIMENSION.sub(f'<dimension ref="{ref}"/>', xml, count=1)
    if "</sheetData>" in xml:
        before, after = xml.split("</sheetData>", 1)
    else:  # no row written by XlsxWriter at all
        before, after = xml.split("<sheetData/>", 1)
        before += "<sheetData>"
    zinfo = zipfile.ZipInfo(info.filename, info.date_time)
    zinfo.external_attr = info.external_attr
    zinfo.compress_type = zipfile.ZIP_DEFLATED  # at zlib's default level, 6
    batches = _batches(splice.rows)
    first = next(batches, (b"", 0))
    # The size is known only at the end: zip64 headers (which not every reader takes) only
    # where the part might pass zipfile's limit, as the first rows (or the bound) tell.
    rows = splice.last_row - splice.first_row + 1
    estimate = max(splice.bound, 2 * len(first[0]) * rows // max(first[1], 1))
    with dst.open(zinfo, "w", force_zip64=len(xml) + estimate > _ZIP64_SAFE) as out:
        out.write(before.encode("utf-8"))
        with _Behind(out.write) as write:
            for data, _ in chain([first], batches):
                write(data)
        out.write(("</sheetData>" + after).encode("utf-8"))


_ZIP64_SAFE = zipfile.ZIP64_LIMIT // 2


def _batches(rows: Iterator[str]) -> Iterator[tuple[bytes, int]]:
    """The rows as UTF-8 in batches of about ``_BATCH_CHARS`` characters, with their number of rows."""
    batch: list[str] = []
    chars = 0
    for row in rows:
        batch.append(row)
        chars += len(row)
        if chars >= _BATCH_CHARS:
            yield "".join(batch).encode("utf-8"), len(batch)
            batch, chars = [], 0
    if batch:
        yield "".join(batch).encode("utf-8"), len(batch)


class _Behind:
    """Calls ``write`` in a second thread, in order and a few batches behind.

    zlib and the disk release the GIL, so a batch is compressed and written
    while this thread makes the next one: on two cores most of the compressing
    leaves the critical path (at 5,000 projects about an eighth of the time).
    """

    _AHEAD = 4  # batches waiting at most (memory stays a few batches)

    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sheettool-zip")
        self._pending: deque[Future] = deque()

    def __call__(self, data: bytes) -> None:
        self._pending.append(self._pool.submit(self._write, data))
        while len(self._pending) > self._AHEAD:
            self._pending.popleft().result()

    def __enter__(self) -> _Behind:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            while self._pending:  # in order: the first failure is the one raised
                future = self._pending.popleft()
                if exc_type is None:
                    future.result()
                else:
                    future.cancel()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _table_range(part: bytes, ranges: dict[bytes, tuple[str, str]]) -> bytes:
    """A spliced table's part with its real range (table and filter), see _frame."""
    match = _TABLE_NAME.search(part)
    refs = ranges.get(match.group(1)) if match else None
    if refs is None:
        return part
    given, real = (f'ref="{r}"'.encode() for r in refs)
    if given not in part:
        raise AssertionError(f"table {match.group(1).decode()}: range {refs[0]} not found")
    return part.replace(given, real)
