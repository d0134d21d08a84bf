"""Where the bundled schemas and templates live, and loading them once.

The repository keeps them at ``templates/<id>/`` and ``schemas/`` (the contract names
those paths), which a source checkout and an editable install read in place. A wheel
carries the same files as the data packages ``sheettool/_templates`` and
``sheettool/_schemas`` (the package-dir mapping in pyproject.toml). ``SHEETTOOL_HOME``,
a folder with ``templates/`` and ``schemas/``, overrides both.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent  # the source checkout, when running from one


def _data_dir(kind: str) -> Path:
    env = os.environ.get("SHEETTOOL_HOME")
    if env:
        return Path(env) / kind
    # The installed copy first: next to an installed package, ROOT is site-packages, where
    # a top-level "templates" folder would belong to some other distribution.
    installed = PACKAGE / f"_{kind}"
    return installed if installed.is_dir() else ROOT / kind


def schemas_dir() -> Path:
    return _data_dir("schemas")


def templates_dir() -> Path:
    return _data_dir("templates")


@cache
def load_json(path: str) -> Any:
    """A bundled JSON file, parsed once per process (callers must not mutate it)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def schema(name: str) -> dict[str, Any]:
    """``schema("record")`` → schemas/record.schema.json."""
    return load_json(str(schemas_dir() / f"{name}.schema.json"))
