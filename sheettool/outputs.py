"""Where a command may write: never onto, or into, what it reads; never into a store.

Every command names its inputs and outputs as ``Place``s and calls ``guard`` before it
writes anything. A conflict is refused with one Japanese message (``OutputConflict``,
exit code 2 on the command line):

- O901: an output is an input: the same path after resolving symbolic links, or the
  same file under another name (a hard link: same device and inode).
- O902: an output lies inside an input folder (a collect inbox).
- O903: an output lies inside a store (a folder holding ``ledger.sqlite3``) that is not
  the command's own store, or one of collect's other outputs lies inside its store.
- O904: collect's inbox and store overlap.
- O905: two outputs are the same file.
- O906: an input lies in a folder an output fills, under a name it writes there (the CSV
  folder's 一覧_2022.csv given as ``--expected``).

``same_file`` answers the per-file question (generate asks it for every workbook it is
about to write).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import findings
from .findings import Finding

STORE_MARK = "ledger.sqlite3"  # collect/ledger.py DB_NAME: what makes a folder a store


class OutputConflict(Exception):
    """An output would overwrite or land inside an input or a store; ``finding`` says which."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@dataclass(frozen=True)
class Place:
    """A path a command reads or writes, with its Japanese name for messages ("マスターブック（--out）").

    ``folder``: the command reads everything under it (an inbox) or writes files into it.
    ``names``: for an output folder, the names of the files it writes there (a regular
    expression); an input inside it with such a name would be replaced.
    """

    path: Path
    what: str
    folder: bool = False
    names: re.Pattern[str] | None = None


def guard(outputs: Sequence[Place], inputs: Sequence[Place], *, store: Place | None = None) -> None:
    """Raise OutputConflict unless every output keeps off every input and every store.

    ``store`` is the command's own store (collect's ``--store``): an output itself, but the
    other outputs must not lie inside it, and it must not overlap an input folder.
    """
    outs = [p for p in outputs if p is not None]
    ins = [p for p in inputs if p is not None]
    for out in outs:
        for inp in ins:
            _against_input(out, inp)
        _not_in_a_store(out, store)
    for i, a in enumerate(outs):
        for b in outs[i + 1:]:
            if not (a.folder or b.folder) and same_file(a.path, b.path):
                _refuse("O905", a, b)
    if store is not None:
        for inp in ins:
            if inp.folder and (inside(store.path, inp.path) or inside(inp.path, store.path)):
                _refuse("O904", store, inp)


def _against_input(out: Place, inp: Place) -> None:
    if same_file(out.path, inp.path):
        _refuse("O901", out, inp)
    if inp.folder and inside(out.path, inp.path):
        _refuse("O902", out, inp)
    if out.folder and out.names is not None and not inp.folder and inside(inp.path, out.path) \
            and out.names.fullmatch(Path(inp.path).name):
        _refuse("O906", out, inp)


def _not_in_a_store(out: Place, store: Place | None) -> None:
    own = store is not None and same_file(out.path, store.path)
    if own:
        return
    found = store_around(out.path)
    if found is not None and (store is None or not same_file(found, store.path)):
        _refuse("O903", out, Place(found, "台帳フォルダ"))
    if store is not None and inside(out.path, store.path):
        _refuse("O903", out, store)


def _refuse(code: str, a: Place, b: Place) -> None:
    raise OutputConflict(findings.make(code, output=a.what, output_path=str(a.path),
                                       other=b.what, other_path=str(b.path)))


def _resolved(path: str | os.PathLike[str]) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare the path as written
        return Path(os.path.abspath(path))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """The same path once symbolic links are resolved, or one file under two names (hard link)."""
    if _resolved(a) == _resolved(b):
        return True
    ida, idb = _identity(Path(a)), _identity(Path(b))
    return ida is not None and ida == idb


def inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """``path`` is ``folder`` or lies below it (resolved; an existing ancestor may be the same
    folder under another name, e.g. a bind mount or a symbolic link)."""
    target = _identity(Path(folder))
    resolved_folder = _resolved(folder)
    for ancestor in _ancestors(_resolved(path)):
        if ancestor == resolved_folder or (target is not None and _identity(ancestor) == target):
            return True
    return False


def _ancestors(path: Path) -> Iterable[Path]:
    yield path
    yield from path.parents


def store_around(path: str | os.PathLike[str]) -> Path | None:
    """The store (a folder with ``ledger.sqlite3``) that ``path`` is, or lies inside; None if none."""
    for ancestor in _ancestors(_resolved(path)):
        try:
            if (ancestor / STORE_MARK).is_file():
                return ancestor
        except OSError:
            continue
    return None


def file_ids(paths: Iterable[str | os.PathLike[str] | None]) -> frozenset[tuple[int, int]]:
    """(device, inode) of each existing file among ``paths``: what ``is_input`` compares with."""
    ids = (_identity(Path(p)) for p in paths if p is not None)
    return frozenset(i for i in ids if i is not None)


def is_input(path: str | os.PathLike[str], ids: frozenset[tuple[int, int]]) -> bool:
    """``path`` exists and is one of the files ``ids`` names (by device and inode)."""
    found = _identity(Path(path))
    return found is not None and found in ids
