"""Print setup of the master book's sheets (paper, scale, repeated rows and columns)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from xlsxwriter.worksheet import Worksheet

from .tablewriter import _Formats

# Printing: text at least 8 pt on paper. A sheet prints one page wide on A4 landscape when that
# keeps it at ``_MIN_SCALE`` or more, else one page wide on A3 landscape, else at ``_MIN_SCALE``
# on A3 landscape across pages (left to right, then down) with its header row and first columns
# on every page. A sheet with a table beside its list (提出状況) breaks the page before that
# table instead, at one scale for both parts. The width is estimated from the column widths as
# LibreOffice draws them with the book's font (measured: 5.55 pt per width unit and 3.9 pt per
# column with Noto Sans CJK JP 10 pt; rounded up here, so the estimate errs on the wide side).
_PAPERS = ((9, 841.89), (8, 1190.55))  # (XlsxWriter paper index, landscape width in pt): A4, A3
_MARGIN_IN = 0.4  # left and right, inches
_MIN_SCALE = 0.85  # 10 pt text prints at 8.5 pt or more
_PT_PER_UNIT, _PT_PER_COLUMN = 5.6, 4.0
_DEFAULT_WIDTH = 8.43


@dataclass(frozen=True)
class PrintSetup:
    """How a sheet prints: the paper (XlsxWriter index) and either fit to one page wide, or
    ``percent`` across pages (``split``: a page break before that column, else title columns)."""

    paper: int
    fit_width: bool
    width_pt: float  # the estimated width of the widest page's part, at 100%
    percent: int = 100
    split: int | None = None

    @property
    def scale(self) -> float:
        """The print scale as estimated."""
        if not self.fit_width:
            return self.percent / 100
        return min(1.0, _printable(self.paper) / self.width_pt)


def _printable(paper: int) -> float:
    return dict(_PAPERS)[paper] - 2 * 72 * _MARGIN_IN


def _width_pt(widths: Iterable[float]) -> float:
    return sum(_PT_PER_UNIT * w + _PT_PER_COLUMN for w in widths)


def print_setup(widths: Sequence[float], *, at_least_pt: float = 0.0, split: int | None = None) -> PrintSetup:
    """The paper and scale for a sheet whose columns (from A) have ``widths`` (Excel units).

    ``split``: the sheet's second table starts at that column; if the whole does not fit one page
    wide, each part gets its own page (the same scale for both, fixed: fitting would ignore the break).
    """
    width = max(at_least_pt, _width_pt(widths))
    for paper, _ in _PAPERS:
        if _printable(paper) / width >= _MIN_SCALE:
            return PrintSetup(paper, True, width)
    if split is not None:
        part = max(_width_pt(widths[:split]), _width_pt(widths[split:]), at_least_pt)
        for paper, _ in _PAPERS:
            fits = _printable(paper) / part
            if fits >= _MIN_SCALE:
                return PrintSetup(paper, False, part, math.floor(min(1.0, fits) * 100), split)
    return PrintSetup(_PAPERS[-1][0], False, width, round(_MIN_SCALE * 100))


def _finish(ws: Worksheet, fmts: _Formats, *, header_row: int, label: str, freeze_cols: int = 0,
            title_cols: int = 2, at_least_pt: float = 0.0, split: int | None = None) -> PrintSetup:
    """Frozen header, and landscape printing (see ``print_setup``) with the header on every page.

    ``title_cols`` are the first columns printed on every page when the sheet goes across pages;
    ``split`` is where a table beside the list starts (see ``print_setup``).
    """
    ws.freeze_panes(header_row + 1, freeze_cols)
    widths = fmts.widths.get(ws.index, {})
    setup = print_setup([widths.get(c, _DEFAULT_WIDTH) for c in range(max(widths, default=-1) + 1)],
                        at_least_pt=at_least_pt, split=split)
    ws.set_paper(setup.paper)
    ws.set_landscape()
    if setup.fit_width:
        ws.fit_to_pages(1, 0)
    elif setup.split is not None:
        ws.set_print_scale(setup.percent)
        ws.set_v_pagebreaks([setup.split])  # the list's pages first, then the table beside it
    else:
        ws.set_print_scale(setup.percent)
        ws.print_across()  # a row's continuation on the next page, not after all the rows
        if title_cols:
            ws.repeat_columns(0, title_cols - 1)
    ws.repeat_rows(header_row)
    ws.set_margins(left=_MARGIN_IN, right=_MARGIN_IN, top=0.7, bottom=0.6)
    ws.set_header(f"&L&A&R{label}")
    ws.set_footer("&C&P / &N")
    return setup
