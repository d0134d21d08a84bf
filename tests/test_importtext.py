"""sheettool.importers.tsukuba: the published つくば市 令和4年度 sheets as records."""

from __future__ import annotations

import json
import os
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from sheettool.importers.tsukuba import ImportTextError, parse_text

HERE = Path(__file__).resolve().parent
SEED_NAME = "tsukuba_management_sheets_R4.txt"
SCHEMA_PATH = HERE.parent / "templates" / "tsukuba" / "record.schema.json"
BUNDLED_PATH = HERE.parent / "data" / "tsukuba_R4_records.json"
SHARED_SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
PROJECTS = ["088", "089", "090", "098", "091", "087"]  # in the order of the text


def _seed_path() -> Path:
    """The copy in tests/data first (CI checks out only this repository), then the
    shared seeds next to the checkout, then $SHEETTOOL_SEEDS."""
    candidates = [HERE / "data" / SEED_NAME, SHARED_SEEDS / SEED_NAME]
    if os.environ.get("SHEETTOOL_SEEDS"):
        candidates.append(Path(os.environ["SHEETTOOL_SEEDS"]) / SEED_NAME)
    for path in candidates:
        if path.is_file():
            return path
    pytest.fail(f"{SEED_NAME} not found in: " + ", ".join(map(str, candidates)))


@pytest.fixture(scope="module")
def seed() -> str:
    return _seed_path().read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def records(seed: str) -> dict[str, dict[str, Any]]:
    return {r["project_no"]: r for r in parse_text(seed)}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _japanese(text: str) -> bool:
    return re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text) is not None


def _cut(seed: str, line_prefix: str, *, occurrence: int = 1) -> tuple[list[str], int]:
    """The seed's lines and the 0-based index of the n-th line starting with ``line_prefix``."""
    lines = seed.split("\n")
    hits = [i for i, line in enumerate(lines) if line.startswith(line_prefix)]
    return lines, hits[occurrence - 1]


# --- the seed and the bundled output -----------------------------------------

def test_seed_copy_matches_shared_seed() -> None:
    shared = SHARED_SEEDS / SEED_NAME
    if not shared.is_file():
        pytest.skip("shared seeds are not checked out next to this repository")
    assert (HERE / "data" / SEED_NAME).read_bytes() == shared.read_bytes()


def test_six_records_in_text_order(seed: str) -> None:
    assert [r["project_no"] for r in parse_text(seed)] == PROJECTS


def test_every_record_validates_against_schema(seed: str, schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for record in parse_text(seed):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(record)]
        assert errors == [], record["project_no"]


def test_keys_follow_schema_property_order(records: dict[str, dict[str, Any]],
                                           schema: dict[str, Any]) -> None:
    def order(props: dict[str, Any], obj: dict[str, Any]) -> None:
        assert list(obj) == [k for k in props if k in obj]

    top = schema["properties"]
    for record in records.values():
        assert "previous" not in record
        assert set(record) == set(top) - {"previous", "template"}  # a record without one is tsukuba
        order(top, record)
        for cost in record["costs"]:
            order(top["costs"]["items"]["properties"], cost)
            assert set(cost) == set(top["costs"]["items"]["properties"])
        for indicator in record["indicators"]:
            order(top["indicators"]["items"]["properties"], indicator)
            for value in indicator["values"]:
                order(top["indicators"]["items"]["properties"]["values"]["items"]["properties"],
                      value)
        for entry in record["strategy_plan"] or []:
            order(top["strategy_plan"]["items"]["properties"], entry)
        for name in ("participation", "results", "evaluation"):
            assert list(record[name]) == list(top[name]["properties"])


def test_bundled_file_equals_parser_output(seed: str) -> None:
    expected = parse_text(seed)
    text = BUNDLED_PATH.read_text(encoding="utf-8")
    assert json.loads(text) == expected
    # Same bytes too: ensure_ascii=False, indent 2, keys in the schema's order.
    assert text == json.dumps(expected, ensure_ascii=False, indent=2) + "\n"


# --- 091: the most irregular sheet, in full -------------------------------------

_COST_FIELDS = ("year", "budget", "settlement", "general_fund", "subsidies_bonds", "other",
                "staff_fte", "overtime_hours", "part_time_staff", "personnel_cost")


def _costs(*rows: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dict(zip(_COST_FIELDS, row, strict=True)) for row in rows]


def _values(targets: list[float], actuals: list[float]) -> list[dict[str, Any]]:
    return [{"year": 2019 + i, "target": t, "actual": a}
            for i, (t, a) in enumerate(zip(targets, actuals, strict=True))]


EXPECTED_091 = {
    "fiscal_year": 2022,
    "project_no": "091",
    "project_name": "つくばデジタル・ガバメント推進体制の活用",
    "budget_code": "01-020108-14",
    "budget_name": "デジタル・ガバメント推進に要する経",
    "department": "政策イノベーション部",
    "division": "情報政策課",
    "section": "企画推進係",
    "mayor_pledge": ["1", "4"],
    "strategy_plan": [
        {"pillar": "IV-3", "measure": "2", "item": "3",
         "title": "つくば市デジタル・ガバメント推進体制を"},
        {"pillar": "IV-3", "measure": "3", "item": "1",
         "title": "マイナンバーカード普及促進のための全庁"},
    ],
    "individual_plan": "つくば市情報化推進計画",
    "legal_basis": "行政手続における特定の個人を識別するための番号の 利用等に関する法律、"
                   "官民データ活用推進基本法、デ ジタル・ガバメント実行計画など",
    "status": "継続",
    "category": "自治事務（任意）",
    "delivery": "一部委託",
    "period": "毎年度",
    "sdgs": [9, 16, 17],
    "target": "市職員",
    "purpose": "官民データ活用推進基本法及びデジタル・ガバメント実行計画に基づき、本市における電子行政を推進する。",
    "summary": "つくば市情報化推進計画における各施策を総合かつ全庁横断的に推進する。 "
               "また、番号制度推進のための庁内の総合調整を行うことで、番号法の改正及び番号制度の変更に即時かつ的確に対応する。",
    "costs": _costs(
        (2020, 37293, 32195, 14338, 17857, 0, 1.5, 250.0, False, 10814),
        (2021, 17877, 24767, 6546, 18221, 0, 1.5, 250.0, False, 10859),
        (2022, 11236, 10780, 10780, 0, 0, 1.5, 250.0, False, 10827),
        (2023, 7590, 0, 0, 0, 0, 1.5, 250.0, False, 10827),
        (2024, 7590, 0, 0, 0, 0, 1.5, 250.0, False, 10827),
    ),
    "participation": {"share": "デジタル・ガバメント推進方針（案）のパブリックコメントを実施",
                      "plan": None, "execute": None, "evaluate": None},
    "indicators": [{
        "no": 1,
        "name": "つくば市デジタル・ガバメント推進本部各専門WG開催総数",
        "unit": "回",
        "kind": "活動結果指標",
        "description": "(IV-3-②データで市民を豊かにするまちの推進) "
                       "(IV-3-③書かない・待たない・行かないデジタル窓口の推進) "
                       "つくば市デジタル・ガバメント推進本部設置要綱に基づくWG ※令和元年度は別指標だったため0",
        "values": _values([0.0, 15.0, 15.0, 15.0, 15.0, 15.0], [0.0, 33.0, 26.0, 37.0, 0.0, 0.0]),
    }],
    "results": {
        "response_to_last_year": "煩雑になっているオンライン申請の状況を把握するため、過去に実施された"
                                 "手続棚卸調査を改めて整理し一覧を更新した。国が進める施策に対応するため、"
                                 "各専門WGを活用した庁内調整を実施した。",
        "achievements": "デジタル窓口WGにおいて、窓口支援システムの運用における課題を抽出し、対応策の検討を"
                        "行った。行政手続オンライン化WGにおいて、ぴったりサービスの対応や手続棚卸調査の更新を"
                        "実施した。基幹系システム標準化WGにおいて、国が定めた標準仕様書に準拠したシステム移行を"
                        "円滑に進めるため、機能・帳票要件の比較分析作業を実施した。また、デジタル・ガバメント"
                        "推進方針（案）の整理を行った。",
        "issues_operations": "基幹系システム標準化への対応は、多くの部署が関係することから、専門WGでの支援が"
                             "重要である。デジタル・ガバメント推進方針に掲げる社会像達成のためには、"
                             "アクションプランの更なる拡充が必要である。",
        "issues_organization": "特になし。",
        "improvement_goal": "各専門WGを活用した庁内調整を充実していくとともに、デジタル・ガバメント推進方針"
                            "におけるアクションプランの拡充を図る。",
    },
    "evaluation": {"citizen_needs": 3, "progress": 4, "city_involvement": 4, "priority": 3},
    "direction": "継続",
    "direction_reason": None,
    "office_comment": None,
}


def test_091_in_full(records: dict[str, dict[str, Any]]) -> None:
    # Shifted header cells, '(千円) 37,293' sharing a cell, the unit '(回)' in its own
    # cell, two strategy rows whose titles the PDF printed in one cell.
    assert records["091"] == EXPECTED_091


# --- 事業の基本情報 ---------------------------------------------------------------

@pytest.mark.parametrize(("no", "expected"), [
    ("088", {"project_name": "情報通信ネットワーク運営業務", "budget_code": "01-020108-15",
             "budget_name": "情報通信ネットワークシステム運用に", "section": "情報システム係",
             "mayor_pledge": None, "strategy_plan": None,
             "individual_plan": "つくば市情報化推進計画",
             "legal_basis": "つくば市情報セキュリティポリシー", "status": "継続",
             "category": "自治事務（任意）", "delivery": "一部委託", "period": "毎年度",
             "sdgs": [9, 16, 17]}),
    # 089: the budget name in a tab cell of its own, 自治事務(任意) in half-width parentheses.
    ("089", {"project_name": "庁内情報化事業(イントラとパソコンの整備)", "budget_code": "01-020109-11",
             "budget_name": "電子情報システムの管理に要する経費", "category": "自治事務（任意）",
             "section": "情報システム係", "sdgs": [9, 16, 17]}),
    ("090", {"project_name": "基幹電算業務運営事業", "budget_code": "01-020110-11",
             "budget_name": "基幹電算業務の運営に要する経費"}),
    ("098", {"project_name": "業務改善推進事業", "budget_code": "01-020102-14",
             "budget_name": "ワークライフバランス推進に要する経", "section": "業務改善推進係",
             "mayor_pledge": ["04"], "strategy_plan": None, "legal_basis": None,
             "individual_plan": "情報化推進計画、つくば市職員ワークライフバランス推進プラン",
             "status": "移管", "delivery": "職員のみ", "sdgs": [8]}),
    ("087", {"project_name": "情報化推進事業", "mayor_pledge": ["4"], "legal_basis": None,
             "strategy_plan": [{"pillar": "IV-3", "measure": "3", "item": "2",
                                "title": "行政手続きの電子化に向けた取組"}],
             "section": "企画推進係"}),
])
def test_basic_info(records: dict[str, dict[str, Any]], no: str, expected: dict[str, Any]) -> None:
    record = records[no]
    assert record["fiscal_year"] == 2022
    assert (record["department"], record["division"]) == ("政策イノベーション部", "情報政策課")
    assert {k: record[k] for k in expected} == expected


# --- 事業の概要 ------------------------------------------------------------------

def test_overview(records: dict[str, dict[str, Any]]) -> None:
    r = records["089"]
    assert r["target"] == "市職員"
    assert r["purpose"] == "庁内イントラネットとパソコンの整備により事務の効率化を図る。"
    assert r["summary"] == ("職員が使用するパーソナルコンピュータ及びグループウェア等の運用・管理を行い、"
                            "円滑な事務の執行・事務の効率化を図る。")
    assert records["098"]["target"] == "職員"


# --- コストの推移 ----------------------------------------------------------------

def test_costs_088(records: dict[str, dict[str, Any]]) -> None:
    assert records["088"]["costs"] == _costs(
        (2020, 86185, 77967, 77967, 0, 0, 1.0, 100.0, False, 7046),
        (2021, 123235, 106935, 106935, 0, 0, 1.0, 100.0, False, 7078),
        (2022, 130114, 102034, 102034, 0, 0, 1.0, 100.0, False, 7055),
        (2023, 129129, 0, 0, 0, 0, 1.5, 100.0, False, 10460),
        (2024, 129129, 0, 0, 0, 0, 1.5, 100.0, False, 10460),
    )


def test_costs_090_with_its_shifted_other_row(records: dict[str, dict[str, Any]]) -> None:
    # 090 prints その他 one tab left of the other breakdown rows.
    costs = records["090"]["costs"]
    assert [c["other"] for c in costs] == [72, 12962, 0, 0, 0]
    assert [c["subsidies_bonds"] for c in costs] == [0, 2570, 10890, 0, 0]
    assert [c["staff_fte"] for c in costs] == [1.5, 1.0, 1.0, 2.0, 2.0]


def test_costs_089_and_098(records: dict[str, dict[str, Any]]) -> None:
    assert [c["subsidies_bonds"] for c in records["089"]["costs"]] == [0, 425, 0, 0, 0]
    assert [c["other"] for c in records["089"]["costs"]] == [7975, 9924, 0, 0, 0]
    c098 = records["098"]["costs"]
    assert [c["budget"] for c in c098] == [0, 0, 0, 17227, 17227]  # printed 0 stays 0
    assert c098[2] == {"year": 2022, "budget": 0, "settlement": 8238, "general_fund": 5238,
                       "subsidies_bonds": 0, "other": 3000, "staff_fte": 2.0,
                       "overtime_hours": 37.0, "part_time_staff": False, "personnel_cost": 13711}


def test_cost_types_and_future_years(records: dict[str, dict[str, Any]]) -> None:
    for record in records.values():
        assert [c["year"] for c in record["costs"]] == [2020, 2021, 2022, 2023, 2024]
        for cost in record["costs"]:
            for key in ("budget", "settlement", "general_fund", "subsidies_bonds", "other",
                        "personnel_cost"):
                assert type(cost[key]) is int
            assert type(cost["staff_fte"]) is float
            assert type(cost["overtime_hours"]) is float
            assert cost["part_time_staff"] is False
        for future in record["costs"][3:]:
            assert (future["settlement"], future["general_fund"]) == (0, 0)


def test_settlement_is_the_sum_of_its_breakdown(records: dict[str, dict[str, Any]]) -> None:
    # A check that shifted rows landed in the right fields.
    for record in records.values():
        for c in record["costs"]:
            assert c["settlement"] == c["general_fund"] + c["subsidies_bonds"] + c["other"]


def test_personnel_cost_matches_the_published_rates(records: dict[str, dict[str, Any]]) -> None:
    # CONTRACT §3: 6,810,000 円 and 2,446 円/h reproduce 令和4–6年度 exactly.
    for record in records.values():
        for c in record["costs"][2:]:
            yen = (Decimal(str(c["staff_fte"])) * 6810000
                   + Decimal(str(c["overtime_hours"])) * 2446)
            expected = (yen / 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP)
            assert c["personnel_cost"] == int(expected), (record["project_no"], c["year"])


# --- 市民参加の取組状況 -------------------------------------------------------------

def test_participation(records: dict[str, dict[str, Any]]) -> None:
    empty = {"share": None, "plan": None, "execute": None, "evaluate": None}
    for no in ("088", "089", "090", "098", "087"):
        assert records[no]["participation"] == empty  # printed as —
    assert records["091"]["participation"]["share"] == (
        "デジタル・ガバメント推進方針（案）のパブリックコメントを実施")


# --- 指標の推移 ------------------------------------------------------------------

def test_indicator_slots_with_empty_names_are_dropped(records: dict[str, dict[str, Any]]) -> None:
    assert {no: [i["no"] for i in r["indicators"]] for no, r in records.items()} == {
        "088": [1], "089": [1, 2], "090": [1], "098": [1], "091": [1], "087": [1, 2, 3]}
    for record in records.values():
        for indicator in record["indicators"]:
            assert [v["year"] for v in indicator["values"]] == list(range(2019, 2025))


def test_indicator_088_numbered_on_its_target_row(records: dict[str, dict[str, Any]]) -> None:
    # 088 prints no slot number before 指標名; the 1 is glued to 目標値 ('1 目標値').
    (indicator,) = records["088"]["indicators"]
    assert indicator == {
        "no": 1, "name": "年間のネットワーク停止時間", "unit": "分以内", "kind": "活動結果指標",
        "description": "通常のシステム運用時間帯（祝日を除く、8:30~22:00）のネットワーク停止時間を"
                       "0.1%未満に抑える。 （計画的に行う停止時間を除く）※344日×810分×0.1%≒280分",
        "values": _values([280.0] * 6, [3.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    }


def test_indicators_089(records: dict[str, dict[str, Any]]) -> None:
    first, second = records["089"]["indicators"]
    assert (first["name"], first["unit"], first["kind"]) == ("LGWAN接続系端末台数", "台", "活動結果指標")
    assert first["values"] == _values([0.0] * 6, [1570.0, 1654.0, 1672.0, 2027.0, 0.0, 0.0])
    assert first["description"].startswith("庁舎及び出先施設に導入しているLGWAN接続系端末台数 ※当該指標は")
    assert (second["no"], second["name"], second["unit"]) == (2, "情報セキュリティ研修受講者数", "人")
    assert second["values"][3] == {"year": 2022, "target": 300.0, "actual": 122.0}
    assert second["description"] == "情報セキュリティに関する研修の受講者数 (087情報化推進事業からR4年度より移管)"


def test_indicators_098_and_087(records: dict[str, dict[str, Any]]) -> None:
    (i098,) = records["098"]["indicators"]
    assert (i098["name"], i098["unit"], i098["kind"]) == (
        "業務自動化等による導入前の業務時間に対する削減時間数", "時間", "成果指標")
    assert i098["description"] == "(ロードマップNo. 4)"
    assert [v["target"] for v in i098["values"]] == [0.0, 3200.0, 3700.0, 4200.0, 4700.0, 5200.0]
    assert [v["actual"] for v in i098["values"]] == [0.0, 3465.0, 14959.0, 5985.0, 0.0, 0.0]

    login, applications, training = records["087"]["indicators"]
    assert (login["unit"], login["description"]) == ("件", None)
    assert [v["actual"] for v in applications["values"]][:4] == [29601.0, 66024.0, 97378.0, 89362.0]
    # '情報セキュリティ研修受講者数 ()': a name with an empty unit.
    assert (training["name"], training["unit"]) == ("情報セキュリティ研修受講者数", None)
    assert records["090"]["indicators"][0]["description"] is None


# --- 事業の成果と課題 -------------------------------------------------------------

def test_results_with_tab_separated_parts(records: dict[str, dict[str, Any]]) -> None:
    results = records["088"]["results"]
    assert results["response_to_last_year"] == "半導体不足の影響により令和3年度に調達できなかった機器の更新作業を行った。"
    assert results["achievements"].startswith("12月 出先拠点用センタールータ機器等の更改 1月 ")
    assert results["issues_operations"] == (
        "世界的な半導体不足等の影響により、令和4年度に調達できなかった機器の更新作業を行う必要がある。")
    assert results["issues_organization"] == (
        "専門性が高い業務であるため、人材育成が必要である。 各機器の価格が上昇傾向にあるため、歳出増加が見込まれる。")
    assert results["improvement_goal"] == "半導体不足等の影響により令和4年度に調達できなかった機器の更新作業を行う。"


def test_results_with_part_labels_glued_by_a_space(records: dict[str, dict[str, Any]]) -> None:
    # 089 and 090 print '業務 パソコン不足が…' in one cell: the label is not part of the text.
    results = records["089"]["results"]
    assert results["issues_operations"].startswith("パソコン不足が目立つため、")
    assert results["issues_operations"].endswith("集合型研修を実施しなかった。")
    assert results["issues_organization"] == (
        "専門性が高い事業であるため、人材育成が必要である。 端末の価格が上昇傾向にあるため、歳出増加が見込まれる。")
    assert records["090"]["results"]["issues_operations"].startswith("ネットワーク強靱化事業で")
    assert records["087"]["results"]["issues_organization"] == "特になし。"


# --- 評価 / 方向性 ----------------------------------------------------------------

def test_evaluation(records: dict[str, dict[str, Any]]) -> None:
    scores = {no: tuple(r["evaluation"].values()) for no, r in records.items()}
    assert scores == {"088": (3, 2, 4, 3), "089": (3, 4, 4, 3), "090": (4, 2, 5, 3),
                      "098": (4, 4, 4, 4), "091": (3, 4, 4, 3), "087": (3, 4, 5, 3)}


def test_direction(records: dict[str, dict[str, Any]]) -> None:
    assert {no: r["direction"] for no, r in records.items()} == {
        "088": "継続", "089": "拡大・拡充", "090": "拡大・拡充", "098": "継続", "091": "継続",
        "087": "継続"}
    # 088 leaves 理由 empty, 098 and 087 print '-', 091 prints '—'.
    for no in ("088", "098", "091", "087"):
        assert records[no]["direction_reason"] is None
    assert records["089"]["direction_reason"] == (
        "出先パソコンの更改による台数増加及びMicrosoft Office 365のライセンス追加を行うため。")
    assert records["090"]["direction_reason"] == "他部署で契約していた基幹電算業務契約を令和5年度から統合するため。"


# --- tolerance ---------------------------------------------------------------

def test_crlf_and_bom_do_not_matter(seed: str) -> None:
    assert parse_text("\ufeff" + seed.replace("\n", "\r\n")) == parse_text(seed)


def test_a_sheet_alone_parses_the_same(seed: str, records: dict[str, dict[str, Any]]) -> None:
    lines, start = _cut(seed, "令和 4年度 事務事業マネジメントシート", occurrence=5)
    _, end = _cut(seed, "令和 4年度 事務事業マネジメントシート", occurrence=6)
    assert parse_text("\n".join(lines[start:end])) == [records["091"]]


# --- errors ------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   \n\n\t\n", "hello\nworld\n", "指標名\t()\n実績\t1\n",
                                  "\x00\x01\x02\ufffd", "事業の基本情報\n事務事業名\t088 x\n"])
def test_text_without_a_sheet(text: str) -> None:
    with pytest.raises(ImportTextError) as info:
        parse_text(text)
    assert "事務事業マネジメントシートが見つかりません" in str(info.value)
    assert info.value.sheet is None


def test_import_text_error_is_a_value_error() -> None:
    assert issubclass(ImportTextError, ValueError)


def test_truncated_sheet_in_the_middle(seed: str) -> None:
    # Sheet 3 (090) loses everything from 指標の推移 on; the next sheets follow.
    lines, cut = _cut(seed, "指標の推移", occurrence=3)
    _, next_sheet = _cut(seed, "令和 4年度 事務事業マネジメントシート", occurrence=4)
    with pytest.raises(ImportTextError) as info:
        parse_text("\n".join(lines[:cut] + lines[next_sheet:]))
    message = str(info.value)
    assert message.startswith("シート3（事業番号 090）の「指標の推移」を読み取れません: 行 ")
    assert "見出し「指標の推移」がありません" in message
    assert (info.value.sheet, info.value.project_no, info.value.section) == (3, "090", "指標の推移")


def test_truncated_last_sheet_in_its_cost_table(seed: str) -> None:
    lines, cut = _cut(seed, "\t内訳\t正職員従事割合", occurrence=6)
    with pytest.raises(ImportTextError) as info:
        parse_text("\n".join(lines[:cut]))
    message = str(info.value)
    assert message.startswith("シート6（事業番号 087）の「コストの推移」を読み取れません: 行 ")
    assert "正職員従事割合" in message


def test_garbage_in_a_cost_row_names_the_line(seed: str) -> None:
    lines, row = _cut(seed, "\tその他\t(千円)\t72\t12,962")
    lines[row] = lines[row].replace("12,962", "12,96x")
    with pytest.raises(ImportTextError) as info:
        parse_text("\n".join(lines))
    assert str(info.value).startswith(
        f"シート3（事業番号 090）の「コストの推移」を読み取れません: 行 {row + 1}「")
    assert "「12,96x」は整数ではありません" in str(info.value)
    assert info.value.line == row + 1


def test_wrong_number_of_cost_values(seed: str) -> None:
    lines, row = _cut(seed, "事業費\t予算額\t(千円) 37,293")
    lines[row] = lines[row].replace("\t7,590\t7,590", "\t7,590")
    with pytest.raises(ImportTextError, match=r"^シート5（事業番号 091）の「コストの推移」.*予算額.*4個"):
        parse_text("\n".join(lines))


@pytest.mark.parametrize(("prefix", "old", "new", "section", "detail"), [
    ("方向性\t継続", "継続", "たぶん継続", "方向性", "方向性「たぶん継続」は"),
    ("事業分類\t", "自治事務", "国の事務", "事業の基本情報", "事業分類「国の事務（任意）」は"),
    ("市民ニーズ\t3", "3", "7", "評価", "市民ニーズの評価「7」は1〜5ではありません"),
    ("\t実績\t0.0\t33.0", "33.0", "三十三", "指標の推移", "実績「三十三」は数値ではありません"),
    ("担当部課\t", "政策イノベーション部情報政策課", "情報政策課", "事業の基本情報", "部と課に分けられません"),
    ("事務事業名\t", "091 ", "091", "事業の基本情報", "事業番号と事業名を読み取れません"),
    ("\t\t\t\t\t\t16平和", "16", "19", "事業の基本情報", "目標番号（1〜17）"),
    ("\t会計年度任用職員有無", "(-) 無", "(-) ?", "コストの推移", "「有」か「無」ではありません"),
])
def test_bad_values_name_sheet_section_and_line(seed: str, prefix: str, old: str, new: str,
                                                section: str, detail: str) -> None:
    lines = seed.split("\n")
    sheet_starts = [i for i, line in enumerate(lines) if line.startswith("令和 4年度")]
    row = next(i for i, line in enumerate(lines)
               if prefix in line and i > sheet_starts[4])  # inside sheet 5 (091)
    lines[row] = lines[row].replace(old, new, 1)
    with pytest.raises(ImportTextError) as info:
        parse_text("\n".join(lines))
    message = str(info.value)
    assert message.startswith(f"シート5（事業番号 091）の「{section}」を読み取れません: 行 "), message
    assert detail in message
    assert _japanese(message)


def test_lost_title_line_is_not_swallowed_by_the_previous_sheet(seed: str) -> None:
    # Without its title, sheet 3 would run on into sheet 2's 理由 as wrapped text.
    lines, title = _cut(seed, "令和 4年度 事務事業マネジメントシート", occurrence=3)
    del lines[title]
    with pytest.raises(ImportTextError, match=r"^シート2（事業番号 089）の「事業の基本情報」.*二度あります"):
        parse_text("\n".join(lines))


def test_empty_direction_row_is_not_a_heading(seed: str) -> None:
    lines, row = _cut(seed, "方向性\t継続\t", occurrence=2)  # the last sheet, 087
    lines[row] = "方向性\t"
    records = parse_text("\n".join(lines))
    assert (records[-1]["direction"], records[-1]["direction_reason"]) == (None, None)


def test_numbers_beyond_the_schema_bound(seed: str) -> None:
    lines, row = _cut(seed, "事業費\t予算額\t(千円)\t86,185")
    lines[row] = lines[row].replace("86,185", "1,000,000,000")
    with pytest.raises(ImportTextError, match=r"^シート1（事業番号 088）の「コストの推移」.*大きすぎます"):
        parse_text("\n".join(lines))


def test_missing_label_is_reported(seed: str) -> None:
    lines, row = _cut(seed, "市民ニーズ\t4\t十分に高く")  # sheet 3
    del lines[row]
    with pytest.raises(ImportTextError, match=r"^シート3（事業番号 090）の「評価」.*項目「市民ニーズ」がありません"):
        parse_text("\n".join(lines))


def test_unknown_label_is_reported(seed: str) -> None:
    lines, row = _cut(seed, "市民ニーズ\t4\t十分に高く")
    lines[row] = lines[row].replace("市民ニーズ", "市民の声")
    with pytest.raises(ImportTextError) as info:
        parse_text("\n".join(lines))
    assert str(info.value) == (
        f"シート3（事業番号 090）の「評価」を読み取れません: 行 {row + 1}"
        "「市民の声 4 十分に高く、今後も変わらずにあると見込まれる。」: 「市民の声」はこの欄の項目名ではありません")


def test_title_without_a_fiscal_year(seed: str) -> None:
    text = seed.replace("令和 4年度 事務事業マネジメントシート", "事務事業マネジメントシート", 1)
    with pytest.raises(ImportTextError, match=r"^シート1（事業番号 088）の表題を読み取れません.*評価年度"):
        parse_text(text)


# --- no other exception escapes ----------------------------------------------

_FUZZ = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.text())
def test_arbitrary_text_raises_only_import_text_error(text: str) -> None:
    try:
        parse_text(text)
    except ImportTextError as exc:
        assert _japanese(str(exc))


@_FUZZ
@given(data=st.data())
def test_damaged_seed_raises_only_import_text_error(data: st.DataObject) -> None:
    lines = _seed_path().read_text(encoding="utf-8").split("\n")
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        cells = lines[i].split("\t")
        j = data.draw(st.integers(0, len(cells) - 1), label="cell")
        action = data.draw(st.sampled_from(["delete line", "duplicate line", "replace cell",
                                            "drop cell", "add tab", "truncate"]))
        if action == "delete line":
            del lines[i]
        elif action == "duplicate line":
            lines.insert(i, lines[i])
        elif action == "replace cell":
            cells[j] = data.draw(st.sampled_from(
                ["", "-", "—", "x", "()", "1", "0.5", "-3", "9" * 12, "指標名", "方向性", "実績",
                 "課題", "業務 x", "SDGs", "令和 4年度 事務事業マネジメントシート", "R01年度\tR02年度"]))
            lines[i] = "\t".join(cells)
        elif action == "drop cell":
            del cells[j]
            lines[i] = "\t".join(cells)
        elif action == "add tab":
            cells.insert(j, "")
            lines[i] = "\t".join(cells)
        else:
            del lines[i:]
        if not lines:
            break
    try:
        result = parse_text("\n".join(lines))
    except ImportTextError as exc:
        assert _japanese(str(exc))
    else:
        assert isinstance(result, list)
