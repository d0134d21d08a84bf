"""sheettool: 事務事業マネジメントシートの作成・回収・検証・翌年度繰越。

``sheettool.frames(MASTER_or_store)`` gives the master book's tables as pandas DataFrames
(see sheettool/dataframes.py); pandas is imported only when it is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:
    from .dataframes import Frames, frames

__all__ = ["Frames", "frames", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazily, so that importing sheettool (every command) does not import pandas.
    if name in ("frames", "Frames"):
        from . import dataframes

        return getattr(dataframes, name)
    raise AttributeError(f"module 'sheettool' has no attribute {name!r}")
