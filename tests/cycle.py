"""The evaluation cycle as a department lives it: templates sent out, filled in LibreOffice, returned.

Shared by test_collect.py and test_rollforward.py. The office generates one
template per project with ``sheettool generate`` (or ``rollforward``); a
department opens it in LibreOffice Calc, types its values into the unlocked
cells, and saves it as .xlsx. ``fill`` does exactly that through the UNO
harness (tests/calc): a locked cell refuses the typing as it would for a user.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import openpyxl
from calc.client import Calc

from sheettool import spec
from sheettool.check import check_file
from sheettool.cli import main
from sheettool.generate import output_path

LAYOUT = spec.load()
SHEET = LAYOUT.sheet_name
JUDGEMENT = ("results", "evaluation", "direction", "direction_reason")
# A fixed moment for file modification times: the inbox order must not depend on the clock.
T0 = 1_685_000_000  # 2023-05-25


# --------------------------------------------------------------------------- records and templates


def write_records(path: Path, records: Iterable[dict]) -> Path:
    path.write_text(json.dumps(list(records), ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def sent_out(record: dict) -> dict:
    """The record as the office sends it out: this year's judgement and results not yet written.

    Results, evaluation, 方向性 and its 理由 are empty, and so are the evaluated
    year's 決算額 breakdown and indicator actuals; plans and history stay.
    """
    rec = copy.deepcopy(record)
    fy = rec["fiscal_year"]
    rec["results"] = {k: None for k in rec["results"]}
    rec["evaluation"] = {k: None for k in rec["evaluation"]}
    rec["direction"] = rec["direction_reason"] = None
    for cost in rec["costs"]:
        if cost["year"] == fy:
            cost.update(settlement=None, general_fund=None, subsidies_bonds=None, other=None)
    for ind in rec["indicators"]:
        for value in ind["values"]:
            if value["year"] == fy:
                value["actual"] = None
    return rec


def generate(records: Iterable[dict], out_dir: Path, *args: str) -> dict[str, Path]:
    """``sheettool generate`` through the CLI; the template of each project by number."""
    records = list(records)
    src = write_records(out_dir.with_name(out_dir.name + "_records.json"), records)
    assert main(["generate", str(src), "--out", str(out_dir), *args]) == 0
    paths = {r["project_no"]: output_path(out_dir, r) for r in records}
    assert all(p.is_file() for p in paths.values())
    return paths


def as_typed(value: Any) -> str:
    """What a user types for a cell value: the text, or the number written out."""
    return value if isinstance(value, str) else (repr(value) if isinstance(value, float) else str(value))


def input_cells(template: Path, lay: spec.Template = LAYOUT) -> list[spec.Placed]:
    """The cells a department can type into (inputs not locked as history, per the template's _meta)."""
    result = check_file(template)
    locked = result.meta["locked_values"]
    place = lay.place(result.meta["fiscal_year"])
    return [p for p in place.fields.values() if p.role == "input" and not p.formula and p.name not in locked]


def typing_for(template: Path, record: dict, lay: spec.Template = LAYOUT) -> dict[str, str | None]:
    """What to type so the template holds ``record``: every input cell whose value differs."""
    before = check_file(template).record
    typed: dict[str, str | None] = {}
    for placed in input_cells(template, lay):
        ftype = lay.cell_type(placed.path)
        want = ftype.to_cell(lay.get(record, placed.path))
        if want == ftype.to_cell(lay.get(before, placed.path)):
            continue
        typed[placed.name] = None if want is None else as_typed(want)
    return typed


def fill(calc: Calc, template: Path, record: dict, out: Path, *, lay: spec.Template = LAYOUT,
         typed: Mapping[str, str | None] | None = None, as_text: Mapping[str, str] | None = None,
         mtime: float | None = None) -> Path:
    """Open ``template`` in LibreOffice, type ``record``'s values (then ``typed``), save as ``out``.

    ``typed`` maps defined names to what a user types (None clears the cell);
    ``as_text`` is entered as text whatever it looks like (a user's leading
    apostrophe, or text pasted as text). ``mtime`` sets the saved file's
    modification time.
    """
    values = {**typing_for(template, record, lay), **(typed or {})}
    for name in as_text or {}:
        values.pop(name, None)
    out.parent.mkdir(parents=True, exist_ok=True)
    with calc.open(template) as doc:
        if values:
            doc.type(values)
        if as_text:
            doc.type(dict(as_text), mode="string")
        doc.recalc()
        doc.save(out)
    if mtime is not None:
        os.utime(out, (mtime, mtime))
    return out


def run_cli(*args: str) -> tuple[int, str, str]:
    """``sheettool.cli.main(args)`` with its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- reading results


def named(wb: openpyxl.Workbook, name: str):
    """The cell a workbook-scoped defined name points at (KeyError when there is no such name)."""
    (sheet, ref), = wb.defined_names[name].destinations
    return wb[sheet][ref.replace("$", "")]



def table(ws, header_row: int = 1) -> list[dict[str, Any]]:
    """The table whose header is on ``header_row`` (1-based), up to its first empty header or row."""
    rows = ws.iter_rows(min_row=header_row, values_only=True)
    header = next(rows)
    width = next((i for i, h in enumerate(header) if h is None), len(header))
    out = []
    for row in rows:
        if all(v is None for v in row[:width]):
            break
        out.append(dict(zip(header[:width], row[:width], strict=True)))
    return out


def book_values(path: Path) -> dict[str, list[tuple]]:
    """Every cell value of every sheet (formulas as text)."""
    wb = openpyxl.load_workbook(path)
    try:
        return {ws.title: [tuple(c.value for c in row) for row in ws.iter_rows()] for ws in wb.worksheets}
    finally:
        wb.close()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative POSIX path → bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def copy_template_dir(dest: Path, **windows: dict) -> Path:
    """A copy of templates/tsukuba whose year windows have the given keys changed (None drops a key)."""
    shutil.copytree(LAYOUT.directory, dest)
    meta = json.loads((dest / "template.json").read_text(encoding="utf-8"))
    for name, window in windows.items():
        merged = {**meta["windows"][name], **window}
        meta["windows"][name] = {k: v for k, v in merged.items() if v is not None}
    (dest / "template.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return dest
