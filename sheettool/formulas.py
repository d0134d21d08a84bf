"""Every formula of the sheet, defined once.

Each ``Formula`` yields both the Excel text written into the template and the
Python computation used to check a returned workbook, from one expression tree.
Python arithmetic is decimal and ROUND is Excel's (see rounding.py), so the two
agree to the 千円.

Where the 人件費 formula is defined: ``PERSONNEL_COST`` below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .rounding import excel_round, to_decimal

Value = Decimal | str | None


class Expr:
    def excel(self, ref: Callable[[str], str]) -> str:
        raise NotImplementedError

    def evaluate(self, env: Mapping[str, Any]) -> Value:
        raise NotImplementedError


def _num(value: Any) -> Decimal:
    """A blank cell counts as 0 in arithmetic, as in Excel."""
    return Decimal(0) if value is None or value == "" else to_decimal(value)


@dataclass(frozen=True)
class Arg(Expr):
    """A named input: a cell in Excel, a value in Python."""

    name: str

    def excel(self, ref: Callable[[str], str]) -> str:
        return ref(self.name)

    def evaluate(self, env: Mapping[str, Any]) -> Value:
        value = env.get(self.name)
        return None if value is None or value == "" else value


@dataclass(frozen=True)
class Num(Expr):
    value: int

    def excel(self, ref: Callable[[str], str]) -> str:
        return str(self.value)

    def evaluate(self, env: Mapping[str, Any]) -> Value:
        return Decimal(self.value)


@dataclass(frozen=True)
class Add(Expr):
    terms: tuple[Expr, ...]

    def excel(self, ref: Callable[[str], str]) -> str:
        return "+".join(t.excel(ref) for t in self.terms)

    def evaluate(self, env: Mapping[str, Any]) -> Value:
        return sum((_num(t.evaluate(env)) for t in self.terms), Decimal(0))


@dataclass(frozen=True)
class Mul(Expr):
    left: Expr
    right: Expr

    def excel(self, ref: Callable[[str], str]) -> str:
        return f"{self.left.excel(ref)}*{self.right.excel(ref)}"

    def evaluate(self, env: Mapping[str, Any]) -> Value:
        return _num(self.left.evaluate(env)) * _num(self.right.evaluate(env))


@dataclass(frozen=True)
class Div(Expr):
    left: Expr
    right: Expr

    def excel(self, ref: Callable[[str], str]) -> str:
        left = self.left.excel(ref)
        if isinstance(self.left, Add):
            left = f"({left})"
        return f"{left}/{self.right.excel(ref)}"

    def evaluate(self, env: Mapping[str, Any]) -> Value:
        return _num(self.left.evaluate(env)) / _num(self.right.evaluate(env))


@dataclass(frozen=True)
class Round(Expr):
    """Excel ROUND: half away from zero."""

    inner: Expr
    digits: int = 0

    def excel(self, ref: Callable[[str], str]) -> str:
        return f"ROUND({self.inner.excel(ref)},{self.digits})"

    def evaluate(self, env: Mapping[str, Any]) -> Value:
        return excel_round(_num(self.inner.evaluate(env)), self.digits)


@dataclass(frozen=True)
class BlankIfAllBlank(Expr):
    """Shows nothing until one of ``args`` is filled (so an unused year stays empty)."""

    args: tuple[Arg, ...]
    then: Expr

    def excel(self, ref: Callable[[str], str]) -> str:
        tests = ",".join(f'{a.excel(ref)}=""' for a in self.args)
        return f'IF(AND({tests}),"",{self.then.excel(ref)})'

    def evaluate(self, env: Mapping[str, Any]) -> Value:
        if all(a.evaluate(env) is None for a in self.args):
            return None
        return self.then.evaluate(env)


@dataclass(frozen=True)
class Lookup(Expr):
    """VLOOKUP of ``key`` in a two-column table held in the workbook."""

    table: str
    key: Arg

    def excel(self, ref: Callable[[str], str]) -> str:
        k = self.key.excel(ref)
        return f'IF({k}="","",IFERROR(VLOOKUP({k},{ref("table:" + self.table)},2,FALSE),""))'

    def evaluate(self, env: Mapping[str, Any]) -> Value:
        key = self.key.evaluate(env)
        if key is None:
            return None
        table: Mapping[str, str] = env["table:" + self.table]
        return table.get(score_key(key), "")


def score_key(value: Any) -> str:
    """The lookup key of a score cell: '1'…'5' or '-' (numbers compare as numbers)."""
    if isinstance(value, str):
        return value.strip()
    d = to_decimal(value)
    return str(int(d)) if d == d.to_integral_value() else str(d)


@dataclass(frozen=True)
class Formula:
    """A named formula: its expression and what each argument binds to.

    ``bindings`` maps argument names to field paths; ``{year}`` and the
    placeholders of the spec's ``formula_args`` are filled per cell.
    """

    name: str
    title: str
    expr: Expr
    bindings: Mapping[str, str]

    def bind(self, year: int | None, args: Mapping[str, Any]) -> dict[str, str]:
        subs = {"year": str(year)} | {k: str(v) for k, v in args.items()}
        out = {}
        for arg, template in self.bindings.items():
            for key, value in subs.items():
                template = template.replace("{" + key + "}", value)
            out[arg] = template
        return out

    def excel(self, ref: Callable[[str], str]) -> str:
        """``=...`` text, with ``ref`` turning an argument name into a cell or table name."""
        return "=" + self.expr.excel(ref)

    def compute(self, env: Mapping[str, Any]) -> Value:
        return self.expr.evaluate(env)


def _args(*names: str) -> tuple[Arg, ...]:
    return tuple(Arg(n) for n in names)


SETTLEMENT = Formula(
    name="settlement",
    title="決算額 = 一般財源 + 国庫、県支出金、地方債 + その他（千円）",
    expr=BlankIfAllBlank(_args("general_fund", "subsidies_bonds", "other"),
                         Add(_args("general_fund", "subsidies_bonds", "other"))),
    bindings={
        "general_fund": "costs.{year}.general_fund",
        "subsidies_bonds": "costs.{year}.subsidies_bonds",
        "other": "costs.{year}.other",
    },
)

# The inner ROUND(…, 4) in 円 strips binary noise before the 千円 rounding: 1.15 × 6,810,000
# is 7,831,499.9999999991 as a double, and LibreOffice would round 7,831.4999… down although
# the decimal value is exactly 7,831.5. Inputs have at most 2 decimals (rates at most 2), so
# the inner rounding never changes a decimal result; Python applies it too.
PERSONNEL_COST = Formula(
    name="personnel_cost",
    title="人件費計 = ROUND((正職員従事割合 × 1人当たり人件費 + 時間外勤務時間 × 時間単価) / 1000, 0)（千円）",
    expr=BlankIfAllBlank(
        _args("staff_fte", "overtime_hours"),
        Round(Div(Round(Add((Mul(Arg("staff_fte"), Arg("salary_per_fte")),
                             Mul(Arg("overtime_hours"), Arg("overtime_per_hour")))), 4), Num(1000)), 0),
    ),
    bindings={
        "staff_fte": "costs.{year}.staff_fte",
        "overtime_hours": "costs.{year}.overtime_hours",
        "salary_per_fte": "rates.{year}.salary_per_fte",
        "overtime_per_hour": "rates.{year}.overtime_per_hour",
    },
)

SENTENCE = Formula(
    name="sentence",
    title="評価点数に対応する標準文",
    expr=Lookup("sentence", Arg("score")),
    bindings={"score": "{score}"},
)

FORMULAS: dict[str, Formula] = {f.name: f for f in (SETTLEMENT, PERSONNEL_COST, SENTENCE)}


def personnel_cost(staff_fte: Any, overtime_hours: Any, salary_per_fte: Any,
                   overtime_per_hour: Any) -> int | None:
    """人件費計（千円）for one year; None when neither input is filled."""
    value = PERSONNEL_COST.compute({"staff_fte": staff_fte, "overtime_hours": overtime_hours,
                                    "salary_per_fte": salary_per_fte,
                                    "overtime_per_hour": overtime_per_hour})
    return None if value is None else int(value)


def settlement(general_fund: Any, subsidies_bonds: Any, other: Any) -> int | None:
    """決算額（千円）; None when no part of the breakdown is filled."""
    value = SETTLEMENT.compute({"general_fund": general_fund, "subsidies_bonds": subsidies_bonds,
                                "other": other})
    return None if value is None else int(value)


def total_cost(settlement_value: Any, personnel: Any) -> int | None:
    """トータルコスト（千円）= 決算額 + 人件費計; None when both are blank."""
    if settlement_value is None and personnel is None:
        return None
    return int(_num(settlement_value) + _num(personnel))


LOWER_IS_BETTER_UNITS = ("以内", "以下", "未満")


def lower_is_better(unit: str | None) -> bool:
    """A target stated as a ceiling ('分以内', '件以下'): less is better."""
    return bool(unit) and unit.endswith(LOWER_IS_BETTER_UNITS)


def achievement_rate(actual: Any, target: Any, unit: str | None = None) -> float | None:
    """達成率 as a ratio (1.0 = 100%); None without a positive target.

    Usually 実績 ÷ 目標値. For a ceiling ('280分以内'), meeting it is 100% and
    exceeding it scores 目標値 ÷ 実績.
    """
    if actual is None or target is None or _num(target) <= 0:
        return None
    a, t = _num(actual), _num(target)
    if lower_is_better(unit):
        return 1.0 if a <= t else float(t / a)
    return float(a / t)
