"""Reading RECORDS inputs: a JSON array or JSON Lines (a master book: ``sources.load_records``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import jsontext


class RecordsError(Exception):
    """The records file cannot be read at all (exit code 2); the message is Japanese."""


@dataclass
class Item:
    """One entry of the input: the parsed object, or why it could not be parsed."""

    where: str  # '3件目' / '5行目'
    data: Any = None
    error: str | None = None
    status: str | None = None  # from a master book: its 提出状況 (未提出: the expected record, carried)


def load(path: str | Path) -> list[Item]:
    """Every entry of ``path``; a broken JSON line is one failed item, not a failed file."""
    path = Path(path)
    if not path.is_file():
        raise RecordsError(f"入力ファイルが見つかりません: {path}")
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
            data = jsontext.loads(text)
        except json.JSONDecodeError as e:
            raise RecordsError(f"{path} のJSONが不正です（{e.lineno}行目 {e.colno}文字目）: {e.msg}") from None
        except jsontext.JSONTextError:
            return _entries_one_by_one(path, text)  # one entry should not cost the others
        if not isinstance(data, list):
            raise RecordsError(f"{path} のJSONが不正です: 配列（[ … ]）として終わっていません。")
        return [Item(f"{i}件目", rec) for i, rec in enumerate(data, start=1)]
    items = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(Item(f"{lineno}行目", jsontext.loads(line)))
        except json.JSONDecodeError as e:
            items.append(Item(f"{lineno}行目", error=f"JSONとして読めません（{e.colno}文字目: {e.msg}）"))
        except jsontext.JSONTextError as e:
            items.append(Item(f"{lineno}行目", error=f"JSONとして読めません（{e}）"))
    if len(items) == 1 and items[0].error is None and isinstance(items[0].data, dict):
        return items  # a single object is one record
    if not items:
        raise RecordsError(f"{path} に記録がありません。")
    return items


def _entries_one_by_one(path: Path, text: str) -> list[Item]:
    """The entries of a JSON array, each parsed alone: one too deeply nested is one failed item."""
    items = []
    for i, (piece, problem) in enumerate(_array_entries(text), start=1):
        if problem is not None:
            raise RecordsError(f"{path} のJSONが不正です: {problem}")
        try:
            items.append(Item(f"{i}件目", jsontext.loads(piece)))
        except json.JSONDecodeError as e:
            raise RecordsError(f"{path} のJSONが不正です（{i}件目 {e.colno}文字目）: {e.msg}") from None
        except jsontext.JSONTextError as e:
            items.append(Item(f"{i}件目", error=f"JSONとして読めません（{e}）"))
    return items


_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')


def _array_entries(text: str) -> list[tuple[str, str | None]]:
    """The top-level entries of a JSON array as text, found without recursion.

    Each is (text, None), or ("", why) when the array is broken where the scan reached.
    """
    start = text.index("[") + 1
    depth, begin, out = 0, start, []
    for m in _STRING_OR_BRACKET.finditer(text, start):
        token = m.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            if depth == 0:  # the array's own end
                if text[begin:m.start()].strip():
                    out.append((text[begin:m.start()], None))
                return out
            depth -= 1
        elif token == "," and depth == 0:
            out.append((text[begin:m.start()], None))
            begin = m.end()
    out.append(("", "配列（[ … ]）が閉じていません。"))
    return out


def dump_json(records: list[dict[str, Any]], path: str | Path) -> None:
    """Records as a JSON array (UTF-8, Japanese unescaped), written atomically."""
    from .fileio import atomic_write_text

    atomic_write_text(path, jsontext.dumps(records, ensure_ascii=False, indent=2) + "\n")


def jsonl_line(record: dict[str, Any]) -> bytes:
    """One record as a JSON Lines line (UTF-8, Japanese unescaped), as ``load`` reads it."""
    return (jsontext.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
