"""The golden comparison (tests/golden.py): generate, check, collect and rollforward give what they gave.

A difference is either a regression or a deliberate change; for the latter, run
``python3 tests/golden.py --update TEMPLATE`` and let the diff of tests/golden/ show it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import golden
import pytest

TEMPLATES = sorted(p.name for p in golden.GOLDEN.iterdir() if (p / "inputs.json").is_file())


def first_difference(want: Any, got: Any, where: str = "") -> str | None:
    """Where two JSON values first differ, and how; None when equal."""
    if type(want) is not type(got):
        return f"{where or '/'}: {want!r:.200} != {got!r:.200}"
    if isinstance(want, dict):
        for key in sorted(set(want) | set(got)):
            if key not in got:
                return f"{where}/{key}: missing"
            if key not in want:
                return f"{where}/{key}: unexpected {got[key]!r:.200}"
            found = first_difference(want[key], got[key], f"{where}/{key}")
            if found:
                return found
        return None
    if isinstance(want, list):
        for i, (a, b) in enumerate(zip(want, got, strict=False)):
            found = first_difference(a, b, f"{where}/{i}")
            if found:
                return found
        if len(want) != len(got):
            return f"{where}: {len(want)} items != {len(got)} items"
        return None
    return None if want == got else f"{where or '/'}: {want!r:.300} != {got!r:.300}"


@pytest.mark.parametrize("template", TEMPLATES)
def test_outputs_match_the_golden_record(template: str, tmp_path: Path) -> None:
    results = golden.scenario(template, tmp_path)
    stored = {p.relative_to(golden.GOLDEN / template).as_posix()
              for p in (golden.GOLDEN / template).rglob("*.json")} - {"inputs.json", "rates_next.json"}
    assert set(results) == stored
    problems = []
    for name, got in sorted(results.items()):
        want = json.loads((golden.GOLDEN / template / name).read_text(encoding="utf-8"))
        got = json.loads(json.dumps(got, ensure_ascii=False, sort_keys=True))
        found = first_difference(want, got)
        if found:
            problems.append(f"{name}{found}")
    assert not problems, "\n".join(problems[:20])
