"""人件費単価 (CONTRACT §3): yearly rates in 円, keyed by fiscal year."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import schema


class RatesError(ValueError):
    """The rates file cannot be used; the message is Japanese."""


@dataclass(frozen=True)
class Rate:
    salary_per_fte: int  # 円 per full-time equivalent per year
    overtime_per_hour: float  # 円 per overtime hour


class Rates:
    """Rates by Western fiscal year."""

    def __init__(self, by_year: dict[int, Rate], source: str = "") -> None:
        self.by_year = by_year
        self.source = source

    def get(self, year: int) -> Rate | None:
        return self.by_year.get(year)

    def years(self) -> list[int]:
        return sorted(self.by_year)

    @classmethod
    def from_json(cls, data: object, source: str = "") -> Rates:
        errors = list(schema.rates_validator().iter_errors(data))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.absolute_path) or "（全体）"
            raise RatesError(f"単価ファイル {source} の {where} が正しくありません: {e.message}")
        assert isinstance(data, dict)
        return cls({int(y): Rate(int(v["salary_per_fte"]), v["overtime_per_hour"]) for y, v in data.items()},
                   source)

    @classmethod
    def load(cls, path: str | Path) -> Rates:
        try:
            with open(path, encoding="utf-8-sig") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise RatesError(f"単価ファイルが見つかりません: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RatesError(f"単価ファイル {path} を読み取れません（JSONとして不正）: {e}") from None
        return cls.from_json(data, str(path))
