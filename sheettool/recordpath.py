"""Field paths: "costs.2022.budget" ↔ a value inside a record.

A path is the JSON path of CONTRACT §2 with list entries keyed by year
(costs, indicator values), by indicator number (indicators) or by 1-based
position (sdgs, mayor_pledge, strategy_plan). The defined name of a field is
``f_`` + the path with dots replaced by underscores.
"""

from __future__ import annotations

from typing import Any

YEAR_KEYED = {"costs": "year"}
NUMBER_KEYED = {"indicators": "no"}
POSITIONAL = {"sdgs", "mayor_pledge", "strategy_plan"}


def defined_name(path: str) -> str:
    return "f_" + path.replace(".", "_")


def split(path: str) -> list[str]:
    return path.split(".")


def _find(items: list[dict], key: str, value: int) -> dict | None:
    for item in items:
        if isinstance(item, dict) and item.get(key) == value:
            return item
    return None


def get(record: dict[str, Any], path: str) -> Any:
    """The value at ``path``, or None when any step is missing."""
    node: Any = record
    parts = split(path)
    i = 0
    while i < len(parts):
        part = parts[i]
        if node is None:
            return None
        if part in YEAR_KEYED and i + 1 < len(parts):
            node = _find(node.get(part) or [], YEAR_KEYED[part], int(parts[i + 1]))
            i += 2
        elif part in NUMBER_KEYED and i + 1 < len(parts):
            node = _find(node.get(part) or [], NUMBER_KEYED[part], int(parts[i + 1]))
            i += 2
            if node is not None and i < len(parts) and parts[i].isdigit():
                node = _find(node.get("values") or [], "year", int(parts[i]))
                i += 1
        elif part in POSITIONAL and i + 1 < len(parts):
            items = node.get(part) or []
            pos = int(parts[i + 1]) - 1
            node = items[pos] if 0 <= pos < len(items) else None
            i += 2
        else:
            node = node.get(part) if isinstance(node, dict) else None
            i += 1
    return node


def set_(record: dict[str, Any], path: str, value: Any) -> None:
    """Put ``value`` at ``path``, creating list entries and objects as needed.

    Positional lists are padded with None; callers compact them afterwards.
    """
    parts = split(path)
    node: dict[str, Any] = record
    i = 0
    while i < len(parts) - 1:
        part = parts[i]
        if part in YEAR_KEYED:
            node = _entry(node.setdefault(part, []), "year", int(parts[i + 1]))
            i += 2
        elif part in NUMBER_KEYED:
            node = _entry(node.setdefault(part, []), "no", int(parts[i + 1]))
            i += 2
            if i < len(parts) - 1 and parts[i].isdigit():
                node = _entry(node.setdefault("values", []), "year", int(parts[i]))
                i += 1
        elif part in POSITIONAL:
            items = node.setdefault(part, [])
            pos = int(parts[i + 1]) - 1
            while len(items) <= pos:
                items.append(None)
            if i + 2 == len(parts):
                items[pos] = value
                return
            if items[pos] is None:
                items[pos] = {}
            node = items[pos]
            i += 2
        else:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
            i += 1
    if i < len(parts):
        node[parts[i]] = value


def _entry(items: list[dict], key: str, value: int) -> dict:
    found = _find(items, key, value)
    if found is None:
        found = {key: value}
        items.append(found)
    return found
