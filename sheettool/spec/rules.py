"""The rules of a template (rules.json): generic rule kinds with parameters.

Each kind has one stable message code; a rule may word its message in the template's
own terms (``message``, ``remedy``). Conditions are text in the formula language over
field paths, so one definition gives the Python check (check/rules.py) and, where a
spreadsheet can express it, the live formula.

| kind | code | parameters |
| --- | --- | --- |
| required | R501 | ``fields``: paths (``{fiscal_year}`` filled) that must be filled |
| formula_holds | R502 | ``formula``: a formula whose cells kept as reported values should still hold |
| complete_repeat | R503/R504 | ``repeat``, ``key``: an item with a key needs ``needs``; values need a key |
| allowed_if | R505 | ``fields``, ``value``, ``when``: the value only where the condition holds |
| required_if | R506 | ``field``, ``when``: filled where the condition holds |
| fits_box | R507 | (none): text fits its printed box |
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

CODES = {"required": "R501", "formula_holds": "R502", "complete_repeat": "R503", "allowed_if": "R505",
         "required_if": "R506", "fits_box": "R507"}
ORPHAN_CODE = "R504"


@dataclass(frozen=True)
class Need:
    field: str  # below the repeat item: "unit", "{fiscal_year}.target"
    what: str  # how the message names it: "単位", "{fiscal_label}の目標値"


@dataclass(frozen=True)
class Rule:
    kind: str
    title: str
    where: str  # JSON pointer in rules.json
    fields: tuple[str, ...] = ()
    when: str | None = None
    value: Any = None
    repeat: str | None = None
    key: str | None = None
    needs: tuple[Need, ...] = ()
    formula: str | None = None
    message: str | None = None
    remedy: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return CODES[self.kind]


def parse_rules(data: dict[str, Any]) -> list[Rule]:
    out = []
    for i, r in enumerate(data.get("rules") or []):
        where = f"/rules/{i}"
        kind = r.get("kind")
        if kind not in CODES:
            raise ValueError(f"rules.json {where}/kind: 「{kind}」は規則の種類にありません"
                             f"（{', '.join(CODES)}）")
        fields = tuple(r.get("fields") or ([r["field"]] if "field" in r else []))
        needs = tuple(Need(n["field"], n.get("what", n["field"])) for n in r.get("needs") or [])
        known = {"kind", "title", "fields", "field", "when", "value", "repeat", "key", "needs", "formula",
                 "message", "remedy"}
        out.append(Rule(kind, r.get("title", kind), where, fields, r.get("when"), r.get("value"),
                        r.get("repeat"), r.get("key"), needs, r.get("formula"), r.get("message"),
                        r.get("remedy"), {k: v for k, v in r.items() if k not in known}))
    return out


def years(path: str, fiscal_year: int) -> str:
    """``{fiscal_year}``, ``{fiscal_year+1}``, ``{fiscal_year-1}`` … of a rule's path filled in."""
    return re.sub(r"\{fiscal_year([+-]\d+)?\}", lambda m: str(fiscal_year + int(m.group(1) or 0)), path)
