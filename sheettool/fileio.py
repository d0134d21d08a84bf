"""Small file helpers: atomic writes and file names that are safe on every OS."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def safe_component(text: str, limit: int = 80) -> str:
    """One path component from untrusted text: no separators, no '..', no reserved names."""
    text = unicodedata.normalize("NFC", str(text))
    text = _UNSAFE.sub("_", text).strip().strip(".")
    if not text or text.upper().split(".")[0] in _RESERVED:
        text = "_" + text
    return text[:limit]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_output(path) as f:
        f.write(data)


@contextmanager
def atomic_output(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file written through a temp file in the same folder, put in place only if the block succeeds."""
    out = TempOutput(Path(path))
    try:
        yield out.file
        out.commit()
    finally:
        out.discard()


_BUFFER = 1 << 20  # of the files written


class TempOutput:
    """A file being written: a temp file next to ``path`` until ``commit`` renames it (os.replace)."""

    def __init__(self, path: Path, *, text: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        self._tmp: Path | None = Path(tmp)
        try:
            self.file: IO[Any] = (  # closed by commit or discard
                open(fd, "w", encoding="utf-8", newline="", buffering=_BUFFER) if text  # noqa: SIM115
                else open(fd, "wb", buffering=_BUFFER))  # noqa: SIM115
        except BaseException:
            os.close(fd)
            self.discard()
            raise

    def commit(self) -> None:
        self.file.close()
        assert self._tmp is not None
        os.chmod(self._tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are shared files
        os.replace(self._tmp, self.path)
        self._tmp = None

    def discard(self) -> None:
        """Close and remove the temp file unless committed (harmless after commit)."""
        if self._tmp is not None:
            if hasattr(self, "file"):
                self.file.close()
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
