"""The hidden ``_meta`` sheet: who made the template, for what, and what was locked.

Keys and values sit in columns A and B, one per row, so a reader finds them by
key whatever the order. ``locked_values`` holds every per-project value the
department must not change (history, identity, rates); ``locked_digest`` is its
SHA-256, so an edit of either shows to whoever does not recompute it. ``signature`` is
the evaluation office's HMAC over the identity and the locked values, made with a key
only the office holds (``key_id`` names the key; see signing.py), so a recomputed
digest shows too. Both are empty in a workbook made without a key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .. import jsontext

SHEET = "_meta"

KEYS = (
    "template_id",
    "template_version",
    "fiscal_year",
    "project_no",
    "generated_at",
    "generator",
    "layout_digest",
    "locked_digest",
    "locked_values",
    "constant_cells",
    "key_id",
    "signature",
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def digest(locked_values: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(locked_values).encode("utf-8")).hexdigest()


def layout_digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()[:16]


def parse(rows: dict[str, Any]) -> dict[str, Any]:
    """Typed view of the raw key → text pairs read from ``_meta``."""
    out = dict(rows)
    for key in ("locked_values", "constant_cells"):
        if isinstance(out.get(key), str):
            try:
                out[key] = jsontext.loads(out[key])  # no NaN, no nesting 100,000 deep
            except ValueError:
                out[key] = None  # reported as T215: _meta was edited
    fy = out.get("fiscal_year")
    if isinstance(fy, str) and fy.strip().isdigit() or isinstance(fy, float) and fy.is_integer():
        out["fiscal_year"] = int(fy)
    return out
