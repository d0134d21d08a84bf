"""The master book as a whole: every sheet in order, then the zip assembled."""

from __future__ import annotations

import copy
from pathlib import Path

from xlsxwriter.exceptions import FileCreateError
from xlsxwriter.workbook import Workbook

from ...xlsx.render import TEXT_STAYS_TEXT
from ...xlsx.styles import JAPANESE_CHARSET, StyleBook
from .. import office
from .assemble import _assemble
from .costs import _cost_table
from .csvfiles import _CsvFiles
from .department_costs import _department_costs_sheet
from .directions import _direction_sheet
from .findings_sheet import _findings_sheet
from .history import _history_sheet
from .indicators import _indicator_table
from .list_sheet import _list_sheet
from .model import COSTS, FONT, FONT_SIZE, INDICATORS, Table, _Book, _year_label
from .printing import _finish
from .records import _records_sheet
from .status import _status_sheet
from .tablewriter import _KIND_PROPS, _Formats, _write_table

_WB_OPTIONS = {
    **TEXT_STAYS_TEXT,
    "in_memory": True,  # only the small sheets go through XlsxWriter (see the module docstring)
    "default_format_properties": {"font_name": FONT, "font_size": FONT_SIZE, "font_charset": JAPANESE_CHARSET},
}


def _write_master_book(path: Path, book: _Book, csvs: _CsvFiles | None, tmp: Path) -> None:
    """XlsxWriter writes the book without the rows of its big tables; ``_assemble`` streams them in."""
    fiscal_year = book.fiscal_year
    parts = tmp / "xlsxwriter.zip"
    wb = Workbook(str(parts), copy.deepcopy(_WB_OPTIONS))  # xlsxwriter adds keys to the options it is given
    styles = StyleBook(wb, {})
    fmts = _Formats({kind: styles.plain(**props) for kind, props in _KIND_PROPS.items()})
    label = _year_label(fiscal_year)
    _list_sheet(wb, fmts, styles, book, label)
    office.write_sheet(wb, styles, book.spec.tpl, book.projects, label)
    _long_sheet(wb, fmts, styles, COSTS, _cost_table(book), label, csvs)
    _long_sheet(wb, fmts, styles, INDICATORS, _indicator_table(book), label, csvs)
    _direction_sheet(wb, fmts, styles, book, label)
    _department_costs_sheet(wb, fmts, styles, book, label)
    _status_sheet(wb, fmts, styles, book, label)
    _findings_sheet(wb, fmts, styles, book, label)
    _history_sheet(wb, fmts, styles, book, label)
    _records_sheet(wb, fmts, book)
    wb.set_properties({"title": f"事務事業評価 マスターブック {label}", "author": "sheettool",
                       "comments": "sheettool collect で作成"})
    wb.set_custom_property("sheettool_masterbook", "1")
    wb.set_custom_property("sheettool_template", book.spec.tpl.id)  # read by sheettool.frames
    if fiscal_year is not None:
        wb.set_custom_property("sheettool_fiscal_year", str(fiscal_year))
    try:
        wb.close()
    except FileCreateError as e:  # XlsxWriter's wrapper of the OSError (a full disk): the OSError says it
        raise (e.args[0] if e.args and isinstance(e.args[0], OSError) else OSError(str(e))) from None
    _assemble(parts, fmts.splices, path)


def _long_sheet(wb: Workbook, fmts: _Formats, styles: StyleBook, name: str, table: Table, label: str,
                csvs: _CsvFiles | None) -> None:
    """コスト推移 or 指標: one long table alone on its sheet, also written as CSV."""
    ws = wb.add_worksheet(name)
    _write_table(ws, fmts, styles, csvs.tee(name, table) if csvs else table, top=0, alone=True)
    _finish(ws, fmts, header_row=0, label=label)  # 番号 and 事業名 on every page
