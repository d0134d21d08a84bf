"""Shared test helpers: the bundled sample data and the default template."""

from __future__ import annotations

import copy
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_RECORDS = ROOT / "data" / "tsukuba_R4_records.json"


def seed_records() -> list[dict]:
    """The six published つくば市 令和4年度 projects (a fresh copy each call)."""
    return copy.deepcopy(json.loads(SEED_RECORDS.read_text(encoding="utf-8")))


def seed_record(project_no: str) -> dict:
    return next(r for r in seed_records() if r["project_no"] == project_no)
