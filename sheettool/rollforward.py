"""``sheettool rollforward``: next fiscal year's records from this year's, by the template's rules.

What is carried, reset and moved is the template's (rollforward.json):

- ``exclude_if``: a condition over the record; such projects are left out (their
  ``exclude_shows`` field is named in the summary) unless keep_all.
- ``set``: fields given a fixed value (新規・継続 becomes 継続).
- ``move``: a field's value goes to another field (this year's 改善目標 becomes next
  year's 前年度の改善目標（参考）, a locked reference); the target is replaced whole.
- ``reset``: fields (or whole groups) emptied: this year's judgement.
- ``shift``: for each year series, which fields an entry keeps when the window moves a
  year, by the meaning of its column before and after (決算 → 決算 keeps everything: past
  years stay as reported, never recomputed with new rates; 予算 → 決算 keeps the plan).
  An entry whose change of meaning is not listed keeps nothing; years that leave the
  window are dropped.
- Everything else is carried as an editable starting value.

A mapping file renames 部 / 課 / 係 after a reorganisation and renumbers projects; new
projects are added from a records file.

No project is lost without a word: from a master book, a project whose return did not
count (未提出, 読取不可, 受付不可) comes with the record it was expected with, and is carried
from that one; the summary lists each (``from_expected``).
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import jsontext
from .check.result import MISSING, NEVER_CURRENT
from .records import RecordsError
from .spec import DEFAULT_TEMPLATE, Template, load
from .spec import formula as fx
from .spec.fields import Field

NOT_COUNTED = (MISSING, *NEVER_CURRENT)  # a master book's projects stored with their expected record
# (collect/master CARRIED: the same statuses; not imported, the master book imports more than we need)


@dataclass
class RollSummary:
    rolled: list[dict[str, Any]] = field(default_factory=list)
    left_out: list[tuple[str, str, str]] = field(default_factory=list)  # (no, name, direction)
    added: list[str] = field(default_factory=list)
    remapped: list[tuple[str, str]] = field(default_factory=list)  # (before, after)
    problems: list[str] = field(default_factory=list)
    # carried from the record it was expected with, no return counting: (no, name, 提出状況)
    from_expected: list[tuple[str, str, str]] = field(default_factory=list)


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
            data = jsontext.loads(Path(path).read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise MappingError(f"対応表ファイルが見つかりません: {path}") from None
        except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError, JSONTextError
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


def roll_record(record: dict[str, Any], tpl: Template | str | None = None) -> dict[str, Any]:
    """The record for ``fiscal_year + 1``, carried, reset and moved by the template's rules."""
    tpl = _template(record, tpl)
    rules = tpl.roll
    old = tpl.canonical(copy.deepcopy(record))
    fy = old["fiscal_year"] + 1
    new = copy.deepcopy(old)
    new["fiscal_year"] = fy
    for path, value in (rules.get("set") or {}).items():
        tpl.set_(new, path, value)
    moved: dict[str, dict[str, Any]] = {}
    for source, target in (rules.get("move") or {}).items():
        group, _, leaf = target.rpartition(".")
        if group:
            moved.setdefault(group, {})[leaf] = tpl.get(old, source)
        else:
            new[target] = tpl.get(old, source)
    for group, values in moved.items():
        tpl.set_(new, group, {k: values.get(k) for k in tpl.tree.fields[group].fields})
    for path in rules.get("reset") or []:
        _reset(tpl, new, path)
    for path, transitions in (rules.get("shift") or {}).items():
        _shift(tpl, new, old, path, transitions, fy)
    return tpl.canonical(new)


def _template(record: dict[str, Any], tpl: Template | str | None) -> Template:
    if isinstance(tpl, Template):
        return tpl
    return load(tpl or record.get("template") or DEFAULT_TEMPLATE)


def _reset(tpl: Template, record: dict[str, Any], path: str) -> None:
    f = tpl.field(path)
    if f is not None and f.kind == "group":
        current = tpl.get(record, path)
        tpl.set_(record, path, {k: None for k in (current or {})} if isinstance(current, dict) else None)
    else:
        tpl.set_(record, path, None)


def _shift(tpl: Template, new: dict[str, Any], old: dict[str, Any], path: str,
           transitions: list[dict[str, Any]], fy: int) -> None:
    """Move the year entries of series ``path`` (``costs``, or ``indicators.values`` in every item)."""
    head, _, tail = path.partition(".")
    f = tpl.tree.fields[head]
    if f.kind == "series":
        sources = {name: (tpl.tree.fields[name], old.get(name) or [])
                   for name in {head, *(t["series"] for t in transitions if t.get("series"))}}
        new[head] = _shift_entries(tpl, f, head, sources, transitions, fy)
        return
    series = f.fields[tail]
    for item in new.get(head) or []:
        new_entries = _shift_entries(tpl, series, tail, {tail: (series, item.get(tail) or [])}, transitions, fy)
        item[tail] = new_entries


def _shift_entries(tpl: Template, series: Field, name: str, sources: dict[str, tuple[Field, list]],
                   transitions: list[dict[str, Any]], fy: int) -> list[dict[str, Any]]:
    """The entries of ``series`` for the new year ``fy``, each from the old entry of the same year
    (in the series a transition names, 年度別計画 → 予算 say) whose change of meaning is listed."""
    window = tpl.windows[series.window]
    out = []
    for year in window.years(fy):
        after = window.meaning(year, fy)
        for t in transitions:
            source, entries = sources[t.get("series", name)]
            entry = next((e for e in entries if isinstance(e, dict) and e.get("year") == year), None)
            before = tpl.windows[source.window].meaning(year, fy - 1)
            if entry is None or t["from"] != before or t["to"] != after:
                continue
            if t["keep"] == "all":
                out.append(dict(entry))  # history, exactly as reported
            else:
                out.append({"year": year, **{k: entry.get(k) for k in t["keep"]}})
            break
    return out


def excluded(tpl: Template, record: dict[str, Any]) -> bool:
    """The template's ``exclude_if`` holds for ``record`` (an ended project)."""
    text = tpl.roll.get("exclude_if")
    if not text:
        return False
    expr = tpl.condition(text)
    result = expr.evaluate(fx.Env({p: tpl.get(record, p) for p in expr.refs()}, tpl.tables))
    return result is True


def rollforward(records: list[dict[str, Any]], *, template: str | Path | None = None,
                mapping: Mapping | None = None, keep_all: bool = False,
                additions: list[dict[str, Any]] | None = None,
                statuses: list[str | None] | None = None) -> RollSummary:
    """Roll every record; leave out ended projects; remap; add new projects.

    ``template`` overrides the template each record names (none: the default). ``statuses``
    (one per record, from a master book) names the records that are the expected record of
    a project whose return did not count: they are rolled all the same and listed in
    ``from_expected``.
    """
    summary = RollSummary()
    statuses = statuses or [None] * len(records)
    for record, status in zip(records, statuses, strict=True):
        tpl = _template(record, str(template) if template else None)
        problems = tpl.validator.problems(record)
        if problems:
            p = problems[0]
            summary.problems.append(f"事業番号 {record.get('project_no')}: {p.label}{p.problem}")
            continue
        if not keep_all and excluded(tpl, record):
            shows = tpl.roll.get("exclude_shows")
            summary.left_out.append((record["project_no"], record["project_name"],
                                     f"{tpl.label(shows)}: {tpl.get(record, shows)}" if shows else ""))
            continue
        rolled = roll_record(record, tpl)
        if status in NOT_COUNTED:
            summary.from_expected.append((str(record["project_no"]), str(record.get("project_name") or ""), status))
        if mapping is not None:
            before = _where(rolled)
            if mapping.apply(rolled):
                summary.remapped.append((before, _where(rolled)))
        summary.rolled.append(rolled)
    fiscal_years = {r["fiscal_year"] for r in summary.rolled}
    for record in additions or []:
        tpl = _template(record, str(template) if template else None)
        problems = tpl.validator.problems(record)
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
        summary.rolled.append(tpl.canonical(record))
    duplicates = sorted(n for n, count in Counter((r.get("template"), r["project_no"]) for r in summary.rolled).items()
                        if count > 1)
    if duplicates:
        names = ", ".join(no for _, no in duplicates)
        raise RecordsError(f"繰越後の事業番号が重複しています: {names}。対応表や追加する記録を確認してください。")
    return summary


def _where(record: dict[str, Any]) -> str:
    return f"{record['project_no']} {record.get('department') or ''}{record['division']}"
