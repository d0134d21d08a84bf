"""Japanese era (和暦) labels for fiscal years. Only 平成 and 令和 are needed."""

from __future__ import annotations

_ERAS = ((2019, "令和", "R"), (1989, "平成", "H"))


def era(year: int) -> tuple[str, int, str]:
    """(era name, era year, initial) for Western fiscal ``year``; 2019 → ("令和", 1, "R")."""
    for start, name, initial in _ERAS:
        if year >= start:
            return name, year - start + 1, initial
    raise ValueError(f"{year}年は対応していない年です")


def fiscal_label(year: int) -> str:
    """'令和4年度' (令和元年度 for the first year)."""
    name, n, _ = era(year)
    return f"{name}{'元' if n == 1 else n}年度"


def fiscal_label_with_western(year: int) -> str:
    """'令和4年度（2022）'."""
    return f"{fiscal_label(year)}（{year}）"


def short_label(year: int) -> str:
    """'R04年度', as the published indicator table prints it."""
    _, n, initial = era(year)
    return f"{initial}{n:02d}年度"


_ERA_START = {"令和": 2019, "R": 2019, "平成": 1989, "H": 1989}


def to_western(era: str, number: str) -> int:
    """('令和', '4') → 2022; ('R', '01') → 2019; ('平成', '元') → 1989."""
    return _ERA_START[era] + (1 if number == "元" else int(number)) - 1


def parse_fiscal_label(text: str) -> int | None:
    """Western year from '令和4年度', '令和元年度', 'R04年度', 'H30'; None if not a label."""
    import re

    t = text.strip().replace(" ", "").replace("　", "")
    m = re.match(r"^(令和|平成|R|H)(元|\d{1,2})(年度?)?", t)
    return to_western(m.group(1), m.group(2)) if m else None
