"""The template spec (sheettool/spec/): generated schemas kept current, and lint refusing broken folders."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from helpers import ROOT, seed_records

from sheettool import spec
from sheettool.cli import main
from sheettool.spec.lint import bundled_schema_files, generated_files, lint

TEMPLATES = spec.available()


@pytest.mark.parametrize("tid", TEMPLATES)
def test_every_bundled_template_lints_clean(tid):
    assert [str(p) for p in lint(spec.load_unchecked(tid))] == []


@pytest.mark.parametrize("tid", TEMPLATES)
def test_generated_schemas_are_current(tid):
    tpl = spec.load_unchecked(tid)
    for name, text in generated_files(tpl).items():
        assert (tpl.directory / name).read_text(encoding="utf-8") == text, (
            f"{tid}/{name} is stale: run sheettool template schema")


def test_contract_schemas_are_current():
    for name, text in bundled_schema_files().items():
        assert (ROOT / "schemas" / name).read_text(encoding="utf-8") == text, (
            f"schemas/{name} is stale: run sheettool template schema")


def test_every_property_of_every_schema_has_a_japanese_title():
    def walk(node, where):
        if isinstance(node, dict):
            if "properties" in node:
                for name, prop in node["properties"].items():
                    assert prop.get("title"), f"{where}/{name}"
                    assert any("\u3040" <= c <= "\u9fff" or c in "（）" for c in prop["title"]) or prop["title"] in (
                        "SDGs",), f"{where}/{name}: {prop['title']}"
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    for tid in TEMPLATES:
        walk(spec.load_unchecked(tid).schema, tid)


def test_the_contract_schema_chooses_by_template():
    schema = json.loads((ROOT / "schemas" / "record.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    record = seed_records()[0]
    assert validator.is_valid(record)
    assert validator.is_valid({**record, "template": "tsukuba"})
    assert not validator.is_valid({**record, "template": "nowhere"})
    assert not validator.is_valid({**record, "unknown_key": 1})
    broken = copy.deepcopy(record)
    broken["costs"][0]["budget"] = "多い"
    assert not validator.is_valid(broken)


def test_canonical_keeps_template_only_where_named():
    tpl = spec.load("tsukuba")
    record = seed_records()[0]
    assert "template" not in tpl.canonical(record)
    assert tpl.canonical({**record, "template": "tsukuba"})["template"] == "tsukuba"


# --------------------------------------------------------------------------- lint, on broken copies


def _copy(tmp_path: Path) -> Path:
    dest = tmp_path / "broken"
    shutil.copytree(spec.load("tsukuba").directory, dest)
    return dest


def _edit(folder: Path, name: str, change) -> None:
    path = folder / name
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def _problems(folder: Path) -> list[str]:
    return [str(p) for p in lint(spec.load_unchecked(folder))]


def _cell(layout: dict, field: str) -> dict:
    def walk(blocks):
        for block in blocks:
            for cell in block.get("cells", []):
                if cell.get("field") == field or cell.get("computed") == field:
                    return cell
            found = walk(block.get("blocks", []))
            if found:
                return found
        return None
    return walk(layout["blocks"])


def test_lint_finds_a_placed_field_the_fields_do_not_define(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, "layout.json", lambda d: _cell(d, "section").update(field="secton"))
    problems = _problems(folder)
    assert any("layout.json /blocks/" in p and "「secton」は fields.json にありません" in p for p in problems)
    assert any("「section」（係名）がシートに置かれていません" in p for p in problems)


def test_lint_finds_an_input_placed_twice(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, "layout.json", lambda d: _cell(d, "period").update(field="section"))
    assert any("「section」が2回置かれています" in p for p in _problems(folder))


def test_lint_finds_a_formula_argument_that_is_no_cell_or_rate(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, "formulas.json", lambda d: d["settlement"].update(
        formula="general_fund + subsidies_bonds + otherr"))
    assert any("formulas.json /settlement/formula" in p and "「otherr」" in p for p in _problems(folder))
    _edit(folder, "formulas.json", lambda d: d["settlement"].update(formula="general_fund + rates.nope"))
    assert any("単価「nope」" in p for p in _problems(folder))


def test_lint_finds_paths_of_rules_rollforward_and_master_that_do_not_exist(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, "rules.json", lambda d: d["rules"][0]["fields"].append("results.achievement"))
    _edit(folder, "rollforward.json", lambda d: d["reset"].append("evalution"))
    _edit(folder, "master.json", lambda d: d["list"].append({"header": "x", "path": "derection"}))
    last = len(json.loads((folder / "master.json").read_text(encoding="utf-8"))["list"]) - 1
    problems = _problems(folder)
    assert any(p.startswith("rules.json /rules/0/fields/20:") and "results.achievement" in p for p in problems)
    assert any(p.startswith("rollforward.json /reset/5:") and "evalution" in p for p in problems)
    assert any(p.startswith(f"master.json /list/{last}/path:") and "derection" in p for p in problems)


def test_lint_finds_a_stale_generated_schema(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, "fields.json", lambda d: d["fields"]["section"].update(max_length=60))
    problems = _problems(folder)
    assert any(p.startswith("record.schema.json /:") and "sheettool template schema" in p for p in problems)
    assert main(["template", "schema", str(folder)]) == 0
    assert _problems(folder) == []


def test_a_file_of_the_wrong_shape_is_refused_with_its_pointer(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, "fields.json", lambda d: d["fields"]["status"].update(kind="dropdown"))
    with pytest.raises(spec.TemplateError) as e:
        spec.load_unchecked(folder)
    assert "fields.json の /fields/status/kind" in str(e.value)


def test_generate_and_check_refuse_a_template_with_problems(tmp_path, capsys):
    folder = _copy(tmp_path)
    _edit(folder, "formulas.json", lambda d: d["settlement"].update(formula="general_fund + nothing"))
    records = tmp_path / "r.json"
    records.write_text(json.dumps(seed_records()[:1], ensure_ascii=False), encoding="utf-8")
    assert main(["generate", str(records), "--out", str(tmp_path / "o"), "--template", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "問題があります" in err and "nothing" in err and "Traceback" not in err
    assert main(["template", "lint", str(folder)]) == 2
