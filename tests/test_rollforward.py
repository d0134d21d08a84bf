"""``sheettool rollforward``: a two-year cycle, 令和4年度 (2022) into 令和5年度 (2023).

generate (2022) → filled in LibreOffice → collect → rollforward → the 2023
templates, read with openpyxl and in LibreOffice → filled in LibreOffice →
collect again. Then the options: ``--records-only``, ``--mapping``,
``--keep-all``, ``--add``, a rates file without 2025, and ``--template`` with a
fixed indicator window.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest
from cycle import (
    LAYOUT,
    T0,
    copy_template_dir,
    fill,
    generate,
    named,
    run_cli,
    sent_out,
    table,
    write_records,
)
from helpers import personnel_cost, seed_record, seed_records

from sheettool.check import check_file
from sheettool.collect.master import read_master_records
from sheettool.generate import output_path
from sheettool.spec.rates import Rates

NOS = ["087", "088", "089", "090", "091", "098"]
DEPT, DIV = "政策イノベーション部", "情報政策課"
RATE = Rates.bundled(LAYOUT).get(2024)
COST_INPUTS = ("budget", "general_fund", "subsidies_bonds", "other", "staff_fte", "overtime_hours",
               "part_time_staff")
PLAN = ("budget", "staff_fte", "overtime_hours", "part_time_staff")


@dataclass
class Cycle:
    root: Path
    master: Path  # 2022, collected from the LibreOffice-filled files
    rates: Path  # the bundled rates plus 2025
    out: Path  # the 2023 templates
    stdout: str
    rc: int

    def template(self, no: str) -> Path:
        return output_path(self.out, seed_record(no))


def rates_with(root: Path, *years: int) -> Path:
    """The bundled rates file, extended with ``years`` at the 2024 rate."""
    data = json.loads(LAYOUT.default_rates_path.read_text(encoding="utf-8"))
    for year in years:
        data[str(year)] = {"salary_per_fte": RATE["salary_per_fte"], "overtime_per_hour": RATE["overtime_per_hour"]}
    path = root / f"rates_{'_'.join(map(str, years)) or 'bundled'}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cycle(calc, tmp_path_factory) -> Cycle:
    root = tmp_path_factory.mktemp("rollforward")
    templates = generate([sent_out(r) for r in seed_records()], root / "t2022")
    inbox = root / "inbox2022"
    for i, record in enumerate(seed_records()):
        fill(calc, templates[record["project_no"]], record, output_path(inbox, record), mtime=T0 + i)
    master = root / "master2022.xlsx"
    rc, out, err = run_cli("collect", inbox, "--out", master)
    assert rc == 0, out + err
    assert "受理 6件、要修正 0件、読取不可 0件" in out
    rates = rates_with(root, 2025)
    rc, out, err = run_cli("rollforward", master, "--out", root / "t2023", "--rates", rates)
    return Cycle(root, master, rates, root / "t2023", out, rc)


@pytest.fixture(scope="module")
def books(cycle) -> dict[str, tuple[openpyxl.Workbook, openpyxl.Workbook]]:
    """Each 2023 template as written (formulas) and with its cached values."""
    return {no: (openpyxl.load_workbook(cycle.template(no)), openpyxl.load_workbook(cycle.template(no), data_only=True))
            for no in NOS}


def shown(path: str, value):
    """A record value as its template cell holds it (有/無 for a yes/no, for one)."""
    return LAYOUT.cell_type(path).to_cell(value)


def cost(record: dict, year: int) -> dict:
    return next(c for c in record["costs"] if c["year"] == year)


# --------------------------------------------------------------------------- the 2023 templates


def test_rollforward_of_the_master_book(cycle):
    assert cycle.rc == 0
    assert "繰越: 6件、除外: 0件、追加: 0件、組織・番号の変更: 0件" in cycle.stdout
    assert "6件のテンプレートを作成しました" in cycle.stdout
    made = sorted(p.relative_to(cycle.out).as_posix() for p in cycle.out.rglob("*.xlsx"))
    assert made == sorted(f"{DEPT}/{DIV}/{output_path(Path(), seed_record(no)).name}" for no in NOS)


def test_meta_and_identity_are_the_new_year(books):
    for no, (wb, _) in books.items():
        assert named(wb, "f_fiscal_year").value == 2023
        assert named(wb, "f_project_no").value == no
        assert named(wb, "f_project_no").protection.locked
        meta = {row[0]: row[1] for row in wb["_meta"].iter_rows(values_only=True) if row[0]}
        assert (str(meta["fiscal_year"]), str(meta["project_no"])) == ("2023", no)
        assert wb["_meta"].sheet_state == "veryHidden"


@pytest.mark.parametrize("no", NOS)
def test_costs_window_history_and_plan(books, no):
    wb, values = books[no]
    seed = seed_record(no)
    names = set(wb.defined_names)
    assert {f"f_costs_{y}_budget" for y in range(2021, 2026)} <= names
    assert "f_costs_2020_budget" not in names and "f_costs_2026_budget" not in names
    for year in (2021, 2022):  # as reported, locked history
        reported = cost(seed, year)
        for key in (*COST_INPUTS, "settlement", "personnel_cost"):
            cell = named(values, f"f_costs_{year}_{key}")
            assert cell.value == shown(f"costs.{year}.{key}", reported[key]), (year, key)
            assert named(wb, f"f_costs_{year}_{key}").protection.locked, (year, key)
    for year in (2023, 2024):  # last year's plan, editable; the 決算額 breakdown empty
        planned = cost(seed, year)
        for key in PLAN:
            cell = named(wb, f"f_costs_{year}_{key}")
            assert cell.value == shown(f"costs.{year}.{key}", planned[key]), (year, key)
            assert not cell.protection.locked, (year, key)
        for key in ("general_fund", "subsidies_bonds", "other"):
            cell = named(wb, f"f_costs_{year}_{key}")
            assert cell.value is None and not cell.protection.locked, (year, key)
        assert named(values, f"f_costs_{year}_personnel_cost").value == planned["personnel_cost"]
        assert named(values, f"f_costs_{year}_settlement").value in (None, "")
    for key in COST_INPUTS:
        cell = named(wb, f"f_costs_2025_{key}")
        assert cell.value is None and not cell.protection.locked, key
    assert named(wb, "f_costs_2025_personnel_cost").value.startswith("=")  # a formula, with the 2025 rate
    assert named(values, "f_costs_2025_personnel_cost").value in (None, "")


def test_published_costs_in_libreoffice(calc, cycle):
    """Recalculated by LibreOffice, 2021 and 2022 show exactly the published 決算額 and 人件費計."""
    doc_2025 = {}
    for no in NOS:
        seed = seed_record(no)
        refs = [f"f_costs_{y}_{k}" for y in (2021, 2022, 2023, 2024) for k in ("settlement", "personnel_cost")]
        with calc.open(cycle.template(no)) as doc:
            doc.recalc()
            cells = doc.read(refs)
            doc_2025[no] = doc.cell("f_costs_2025_personnel_cost")
            assert doc.errors() == []
        for year in (2021, 2022):
            assert cells[f"f_costs_{year}_settlement"]["value"] == cost(seed, year)["settlement"], (no, year)
            assert cells[f"f_costs_{year}_personnel_cost"]["value"] == cost(seed, year)["personnel_cost"], (no, year)
        for year in (2023, 2024):
            assert cells[f"f_costs_{year}_personnel_cost"]["value"] == cost(seed, year)["personnel_cost"], (no, year)
            settlement = cells[f"f_costs_{year}_settlement"]  # "" until the breakdown is typed
            assert (settlement["type"], settlement["result"], settlement["string"]) == ("formula", "text", "")
        blank = doc_2025[no]
        assert (blank["type"], blank["string"]) == ("formula", "")  # the 2025 rate is there: no error, just blank


@pytest.mark.parametrize("no", NOS)
def test_indicators_carried(books, no):
    wb, _ = books[no]
    seed = seed_record(no)
    names = set(wb.defined_names)
    for ind in seed["indicators"]:
        n = ind["no"]
        for key in ("name", "unit", "kind", "description"):
            cell = named(wb, f"f_indicators_{n}_{key}")
            assert cell.value == ind[key], (n, key)
            assert not cell.protection.locked
        assert f"f_indicators_{n}_2019_actual" not in names  # out of the 2020–2025 window now
        values = {v["year"]: v for v in ind["values"]}
        for year in (2020, 2021, 2022):  # past: locked history
            for key in ("target", "actual"):
                cell = named(wb, f"f_indicators_{n}_{year}_{key}")
                assert cell.value == values[year][key] and cell.protection.locked, (n, year, key)
        for year in (2023, 2024):  # targets carried, actuals blank, both editable
            target, actual = named(wb, f"f_indicators_{n}_{year}_target"), named(wb, f"f_indicators_{n}_{year}_actual")
            assert target.value == values[year]["target"] and not target.protection.locked, (n, year)
            assert actual.value is None and not actual.protection.locked, (n, year)
        assert named(wb, f"f_indicators_{n}_2025_target").value is None
    unused = len(seed["indicators"]) + 1
    assert named(wb, f"f_indicators_{unused}_name").value is None


@pytest.mark.parametrize("no", NOS)
def test_last_years_goal_is_a_locked_reference_and_this_years_judgement_is_empty(books, no):
    wb, _ = books[no]
    results = seed_record(no)["results"]
    for key in ("improvement_goal", "issues_operations", "issues_organization"):
        cell = named(wb, f"f_previous_{key}")
        assert cell.value == results[key] and cell.protection.locked, key
    for key in results:
        cell = named(wb, f"f_results_{key}")
        assert cell.value is None and not cell.protection.locked, key
    for key in ("citizen_needs", "progress", "city_involvement", "priority"):
        cell = named(wb, f"f_evaluation_{key}")
        assert cell.value is None and not cell.protection.locked, key
    for name in ("f_direction", "f_direction_reason"):
        assert named(wb, name).value is None and not named(wb, name).protection.locked


def test_basic_information_carried_as_editable(books):
    wb, _ = books["098"]
    seed = seed_record("098")
    assert seed["status"] == "移管"
    assert named(wb, "f_status").value == "継続"
    for key in ("purpose", "summary", "target", "section", "category", "delivery", "budget_code"):
        cell = named(wb, f"f_{key}")
        assert cell.value == seed[key] and not cell.protection.locked, key


# --------------------------------------------------------------------------- the second year, filled in and collected


def judgement(record: dict, i: int) -> dict:
    """This year's values as a department writes them into the 2023 template."""
    rec = copy.deepcopy(record)
    rec["results"] = {
        "response_to_last_year": f"前年度の改善目標（{rec['previous']['improvement_goal'][:10]}…）に取り組んだ。",
        "achievements": f"令和5年度は計画どおり実施した（{rec['project_no']}）。",
        "issues_operations": "運用手順の見直しが必要である。",
        "issues_organization": "特になし。",
        "improvement_goal": "手順書を整備し、運用を効率化する。",
    }
    rec["evaluation"] = {"citizen_needs": 3, "progress": 1 + i % 5, "city_involvement": 4, "priority": 3}
    rec["direction"], rec["direction_reason"] = ("継続", None) if i % 2 else ("改善・見直し", "運用体制を見直すため。")
    c = cost(rec, 2023)
    c.update(general_fund=c["budget"] - 1000 * (i + 1), subsidies_bonds=1000 * i, other=-375 if i == 2 else 0)
    c["settlement"] = c["general_fund"] + c["subsidies_bonds"] + c["other"]
    for ind in rec["indicators"]:
        value = next(v for v in ind["values"] if v["year"] == 2023)
        value["actual"] = (value["target"] or 0) + 10 * (i + 1)
    return rec


@pytest.fixture(scope="module")
def second_year(calc, cycle):
    inbox = cycle.root / "inbox2023"
    filled = {}
    for i, no in enumerate(NOS):
        template = cycle.template(no)
        record = judgement(check_file(template).record, i)
        fill(calc, template, record, inbox / template.relative_to(cycle.out), mtime=T0 + 400 + i)
        filled[no] = record
    master = cycle.root / "master2023.xlsx"
    rc, out, err = run_cli("collect", inbox, "--out", master, "--json", cycle.root / "current2023.jsonl")
    return filled, master, rc, out + err


def test_filled_2023_templates_collect_without_errors(second_year, cycle):
    filled, master, rc, out = second_year
    assert rc == 0, out
    assert "ファイル 6件（新たに読み取り 6件）: 受理 6件、要修正 0件、読取不可 0件。" in out
    records = [json.loads(line) for line in (cycle.root / "current2023.jsonl").read_text("utf-8").splitlines()]
    assert [r["project_no"] for r in records] == NOS
    for rec in records:
        assert rec == filled[rec["project_no"]]
        assert rec["fiscal_year"] == 2023
        assert [c["year"] for c in rec["costs"]] == [2021, 2022, 2023, 2024]
    wb = openpyxl.load_workbook(master)
    rows = {r["番号"]: r for r in table(wb["一覧"])}
    assert {r["提出状況"] for r in rows.values()} == {"受理"} and {r["エラー数"] for r in rows.values()} == {0}
    r089 = rows["089"]
    expected = cost(filled["089"], 2023)
    assert r089["令和5年度（2023）決算額（千円）"] == expected["settlement"] == 306832 - 2000 + 1000 - 375
    assert r089["令和5年度（2023）人件費計（千円）"] == personnel_cost(
        1.5, 250.0, RATE["salary_per_fte"], RATE["overtime_per_hour"]) == 10827
    costs = {(r["番号"], r["年度"], r["項目"]): r["値"] for r in table(wb["コスト推移"])}
    assert costs[("087", 2021, "決算額")] == 19083  # history carried through a second year unchanged
    assert costs[("088", 2022, "人件費計")] == 7055
    findings = table(wb["指摘一覧"])
    assert not [r for r in findings if r["区分"] == "エラー"]


# --------------------------------------------------------------------------- options


def test_records_only(cycle, tmp_path):
    out = tmp_path / "r2023.json"
    rc, stdout, err = run_cli("rollforward", cycle.master, "--records-only", out)
    assert (rc, err) == (0, "")
    assert f"繰越後の記録を書き出しました: {out}" in stdout
    assert not list(tmp_path.rglob("*.xlsx"))
    rolled = json.loads(out.read_text(encoding="utf-8"))
    assert [r["project_no"] for r in rolled] == NOS
    seed = seed_record("090")
    r090 = rolled[NOS.index("090")]
    assert r090["fiscal_year"] == 2023 and r090["status"] == "継続"
    assert [c["year"] for c in r090["costs"]] == [2021, 2022, 2023, 2024]
    assert cost(r090, 2022) == cost(seed, 2022)
    assert {k: cost(r090, 2023)[k] for k in PLAN} == {k: cost(seed, 2023)[k] for k in PLAN}
    assert cost(r090, 2023)["general_fund"] is None and cost(r090, 2023)["settlement"] is None
    assert r090["previous"] == {**{k: seed["results"][k] for k in ("improvement_goal", "issues_operations",
                                                                    "issues_organization")},
                                "office_comment": seed["office_comment"]}
    assert set(r090["results"].values()) == {None} and set(r090["evaluation"].values()) == {None}
    assert (r090["direction"], r090["direction_reason"]) == (None, None)
    values = r090["indicators"][0]["values"]
    assert [(v["year"], v["actual"]) for v in values] == [(2020, 0.0), (2021, 0.0), (2022, 0.0),
                                                         (2023, None), (2024, None)]
    # the same records, generated, make the same templates as rollforward --out
    rc, _, _ = run_cli("generate", out, "--out", tmp_path / "t", "--rates", cycle.rates)
    assert rc == 0
    for no in NOS:
        assert check_file(output_path(tmp_path / "t", seed_record(no))).record == \
            check_file(cycle.template(no)).record


def test_master_book_saved_again_by_libreoffice_rolls_forward_the_same(calc, cycle, tmp_path):
    """The office looks at the master book in Calc and saves it; the hidden records survive."""
    with calc.open(cycle.master) as doc:
        doc.type({"一覧!A1": "メモ"}, force=True)  # an edit on a visible sheet
        saved = doc.save(tmp_path / "master_saved.xlsx")
    assert read_master_records(saved) == read_master_records(cycle.master)
    rc, _, err = run_cli("rollforward", saved, "--records-only", tmp_path / "a.json")
    assert (rc, err) == (0, "")
    rc, _, _ = run_cli("rollforward", cycle.master, "--records-only", tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_mapping_renames_a_division_and_renumbers_a_project(cycle, tmp_path):
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({
        "organizations": [{"from": {"department": DEPT, "division": DIV}, "to": {"division": "デジタル推進課"}}],
        "projects": [{"from": "088", "to": "188"}],
    }, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "t"
    rc, stdout, err = run_cli("rollforward", cycle.master, "--out", out, "--rates", cycle.rates, "--mapping", mapping)
    assert (rc, err) == (0, "")
    assert "繰越: 6件、除外: 0件、追加: 0件、組織・番号の変更: 6件" in stdout
    assert f"変更 088 {DEPT}{DIV} → 188 {DEPT}デジタル推進課" in stdout
    assert f"変更 089 {DEPT}{DIV} → 089 {DEPT}デジタル推進課" in stdout
    assert not (out / DEPT / DIV).exists()
    made = sorted(p.name for p in (out / DEPT / "デジタル推進課").iterdir())
    assert made == sorted(output_path(Path(), {**seed_record(no), "project_no": "188" if no == "088" else no}).name
                          for no in NOS)
    path = out / DEPT / "デジタル推進課" / "188_情報通信ネットワーク運営業務.xlsx"
    wb = openpyxl.load_workbook(path)
    assert named(wb, "f_project_no").value == "188"
    assert named(wb, "f_division").value == "デジタル推進課"
    assert named(wb, "f_department").value == DEPT
    assert named(wb, "f_costs_2022_budget").value == 130114  # the project's history came along
    result = check_file(path)
    assert (result.meta["project_no"], result.record["project_no"], result.record["division"]) == \
        ("188", "188", "デジタル推進課")


def test_completed_project_is_left_out_unless_keep_all(cycle, tmp_path):
    records = read_master_records(cycle.master)
    for rec in records:
        if rec["project_no"] == "090":
            rec.update(direction="完了", direction_reason="基幹系システム標準化に移行したため。")
    source = write_records(tmp_path / "r2022.json", records)
    rc, stdout, _ = run_cli("rollforward", source, "--records-only", tmp_path / "out.json")
    assert rc == 0
    assert "繰越: 5件、除外: 1件、追加: 0件" in stdout
    assert "  除外 090 基幹電算業務運営事業（方向性: 完了）" in stdout
    assert [r["project_no"] for r in json.loads((tmp_path / "out.json").read_text("utf-8"))] == \
        ["087", "088", "089", "091", "098"]
    rc, stdout, _ = run_cli("rollforward", source, "--records-only", tmp_path / "all.json", "--keep-all")
    assert rc == 0
    assert "繰越: 6件、除外: 0件" in stdout and "除外 090" not in stdout
    assert "090" in [r["project_no"] for r in json.loads((tmp_path / "all.json").read_text("utf-8"))]


def new_project(fiscal_year: int = 2023) -> dict:
    rec = seed_record("098")
    rec.update(fiscal_year=fiscal_year, project_no="120", project_name="オープンデータ推進事業", status="新規",
               direction=None, direction_reason=None)
    rec["costs"] = [{"year": y, "budget": 5000, "settlement": None, "general_fund": None, "subsidies_bonds": None,
                     "other": None, "staff_fte": 0.5, "overtime_hours": 20.0, "part_time_staff": False,
                     "personnel_cost": None} for y in (fiscal_year, fiscal_year + 1)]
    rec["indicators"] = [{"no": 1, "name": "公開データセット数", "unit": "件", "kind": "活動結果指標",
                          "description": "オープンデータカタログに公開したデータセットの数。",
                          "values": [{"year": fiscal_year, "target": 50.0, "actual": None}]}]
    rec["results"] = {k: None for k in rec["results"]}
    rec["evaluation"] = {k: None for k in rec["evaluation"]}
    return rec


def test_new_projects_added(cycle, tmp_path):
    add = write_records(tmp_path / "add.json", [new_project()])
    out = tmp_path / "t"
    rc, stdout, err = run_cli("rollforward", cycle.master, "--out", out, "--rates", cycle.rates, "--add", add)
    assert (rc, err) == (0, "")
    assert "繰越: 6件、除外: 0件、追加: 1件、組織・番号の変更: 0件" in stdout
    assert "  追加 120" in stdout
    assert "7件のテンプレートを作成しました" in stdout
    wb = openpyxl.load_workbook(out / DEPT / DIV / "120_オープンデータ推進事業.xlsx")
    assert (named(wb, "f_project_no").value, named(wb, "f_fiscal_year").value, named(wb, "f_status").value) == \
        ("120", 2023, "新規")
    assert named(wb, "f_costs_2023_budget").value == 5000
    assert named(wb, "f_indicators_1_name").value == "公開データセット数"
    assert named(wb, "f_costs_2022_budget").value is None and not named(wb, "f_costs_2022_budget").protection.locked
    # an addition for another year is refused with a Japanese message
    wrong = write_records(tmp_path / "wrong.json", [new_project(2022)])
    rc, stdout, err = run_cli("rollforward", cycle.master, "--records-only", tmp_path / "x.json", "--add", wrong)
    assert rc == 1
    assert "追加の事業 120 の評価年度 2022 が繰越先の年度（2023）と異なります" in err
    assert "Traceback" not in err


def test_broken_additions_are_reported_not_a_crash(cycle, tmp_path):
    add = tmp_path / "add.jsonl"
    add.write_text(json.dumps(new_project(), ensure_ascii=False) + "\nnot json\n[1, 2]\n" +
                   json.dumps({**new_project(), "project_no": "121", "sdgs": [18]}, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    rc, stdout, err = run_cli("rollforward", cycle.master, "--records-only", tmp_path / "r.json", "--add", add)
    assert rc == 1
    assert "Traceback" not in err and "内部エラー" not in err
    assert "エラー: 追加する記録 2行目: JSONとして読めません" in err
    assert "エラー: 追加する記録 3行目: 記録（JSONオブジェクト）ではありません" in err
    assert "エラー: 追加の事業 121: " in err  # SDG 18 does not exist: the schema refuses it
    assert "追加: 1件" in stdout and "  追加 120" in stdout
    assert [r["project_no"] for r in json.loads((tmp_path / "r.json").read_text("utf-8"))] == [*NOS, "120"]


def test_missing_2025_rate_is_a_clear_error(cycle, tmp_path):
    for rates in ([], ["--rates", str(rates_with(tmp_path))]):  # the bundled default, then an explicit file
        out = tmp_path / f"t{len(rates)}"
        rc, stdout, err = run_cli("rollforward", cycle.master, "--out", out, *rates)
        assert rc == 1
        assert "Traceback" not in stdout + err
        # once for the run, not once per project: the line names the six records it stopped
        assert err.count("2025年度（令和7年度）の人件費単価が単価ファイルにありません") == 1
        assert "2025年度（令和7年度）の人件費単価が単価ファイルにありません（記録 6件: 事業番号 " in err
        assert "単価ファイル（--rates）に 2025 年度の salary_per_fte・overtime_per_hour を追加してください" in err
        assert "0件のテンプレートを作成しました（出力先: " in stdout and "6件は作成できませんでした" in stdout
        assert not out.exists() or not list(out.rglob("*.xlsx"))


def test_fixed_indicator_window_follows_the_template(cycle, tmp_path):
    template = copy_template_dir(tmp_path / "tsukuba_fixed",
                                 indicators={"mode": "fixed", "first_year": 2019, "first_offset": None})
    out = tmp_path / "t"
    rc, stdout, err = run_cli("rollforward", cycle.master, "--out", out, "--rates", cycle.rates,
                              "--template", template)
    assert (rc, err) == (0, ""), stdout
    wb = openpyxl.load_workbook(output_path(out, seed_record("087")))
    names = set(wb.defined_names)
    assert "f_indicators_1_2019_actual" in names and "f_indicators_1_2024_target" in names
    assert "f_indicators_1_2025_target" not in names
    assert {"f_costs_2021_budget", "f_costs_2025_budget"} <= names and "f_costs_2020_budget" not in names
    values = {v["year"]: v for v in seed_record("087")["indicators"][1]["values"]}
    for year in (2019, 2020, 2021, 2022):
        cell = named(wb, f"f_indicators_2_{year}_actual")
        assert cell.value == values[year]["actual"] and cell.protection.locked, year
    assert named(wb, "f_indicators_2_2023_actual").value is None
    assert not named(wb, "f_indicators_2_2023_actual").protection.locked
    assert named(wb, "f_indicators_2_2024_target").value == 40000
    rc, _, _ = run_cli("rollforward", cycle.master, "--records-only", tmp_path / "r.json", "--template", template)
    assert rc == 0
    rolled = {r["project_no"]: r for r in json.loads((tmp_path / "r.json").read_text("utf-8"))}
    assert [v["year"] for v in rolled["087"]["indicators"][1]["values"]] == [2019, 2020, 2021, 2022, 2023, 2024]
    # check and collect read such a template with --template, without falling back to the bundled layout
    from sheettool.check import check_file

    result = check_file(output_path(out, seed_record("087")), template=str(template))
    assert "T219" not in [f.code for f in result.findings]
    assert [v["year"] for v in result.record["indicators"][1]["values"]][:4] == [2019, 2020, 2021, 2022]
