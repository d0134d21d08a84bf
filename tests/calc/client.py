"""Client side of the LibreOffice Calc harness, used by pytest.

The project's Python has no ``uno``; Debian's ``/usr/bin/python3`` does. So ``Calc``
runs ``tests/calc/driver.py`` under that interpreter and talks JSON lines to it
(see the driver's docstring for the protocol). Every call has a timeout: a hung
LibreOffice is killed (the driver and soffice share one process group) and the
next call starts a fresh one, so a test fails instead of hanging CI.

    calc = Calc()                       # tests get one from the `calc` fixture
    with calc.open("book.xlsx") as doc:
        doc.recalc()                    # xlsx is not recalculated on load
        doc.type({"入力!B3": "1,234"})   # typed like a user: becomes 1234
        assert doc.value("入力!B3") == 1234
        assert not doc.errors()         # no #DIV/0!, Err:504, ... anywhere
        doc.save(tmp_path / "out.xlsx")
    calc.close()
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

UNO_PYTHON = "/usr/bin/python3"
# save(filter=...) for what LibreOffice's own "Excel 2007-365" choice writes; the default
# "Calc Office Open XML" filter marks the book dateCompatibility="false".
EXCEL_2007_FILTER = "Calc MS Excel 2007 XML"
DRIVER = Path(__file__).with_name("driver.py")
Cell = dict[str, Any]


class CalcError(RuntimeError):
    """A request failed; the harness is still usable."""


class CalcRefused(CalcError):
    """LibreOffice (or the driver, acting as a user would) refused the request."""


class CalcTimeout(CalcError):
    """A call took too long; LibreOffice was killed and restarts on the next call."""


class CalcCrashed(CalcError):
    """The driver or LibreOffice died; it restarts on the next call."""


@functools.cache
def unavailable_reason(python: str = UNO_PYTHON) -> str | None:
    """Why the harness cannot run here, or None when it can."""
    if not Path(python).exists():
        return f"{python} not found (Debian's python3 with python3-uno)"
    if shutil.which("soffice") is None:
        return "soffice (LibreOffice) not on PATH"
    try:
        probe = subprocess.run(
            [python, "-I", "-c", "import uno"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {python}: {exc}"
    if probe.returncode != 0:
        return f"{python} cannot import uno (install python3-uno): {probe.stderr.strip()}"
    return None


class Calc:
    """One headless LibreOffice, reached through the driver subprocess."""

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        startup_timeout: float = 120.0,
        locale: str = "ja-JP",
        recalc_on_load: bool = False,
        python: str = UNO_PYTHON,
    ) -> None:
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.locale = locale
        self.recalc_on_load = recalc_on_load
        self.python = python
        self.generation = 0  # bumped on every (re)start; stale Doc handles notice it
        self.ready: dict[str, Any] = {}  # the driver's hello: pid, version, seconds
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._next_id = 0
        # The driver's stderr: an unlinked temp file, so nothing is left behind even
        # when pytest is killed. Errors quote its tail.
        self._log: IO[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle

    @staticmethod
    def available(python: str = UNO_PYTHON) -> bool:
        """True when LibreOffice and a python with uno are installed."""
        return unavailable_reason(python) is None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the driver and LibreOffice (about 2 s); no-op when already running."""
        if self.running:
            return
        self._kill()
        # The driver gives up a little before we do, so its own error reaches us.
        driver_timeout = f"{self.startup_timeout * 0.9:.1f}"
        args = [self.python, "-I", str(DRIVER), "--locale", self.locale]
        args += ["--startup-timeout", driver_timeout]
        if self.recalc_on_load:
            args.append("--recalc-on-load")
        if self._log is None:
            self._log = tempfile.TemporaryFile(prefix="sheettool-calc-")  # noqa: SIM115
        # Own process group: a timeout kills the driver and soffice together, and
        # Ctrl-C in the terminal reaches pytest only, which then stops us cleanly.
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )
        self._buffer = b""
        self.ready = {}
        self.generation += 1
        hello = self._receive(time.monotonic() + self.startup_timeout, "startup")
        if not hello.get("ready"):
            self._kill()
            raise CalcError(f"LibreOffice did not start: {hello.get('error')}{self._log_tail()}")
        self.ready = hello

    def stop(self, timeout: float = 30.0) -> None:
        """Close LibreOffice cleanly (EOF to the driver); kill it if that hangs."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)  # the driver closes documents and soffice itself
        self._kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """stop() and drop the driver log."""
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Calc:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _kill(self) -> None:
        """Stop now. soffice goes first, so the driver reaps it (PID 1 here may not)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        office = self.ready.get("pid")
        if proc.poll() is None and office and _parent_of(office) == proc.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(office, signal.SIGKILL)
        # The driver notices the dead bridge, then EOF, and exits after removing the
        # profile; killing it in the middle of that would leave the profile behind.
        with contextlib.suppress(OSError):
            proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.poll() is None or _group_alive(proc.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()

    # ------------------------------------------------------------------ requests

    def request(self, cmd: str, *, timeout: float | None = None, **args: Any) -> Any:
        """Send one request and return its result; raise a CalcError on failure."""
        self.start()
        self._next_id += 1
        message = {"id": self._next_id, "cmd": cmd, **args}
        try:
            self._proc.stdin.write((json.dumps(message, ensure_ascii=False) + "\n").encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            raise CalcCrashed(f"{cmd}: driver is gone ({exc}){self._log_tail()}") from None
        reply = self._receive(time.monotonic() + (timeout or self.timeout), cmd)
        if reply.get("id") != self._next_id:
            self._kill()
            raise CalcCrashed(f"{cmd}: reply out of order: {reply}")
        if reply.get("ok"):
            return reply.get("result")
        if reply.get("fatal"):
            self._kill()
            raise CalcCrashed(f"{cmd}: LibreOffice died: {reply.get('error')}{self._log_tail()}")
        raise CalcRefused(f"{cmd}: {reply.get('error')}")

    def _receive(self, deadline: float, what: str) -> dict[str, Any]:
        """Read one JSON line from the driver before the deadline."""
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                raise CalcTimeout(
                    f"{what}: no answer in time; LibreOffice killed{self._log_tail()}"
                )
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=10)
                code = self._proc.returncode
                self._kill()
                raise CalcCrashed(f"{what}: driver exited with {code}{self._log_tail()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the driver's (and LibreOffice's) stderr."""
        if self._log is None:
            return ""
        fd = self._log.fileno()
        size = os.fstat(fd).st_size
        # pread leaves the offset alone: the driver shares it while writing.
        data = os.pread(fd, 16384, max(0, size - 16384))
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    def _log_tail(self) -> str:
        tail = self.log_tail()
        return f"\n--- driver log (tail) ---\n{tail}" if tail else ""

    # ------------------------------------------------------------------ documents

    def ping(self) -> dict[str, Any]:
        return self.request("ping")

    def open(self, path: str | os.PathLike[str], *, timeout: float | None = None) -> Doc:
        """Open a workbook hidden, without running macros or updating links."""
        result = self.request("open", path=str(Path(path).resolve()), timeout=timeout)
        return Doc(self, result["doc"], Path(path), result["sheets"])


class Doc:
    """An open workbook. Use as a context manager so it is closed after the test."""

    def __init__(self, calc: Calc, handle: str, path: Path, sheets: list[str]) -> None:
        self.calc = calc
        self.handle = handle
        self.path = path
        self.sheets = sheets  # as opened; info() has the current list
        self._generation = calc.generation
        self.closed = False

    def __enter__(self) -> Doc:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, cmd: str, *, timeout: float | None = None, **args: Any) -> Any:
        if self.closed:
            raise CalcError(f"{cmd}: document {self.path.name} is closed")
        if self._generation != self.calc.generation or not self.calc.running:
            raise CalcError(f"{cmd}: LibreOffice restarted since {self.path.name} was opened")
        return self.calc.request(cmd, doc=self.handle, timeout=timeout, **args)

    def close(self) -> None:
        """Close without saving; quiet when LibreOffice already went away."""
        if self.closed:
            return
        self.closed = True
        if self._generation == self.calc.generation and self.calc.running:
            self.calc.request("close", doc=self.handle)

    def recalc(self, *, timeout: float | None = None) -> None:
        """doc.calculateAll(): LibreOffice does not recalculate xlsx on load by default."""
        self._call("recalc", timeout=timeout)

    # -- reading

    def read(self, refs: Iterable[str] | str) -> dict[str, Cell]:
        """Cells by defined name or Sheet!A1 (a range gives {"address", "cells"})."""
        refs = [refs] if isinstance(refs, str) else list(refs)
        return self._call("read", refs=refs)

    def cell(self, ref: str) -> Cell:
        return self.read([ref])[ref]

    def value(self, ref: str) -> float | str | None:
        """The number, or the shown string for text / errors, or None when empty."""
        cell = self.cell(ref)
        if cell["type"] == "empty":
            return None
        return cell["value"] if cell["value"] is not None else cell["string"]

    def formula_cells(self, sheet: str | None = None) -> list[Cell]:
        """Every formula cell of one sheet (or all sheets) with its result."""
        return self._call("formula_cells", sheet=sheet)

    def errors(self, sheet: str | None = None) -> list[Cell]:
        """Formula cells whose result is an error value (#DIV/0!, Err:504, ...)."""
        return [cell for cell in self.formula_cells(sheet) if cell["error"]]

    def looks(self, *refs: str) -> dict[str, dict[str, Any]]:
        """Per cell: {"back_color": RGB int (-1: none), "comment": its text or None}."""
        return self._call("looks", refs=list(refs))

    def info(self, *ranges: str) -> dict[str, Any]:
        """Sheets, defined names, and per cell of `ranges`: locked / validation."""
        return self._call("info", ranges=list(ranges))

    # -- writing

    def type(
        self,
        values: Mapping[str, str | float | None],
        *,
        force: bool = False,
        mode: str = "input",
        password: str = "",
    ) -> dict[str, Cell]:
        """Enter values as a user types them; locked cells need force=True.

        mode "input" types like the input line (locale-aware), "formula" uses
        setFormula, "string" setString, "value" setValue; None clears a cell.
        """
        return self._call("type", values=dict(values), mode=mode, force=force, password=password)

    def protect(self, sheet: str, password: str = "") -> None:
        self._call("protect", sheet=sheet, password=password)

    def unprotect(self, sheet: str, password: str = "") -> None:
        self._call("unprotect", sheet=sheet, password=password)

    # -- saving

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        filter: str | None = None,
        timeout: float | None = None,
    ) -> Path:
        """Store a copy as xlsx / xlsm / ods / pdf (from the suffix unless `format`)."""
        target = Path(path).resolve()
        self._call("save", path=str(target), format=format, filter=filter, timeout=timeout)
        return target

    def export_pdf(self, path: str | os.PathLike[str], *, timeout: float | None = None) -> Path:
        target = Path(path).resolve()
        self._call("export_pdf", path=str(target), timeout=timeout)
        return target

    # -- structure

    def rename_sheet(self, sheet: str, name: str) -> None:
        self._call("rename_sheet", sheet=sheet, name=name)

    def insert_sheet(self, name: str, position: int | None = None) -> None:
        self._call("insert_sheet", name=name, position=position)

    def move_sheet(self, sheet: str, position: int) -> None:
        """Move so that the sheet ends up at 0-based `position`."""
        self._call("move_sheet", sheet=sheet, position=position)

    def insert_rows(
        self, sheet: str, row: int, count: int = 1, *, force: bool = False, password: str = ""
    ) -> None:
        """Insert `count` rows before 1-based `row`; force=True where protection forbids it."""
        self._call("insert_rows", sheet=sheet, row=row, count=count, force=force, password=password)


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may contain spaces, so split after ")".
    return int(stat.rsplit(")", 1)[1].split()[1])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
