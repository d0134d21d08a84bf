"""The evaluation office's key: what ``generate`` issues is signed, and ``collect`` can tell.

The ``_meta`` sheet's SHA-256 digest shows an edit only to someone who does not recompute
it; anyone can. So every workbook ``generate`` (and ``rollforward``) issues carries an
HMAC-SHA256 over what identifies it and what it locks — template id and version, fiscal
year, project number, generation time, layout digest, locked values and the list of cells
kept as reported — made with a key that never leaves the office (``_meta`` rows
``key_id`` and ``signature``). A department can still edit ``_meta``, but cannot sign
the result.

The key
    A file of 64 hex digits (32 random bytes), created on first use by ``generate`` with
    permissions 0600 in a folder made 0700. Where: ``--key FILE``, else
    ``$SHEETTOOL_KEY``, else ``$XDG_CONFIG_HOME/sheettool/key`` (``~/.config/sheettool/key``).
    ``check`` and ``collect`` never create one: without it they cannot verify (T227).
    ``key_id`` is a fingerprint of the key (16 hex digits), so a file signed with another
    key is told apart from a forged one (T222).

The issue register
    Next to the key, ``<key>.issued.jsonl``: one JSON line per workbook issued (signature,
    key id, template, version, fiscal year, project number, generation time, file, issue
    time), appended by ``generate``. ``collect`` and ``check`` compare each return with it
    (``assess``): a signature it does not list was never issued (T225), one issued for
    another project or year does not match (T226), and a file without a signature for a
    project that was issued signed is refused (T224). Files made before signing existed
    have no signature: they are read, with a warning (T223).

Keep the key and its register together (back them up with the office's files); copy both
to another machine to collect there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import findings
from .xlsx import meta as meta_mod

if TYPE_CHECKING:  # check/ imports this module
    from .check.result import CheckResult

KEY_ENV = "SHEETTOOL_KEY"
REGISTER_SUFFIX = ".issued.jsonl"
SIGNED = ("template_id", "template_version", "fiscal_year", "project_no", "generated_at",
          "layout_digest", "locked_values", "constant_cells")
_DOMAIN = b"sheettool _meta v1\n"  # what the MAC is over, so the key signs nothing else by accident
_SECRET_BYTES = 32


class DefaultKey:
    """``key=DEFAULT``: the key at ``default_key_path()`` (created by generate, if missing)."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = DefaultKey()


class KeyFileError(Exception):
    """The key cannot be read or created; the message is Japanese (exit code 2)."""


def default_key_path() -> Path:
    """``$SHEETTOOL_KEY``, else ``$XDG_CONFIG_HOME/sheettool/key``, else ``~/.config/sheettool/key``."""
    named = os.environ.get(KEY_ENV)
    if named:
        return Path(named).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "sheettool" / "key"


@dataclass(frozen=True)
class Key:
    secret: bytes = field(repr=False)
    path: Path
    created: bool = False  # made by this call (the command says so)

    @property
    def id(self) -> str:
        return hashlib.sha256(b"sheettool key id\n" + self.secret).hexdigest()[:16]

    @property
    def register_path(self) -> Path:
        return self.path.with_name(self.path.name + REGISTER_SUFFIX)

    def sign(self, values: Mapping[str, Any]) -> str:
        """The signature of ``_meta`` values (as written, or as ``meta.parse`` reads them back)."""
        return hmac.new(self.secret, _DOMAIN + payload(values), hashlib.sha256).hexdigest()


def payload(values: Mapping[str, Any]) -> bytes:
    """The signed bytes: the SIGNED values as one canonical JSON object (``meta.canonical_json``).

    ``locked_values`` and ``constant_cells`` come as the canonical JSON text ``_meta`` holds
    (when signing) or parsed back (when verifying): the text is embedded as it is, an object
    is written canonically, which gives the same bytes for the same content.
    """
    items = []
    for name in sorted(SIGNED):
        value = values.get(name)
        if name == "fiscal_year" and isinstance(value, float) and value.is_integer():
            value = int(value)
        text = value if isinstance(value, str) and name in _JSON_TEXT else meta_mod.canonical_json(value)
        items.append(f"{meta_mod.canonical_json(name)}:{text}")
    return ("{" + ",".join(items) + "}").encode("utf-8")


_JSON_TEXT = ("locked_values", "constant_cells")


def load_key(path: str | os.PathLike[str] | None = None, *, create: bool = False) -> Key | None:
    """The key at ``path`` (default: ``default_key_path()``).

    Missing: created when ``create``, else None for the default place and KeyFileError for a
    path the user named. Unreadable or malformed: KeyFileError.
    """
    named = path is not None
    where = Path(path).expanduser() if named else default_key_path()
    try:
        text = _read_key_file(where)
    except FileNotFoundError:
        if create:
            return _create(where)
        if named:
            raise KeyFileError(f"鍵ファイルが見つかりません: {where}（--key）。"
                               "テンプレートを作成した端末の鍵ファイルを指定してください。") from None
        return None
    except OSError as e:
        raise KeyFileError(f"鍵ファイル {where} を読み取れません（{e.strerror or e}）。") from None
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError:
        secret = b""
    if len(secret) != _SECRET_BYTES:
        raise KeyFileError(f"{where} は sheettool の鍵ファイルではありません（16進数64文字の1行であるはずです）。"
                           "別のファイルを指定してください。")
    return Key(secret, where)


KeyArg = Key | DefaultKey | None  # what functions taking a key accept


def resolve(key: KeyArg, *, create: bool = False) -> Key | None:
    """``key`` itself, or for DEFAULT the key at the default place (None if there is none)."""
    if isinstance(key, DefaultKey):
        return _default_key(str(default_key_path()), create)
    return key


def _default_key(path: str, create: bool) -> Key | None:
    try:
        st = os.stat(path)
    except OSError:
        return load_key(path, create=True) if create else None
    return _cached_key(path, st.st_mtime_ns, st.st_size, st.st_ino)


@lru_cache(maxsize=4)
def _cached_key(path: str, mtime_ns: int, size: int, ino: int) -> Key | None:
    return load_key(path)


def _read_key_file(path: Path) -> str:
    # Never open a FIFO or device as a key; never read more than a key's worth.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise KeyFileError(f"鍵ファイル {path} は通常のファイルではありません。")
        return os.read(fd, 1024).decode("ascii", "replace")
    finally:
        os.close(fd)


def _create(path: Path) -> Key:
    secret = secrets.token_bytes(_SECRET_BYTES)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made by another process meanwhile: use that one
        key = load_key(path)
        assert key is not None
        return key
    except OSError as e:
        raise KeyFileError(f"鍵ファイル {path} を作成できません（{e.strerror or e}）。"
                           "書き込める場所を --key で指定してください。") from None
    try:
        os.write(fd, (secret.hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return Key(secret, path, created=True)


# --------------------------------------------------------------------------- checking a return


def verify(meta: Mapping[str, Any], key: Key | None) -> list[findings.Finding]:
    """Findings about ``_meta``'s signature: forged (T221), another key (T222), none (T223),
    or not verifiable here (T227). Empty for a good signature or no ``_meta`` at all."""
    if not meta:
        return []
    signature = meta.get("signature")
    if not isinstance(signature, str) or not signature:
        return [findings.make("T233")]
    if key is None:
        return [findings.make("T237")]
    key_id = meta.get("key_id")
    if isinstance(key_id, str) and key_id and key_id != key.id:
        return [findings.make("T232", found=key_id, expected=key.id)]
    if not hmac.compare_digest(signature.strip().lower(), key.sign(meta)):
        return [findings.make("T231")]
    return []


class Register:
    """What was issued: each signature's identity, and the projects issued signed.

    The JSON Lines file is the record (append-only, written by generate). Next to it,
    ``<register>.sqlite`` indexes it: each run reads only the lines added since the last, and a
    lookup costs no memory, so collect stays flat however many workbooks were ever issued. The
    index is derived data: rebuilt when the register was rewritten or truncated, and where it
    cannot be written (a read-only key folder) the register is read into memory instead.
    Read when first asked: a rerun that checks nothing never opens it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._memory: dict[bytes, tuple[str, int, str]] | None = None
        self._signed: set[tuple[str, int, str]] = set()
        self._broken = 0

    @classmethod
    def load(cls, path: Path) -> Register | None:
        """The register at ``path``, read when first needed; None when there is none yet."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise KeyFileError(f"発行記録 {path} を読み取れません（{e.strerror or e}）。") from None
        if not stat.S_ISREG(st.st_mode) or not os.access(path, os.R_OK):
            raise KeyFileError(f"発行記録 {path} を読み取れません（通常のファイルではないか、読み取りが許可されていません）。")
        return cls(path)

    @property
    def index_path(self) -> Path:
        return self.path.with_suffix(".sqlite")

    def _read(self) -> None:
        if self._db is not None or self._memory is not None:
            return
        try:
            self._db = _open_index(self.index_path)
            self._broken = _update_index(self._db, self.path)
        except (sqlite3.Error, OSError):
            if self._db is not None:
                self._db.close()
            self._db = None
            self._memory, self._signed, self._broken = _read_into_memory(self.path)

    def issued(self, signature: str) -> tuple[str, int, str] | None:
        """The identity the register holds for ``signature``, None if it was never issued."""
        self._read()
        key = _signature_key(signature)
        if self._memory is not None:
            return self._memory.get(key)
        row = self._db.execute("SELECT template, fiscal_year, project_no FROM issued WHERE signature = ?",
                               (key,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def signed(self, identity: tuple[str, int, str]) -> bool:
        """Was this project of this template and year issued signed?"""
        self._read()
        if self._memory is not None:
            return identity in self._signed
        return self._db.execute("SELECT 1 FROM signed WHERE template = ? AND fiscal_year = ? AND project_no = ?",
                                identity).fetchone() is not None

    @property
    def was_read(self) -> bool:
        return self._db is not None or self._memory is not None

    @property
    def broken(self) -> int:
        """Lines that could not be read (told once on stderr by the command)."""
        self._read()
        return self._broken


_INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS issued (signature BLOB PRIMARY KEY, template TEXT, fiscal_year INTEGER,
                                   project_no TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signed (template TEXT, fiscal_year INTEGER, project_no TEXT,
                                   PRIMARY KEY (template, fiscal_year, project_no)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
"""
_HEAD = 4096  # bytes of the register that identify it: another file (rewritten, replaced) is indexed anew


def _open_index(path: Path) -> sqlite3.Connection:
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # private, as the register
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.executescript(_INDEX_SCHEMA)
    except sqlite3.Error:
        db.close()
        raise
    return db


def _update_index(db: sqlite3.Connection, register: Path) -> int:
    """Index the lines added to ``register`` since the last run; the count of unreadable lines."""
    with register.open("rb") as f:
        head = hashlib.sha256(f.read(_HEAD)).hexdigest()
        db.execute("BEGIN IMMEDIATE")  # one run at a time brings the index up to date
        try:
            state = dict(db.execute("SELECT key, value FROM state"))
            offset, broken = int(state.get("offset", 0)), int(state.get("broken", 0))
            size = os.fstat(f.fileno()).st_size
            if state.get("head") != head or offset > size or (offset < _HEAD and offset != 0):
                db.execute("DELETE FROM issued")
                db.execute("DELETE FROM signed")
                offset, broken = 0, 0
            f.seek(offset)
            for line in f:
                if not line.endswith(b"\n"):
                    break  # being written by generate: the next run reads it whole
                offset += len(line)
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    identity = _identity(entry)
                    key = _signature_key(str(entry["signature"]))
                except (ValueError, TypeError, KeyError, AttributeError):
                    broken += 1
                    continue
                db.execute("INSERT OR REPLACE INTO issued VALUES (?, ?, ?, ?)", (key, *identity))
                db.execute("INSERT OR IGNORE INTO signed VALUES (?, ?, ?)", identity)
            db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)",
                           [("offset", offset), ("broken", broken), ("head", head if offset >= _HEAD else "")])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return broken


def _read_into_memory(path: Path) -> tuple[dict[bytes, tuple[str, int, str]], set[tuple[str, int, str]], int]:
    """The register without its index: (signature → identity, identities issued signed, unreadable lines)."""
    issued: dict[bytes, tuple[str, int, str]] = {}
    signed: set[tuple[str, int, str]] = set()
    broken = 0
    try:
        with path.open("rb") as f:
            for line in f:  # line by line: the file may be tens of megabytes
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    identity = _identity(entry)
                    issued[_signature_key(str(entry["signature"]))] = identity
                    signed.add(identity)
                except (ValueError, TypeError, KeyError, AttributeError):
                    broken += 1
    except OSError as e:
        raise KeyFileError(f"発行記録 {path} を読み取れません（{e.strerror or e}）。") from None
    return issued, signed, broken


def _signature_key(signature: str) -> bytes:
    """A hex signature as its 32 bytes; anything else as its UTF-8, marked so the two never meet."""
    text = signature.strip().lower()
    try:
        if len(text) == 64:
            return bytes.fromhex(text)
    except ValueError:
        pass
    return b"t:" + text.encode("utf-8", "surrogatepass")


def _identity(values: Mapping[str, Any]) -> tuple[str, int, str]:
    fy = values.get("fiscal_year")
    if isinstance(fy, float) and fy.is_integer():
        fy = int(fy)
    return str(values.get("template_id")), fy if isinstance(fy, int) else -1, str(values.get("project_no"))


def issue_entry(values: Mapping[str, Any], file: Path) -> dict[str, Any]:
    """The register line for one issued workbook (its ``_meta`` values)."""
    entry = {name: values[name] for name in ("signature", "key_id", "template_id", "template_version",
                                              "fiscal_year", "project_no", "generated_at")}
    entry["file"] = str(file)
    entry["issued_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
    return entry


def append_issued(path: Path, entries: Iterable[dict[str, Any]]) -> None:
    """Add ``entries`` to the register at ``path`` (created 0600), durably."""
    data = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries)
    if not data:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as e:
        raise KeyFileError(f"発行記録 {path} に書き込めません（{e.strerror or e}）。") from None
    try:
        os.write(fd, data.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def assess(result: CheckResult, register: Register | None) -> None:
    """Add to ``result`` what the issue register says of it (T224, T225, T226).

    Nothing to say without a register, for an unreadable file, or for a signature already
    found wrong (T221, T222).
    """
    if register is None or not result.readable:
        return
    if any(f.code in ("T231", "T232") for f in result.findings):
        return
    meta = result.meta or {}
    signature = meta.get("signature") if isinstance(meta.get("signature"), str) else ""
    if signature:
        issued = register.issued(signature)
        if issued is None:
            result.findings.append(findings.make("T235", register=str(register.path)))
        elif issued != _identity(meta):
            result.findings.append(findings.make("T236", issued=_show(issued), found=_show(_identity(meta))))
        return
    # No signature (a file from before signing, or _meta removed): refused for a project
    # whose template was issued signed, whatever the file claims to be.
    claimed = _claimed_identity(result)
    if register.signed(claimed):
        result.findings.append(findings.make("T234", project_no=claimed[2]))


def _claimed_identity(result: CheckResult) -> tuple[str, int, str]:
    record = result.record or {}
    meta = result.meta or {}
    values = {
        "template_id": result.template or meta.get("template_id"),
        "fiscal_year": record.get("fiscal_year", meta.get("fiscal_year")),
        "project_no": record.get("project_no", meta.get("project_no")),
    }
    return _identity(values)


def _show(identity: tuple[str, int, str]) -> str:
    template, fy, no = identity
    return f"様式 {template}・{fy}年度・事業 {no}"
