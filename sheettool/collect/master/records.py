"""_records (hidden): the record JSON of every stored project, and reading it back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import Any

from xlsxwriter.workbook import Workbook

from ... import jsontext
from ...records import RecordsError
from ...xlsx import safety as filesafety
from ...xlsx.text import number_text, text_item
from .model import CARRIED, RECORDS, _Book, _Project, _with_records
from .spill import RECORDS_HEADER, _chunks, _Spilled
from .tablewriter import _SPLICE_ROWS, _Formats, _letter, _Splice

# A master book is our own output but may be large; these bound a hostile one all the same.
_MiB = filesafety.MiB
_MASTER_LIMITS = filesafety.Limits(max_file_bytes=200 * _MiB, max_part_bytes=400 * _MiB,
                                   max_xml_part_bytes=400 * _MiB, max_total_bytes=1024 * _MiB)


def read_master_records(path: str | Path) -> list[dict]:
    """The records of the current submissions stored by ``write_master``, in book order
    (``read_master_rows`` also gives the expected records of projects that sent nothing that counts)."""
    return [record for status, record in read_master_rows(path) if status not in CARRIED]


def read_master_rows(path: str | Path) -> list[tuple[str, dict]]:
    """(提出状況, record) of every project ``_records`` holds, in book order: the current
    projects' records, then the expected records of projects whose return does not count
    (未提出, 読取不可, 受付不可).

    Reads only the ``_records`` sheet's cell text (no cached formula values, no
    part names assumed), so a book opened and saved by Excel or LibreOffice
    reads the same. Anything else raises RecordsError with a Japanese message.
    """
    path = Path(path)
    try:
        data = filesafety.open_package(path, _MASTER_LIMITS).open_bytes()
    except filesafety.UnreadableFile as exc:
        raise RecordsError(f"{path.name} をマスターブックとして読み取れません: {exc.finding.message}") from None
    try:
        wb = _openpyxl().load_workbook(data, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types on malformed parts
        raise RecordsError(f"{path.name} をマスターブックとして読み取れません（{type(exc).__name__}）。") from None
    try:
        if RECORDS not in wb.sheetnames:
            raise RecordsError(f"{path.name} はマスターブックではありません（{RECORDS} シートがありません）。"
                               "sheettool collect で作成したマスターブックを指定してください。")
        ws = wb[RECORDS]
        ws.reset_dimensions()  # a saved-again book may carry a wrong <dimension>
        rows = ws.iter_rows(values_only=True)
        header = next(rows, ())
        if tuple(header[:len(RECORDS_HEADER)]) != RECORDS_HEADER:
            raise RecordsError(f"{path.name} の {RECORDS} シートの見出しが想定と異なります。"
                               "sheettool collect で作成したマスターブックを指定してください。")
        return [(str(row[2] or ""), _parse_record_row(path.name, n, row)) for n, row in enumerate(rows, start=2)
                if any(v not in (None, "") for v in row)]
    finally:
        wb.close()


def _stored(book: _Book) -> list[tuple[_Project, _Spilled]]:
    """The projects _records holds, with where their JSON is: current ones in the order of
    ``current`` (so the records read back come in the order they were given), then those
    carried from the expected records."""
    after = len(book.current)
    current = sorted(_with_records(book), key=lambda p: after if p.entry.given is None else p.entry.given)
    return [*((p, p.entry.spilled) for p in current),
            *((p, p.carried) for p in book.projects if p.record is None and p.carried is not None)]


def _records_rows(book: _Book) -> Iterator[list[Any]]:
    """_records: one row per stored project with its record as JSON, split to fit the cell limit."""
    for p, spilled in _stored(book):
        data = book.spill.json(spilled)
        chunks = _chunks(data.decode("utf-8"))
        year = p.record.get("fiscal_year") if p.record is not None else p.carried_year
        yield [p.no, year, p.status, p.sub.sha256 if p.sub and p.record is not None else "",
               hashlib.sha256(data).hexdigest(), len(chunks), *chunks]


def _records_sheet(wb: Workbook, fmts: _Formats, book: _Book) -> None:
    """Hidden: one row per current project with its record as JSON, split to fit the cell limit."""
    ws = wb.add_worksheet(RECORDS)
    rows = _records_rows(book)
    head = list(islice(rows, _SPLICE_ROWS))
    if head and len(head) >= _SPLICE_ROWS:
        stored = [spilled for _, spilled in _stored(book)]
        longest = max(len(RECORDS_HEADER) + spilled.parts for spilled in stored)
        # Rows differ in length, so a bound rather than an estimate: XML escaping ("&" → "&amp;")
        # at most 5 times a record's JSON, and the other cells.
        bound = sum(1024 + 5 * spilled.json for spilled in stored if isinstance(spilled.json, int))
        fmts.splices.append(_Splice(ws.index, _records_xml(chain(head, rows), len(stored)), 1,
                                    len(stored), longest - 1, bound=bound))
        width, head = longest - len(RECORDS_HEADER), []
    else:
        width = max((len(r) for r in head), default=len(RECORDS_HEADER) + 1) - len(RECORDS_HEADER)
    header = [*RECORDS_HEADER, *(f"json_{i}" for i in range(1, width + 1))]
    for c, name in enumerate(header):
        ws.write_string(0, c, name)
    for r, row in enumerate(head, start=1):
        for c, value in enumerate(row):
            if isinstance(value, int | float) and not isinstance(value, bool):
                ws.write_number(r, c, value)
            elif value is not None:
                ws.write_string(r, c, str(value))
    ws.hide()
    ws.protect()  # read by tools; protection keeps an accidental edit out


def _records_xml(rows: Iterator[list[Any]], count: int) -> Iterator[str]:
    """The ``<row>`` elements of _records from row 2, as the cells above are written (no format)."""
    r = 1
    for r, row in enumerate(rows, start=2):
        num = str(r)
        cells = []
        for c, value in enumerate(row):
            if isinstance(value, int | float) and not isinstance(value, bool):
                cells.append(f'<c r="{_letter(c)}{num}"><v>{number_text(value)}</v></c>')
            elif value is not None:
                # text_item, not the cached string_item: a record's JSON is seen once
                cells.append(f'<c r="{_letter(c)}{num}" t="inlineStr"><is>{text_item(str(value))}</is></c>')
        yield f'<row r="{num}">{"".join(cells)}</row>'
    if r - 1 != count:
        raise AssertionError(f"{RECORDS}: {r - 1} rows written, {count} counted")


def _parse_record_row(file: str, n: int, row: Sequence[Any]) -> dict:
    where = f"{file} の {RECORDS} シート {n}行目"
    fixed = len(RECORDS_HEADER)
    try:
        parts = int(row[5])
    except (TypeError, ValueError, IndexError):
        raise RecordsError(f"{where}: 分割数（parts）が読み取れません。") from None
    pieces = list(row[fixed:fixed + parts])
    if len(pieces) < parts or any(not isinstance(p, str) or not p for p in pieces):
        raise RecordsError(f"{where}: 記録のJSONが欠けています（{parts}個に分割されているはずです）。")
    text = "".join(pieces)
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != row[4]:
        raise RecordsError(f"{where}: 記録のJSONが保存時と一致しません（編集されたか壊れています）。")
    try:
        record = jsontext.loads(text)
    except json.JSONDecodeError as e:
        raise RecordsError(f"{where}: 記録のJSONが不正です（{e.msg}）。") from None
    except jsontext.JSONTextError as e:
        raise RecordsError(f"{where}: 記録のJSONが不正です（{e}）。") from None
    if not isinstance(record, dict):
        raise RecordsError(f"{where}: 記録がJSONオブジェクトではありません。")
    return record


def _openpyxl():
    """openpyxl, imported when a book is read: a rerun that rewrites nothing never needs it (~0.2 s)."""
    import openpyxl

    return openpyxl
