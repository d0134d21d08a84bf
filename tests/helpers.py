"""Shared test helpers: the bundled sample data and the default template."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED_RECORDS = ROOT / "data" / "tsukuba_R4_records.json"


def seed_records() -> list[dict]:
    """The six published つくば市 令和4年度 projects (a fresh copy each call)."""
    return copy.deepcopy(json.loads(SEED_RECORDS.read_text(encoding="utf-8")))


def seed_record(project_no: str) -> dict:
    return next(r for r in seed_records() if r["project_no"] == project_no)


def generate_seed_templates(folder: Path) -> Path:
    """The six seed records generated into ``folder/t`` through the CLI; returns that folder."""
    from sheettool.cli import main

    src = folder / "records.json"
    src.write_text(json.dumps(seed_records(), ensure_ascii=False), encoding="utf-8")
    assert main(["generate", str(src), "--out", str(folder / "t")]) == 0
    return folder / "t"


def codes(result: Any) -> list[str]:
    return [f.code for f in result.findings]


# Findings a seed template has from its own published content: 087 lacks the unit of its
# third indicator (R503); some published texts are longer than our boxes (R507).
CONTENT_WARNINGS = {"R503", "R507"}


def tamper_codes(result: Any) -> set[str]:
    """The codes of ``result`` other than those its published content draws (CONTENT_WARNINGS)."""
    return set(codes(result)) - CONTENT_WARNINGS


def only(result: Any, code: str) -> Any:
    """The one finding with ``code`` (fails when there are none or several)."""
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, f"expected one {code}, got {[(f.code, f.cell, f.message) for f in result.findings]}"
    return found[0]


def errors(result: Any) -> list[tuple[str, str | None]]:
    return [(f.code, f.cell) for f in result.findings if f.is_error]


# --------------------------------------------------------------------------- the つくば formulas, as the template defines them

from decimal import Decimal  # noqa: E402

from sheettool import spec  # noqa: E402
from sheettool.spec import formula as fx  # noqa: E402

TSUKUBA = spec.load("tsukuba")
_Y = 2022  # any year: the formulas are the same in every cost column


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def personnel_cost(staff_fte: Any, overtime_hours: Any, salary_per_fte: Any, overtime_per_hour: Any) -> Any:
    """人件費計（千円）by the template's formula (None when neither input is filled)."""
    values = {f"costs.{_Y}.staff_fte": staff_fte, f"costs.{_Y}.overtime_hours": overtime_hours,
              f"rates.{_Y}.salary_per_fte": salary_per_fte, f"rates.{_Y}.overtime_per_hour": overtime_per_hour}
    return _plain(TSUKUBA.bound(f"costs.{_Y}.personnel_cost", _Y).evaluate(fx.Env(values)))


def settlement(general_fund: Any, subsidies_bonds: Any, other: Any) -> Any:
    """決算額（千円）by the template's formula (None when no part of the breakdown is filled)."""
    values = {f"costs.{_Y}.general_fund": general_fund, f"costs.{_Y}.subsidies_bonds": subsidies_bonds,
              f"costs.{_Y}.other": other}
    return _plain(TSUKUBA.bound(f"costs.{_Y}.settlement", _Y).evaluate(fx.Env(values)))


def total_cost(settlement_value: Any, personnel: Any) -> Any:
    """トータルコスト（千円）as the master book computes it (master.json ``derived``)."""
    return TSUKUBA.master_spec.entry_value({"settlement": settlement_value, "personnel_cost": personnel},
                                           "total_cost")


def formula_excel(name: str, cells: dict[str, str], year: int = _Y) -> str:
    """The Excel text of formula ``name`` of a cost column, with each input (by its key) at ``cells[key]``."""
    expr = TSUKUBA.bound(f"costs.{year}.{name}", year)
    return fx.excel_formula(expr, lambda path: cells[path.rsplit(".", 1)[1]])
