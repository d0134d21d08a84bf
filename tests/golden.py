"""The golden comparison: what sheettool writes and reports, recorded once and compared ever after.

``python3 tests/golden.py --update TEMPLATE`` runs the scenario of ``scenario()``
through the command line only (generate, check --json, collect, rollforward) and
writes every result under ``tests/golden/TEMPLATE/``; ``test_golden.py`` runs the
same scenario and compares. Workbooks are dumped through openpyxl, not through
sheettool's own reader: every cell's value, formula and style (font, fill, border,
alignment, number format, lock), merges, row heights and column widths, data
validations, sheet state and protection, print setup and defined names. Times
(generation, reception) are replaced by placeholders; nothing else is.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOLDEN = HERE / "golden"

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?")
_TEMP = re.compile(r"/tmp/[^\s\"',）)]+/")
# content digests of files saved by openpyxl in the scenario change with its save time; the
# template's own digest (_meta) changes with any edit of its spec files
_DIGEST = re.compile(r"\b[0-9a-f]{64}\b|^[0-9a-f]{12}$|^[0-9a-f]{16}$")


def _scrub(text: str) -> str:
    return _DIGEST.sub("<sha>", _TEMP.sub("<tmp>/", _ISO.sub("<time>", text)))


def _plain(value: Any) -> Any:
    """A JSON value for a cell value: datetimes become a placeholder, text is scrubbed of times."""
    if hasattr(value, "isoformat"):
        return "<datetime>"
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _color(c: Any) -> Any:
    if c is None:
        return None
    return c.rgb if c.type == "rgb" else f"{c.type}:{c.value}"


def _style(cell: Any) -> dict[str, Any]:
    f, fill, b, a, p = cell.font, cell.fill, cell.border, cell.alignment, cell.protection
    return {
        "font": [f.name, f.sz, f.b, f.i, _color(f.color)],
        "fill": [fill.fill_type, _color(fill.fgColor)],
        "border": [[s.style, _color(s.color)] for s in (b.left, b.right, b.top, b.bottom)],
        "align": [a.horizontal, a.vertical, a.wrap_text, a.shrink_to_fit, a.textRotation],
        "numfmt": cell.number_format,
        "locked": p.locked,
        "hidden": p.hidden,
    }


def dump_workbook(path: Path) -> dict[str, Any]:
    """Everything a user or Excel sees of ``path``, as JSON-ready data."""
    wb = openpyxl.load_workbook(path)
    styles: dict[str, int] = {}
    out: dict[str, Any] = {"sheets": [], "names": {}, "styles": []}
    for name, dn in sorted(wb.defined_names.items()):
        out["names"][name] = dn.attr_text
    for ws in wb.worksheets:
        cells = []
        for row in ws.iter_rows():
            for cell in row:
                if cell.value is None and not cell.has_style:
                    continue
                key = json.dumps(_style(cell), ensure_ascii=False, sort_keys=True)
                sid = styles.setdefault(key, len(styles))
                cells.append([cell.coordinate, _plain(cell.value), cell.data_type, sid])
        dvs = [{"sqref": str(dv.sqref), "type": dv.type, "operator": dv.operator,
                "formula1": dv.formula1, "formula2": dv.formula2, "allow_blank": dv.allow_blank,
                "prompt_title": dv.promptTitle, "prompt": dv.prompt, "error_title": dv.errorTitle,
                "error": dv.error, "error_style": dv.errorStyle, "ime": dv.imeMode}
               for dv in ws.data_validations.dataValidation]
        ps, po, pm = ws.page_setup, ws.print_options, ws.page_margins
        prot = ws.protection
        for name, dn in sorted(ws.defined_names.items()):
            out["names"][f"{ws.title}!{name}"] = dn.attr_text
        out["sheets"].append({
            "title": ws.title,
            "state": ws.sheet_state,
            "cells": cells,
            "merged": sorted(str(r) for r in ws.merged_cells.ranges),
            "rows": {str(k): d.height for k, d in sorted(ws.row_dimensions.items()) if d.height},
            "cols": {k: d.width for k, d in sorted(ws.column_dimensions.items()) if d.width},
            "validations": dvs,
            "conditional": [[str(rng), [r.formula for r in rules]]
                            for rng, rules in ws.conditional_formatting._cf_rules.items()],
            "protection": [prot.sheet, prot.selectLockedCells, prot.selectUnlockedCells,
                           prot.formatRows, prot.formatCells, prot.password is not None],
            "print": [ps.paperSize, ps.orientation, ps.fitToWidth, ps.fitToHeight, ps.scale,
                      ws.sheet_properties.pageSetUpPr.fitToPage if ws.sheet_properties.pageSetUpPr else None,
                      ws.print_area, ws.print_title_rows, ws.print_title_cols,
                      [pm.left, pm.right, pm.top, pm.bottom],
                      po.horizontalCentered, ws.oddFooter.center.text if ws.oddFooter else None,
                      [b.id for b in ws.row_breaks.brk]],
            "freeze": ws.freeze_panes,
            "gridlines": ws.sheet_view.showGridLines,
        })
    wbp = wb.security
    out["workbook_protection"] = bool(wbp and wbp.lockStructure)
    out["styles"] = [json.loads(k) for k in styles]
    wb.close()
    return out


def dump_values(path: Path) -> dict[str, list[list[Any]]]:
    """Every sheet's values (formulas as text), rows trimmed of trailing blanks."""
    wb = openpyxl.load_workbook(path)
    out = {}
    for ws in wb.worksheets:
        rows = []
        for row in ws.iter_rows(values_only=True):
            values = [_plain(v) for v in row]
            while values and values[-1] is None:
                values.pop()
            rows.append(values)
        while rows and not rows[-1]:
            rows.pop()
        out[ws.title] = rows
    wb.close()
    return out


def dump_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [[_scrub(v) for v in row] for row in csv.reader(f)]


def run(*args: str) -> tuple[int, str, str]:
    from sheettool.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, _scrub(out.getvalue()), _scrub(err.getvalue())


# --------------------------------------------------------------------------- the scenario

Mutation = Callable[[openpyxl.Workbook], None]


def _named(wb: openpyxl.Workbook, name: str):
    (sheet, ref), = wb.defined_names[name].destinations
    return wb[sheet][ref.replace("$", "")]


def _setter(**values: Any) -> Mutation:
    def apply(wb: openpyxl.Workbook) -> None:
        for name, value in values.items():
            _named(wb, name).value = value
    return apply


def _unprotect(wb: openpyxl.Workbook) -> None:
    wb.worksheets[0].protection.sheet = False


def _delete_meta(wb: openpyxl.Workbook) -> None:
    del wb["_meta"]


def mutations(fy: int) -> dict[str, Mutation]:
    """Edits a department (or a careless one) makes, by name; applied with openpyxl."""
    y, past = fy, fy - 1
    return {
        "typed_variants": _setter(**{
            f"f_costs_{y}_general_fund": "１,２３４", f"f_costs_{y}_subsidies_bonds": "△5",
            f"f_costs_{y}_other": "-", f"f_costs_{y}_staff_fte": " 1.5 ",
            "f_evaluation_citizen_needs": "４", "f_evaluation_progress": 3,
            "f_evaluation_city_involvement": "-", "f_evaluation_priority": 2.0,
            "f_direction": "改善見直し", "f_results_achievements": "成果あり", "f_status": "継続 ",
        }),
        "bad_values": _setter(**{
            f"f_costs_{y}_budget": "たくさん", f"f_costs_{y}_staff_fte": 1e6,
            "f_evaluation_progress": 7, "f_direction": "やめる", "f_sdgs_1": "目標99",
            f"f_costs_{y}_part_time_staff": "たぶん",
        }),
        "formula_replaced": _setter(**{f"f_costs_{y}_settlement": 999,
                                       f"f_costs_{y}_personnel_cost": "=1+1"}),
        "locked_changed": _setter(**{"f_project_name": "別の事業", f"f_costs_{past}_budget": 1,
                                     "f_project_no": "999"}),
        "reason_missing": _setter(f_direction="縮小", f_direction_reason=None),
        "long_text": _setter(f_results_achievements="長い文章です。" * 120),
        "indicator_without_name": _setter(f_indicators_5_name=None, **{f"f_indicators_5_{y}_target": 5}),
        "formula_in_input": _setter(**{f"f_costs_{y}_general_fund": "=SUM(1,2)",
                                       "f_results_achievements": "=WEBSERVICE(\"http://x\")"}),
        "unprotected": _unprotect,
        "meta_removed": _delete_meta,
    }


def scenario(template: str, work: Path) -> dict[str, Any]:
    """Run the whole scenario for ``template`` in ``work``; every result by file name.

    With an office key of its own, made beforehand (generate's "key created" notice and the
    issue register of other runs are no part of the record).
    """
    from sheettool import signing

    key = work / "office" / "key"
    signing.load_key(key, create=True)
    saved = os.environ.get(signing.KEY_ENV)
    os.environ[signing.KEY_ENV] = str(key)
    try:
        return _scenario(template, work)
    finally:
        if saved is None:
            os.environ.pop(signing.KEY_ENV, None)
        else:
            os.environ[signing.KEY_ENV] = saved


def _scenario(template: str, work: Path) -> dict[str, Any]:
    inputs = GOLDEN / template / "inputs.json"
    records = json.loads(inputs.read_text(encoding="utf-8"))
    results: dict[str, Any] = {}

    rc, out, err = run("generate", inputs, "--out", work / "t")
    results["generate.json"] = {"rc": rc, "stdout": out.replace(str(work), "<work>"),
                                "stderr": err.replace(str(work), "<work>")}
    made = sorted(p for p in (work / "t").rglob("*.xlsx"))
    for path in made:
        results[f"workbooks/{path.stem.split('_')[0]}.json"] = dump_workbook(path)
    checks = {}
    for path in made:
        rc, out, _ = run("check", path, "--json")
        checks[path.relative_to(work / "t").as_posix()] = {"rc": rc, "result": json.loads(out)}
    results["check_generated.json"] = checks

    inbox = work / "inbox"
    mutated = {}
    fy = records[0]["fiscal_year"]
    for i, (name, mutate) in enumerate(sorted(mutations(fy).items())):
        source = made[i % len(made)]
        wb = openpyxl.load_workbook(source)
        mutate(wb)
        dest = inbox / f"{source.stem}_{name}.xlsx"
        dest.parent.mkdir(parents=True, exist_ok=True)
        wb.save(dest)
        rc, out, _ = run("check", dest, "--json")
        mutated[name] = {"source": source.name, "rc": rc, "result": json.loads(out)}
    results["check_mutated.json"] = mutated

    for path in made[len(mutated):]:
        shutil.copy(path, inbox / path.name)
    (inbox / "メモ.txt").write_text("これはブックではありません", encoding="utf-8")
    (inbox / "壊れた.xlsx").write_bytes(b"PK\x03\x04 broken")
    master = work / "master.xlsx"
    rc, out, err = run("collect", inbox, "--out", master, "--expected", inputs, "--json", work / "m.jsonl")
    results["collect.json"] = {
        "rc": rc, "stdout": out.replace(str(work), "<work>"), "stderr": err.replace(str(work), "<work>"),
        "master": dump_values(master),
        "csv": {p.name: dump_csv(p) for p in sorted((work / "master_csv").glob("*.csv"))},
        "jsonl": [json.loads(line) for line in (work / "m.jsonl").read_text(encoding="utf-8").splitlines()],
    }

    rolled = work / "rolled.json"
    rc, out, err = run("rollforward", inputs, "--records-only", rolled, "--rates",
                       GOLDEN / template / "rates_next.json", "--out", work / "next")
    results["rollforward.json"] = {"rc": rc, "stdout": out.replace(str(work), "<work>"),
                                   "stderr": err.replace(str(work), "<work>"),
                                   "records": json.loads(rolled.read_text(encoding="utf-8"))}
    for path in sorted((work / "next").rglob("*.xlsx"))[:3]:
        results[f"next/{path.stem.split('_')[0]}.json"] = dump_workbook(path)
    rolled_master = work / "rolled_from_master.json"
    rc, _, _ = run("rollforward", master, "--records-only", rolled_master)
    results["rollforward_master.json"] = {"rc": rc,
                                          "records": json.loads(rolled_master.read_text(encoding="utf-8"))}
    return results


def write(template: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = scenario(template, Path(tmp))
    target = GOLDEN / template
    for old in ("workbooks", "next"):
        shutil.rmtree(target / old, ignore_errors=True)
    for name, data in results.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, ensure_ascii=False, indent=0, sort_keys=True) + "\n",
                        encoding="utf-8")
    print(f"{len(results)} files written under {target}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--update":
        sys.exit("usage: python3 tests/golden.py --update TEMPLATE")
    sys.path.insert(0, str(ROOT))
    write(sys.argv[2])
