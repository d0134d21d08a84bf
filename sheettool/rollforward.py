"""``sheettool rollforward``: next fiscal year's records from this year's.

What is carried, what is reset, and why:

- Costs: the window moves one year. The two past years keep what was reported
  (決算額 and 人件費計 included, never recomputed with new rates); the template
  locks them as history. The new current year and the year after start from
  last year's plan for them (予算額, 正職員従事割合, 時間外勤務, 会計年度任用職員)
  as editable inputs; their 決算額 breakdown starts empty. The new far year is blank.
- Indicators: name, unit, kind and description carried; values kept for the
  years still in the window (past actuals become locked history), targets
  carried, actuals from the new fiscal year on blank.
- Results: last year's 改善目標 and 課題 become ``previous`` (a locked
  reference beside 前年度の課題への対応); 成果, 課題, 改善目標, the evaluation
  scores, 方向性 and its 理由 start empty: they are this year's judgement.
- Basic information, 対象・目的・概要 and 市民参加 are carried as editable
  starting points; 新規・継続 becomes 継続.
- Projects whose 方向性 was 休止・廃止 or 完了 are left out unless keep_all.
- A mapping file renames 部 / 課 / 係 after a reorganisation and renumbers
  projects; new projects are added from a records file.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout as layout_mod
from . import schema
from .records import RecordsError, canonical

ENDED = ("休止・廃止", "完了")
_PLAN_KEYS = ("budget", "staff_fte", "overtime_hours", "part_time_staff")


@dataclass
class RollSummary:
    rolled: list[dict[str, Any]] = field(default_factory=list)
    left_out: list[tuple[str, str, str]] = field(default_factory=list)  # (no, name, direction)
    added: list[str] = field(default_factory=list)
    remapped: list[tuple[str, str]] = field(default_factory=list)  # (before, after)
    problems: list[str] = field(default_factory=list)


class MappingError(ValueError):
    """The mapping file cannot be used; the message is Japanese."""


@dataclass
class Mapping:
    """Renames after a reorganisation: organisations (部/課/係) and project numbers."""

    organizations: list[tuple[dict[str, str], dict[str, str]]] = field(default_factory=list)
    projects: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> Mapping:
        """JSON: {"organizations": [{"from": {...}, "to": {...}}], "projects": [{"from": "088", "to": "101"}]}.

        ``from`` / ``to`` hold department, and optionally division and section.
        The most specific matching rule wins.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise MappingError(f"対応表ファイルが見つかりません: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise MappingError(f"対応表ファイル {path} を読み取れません: {e}") from None
        if not isinstance(data, dict):
            raise MappingError(f"対応表ファイル {path} はJSONオブジェクトではありません。")
        mapping = cls()
        for i, rule in enumerate(data.get("organizations") or [], start=1):
            if not (isinstance(rule, dict) and isinstance(rule.get("from"), dict)
                    and isinstance(rule.get("to"), dict) and rule["from"].get("department")):
                raise MappingError(f"対応表 organizations の{i}件目に from.department と to がありません。")
            mapping.organizations.append((rule["from"], rule["to"]))
        mapping.organizations.sort(key=lambda r: -len(r[0]))
        for i, rule in enumerate(data.get("projects") or [], start=1):
            if not (isinstance(rule, dict) and rule.get("from") and rule.get("to")):
                raise MappingError(f"対応表 projects の{i}件目に from と to がありません。")
            mapping.projects[str(rule["from"])] = {k: str(v) for k, v in rule.items() if k != "from"}
        return mapping

    def apply(self, record: dict[str, Any]) -> bool:
        """Rename ``record`` in place; True when anything changed."""
        before = _identity(record)
        for source, target in self.organizations:
            if all(record.get(k) == v for k, v in source.items()):
                for key in ("department", "division", "section"):
                    if key in target:
                        record[key] = target[key]
                break
        rule = self.projects.get(str(record.get("project_no")))
        if rule:
            record["project_no"] = rule["to"]
            if rule.get("project_name"):
                record["project_name"] = rule["project_name"]
        return before != _identity(record)


def _identity(record: dict[str, Any]) -> tuple:
    return tuple(record.get(k) for k in ("department", "division", "section", "project_no", "project_name"))


def roll_record(record: dict[str, Any], template: str = layout_mod.DEFAULT_TEMPLATE) -> dict[str, Any]:
    """The record for ``fiscal_year + 1``, carried and reset as the module docstring says."""
    old = canonical(copy.deepcopy(record))
    fy = old["fiscal_year"] + 1
    lay = layout_mod.load(template)
    new = copy.deepcopy(old)
    new["fiscal_year"] = fy
    new["status"] = "継続"
    new["costs"] = _roll_costs(old["costs"], lay.windows["costs"].years(fy), fy)
    new["indicators"] = _roll_indicators(old["indicators"], lay.windows["indicators"].years(fy), fy)
    results = old.get("results") or {}
    new["previous"] = {
        "improvement_goal": results.get("improvement_goal"),
        "issues_operations": results.get("issues_operations"),
        "issues_organization": results.get("issues_organization"),
    }
    new["results"] = {key: None for key in results}
    new["evaluation"] = {key: None for key in old.get("evaluation") or {}}
    new["direction"] = None
    new["direction_reason"] = None
    return canonical(new)


def _roll_costs(costs: list[dict[str, Any]], years: list[int], fy: int) -> list[dict[str, Any]]:
    by_year = {c["year"]: c for c in costs}
    out = []
    for year in years:
        old = by_year.get(year)
        if old is None:
            continue
        if year < fy:
            out.append(dict(old))  # history, exactly as reported
        else:
            plan = {k: old.get(k) for k in _PLAN_KEYS}
            out.append({"year": year, **plan})
    return out


def _roll_indicators(indicators: list[dict[str, Any]], years: list[int], fy: int) -> list[dict[str, Any]]:
    out = []
    for ind in indicators:
        values = []
        for v in ind.get("values") or []:
            if v["year"] not in years:
                continue
            actual = v.get("actual") if v["year"] < fy else None
            values.append({"year": v["year"], "target": v.get("target"), "actual": actual})
        out.append({**ind, "values": values})
    return out


def rollforward(records: list[dict[str, Any]], *, template: str = layout_mod.DEFAULT_TEMPLATE,
                mapping: Mapping | None = None, keep_all: bool = False,
                additions: list[dict[str, Any]] | None = None) -> RollSummary:
    """Roll every record; leave out ended projects; remap; add new projects."""
    summary = RollSummary()
    for record in records:
        problems = schema.validate_record(record)
        if problems:
            p = problems[0]
            summary.problems.append(f"事業番号 {record.get('project_no')}: {p.label}{p.problem}")
            continue
        if record.get("direction") in ENDED and not keep_all:
            summary.left_out.append((record["project_no"], record["project_name"], record["direction"]))
            continue
        rolled = roll_record(record, template)
        if mapping is not None:
            before = f"{rolled['project_no']} {rolled['department']}{rolled['division']}"
            if mapping.apply(rolled):
                summary.remapped.append((before, f"{rolled['project_no']} {rolled['department']}{rolled['division']}"))
        summary.rolled.append(rolled)
    fiscal_years = {r["fiscal_year"] for r in summary.rolled}
    for record in additions or []:
        problems = schema.validate_record(record)
        if problems:
            p = problems[0]
            summary.problems.append(f"追加の事業 {record.get('project_no')}: {p.label}{p.problem}")
            continue
        if fiscal_years and record.get("fiscal_year") not in fiscal_years:
            summary.problems.append(
                f"追加の事業 {record.get('project_no')} の評価年度 {record.get('fiscal_year')} が"
                f"繰越先の年度（{'・'.join(map(str, sorted(fiscal_years)))}）と異なります。")
            continue
        summary.added.append(str(record.get("project_no")))
        summary.rolled.append(canonical(record))
    duplicates = sorted(n for n, count in Counter(r["project_no"] for r in summary.rolled).items() if count > 1)
    if duplicates:
        raise RecordsError(f"繰越後の事業番号が重複しています: {', '.join(duplicates)}。対応表や追加する記録を確認してください。")
    return summary
