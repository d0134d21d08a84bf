"""The sheet's own 入力チェック: each rule of rules.json that a spreadsheet formula can express.

``live_checks`` turns the template's rules and the cell types of its inputs into one
condition per (finding code, cell), as Excel formula text over the cells of the main
sheet: the condition is true exactly when ``sheettool check`` reports that finding there.
The Python checks (check/rules.py, the schema's bounds) and these formulas come from the
same rule definitions (the rule's fields and its ``when`` text in the formula language,
the field's bounds in fields.json), so they cannot drift; tests/test_live.py proves the
equality in LibreOffice, rule by rule.

What a formula cannot see stays Python-only (``PYTHON_ONLY``, listed in the README).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from xlsxwriter.utility import quote_sheetname, xl_cell_to_rowcol, xl_rowcol_to_cell

from . import formula as fx
from .celltypes import DASHES, CellType
from .layout import Placed, Placement
from .rules import ORPHAN_CODE, Rule, years
from .template import Template

FULL_SPACE = "\u3000"
TICKED_NOT = ("", "□")  # a check box that is not ticked (blank or □)
BOUNDS_CODE = "S401"
DASHES_NAME = "chk_dashes"  # the defined name of the DASHES list on the _check sheet

PYTHON_ONLY: tuple[tuple[str, str], ...] = (
    ("表記ゆれの読み替え（全角数字・桁区切り・「△」の負数・文字列の数値・選択肢の別表記）",
     "読み替えの規則（check/normalize.py）は Excel の式では書けないため。読み替えた値は check が注意として示します。"),
    ("数値として読めない文字・一覧にない選択肢",
     "表記ゆれを読み替えたうえでの判定なので、式では同じ判定ができないため。"),
    ("1つのセルに並べた値（SDGs の目標、算出の基礎など）の各項目",
     "区切りと各項目の形を読み分ける必要があるため。"),
    ("入力欄に入れた数式（V310）", "式の中からは、ほかのセルが数式かどうかを調べられないため。"),
    ("自動計算の値が範囲を超える・読めない入力から計算された", "計算の途中の値を判定する必要があるため。"),
    ("文章が印刷枠に収まるか（R507）", "折り返しの位置は文字の幅と改行で決まり、式では文字数しか数えられないため。"),
    ("報告値のまま残したセルの式（R502）", "過去の年度の値はロックされていて、各課は変更できないため。"),
    ("改ざん・取り違え・署名（T2xx）", "ブックの構成要素と評価担当課の鍵で確かめるため。"),
)


@dataclass(frozen=True)
class LiveCheck:
    """One finding the sheet can see: ``condition`` (Excel text, no "=") holds when check reports it."""

    code: str
    severity: str  # "error" | "warning"
    placed: Placed
    condition: str
    message: str
    colour: str | None = None  # "missing" | "wrong": how the cell is marked, or None


def _blank(ref: str, ftype: CellType) -> str:
    """True when the reader takes the cell for "no value" (blank, spaces, or a dash outside a score)."""
    core = f'TRIM(SUBSTITUTE({ref},"{FULL_SPACE}",""))'
    if ftype.kind == "score" and ftype.dash:
        return f'{core}=""'
    return f'OR({core}="",ISNUMBER(MATCH({core},{DASHES_NAME},0)))'


def _dash(ref: str, ftype: CellType) -> str:
    """True when a score cell holds its dash ("-", or another dash the reader takes for it)."""
    core = f'TRIM(SUBSTITUTE({ref},"{FULL_SPACE}",""))'
    own = f',{core}="{ftype.dash}"' if ftype.dash and ftype.dash not in DASHES else ""
    return f"OR(ISNUMBER(MATCH({core},{DASHES_NAME},0)){own})"


def _ticked(ref: str) -> str:
    return "AND(" + ",".join(f'TRIM({ref})<>"{v}"' for v in TICKED_NOT) + ")"


class _Builder:
    def __init__(self, tpl: Template, placement: Placement,
                 cell_of: Callable[[Placed], str] | None = None) -> None:
        self.cell_of = cell_of or (lambda placed: placed.cell)
        self.tpl = tpl
        self.placement = placement
        self.fy = placement.fiscal_year
        self.out: list[LiveCheck] = []
        self.sheet = quote_sheetname(tpl.sheet_name)

    def cell(self, placed: Placed) -> str:
        """The cell as the ``_check`` sheet refers to it: on the main sheet, absolute."""
        row, col = xl_cell_to_rowcol(self.cell_of(placed))
        return f"{self.sheet}!{xl_rowcol_to_cell(row, col, row_abs=True, col_abs=True)}"

    def ref_of(self, path: str) -> str:
        return self.cell(self.placement.at(path))

    def when(self, text: str | None) -> str:
        expr = self.tpl.condition(text or "TRUE", {"fiscal_year": self.fy})
        return fx.excel_formula(expr, self.ref_of)[1:]

    def add(self, code: str, severity: str, placed: Placed, condition: str, message: str,
            colour: str | None = None) -> None:
        self.out.append(LiveCheck(code, severity, placed, condition, message, colour))

    def label(self, placed: Placed) -> str:
        return self.tpl.label(placed.path)

    def fields(self, rule: Rule) -> Iterator[Placed]:
        """The placed cells of a rule's ``fields`` ({fiscal_year} filled), those the sheet has."""
        for path in rule.fields:
            placed = self.placement.fields.get(years(path, self.fy))
            if placed is not None:
                yield placed

    def inputs(self) -> Iterator[Placed]:
        for placed in self.placement.fields.values():
            if placed.role == "input" and not placed.history and not placed.formula:
                yield placed


def required(b: _Builder, rule: Rule) -> None:
    for path in rule.fields:
        path = years(path, b.fy)
        placed = b.placement.fields.get(path)
        if placed is None:
            boxes = [p for p in b.placement.fields.values() if p.path.rpartition(".")[0] == path
                     and b.tpl.cell_type(p.path).kind == "mark"]
            if boxes:
                cond = "AND(" + ",".join(f"NOT({_ticked(b.cell(p))})" for p in boxes) + ")"
                b.add(rule.code, "error", boxes[0], cond, f"{b.tpl.label(path)}（{boxes[0].cell}）が未入力です", "missing")
            continue
        ftype = b.tpl.cell_type(path)
        b.add(rule.code, "error", placed, _blank(b.cell(placed), ftype),
              f"{b.label(placed)}（{placed.cell}）が未入力です", "missing")


def required_if(b: _Builder, rule: Rule) -> None:
    when = b.when(rule.when)
    for placed in b.fields(rule):
        blank = _blank(b.cell(placed), b.tpl.cell_type(placed.path))
        b.add(rule.code, "error", placed, f"AND({blank},{when})",
              f"{b.label(placed)}（{placed.cell}）を入力してください（{rule.title}）", "missing")


def allowed_if(b: _Builder, rule: Rule) -> None:
    when = b.when(rule.when)
    for placed in b.fields(rule):
        ftype = b.tpl.cell_type(placed.path)
        if rule.value == "-":
            used = _dash(b.cell(placed), ftype)
        else:
            used = f'TRIM({b.cell(placed)})="{rule.value}"'
        b.add(rule.code, "error", placed, f"AND({used},NOT({when}))",
              f"{b.label(placed)}（{placed.cell}）の「{rule.value}」はこの事業では使えません（{rule.title}）", "wrong")


def complete_repeat(b: _Builder, rule: Rule) -> None:
    repeat = b.tpl.tree.fields[rule.repeat]
    item = repeat.item_title or repeat.title
    for n in range(1, (repeat.max_items or 0) + 1):
        key_cell = b.placement.fields.get(f"{rule.repeat}.{n}.{rule.key}")
        if key_cell is None:
            continue
        key_blank = _blank(b.cell(key_cell), b.tpl.cell_type(key_cell.path))
        prefix = f"{rule.repeat}.{n}."
        values = [p for path, p in b.placement.fields.items()
                  if path.startswith(prefix) and path[len(prefix):].split(".")[0].isdigit()]
        if values:
            filled = ",".join(f"NOT({_blank(b.cell(p), b.tpl.cell_type(p.path))})" for p in values)
            b.add(ORPHAN_CODE, "error", key_cell, f"AND({key_blank},OR({filled}))",
                  f"{item}{n}に値がありますが、{repeat.fields[rule.key].title}（{key_cell.cell}）が未入力です", "missing")
        for need in rule.needs:
            placed = b.placement.fields.get(prefix + years(need.field, b.fy))
            if placed is None:
                continue
            blank = _blank(b.cell(placed), b.tpl.cell_type(placed.path))
            what = need.what.replace("{fiscal_label}", "")
            b.add(rule.code, "warning", placed, f"AND(NOT({key_blank}),{blank})",
                  f"{item}{n}の{what or need.field}（{placed.cell}）が未入力です")


def bounds(b: _Builder) -> None:
    """Numbers within the field's bounds (integers whole); text within its length (schema, S401)."""
    for placed in b.inputs():
        ftype = b.tpl.cell_type(placed.path)
        cell = b.cell(placed)
        # a number typed into a text-formatted cell is read as that number (with a warning)
        ref = f'IF(ISNUMBER({cell}),{cell},IFERROR(VALUE(TRIM({cell})),""))' if ftype.numeric else cell
        tests = []
        if ftype.numeric:
            if ftype.minimum is not None:
                tests.append(f"{ref}<{_num(ftype.minimum)}")
            if ftype.maximum is not None:
                tests.append(f"{ref}>{_num(ftype.maximum)}")
            if ftype.kind == "integer":
                tests.append(f"{ref}<>INT({ref})")
            if tests:
                hint = _range_hint(ftype)
                b.add(BOUNDS_CODE, "error", placed, f"IF(ISNUMBER({ref}),OR({','.join(tests)}),FALSE)",
                      f"{ftype.label}（{placed.cell}）は{hint}で入力してください", "wrong")
        elif ftype.kind in ("text",) and ftype.max_length:
            b.add(BOUNDS_CODE, "error", placed, f"LEN({ref})>{ftype.max_length}",
                  f"{ftype.label}（{placed.cell}）は{ftype.max_length}文字以内にしてください", "wrong")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _range_hint(ftype: CellType) -> str:
    lo = f"{ftype.minimum:,}" if ftype.minimum is not None else ""
    hi = f"{ftype.maximum:,}" if ftype.maximum is not None else ""
    whole = "整数" if ftype.kind == "integer" else "数値"
    return f"{lo}～{hi}の{whole}"


KINDS = {"required": required, "required_if": required_if, "allowed_if": allowed_if,
         "complete_repeat": complete_repeat}


def live_checks(tpl: Template, placement: Placement,
                cell_of: Callable[[Placed], str] | None = None) -> list[LiveCheck]:
    """Every finding the sheet can compute for itself.

    ``cell_of``: where each placed item really is (check passes the cells it resolved, so rows a
    department inserted, which LibreOffice and Excel follow in the formulas, are no change).
    """
    b = _Builder(tpl, placement, cell_of)
    bounds(b)
    for rule in tpl.rules:
        make = KINDS.get(rule.kind)
        if make is not None:
            make(b, rule)
    return b.out
