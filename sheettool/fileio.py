"""Small file helpers: atomic writes and file names that are safe on every OS."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


NAME_MAX = 255  # bytes of one file name on ext4, XFS, APFS, NTFS (UTF-16 units there: fewer)
_DIGEST = 8  # hex digits of the full text's hash that keep a shortened name unique


def safe_component(text: str, limit: int = 80, max_bytes: int = 200) -> str:
    """One path component from untrusted text: no separators, no '..', no reserved names.

    At most ``limit`` characters and ``max_bytes`` bytes of UTF-8. A name that had to be
    shortened ends in "~" and a digest of the whole text, so two long names that differ only
    after the cut stay two names.
    """
    text = unicodedata.normalize("NFC", str(text))
    text = _UNSAFE.sub("_", text).strip().strip(".")
    if not text or text.upper().split(".")[0] in _RESERVED:
        text = "_" + text
    if len(text) <= limit and len(text.encode("utf-8")) <= max_bytes:
        return text
    tag = "~" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:_DIGEST]
    room = max_bytes - len(tag)
    head = text[: max(limit - len(tag), 1)]
    while len(head.encode("utf-8")) > room:
        head = head[:-1]
    return head.rstrip(" .") + tag


class OutputError(Exception):
    """An output could not be written (disk full, read-only folder, name too long); Japanese message."""

    def __init__(self, what: str, exc: OSError, *, then: str = "") -> None:
        super().__init__(f"{what}を書き出せません（{describe_os_error(exc, name=False)}）。"
                         f"{then}出力先の空き容量と書き込み権限を確認してください。")


def describe_os_error(exc: OSError, *, name: bool = True) -> str:
    """What went wrong with a file, in Japanese (naming the file, if ``name`` and it is known)."""
    reason = _OS_REASONS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    shown = exc.filename if name and exc.filename is not None else ""
    return f"{shown}: {reason}" if shown else reason


_OS_REASONS = {
    errno.ENOSPC: "ディスクの空き容量が足りません",
    errno.EDQUOT: "ディスクの使用量の上限（クォータ）を超えています",
    errno.EACCES: "書き込み（または読み取り）の権限がありません",
    errno.EPERM: "この操作は許可されていません",
    errno.EROFS: "読み取り専用の場所です",
    errno.ENAMETOOLONG: "ファイル名が長すぎます",
    errno.ENOENT: "見つかりません",
    errno.ENOTDIR: "フォルダではありません",
    errno.EISDIR: "フォルダです（ファイルではありません）",
    errno.EEXIST: "同じ名前のファイルがすでにあります",
    errno.EIO: "装置の入出力エラーです",
}


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = True) -> None:
    """``data`` put in place at ``path`` in one step; with ``overwrite`` false an existing
    file stays as it is and FileExistsError is raised."""
    with atomic_output(path, overwrite=overwrite) as f:
        f.write(data)


@contextmanager
def atomic_output(path: str | Path, *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """A binary file written through a temp file in the same folder, put in place only if the block succeeds."""
    out = TempOutput(Path(path))
    try:
        yield out.file
        out.commit(overwrite=overwrite)
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

    def commit(self, *, overwrite: bool = True) -> None:
        """Put the file in place; without ``overwrite``, FileExistsError if ``path`` exists."""
        self.file.close()
        assert self._tmp is not None
        os.chmod(self._tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are shared files
        if overwrite:
            os.replace(self._tmp, self.path)
        else:
            _place_new(self._tmp, self.path)
        self._tmp = None

    def discard(self) -> None:
        """Close and remove the temp file unless committed (harmless after commit).

        Closing flushes what is buffered, which fails on a full disk: the file goes all the same.
        """
        if self._tmp is not None:
            try:
                if hasattr(self, "file"):
                    with suppress(OSError):
                        self.file.close()
            finally:
                self._tmp.unlink(missing_ok=True)
                self._tmp = None


def _place_new(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path`` unless ``path`` exists, in one step where the file system can.

    A hard link fails with EEXIST instead of replacing, so a file that appears meanwhile is
    never overwritten; file systems without hard links get a check, then a rename.
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, some network shares)
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
