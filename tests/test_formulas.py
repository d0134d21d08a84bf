"""The formula definitions: Python values, Excel text, and the seed's published figures."""

import pytest
from helpers import seed_records

from sheettool import formulas, layout
from sheettool.rates import Rates

RATES = Rates.load(layout.load().default_rates_path)


@pytest.mark.parametrize("record", seed_records(), ids=lambda r: r["project_no"])
def test_seed_personnel_costs_reproduce_for_every_year(record):
    for cost in record["costs"]:
        rate = RATES.get(cost["year"])
        got = formulas.personnel_cost(cost["staff_fte"], cost["overtime_hours"], rate.salary_per_fte,
                                      rate.overtime_per_hour)
        assert got == cost["personnel_cost"], (record["project_no"], cost["year"])


@pytest.mark.parametrize("record", seed_records(), ids=lambda r: r["project_no"])
def test_seed_settlements_are_their_breakdowns(record):
    for cost in record["costs"]:
        got = formulas.settlement(cost["general_fund"], cost["subsidies_bonds"], cost["other"])
        assert got == cost["settlement"], (record["project_no"], cost["year"])


def test_half_thousand_yen_rounds_up():
    # 1.00人 × 6,810,000 + 37時間 × 2,446 = 6,900,502円 → 6,901千円; and an exact half:
    assert formulas.personnel_cost(1.0, 37, 6810000, 2446) == 6901
    assert formulas.personnel_cost(0.25, 0, 6810000, 2446) == 1703  # 1,702.5 千円
    assert formulas.personnel_cost(0.15, 0, 6810000, 0) == 1022  # 1,021.5; 0.15 is inexact in binary


def test_blank_inputs_give_blank_and_negative_other_is_allowed():
    assert formulas.personnel_cost(None, None, 6810000, 2446) is None
    assert formulas.personnel_cost(1.0, None, 6810000, 2446) == 6810
    assert formulas.settlement(None, None, None) is None
    assert formulas.settlement(1000, None, -375) == 625


def test_excel_text_comes_from_the_same_definition():
    cells = {"staff_fte": "G29", "overtime_hours": "G30", "salary_per_fte": "G32", "overtime_per_hour": "G33"}
    assert formulas.PERSONNEL_COST.excel(cells.__getitem__) == (
        '=IF(AND(G29="",G30=""),"",ROUND(ROUND(G29*G32+G30*G33,4)/1000,0))')
    cells = {"general_fund": "G25", "subsidies_bonds": "G26", "other": "G27"}
    assert formulas.SETTLEMENT.excel(cells.__getitem__) == '=IF(AND(G25="",G26="",G27=""),"",G25+G26+G27)'


def test_sentence_lookup():
    table = layout.load().sentences["progress"]
    env = {"score": 2, "table:sentence": table}
    assert formulas.SENTENCE.compute(env) == "計画から遅れている。(未達成)"
    assert formulas.SENTENCE.compute({"score": "-", "table:sentence": table}) == "法令等により市の実施が定められている。"
    assert formulas.SENTENCE.compute({"score": None, "table:sentence": table}) is None


def test_seed_sentences_are_in_the_spec():
    s = layout.load().sentences
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
            if all(formulas.personnel_cost(f, h, s, o) == v for f, h, v in obs)]
    assert sols == [(RATES.get(2020).salary_per_fte, RATES.get(2020).overtime_per_hour)]


def test_achievement_and_total_cost():
    assert formulas.achievement_rate(37.0, 15.0) == pytest.approx(37 / 15)
    assert formulas.achievement_rate(3.0, 0) is None
    assert formulas.total_cost(10780, 10827) == 21607
    assert formulas.total_cost(None, None) is None


def test_achievement_of_a_ceiling_target():
    # 088: 年間のネットワーク停止時間 3分 against 280分以内 — the ceiling is met.
    assert formulas.achievement_rate(3.0, 280.0, "分以内") == 1.0
    assert formulas.achievement_rate(560.0, 280.0, "分以内") == 0.5
    assert formulas.achievement_rate(3.0, 280.0, "分") == pytest.approx(3 / 280)
