"""Where the bundled schemas and templates live, and loading them once."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _home() -> Path:
    env = os.environ.get("SHEETTOOL_HOME")
    return Path(env) if env else ROOT


def schemas_dir() -> Path:
    return _home() / "schemas"


def templates_dir() -> Path:
    return _home() / "templates"


@cache
def load_json(path: str) -> Any:
    """A bundled JSON file, parsed once per process (callers must not mutate it)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def schema(name: str) -> dict[str, Any]:
    """``schema("record")`` → schemas/record.schema.json."""
    return load_json(str(schemas_dir() / f"{name}.schema.json"))
