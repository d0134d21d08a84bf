"""Reading RECORDS inputs: a JSON array, JSON Lines, or a master book (.xlsx) from collect."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class RecordsError(Exception):
    """The records file cannot be read at all (exit code 2); the message is Japanese."""


@dataclass
class Item:
    """One entry of the input: the parsed object, or why it could not be parsed."""

    where: str  # '3件目' / '5行目'
    data: Any = None
    error: str | None = None


def load(path: str | Path) -> list[Item]:
    """Every entry of ``path``; a broken JSON line is one failed item, not a failed file."""
    path = Path(path)
    if not path.is_file():
        raise RecordsError(f"入力ファイルが見つかりません: {path}")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from .masterbook import read_master_records

        return [Item(f"{i}件目", rec) for i, rec in enumerate(read_master_records(path), start=1)]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise RecordsError(f"{path} はUTF-8のテキストではありません。JSON（UTF-8）で保存してください。") from None
    except OSError as e:
        raise RecordsError(f"{path} を読み取れません: {e.strerror}") from None
    stripped = text.lstrip()
    if not stripped:
        raise RecordsError(f"{path} は空です。")
    if stripped[0] == "[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise RecordsError(f"{path} のJSONが不正です（{e.lineno}行目 {e.colno}文字目）: {e.msg}") from None
        return [Item(f"{i}件目", rec) for i, rec in enumerate(data, start=1)]
    items = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(Item(f"{lineno}行目", json.loads(line)))
        except json.JSONDecodeError as e:
            items.append(Item(f"{lineno}行目", error=f"JSONとして読めません（{e.colno}文字目: {e.msg}）"))
    if len(items) == 1 and items[0].error is None and isinstance(items[0].data, dict):
        return items  # a single object is one record
    if not items:
        raise RecordsError(f"{path} に記録がありません。")
    return items


def dump_json(records: list[dict[str, Any]], path: str | Path) -> None:
    """Records as a JSON array (UTF-8, Japanese unescaped), written atomically."""
    from .fileio import atomic_write_text

    atomic_write_text(path, json.dumps(records, ensure_ascii=False, indent=2) + "\n")


def jsonl_line(record: dict[str, Any]) -> bytes:
    """One record as a JSON Lines line (UTF-8, Japanese unescaped), as ``load`` reads it."""
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


_POSITIONAL = ("sdgs", "mayor_pledge", "strategy_plan")
_GROUPS = ("participation", "results", "evaluation")


def canonical(record: dict[str, Any]) -> dict[str, Any]:
    """One spelling of a record: every schema key present, in schema order.

    Lists are sorted by year / number, entries with nothing in them dropped,
    positional lists compacted (None when empty), nameless indicators dropped
    (a rule reports them), and ``previous`` kept only when it holds something.
    """
    from .resources import schema

    props = schema("record")["properties"]
    out: dict[str, Any] = {}
    for key, prop in props.items():
        value = record.get(key)
        if key == "costs":
            keys = list(prop["items"]["properties"])
            rows = [{k: c.get(k) for k in keys} for c in value or [] if isinstance(c, dict)]
            out[key] = sorted((r for r in rows if any(r[k] is not None for k in keys[1:])),
                              key=lambda r: r["year"])
        elif key == "indicators":
            out[key] = _indicators(value or [], prop["items"]["properties"])
        elif key in _POSITIONAL:
            items = [v for v in value or [] if v is not None and v != {}]
            out[key] = items or None
        elif key in _GROUPS:
            out[key] = {k: (value or {}).get(k) for k in prop["properties"]}
        elif key == "previous":
            group = {k: (value or {}).get(k) for k in prop["properties"]}
            if any(v is not None for v in group.values()):
                out[key] = group
        else:
            out[key] = value
    return out


def _indicators(items: list[dict[str, Any]], props: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for ind in items:
        if not isinstance(ind, dict) or not ind.get("name"):
            continue
        row = {k: ind.get(k) for k in props if k != "values"}
        values = [{"year": v.get("year"), "target": v.get("target"), "actual": v.get("actual")}
                  for v in ind.get("values") or [] if isinstance(v, dict)]
        row["values"] = sorted((v for v in values if v["target"] is not None or v["actual"] is not None),
                               key=lambda v: v["year"])
        out.append(row)
    return sorted(out, key=lambda r: r["no"])
