"""The sheet's 入力チェック in LibreOffice equals what check reports, rule by rule, for every template.

A synthetic record's workbook is opened in LibreOffice Calc; fills that break the rules are
typed in as a department would (blank required inputs, numbers pasted past the validation,
texts too long, "-" where it is not allowed, indicators without what they need); after the
recalculation, the (code, cell) of every flagged row of ``_check`` and the count
``chk_errors`` are compared with the findings of ``sheettool check`` on the saved file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from cycle import run_cli
from synth import synthetic_record
from test_conformance import fiscal_year

from sheettool import spec
from sheettool.check import check_file
from sheettool.generate import output_path
from sheettool.spec.live import LiveCheck, live_checks
from sheettool.xlsx import panel

TEMPLATES = spec.available()
LIVE_CODES = {"R501", "R503", "R504", "R505", "R506", "S401"}


def _generate(tpl: spec.Template, record: dict, folder: Path) -> Path:
    src = folder / "records.json"
    import json

    src.write_text(json.dumps([record], ensure_ascii=False), encoding="utf-8")
    rc, out, err = run_cli("generate", src, "--out", folder / "t")
    assert rc == 0, out + err
    return output_path(folder / "t", record)


def _typable(tpl: spec.Template, check: LiveCheck) -> bool:
    p = check.placed
    return p.role == "input" and not p.history and not p.formula


def fills(tpl: spec.Template, checks: list[LiveCheck]) -> dict[str, dict[str, str]]:
    """Named fills of broken input, from the live checks themselves (so every template gets them)."""
    by_code: dict[str, list[LiveCheck]] = {}
    for c in checks:
        if _typable(tpl, c):
            by_code.setdefault(c.code, []).append(c)
    out: dict[str, dict[str, str]] = {"untouched": {}}
    out["blank required"] = {c.placed.name: "" for c in by_code.get("R501", [])[:6]}
    out["blank with dash and spaces"] = {c.placed.name: v for c, v in zip(by_code.get("R501", [])[6:9],
                                                                          ("-", "　", " － "), strict=False)}
    numbers, texts = [], []
    for c in by_code.get("S401", []):
        ftype = tpl.cell_type(c.placed.path)
        (numbers if ftype.numeric else texts).append((c, ftype))
    out["numbers out of bounds"] = {}
    for c, ftype in numbers[:6]:
        if ftype.maximum is not None:
            out["numbers out of bounds"][c.placed.name] = str(int(ftype.maximum) * 10 + 1)
        elif ftype.minimum is not None:
            out["numbers out of bounds"][c.placed.name] = str(int(ftype.minimum) - 5)
    out["texts too long"] = {c.placed.name: "あ" * (ftype.max_length + 3) for c, ftype in texts[:3]}
    combos: dict[str, str] = {}
    for c in by_code.get("R505", [])[:2]:
        combos[c.placed.name] = "-"
    for c in by_code.get("R503", [])[:2]:
        combos[c.placed.name] = ""
    for c in by_code.get("R504", [])[:1]:
        combos[c.placed.name] = ""  # an indicator's name removed, its values kept
    out["wrong combinations"] = combos
    mixed: dict[str, str] = {}
    for name in ("blank required", "numbers out of bounds", "wrong combinations"):
        mixed.update(dict(list(out[name].items())[:2]))
    out["mixed"] = mixed
    return out


def _expected(result) -> Counter:
    return Counter((f.code, f.cell) for f in result.findings
                   if f.code in LIVE_CODES and (f.is_error or f.code == "R503"))


def _live(doc, checks: list[LiveCheck]) -> tuple[Counter, int, int]:
    refs = [f"{panel.SHEET}!B{i}" for i in range(1, len(checks) + 1)]
    flags = doc.read(refs)
    seen = Counter()
    for ref, check in zip(refs, checks, strict=True):
        if flags[ref]["value"] == 1 and (check.severity == "error" or check.code == "R503"):
            seen[(check.code, check.placed.cell)] += 1
    return seen, _count(doc, 1), _count(doc, 2)


def _count(doc, row: int) -> int:
    cell = doc.cell(f"{_SHEET_OF[doc.path]}!{_COUNT_COL[doc.path]}{row + 1}")
    return int(cell["value"] or 0)


_SHEET_OF: dict[Path, str] = {}
_COUNT_COL: dict[Path, str] = {}


@pytest.mark.parametrize("tid", TEMPLATES)
def test_the_panel_counts_what_check_reports_rule_by_rule(calc, tid, tmp_path):
    tpl = spec.load(tid)
    fy = fiscal_year(tid)
    record = synthetic_record(tpl, fy, 1)
    path = _generate(tpl, record, tmp_path)
    placement = tpl.place(fy)
    checks = live_checks(tpl, placement)
    from xlsxwriter.utility import xl_col_to_name

    compared = Counter()
    for name, typed in fills(tpl, checks).items():
        case = tmp_path / f"{name}.xlsx"
        case.write_bytes(path.read_bytes())
        _SHEET_OF[case] = f"'{tpl.sheet_name}'"
        _COUNT_COL[case] = xl_col_to_name(panel.panel_column(placement) + 1)
        with calc.open(case) as doc:
            if not typed:  # as opened: the panel computed on load, before any recalculation
                live, errors, _ = _live(doc, checks)
                assert (live, errors) == (Counter(), 0), name
            if typed:
                doc.type(typed)
            doc.recalc()
            live, errors, warnings = _live(doc, checks)
            saved = doc.save(tmp_path / f"{name} saved.xlsx")
        result = check_file(saved)
        assert _expected(result) == live, (name, [(f.code, f.cell, f.message) for f in result.findings])
        assert errors == sum(1 for f in result.findings if f.is_error and f.code in LIVE_CODES), (name, live, [(f.code, f.cell, f.message) for f in result.findings])
        assert errors == sum(n for (code, _), n in live.items() if code != "R503")
        assert not [f for f in result.findings if f.code in ("T211", "T240", "T241")], (name, result.findings)
        if name == "untouched":
            assert errors == 0
        compared.update(code for code, _ in live)
    # not vacuous: the fills broke each kind of rule the template has
    assert {"R501", "S401"} <= set(compared), compared


def _rewritten(path: Path, target: Path, part: str, old: str, new: str) -> Path:
    import zipfile

    with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == part:
                text = data.decode("utf-8")
                assert old in text
                data = text.replace(old, new, 1).encode("utf-8")
            dst.writestr(info, data)
    return target


def _check_part(path: Path) -> str:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.startswith("xl/worksheets/") and b"SUM($B$1:B1)" in zf.read(name):
                return name
    raise AssertionError("no _check sheet")


@pytest.mark.parametrize("tid", TEMPLATES)
def test_a_changed_or_removed_panel_is_told_and_never_read(tid, tmp_path):
    tpl = spec.load(tid)
    record = synthetic_record(tpl, fiscal_year(tid), 1)
    path = _generate(tpl, record, tmp_path)
    clean = check_file(path)
    assert not [f for f in clean.findings if f.code in ("T240", "T241")]
    changed = _rewritten(path, tmp_path / "changed.xlsx", _check_part(path), "<f>IF(", "<f>IF(1+0*")
    result = check_file(changed)
    assert [f.code for f in result.findings if f.code == "T240"] == ["T240"]
    assert result.record == clean.record  # the panel is never data
    removed = _rewritten(path, tmp_path / "removed.xlsx", "xl/workbook.xml", f'name="{panel.SHEET}"', 'name="別シート"')
    codes = [f.code for f in check_file(removed).findings]
    assert "T241" in codes and "T240" not in codes


def test_the_readme_lists_what_stays_python_only():
    from helpers import ROOT

    from sheettool.spec.live import PYTHON_ONLY

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"| {what} | {why} |" in readme for what, why in PYTHON_ONLY)
