"""The formula language (sheettool/spec/formula.py) and the つくば formulas it defines."""

from decimal import Decimal

import pytest
from helpers import TSUKUBA, formula_excel, personnel_cost, seed_records, settlement, total_cost

from sheettool.spec import formula as fx
from sheettool.spec.master import achievement_rate
from sheettool.spec.rates import Rates

RATES = Rates.bundled(TSUKUBA)


@pytest.mark.parametrize("record", seed_records(), ids=lambda r: r["project_no"])
def test_seed_personnel_costs_reproduce_for_every_year(record):
    for cost in record["costs"]:
        rate = RATES.get(cost["year"])
        got = personnel_cost(cost["staff_fte"], cost["overtime_hours"], rate["salary_per_fte"],
                             rate["overtime_per_hour"])
        assert got == cost["personnel_cost"], (record["project_no"], cost["year"])


@pytest.mark.parametrize("record", seed_records(), ids=lambda r: r["project_no"])
def test_seed_settlements_are_their_breakdowns(record):
    for cost in record["costs"]:
        got = settlement(cost["general_fund"], cost["subsidies_bonds"], cost["other"])
        assert got == cost["settlement"], (record["project_no"], cost["year"])


def test_half_thousand_yen_rounds_up():
    # 1.00人 × 6,810,000 + 37時間 × 2,446 = 6,900,502円 → 6,901千円; and an exact half:
    assert personnel_cost(1.0, 37, 6810000, 2446) == 6901
    assert personnel_cost(0.25, 0, 6810000, 2446) == 1703  # 1,702.5 千円
    assert personnel_cost(0.15, 0, 6810000, 0) == 1022  # 1,021.5; 0.15 is inexact in binary


def test_blank_inputs_give_blank_and_negative_other_is_allowed():
    assert personnel_cost(None, None, 6810000, 2446) is None
    assert personnel_cost(1.0, None, 6810000, 2446) == 6810
    assert settlement(None, None, None) is None
    assert settlement(1000, None, -375) == 625


def test_excel_text_comes_from_the_same_definition():
    cells = {"staff_fte": "G29", "overtime_hours": "G30", "salary_per_fte": "G32", "overtime_per_hour": "G33"}
    assert formula_excel("personnel_cost", cells) == (
        '=IF(AND(G29="",G30=""),"",ROUND(ROUND(G29*G32+G30*G33,4)/1000,0))')
    cells = {"general_fund": "G25", "subsidies_bonds": "G26", "other": "G27"}
    assert formula_excel("settlement", cells) == '=IF(AND(G25="",G26="",G27=""),"",G25+G26+G27)'


def test_sentence_lookup():
    expr = TSUKUBA.bound("evaluation_text.progress", 2022)
    assert fx.excel_formula(expr, lambda path: "D76") == (
        '=IF(D76="","",IFERROR(VLOOKUP(D76,tbl_sentence_progress,2,FALSE),""))')

    def said(score):
        return expr.evaluate(fx.Env({"evaluation.progress": score}, TSUKUBA.tables))

    assert said(2) == "計画から遅れている。(未達成)"
    assert said("-") == "法令等により市の実施が定められている。"
    assert said(None) is None


def test_seed_sentences_are_in_the_spec():
    s = {k.removeprefix("sentence_"): v for k, v in TSUKUBA.tables.items()}
    assert s["citizen_needs"]["3"] == "今後も一定の市民ニーズが見込まれる。"
    assert s["progress"]["2"] == "計画から遅れている。(未達成)"
    assert s["city_involvement"]["5"] == "市が直接担うべき事業である。"
    assert s["priority"]["4"] == "市民生活への影響等を鑑みて、優先的に取り組むことが必要と判断される。"
    for table in s.values():
        assert set(table) == {"1", "2", "3", "4", "5", "-"}
        assert table["-"] == "法令等により市の実施が定められている。"


def test_derived_rates_are_the_only_thousand_yen_solution_for_2020():
    # The seed's 令和2年度 column pins the 2020 rates down (see templates/tsukuba/rates.json).
    obs = [(1.0, 100, 7046), (1.5, 250, 10814), (1.0, 400, 7783)]
    sols = [(s, o) for s in range(6_700_000, 6_900_001, 1000) for o in range(2300, 2600)
            if all(personnel_cost(f, h, s, o) == v for f, h, v in obs)]
    assert sols == [(RATES.get(2020)["salary_per_fte"], RATES.get(2020)["overtime_per_hour"])]


def test_achievement_and_total_cost():
    assert achievement_rate(37.0, 15.0) == pytest.approx(37 / 15)
    assert achievement_rate(3.0, 0) is None
    assert total_cost(10780, 10827) == 21607
    assert total_cost(None, None) is None


def test_achievement_of_a_ceiling_target():
    # 088: 年間のネットワーク停止時間 3分 against 280分以内 — the ceiling is met.
    assert achievement_rate(3.0, 280.0, "分以内") == 1.0
    assert achievement_rate(560.0, 280.0, "分以内") == 0.5
    assert achievement_rate(3.0, 280.0, "分") == pytest.approx(3 / 280)


# --------------------------------------------------------------------------- the language itself


def _bound(text: str, decimals: dict[str, int] | None = None) -> fx.Expr:
    decimals = decimals or {}
    return fx.guard_noise(fx.bind(fx.parse(text), lambda n: fx.Ref(n, decimals.get(n))))


def _excel(text: str, decimals: dict[str, int] | None = None) -> str:
    return fx.excel_formula(_bound(text, decimals), lambda p: p.upper())


def _value(text: str, **values):
    return _bound(text).evaluate(fx.Env(values))


def test_operators_print_with_the_parentheses_excel_needs():
    assert _excel("a - (b - c)") == "=A-(B-C)"
    assert _excel("(a - b) - c") == "=A-B-C"
    assert _excel("a / (b * c)") == "=A/(B*C)"
    assert _excel("-(a + b) * c") == "=-(A+B)*C"
    assert _excel("a × b ÷ c − d") == "=A*B/C-D"
    assert _excel('IF(a <> "", a & "円", "")') == '=IF(A<>"",A&"円","")'
    assert _excel("SUM(a, b, c)") == "=SUM(A,B,C)"


def test_blank_aware_functions():
    assert _excel("ALLBLANK(a, b)") == '=AND(A="",B="")'
    assert _excel("ISBLANK(a)") == '=A=""'
    assert _value('IF(ALLBLANK(a, b), "", a + b)', a=None, b=None) is None
    assert _value('IF(ALLBLANK(a, b), "", a + b)', a=None, b=2) == 2
    assert _value("a = \"\"", a=None) is True and _value("a = 0", a=None) is True


def test_rounding_functions_are_excels():
    assert _value("ROUND(a, 0)", a=Decimal("2.5")) == 3
    assert _value("ROUND(a, 0)", a=Decimal("-2.5")) == -3
    assert _value("ROUNDUP(a, 0)", a=Decimal("-2.1")) == -3  # away from zero
    assert _value("ROUNDDOWN(a, 0)", a=Decimal("-2.9")) == -2  # toward zero
    assert _value("ROUND(a, -3)", a=Decimal("12500")) == 13000


def test_noise_guard_rounds_products_inside_a_rounding_function():
    assert _excel("ROUNDUP(a * b, 0)", {"a": 2, "b": 0}) == "=ROUNDUP(ROUND(A*B,2),0)"
    assert _excel("ROUND((a * b + c * d) / 1000, 0)", {"a": 2, "b": 0, "c": 2, "d": 2}) == (
        "=ROUND(ROUND(A*B+C*D,4)/1000,0)")
    assert _excel("ROUND(a * b, 0)", {"a": 0, "b": 0}) == "=ROUND(A*B,0)"  # integers: no noise
    assert _excel("a * b", {"a": 2, "b": 2}) == "=A*B"  # not rounded: left alone
    assert _excel("ROUND(a * b, 0)") == "=ROUND(A*B,0)"  # decimals unknown: nothing assumed


def test_errors_are_values_not_exceptions():
    assert _value("a / b", a=1, b=0) == fx.DIV0
    assert _value("a + 1", a="x") == fx.VALUE
    assert _value("IF(b = 0, \"\", a / b)", a=1, b=0) is None


def test_syntax_errors_say_where_in_japanese():
    for text, words in (("a +", "続き"), ("FOO(a)", "FOO"), ("ROUND(a)", "引数"), ("a $ b", "2文字目"),
                        ("(a", "「)」")):
        with pytest.raises(fx.FormulaSyntaxError) as e:
            fx.parse(text)
        assert words in str(e.value)
