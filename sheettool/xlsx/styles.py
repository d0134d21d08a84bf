"""Cell styles of the template: one place for colours, borders and alignment.

Yellow = input, green = computed, grey = fixed (history, identity, rates).
"""

from __future__ import annotations

from typing import Any

from xlsxwriter.workbook import Format, Workbook

# The font of our workbooks where a template names none (and of the master book): one family
# for Japanese text and digits alike, installed with LibreOffice's Japanese support (fonts-noto-cjk).
# A font name LibreOffice does not have makes it draw digits and Latin text in another font
# (DejaVu Sans) than the Japanese. Charset 128 (Shift_JIS): where the font is missing, Excel on
# Windows substitutes a Japanese font.
DEFAULT_FONT = "Noto Sans CJK JP"
JAPANESE_CHARSET = 128

INPUT_FILL = "#FFF2CC"
FORMULA_FILL = "#E2EFDA"
LOCKED_FILL = "#EDEDED"
LABEL_FILL = "#DDEBF7"
HEADING_FILL = "#1F4E78"

_BORDER = {"border": 1, "border_color": "#808080"}

_LABELS: dict[str, dict[str, Any]] = {
    "title": {"bold": True, "font_size": 14, "align": "center", "valign": "vcenter"},
    "note": {"font_size": 8, "valign": "vcenter", "font_color": "#595959"},
    "heading": {"bold": True, "font_color": "#FFFFFF", "bg_color": HEADING_FILL, "valign": "vcenter", **_BORDER},
    "label": {"bg_color": LABEL_FILL, "valign": "vcenter", "text_wrap": True, **_BORDER},
    "label_small": {"bg_color": LABEL_FILL, "valign": "vcenter", "text_wrap": True, "font_size": 8, **_BORDER},
    "label_vertical": {"bg_color": LABEL_FILL, "valign": "vcenter", "align": "center", "rotation": 270, **_BORDER},
    "label_number": {"bg_color": LABEL_FILL, "valign": "vcenter", "align": "center", "bold": True, **_BORDER},
    "label_plain": {"valign": "vcenter", "text_wrap": True, **_BORDER},
    "label_plain_small": {"valign": "vcenter", "text_wrap": True, "font_size": 8, **_BORDER},
    "subheading": {"bold": True, "valign": "vcenter", "bg_color": LABEL_FILL, **_BORDER},
    "unit": {"bg_color": LABEL_FILL, "valign": "vcenter", "align": "center", "font_size": 8, **_BORDER},
    "header": {"bg_color": LABEL_FILL, "valign": "vcenter", "align": "center", "text_wrap": True,
               "font_size": 9, **_BORDER},
    "header_small": {"bg_color": LABEL_FILL, "valign": "vcenter", "align": "center", "text_wrap": True,
                     "font_size": 8, **_BORDER},
}

_FILLS = {"input": INPUT_FILL, "formula": FORMULA_FILL, "locked": LOCKED_FILL}


class StyleBook:
    """Formats of one workbook, created on first use and reused."""

    def __init__(self, workbook: Workbook, number_formats: dict[str, str]) -> None:
        self._wb = workbook
        self._numfmt = number_formats
        self._cache: dict[tuple, Format] = {}

    def label(self, style: str) -> Format:
        key = ("label", style)
        if key not in self._cache:
            self._cache[key] = self._wb.add_format(_LABELS[style])
        return self._cache[key]

    def value(self, state: str, number_format: str | None, *, text: bool, lines: int,
              center: bool = False, shrink: bool = False) -> Format:
        """A value cell: ``state`` is input / formula / locked; unlocked only for input.

        ``shrink`` fits a short choice or code on one line instead of wrapping it.
        """
        key = ("value", state, number_format, text, lines > 1, center, shrink)
        fmt = self._cache.get(key)
        if fmt is None:
            props: dict[str, Any] = {"bg_color": _FILLS[state], "locked": state != "input", **_BORDER}
            if shrink:
                props.update(shrink=True, valign="vcenter", align="center" if center else "left")
            elif center:
                props.update(valign="vcenter", align="center")
            elif text:
                props.update(text_wrap=True, valign="top" if lines > 1 else "vcenter", align="left")
            else:
                props.update(valign="vcenter", align="right")
            if number_format and number_format in self._numfmt:
                props["num_format"] = self._numfmt[number_format]
            elif number_format and number_format.startswith("@"):
                props["num_format"] = "@"
            fmt = self._cache[key] = self._wb.add_format(props)
        return fmt

    def plain(self, **props: Any) -> Format:
        key = ("plain", tuple(sorted(props.items())))
        if key not in self._cache:
            self._cache[key] = self._wb.add_format(props)
        return self._cache[key]
