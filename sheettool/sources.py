"""Where records come from: a records file (JSON array, JSON Lines) or a master book from collect."""

from __future__ import annotations

from pathlib import Path

from .collect.master import read_master_rows
from .records import Item, RecordsError, load

__all__ = ["Item", "RecordsError", "load_records"]


def load_records(path: str | Path) -> list[Item]:
    """Every record of ``path``: a master book (.xlsx / .xlsm) or a JSON records file."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        if not path.is_file():
            raise RecordsError(f"入力ファイルが見つかりません: {path}")
        return [Item(f"{i}件目", rec, status=status)
                for i, (status, rec) in enumerate(read_master_rows(path), start=1)]
    return load(path)
