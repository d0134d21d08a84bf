"""Rates by fiscal year (CONTRACT §3; 人件費単価 and the like): the fields a template's rates have.

A rates file is JSON keyed by Western fiscal year, each year holding the template's rate
fields in 円, as the template names them in its rates.schema.json.
``Rates.load`` checks it against the template's rates schema; ``merged`` lays a user's
file over the bundled one, so a file with only next year's rates keeps the past years.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import jsontext

if TYPE_CHECKING:
    import jsonschema

    from .template import Template


class RatesError(ValueError):
    """The rates file cannot be used; the message is Japanese."""


Rate = Mapping[str, Any]  # one year's rates by field name (円)


class Rates:
    """Rates by Western fiscal year."""

    def __init__(self, by_year: dict[int, dict[str, Any]], source: str = "", *, latest: bool = False) -> None:
        self.by_year = by_year
        self.source = source
        self.latest = latest  # a year after the last one takes the last one's rates (plan years)

    def get(self, year: int) -> Rate | None:
        found = self.by_year.get(year)
        if found is None and self.latest and self.by_year and year > max(self.by_year):
            found = self.by_year[max(self.by_year)]
        return found

    def value(self, year: int, key: str) -> Any:
        rate = self.get(year)
        return rate.get(key) if rate else None

    def years(self) -> list[int]:
        return sorted(self.by_year)

    def merged(self, other: Rates) -> Rates:
        """These rates with ``other``'s years laid over them (a year of ``other`` replaces one here)."""
        return Rates({**self.by_year, **other.by_year}, other.source or self.source,
                     latest=self.latest or other.latest)

    @classmethod
    def from_json(cls, data: object, template: Template, source: str = "") -> Rates:
        import jsonschema  # here: only a rates file being read needs it

        validator = jsonschema.Draft202012Validator(template.rates_schema)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.absolute_path) or "（全体）"
            raise RatesError(f"単価ファイル {source} の {where} が正しくありません: {_describe(e)}")
        assert isinstance(data, dict)
        by_year = {}
        for year, values in data.items():
            by_year[int(year)] = {k: (int(v) if template.rate_fields[k].kind == "integer" else v)
                                  for k, v in values.items() if k in template.rate_fields}
        return cls(by_year, source, latest=template.rates_future == "latest")

    @classmethod
    def load(cls, path: str | Path, template: Template) -> Rates:
        try:
            with open(path, encoding="utf-8-sig") as f:
                data = jsontext.loads(f.read())
        except FileNotFoundError:
            raise RatesError(f"単価ファイルが見つかりません: {path}") from None
        except json.JSONDecodeError as e:
            raise RatesError(f"単価ファイル {path} の{e.lineno}行目 {e.colno}文字目がJSONとして正しくありません。") from None
        except jsontext.JSONTextError as e:
            raise RatesError(f"単価ファイル {path} がJSONとして正しくありません（{e}）。") from None
        except (OSError, UnicodeDecodeError) as e:
            raise RatesError(f"単価ファイル {path} を読み取れません: {e}") from None
        return cls.from_json(data, template, str(path))

    @classmethod
    def bundled(cls, template: Template) -> Rates:
        """The template's own rates (empty when it has none)."""
        path = template.default_rates_path
        if path is not None and path.is_file():
            return cls.load(path, template)
        return cls({}, "", latest=template.rates_future == "latest")


def _describe(error: jsonschema.ValidationError) -> str:
    v, s = error.validator, error.validator_value
    if v == "required":
        return f"必須の単価がありません（{', '.join(m for m in s if m not in (error.instance or {}))}）。"
    if v == "additionalProperties":
        return "定義されていない項目があります。"
    if v in ("minimum", "maximum"):
        return f"値 {error.instance} が範囲（{'以上' if v == 'minimum' else '以下'} {s}）の外です。"
    if v == "type":
        return f"値「{error.instance}」の型が正しくありません。"
    if v == "propertyNames":
        return f"年度「{error.instance}」は西暦の年度（例: 2024）ではありません。"
    return error.message
