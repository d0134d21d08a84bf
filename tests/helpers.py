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
