"""Drive one headless LibreOffice Calc over JSON lines (stdin -> stdout).

Run with the interpreter that has Debian's python3-uno, i.e. ``/usr/bin/python3``;
``tests/calc/client.py`` does that for the test suite.

Startup: the driver creates a throw-away user profile, starts ``soffice.bin`` on a
private pipe and writes one line ``{"ready": true, "pid": ..., "version": ...,
"seconds": ...}`` (or ``{"ready": false, "error": ...}`` and exits 2).

Then every request line is a JSON object ``{"id": <any>, "cmd": <name>, ...args}``
and gets exactly one reply line ``{"id": <same>, "ok": true, "result": ...}`` or
``{"id": <same>, "ok": false, "error": "...", "fatal": <bool>}``. A failed request
leaves the driver usable unless ``fatal`` is true (LibreOffice died; the driver exits).
On EOF of stdin, or SIGTERM, it closes LibreOffice and removes the profile.

A *ref* is either a workbook-scoped defined name (``Total``) or ``Sheet!A1`` /
``'My sheet'!A1:B3``. Commands (``doc`` is the handle returned by ``open``):

    ping                                  -> {"pid", "version"}
    open          path                    -> {"doc", "sheets"}
    close         doc
    recalc        doc                     (doc.calculateAll())
    read          doc, refs[]             -> {ref: cell | {"address", "cells": [[cell]]}}
    formula_cells doc, sheet=null         -> [cell] (all sheets when sheet is null)
    type          doc, values{ref: v}, mode="input", force=false, password=""
                                          -> {ref: cell}  (v null clears the cell)
                  mode input: cell.FormulaLocal = v, i.e. what typing into the input
                  line does (locale-aware recognition); formula: cell.setFormula(v)
                  (API grammar, en-US number recognition); string: setString;
                  value: setValue. In input/formula mode a JSON number uses setValue.
                  Locked cells of a protected sheet are refused unless force=true,
                  which unprotects with `password`, writes and protects again.
    protect       doc, sheet, password=""
    unprotect     doc, sheet, password=""
    info          doc, ranges=[]          -> {"sheets", "names", "local_names", "cells"}
    save          doc, path, format=null, filter=null
                                          (format xlsx | xlsm | ods | pdf, default from the
                                          suffix; filter overrides the filter name)
    export_pdf    doc, path
    rename_sheet  doc, sheet, name
    insert_sheet  doc, name, position=null  (0-based; null appends)
    move_sheet    doc, sheet, position      (0-based index in the final order)
    insert_rows   doc, sheet, row, count=1, force=false, password=""
                                          (row is 1-based; rows go before it; where the
                                          sheet's protection forbids it, force as in `type`)

A *cell* is ``{"address", "type": empty|value|text|formula, "value": float|null,
"string", "formula": "=..."|null, "result": value|text|error|null,
"error": "#DIV/0!"|"Err:504"|...|null, "error_code": int}``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import uno
from com.sun.star.beans import PropertyValue
from com.sun.star.connection import NoConnectException
from com.sun.star.lang import DisposedException
from com.sun.star.uno import RuntimeException as UnoRuntimeException

RESTART_EXIT_CODE = 81  # soffice.bin asks for a restart after creating a fresh profile
NEVER_EXECUTE = 0  # com.sun.star.document.MacroExecMode.NEVER_EXECUTE
NO_UPDATE = 0  # com.sun.star.document.UpdateDocMode.NO_UPDATE
XL_ENGLISH = 4  # com.sun.star.sheet.FormulaLanguage.XL_ENGLISH
XL_A1 = 1  # com.sun.star.sheet.AddressConvention.XL_A1
FORMULA_FLAG = 16  # com.sun.star.sheet.CellFlags.FORMULA
CONTENT_FLAGS = 1 | 2 | 4 | 16  # VALUE | DATETIME | STRING | FORMULA: what Delete removes
TYPE_MODES = ("input", "formula", "string", "value")
FORMULA_RESULT = {1: "value", 2: "text", 4: "error"}  # com.sun.star.sheet.FormulaResult

SAVE_FILTERS = {
    "xlsx": "Calc Office Open XML",
    "xlsm": "Calc MS Excel 2007 VBA XML",
    "ods": "calc8",
    "pdf": "calc_pdf_Export",
}

REF_RE = re.compile(
    r"^(?P<sheet>'(?:[^']|'')+'|[^!']+)!(?P<addr>\$?[A-Za-z]{1,3}\$?\d+(?::\$?[A-Za-z]{1,3}\$?\d+)?)$"
)
PLAIN_SHEET_RE = re.compile(r"^[^\W\d]\w*$")
CELL_LIKE_RE = re.compile(r"^[A-Za-z]{1,3}\d+$|^[RrCc]\d*$")


class RequestError(Exception):
    """A request the driver refuses; reported to the client, the driver carries on."""


class FatalError(Exception):
    """LibreOffice is gone; the driver reports and exits."""


def log(message: str) -> None:
    print(f"[calc-driver] {message}", file=sys.stderr, flush=True)


def prop(name: str, value: Any) -> PropertyValue:
    p = PropertyValue()
    p.Name = name
    p.Value = value
    return p


def uno_message(exc: BaseException) -> str:
    # pyuno exceptions carry their text in .Message; str() is often empty.
    text = getattr(exc, "Message", "") or str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------- office


def profile_settings(locale: str, recalc_on_load: bool) -> str:
    """registrymodifications.xcu for the throw-away profile."""
    recalc = 0 if recalc_on_load else 1  # 0 = always, 1 = never, 2 = prompt (never in headless)
    items = [
        ("/org.openoffice.Office.Calc/Formula/Load", "OOXMLRecalcMode", "int", recalc),
        ("/org.openoffice.Office.Calc/Formula/Load", "ODFRecalcMode", "int", recalc),
        # No .~lock files next to test workbooks, no macros whatever the document says.
        ("/org.openoffice.Office.Common/Misc", "UseLocking", "boolean", "false"),
        ("/org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel", "int", 3),
        # The "Locale setting": how typed numbers and dates are recognised ("2024/4/1").
        ("/org.openoffice.Setup/L10N", "ooSetupSystemLocale", "string", locale),
    ]
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<oor:items xmlns:oor="http://openoffice.org/2001/registry" '
        'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
    ]
    for path, name, kind, value in items:
        lines.append(
            f'<item oor:path="{path}"><prop oor:name="{name}" oor:op="fuse" '
            f'oor:type="xs:{kind}"><value>{value}</value></prop></item>'
        )
    lines.append("</oor:items>")
    return "\n".join(lines) + "\n"


def find_soffice_bin(explicit: str | None) -> str:
    if explicit:
        return explicit
    # Run soffice.bin itself, not the shell wrapper + oosplash: then it is our direct
    # child and dies with us (PDEATHSIG) instead of lingering as an orphan.
    wrapper = shutil.which("soffice") or "/usr/lib/libreoffice/program/soffice"
    binary = Path(os.path.realpath(wrapper)).with_name("soffice.bin")
    if not binary.exists():
        raise FatalError(f"soffice.bin not found next to {wrapper}")
    return str(binary)


def die_with_parent() -> None:
    """preexec_fn: SIGKILL soffice if the driver dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def socket_paths(pid: int) -> list[str]:
    """Paths of the unix sockets process `pid` holds (its OSL_PIPE_* files)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[len("socket:[") : -1])
    paths = []
    with contextlib.suppress(OSError), open("/proc/net/unix") as table:
        for line in table.read().splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and fields[6] in inodes and fields[7].startswith("/"):
                paths.append(fields[7])
    return sorted(set(paths))


class Office:
    """One soffice.bin process with its own profile, reached over a private pipe."""

    def __init__(self, soffice_bin: str, locale: str, recalc_on_load: bool) -> None:
        self.soffice_bin = soffice_bin
        self.profile = Path(tempfile.mkdtemp(prefix="sheettool-lo-profile-"))
        self.pipe = f"sheettool_calc_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctx: Any = None
        self.desktop: Any = None
        self.sockets: list[str] = []
        user = self.profile / "user"
        user.mkdir()
        (user / "registrymodifications.xcu").write_text(
            profile_settings(locale, recalc_on_load), encoding="utf-8"
        )

    def start(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for _ in range(3):  # a fresh profile costs one restart (exit code 81)
            self._launch()
            if self._connect(deadline):
                return
        raise FatalError("soffice kept asking for restarts")

    def _launch(self) -> None:
        args = [
            self.soffice_bin,
            f"-env:UserInstallation={uno.systemPathToFileUrl(str(self.profile))}",
            "--headless",
            "--invisible",
            "--nologo",
            "--norestore",
            "--nodefault",
            "--nolockcheck",
            f"--accept=pipe,name={self.pipe};urp;StarOffice.ComponentContext",
        ]
        log(f"starting {' '.join(args)}")
        # soffice must never write to our stdout: that is the protocol channel.
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr.fileno(),
            stderr=sys.stderr.fileno(),
            preexec_fn=die_with_parent,
        )

    def _connect(self, deadline: float) -> bool:
        """True when connected; False when soffice exited asking for a restart."""
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local
        )
        url = f"uno:pipe,name={self.pipe};urp;StarOffice.ComponentContext"
        while True:
            code = self.proc.poll()
            if code == RESTART_EXIT_CODE:
                log("soffice asked for a restart (fresh profile)")
                return False
            if code is not None:
                raise FatalError(f"soffice exited with code {code} during startup")
            try:
                self.ctx = resolver.resolve(url)
                break
            except NoConnectException:
                if time.monotonic() > deadline:
                    raise FatalError(
                        "timed out waiting for soffice to accept connections"
                    ) from None
                time.sleep(0.1)
        smgr = self.ctx.ServiceManager
        self.desktop = smgr.createInstanceWithContext("com.sun.star.frame.Desktop", self.ctx)
        self.sockets = socket_paths(self.proc.pid)
        return True

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        """Alive and answering: right after a crash the bridge is dead before the pid."""
        if not self.alive():
            return False
        try:
            self.desktop.getFrames()  # any round trip will do
        except Exception:  # DisposedException, RuntimeException, ...
            return False
        return True

    def version(self) -> str:
        provider = self.ctx.ServiceManager.createInstanceWithContext(
            "com.sun.star.configuration.ConfigurationProvider", self.ctx
        )
        node = provider.createInstanceWithArguments(
            "com.sun.star.configuration.ConfigurationAccess",
            (prop("nodepath", "/org.openoffice.Setup/Product"),),
        )
        return f"{node.ooName} {node.ooSetupVersionAboutBox}"

    def stop(self) -> None:
        if self.desktop is not None and self.alive():
            # terminate() tears the bridge down under our feet; any error is expected.
            with contextlib.suppress(Exception):
                self.desktop.terminate()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log("soffice did not exit, killing it")
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
        # A killed soffice leaves its pipe sockets in /tmp; a clean exit removes them.
        for socket in self.sockets:
            Path(socket).unlink(missing_ok=True)


# --------------------------------------------------------------------------- cells


def column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def quote_sheet(name: str) -> str:
    if PLAIN_SHEET_RE.match(name) and not CELL_LIKE_RE.match(name):
        return name
    return "'" + name.replace("'", "''") + "'"


def a1(sheet_name: str, col: int, row: int) -> str:
    return f"{quote_sheet(sheet_name)}!{column_letters(col)}{row + 1}"


class OpenDoc:
    """An open spreadsheet plus the helpers bound to it."""

    def __init__(self, component: Any, path: str) -> None:
        self.component = component
        self.path = path
        self._printer: Any = None

    @property
    def sheets(self) -> Any:
        return self.component.Sheets

    def sheet(self, name: str) -> Any:
        if not self.sheets.hasByName(name):
            raise RequestError(f"no sheet named {name!r}; sheets: {list(self.sheets.ElementNames)}")
        return self.sheets.getByName(name)

    def sheet_name(self, index: int) -> str:
        return self.sheets.getByIndex(index).Name

    def printer(self) -> Any:
        """A FormulaParser that prints tokens the way Excel shows formulas."""
        if self._printer is None:
            mapper = self.component.createInstance("com.sun.star.sheet.FormulaOpCodeMapper")
            special = mapper.getAvailableMappings(XL_ENGLISH, 0)  # FormulaMapGroup.SPECIAL
            rest = mapper.getAvailableMappings(XL_ENGLISH, 0x7FFFFFFF)  # ALL_EXCEPT_SPECIAL
            parser = self.component.createInstance("com.sun.star.sheet.FormulaParser")
            parser.OpCodeMap = tuple(special) + tuple(rest)
            parser.FormulaConvention = XL_A1
            parser.CompileEnglish = True
            self._printer = parser
        return self._printer

    def excel_formula(self, tokens: Any, position: Any, fallback: str) -> str:
        try:
            return "=" + self.printer().printFormula(tokens, position)
        except Exception as exc:  # any printer failure: use Calc syntax
            log(f"formula printer failed ({uno_message(exc)}); using {fallback!r}")
            return fallback

    def resolve(self, ref: str) -> Any:
        """A ref (defined name or Sheet!A1[:B2]) -> XCellRange."""
        match = REF_RE.match(ref)
        if match:
            sheet = match["sheet"]
            if sheet.startswith("'"):
                sheet = sheet[1:-1].replace("''", "'")
            return self.sheet(sheet).getCellRangeByName(match["addr"].replace("$", ""))
        names = self.component.NamedRanges
        if "!" not in ref and names.hasByName(ref):
            cells = names.getByName(ref).getReferredCells()
            if cells is None:
                raise RequestError(f"defined name {ref!r} does not refer to cells")
            return cells
        raise RequestError(f"{ref!r} is neither a workbook-scoped defined name nor Sheet!A1")

    def resolve_cell(self, ref: str) -> Any:
        cells = self.resolve(ref)
        addr = cells.getRangeAddress()
        if (addr.StartColumn, addr.StartRow) != (addr.EndColumn, addr.EndRow):
            raise RequestError(f"{ref!r} is a range, not a single cell")
        return cells.getCellByPosition(0, 0)

    def cell_info(self, cell: Any) -> dict[str, Any]:
        addr = cell.CellAddress
        kind = cell.getType().value.lower()
        info: dict[str, Any] = {
            "address": a1(self.sheet_name(addr.Sheet), addr.Column, addr.Row),
            "type": kind,
            "value": cell.getValue() if kind == "value" else None,
            "string": cell.getString(),
            "formula": None,
            "result": None,
            "error": None,
            "error_code": 0,
        }
        if kind == "formula":
            info["formula"] = self.excel_formula(cell.getTokens(), addr, cell.getFormula())
            info["result"] = FORMULA_RESULT.get(cell.FormulaResultType2, "value")
            info["error_code"] = cell.getError()
            if info["error_code"]:
                info["result"] = "error"
                info["error"] = cell.getString()  # what Calc shows: "#DIV/0!", "Err:504"
            elif info["result"] == "value":
                info["value"] = cell.getValue()
        return info

    def range_info(self, cells: Any) -> dict[str, Any]:
        addr = cells.getRangeAddress()
        rows = addr.EndRow - addr.StartRow + 1
        cols = addr.EndColumn - addr.StartColumn + 1
        return {
            "address": a1(self.sheet_name(addr.Sheet), addr.StartColumn, addr.StartRow)
            + f":{column_letters(addr.EndColumn)}{addr.EndRow + 1}",
            "cells": [
                [self.cell_info(cells.getCellByPosition(c, r)) for c in range(cols)]
                for r in range(rows)
            ],
        }

    def iter_cells(self, addresses: Any):
        """Cells of CellRangeAddress structs, row by row."""
        for rng in addresses:
            sheet = self.sheets.getByIndex(rng.Sheet)
            for row in range(rng.StartRow, rng.EndRow + 1):
                for col in range(rng.StartColumn, rng.EndColumn + 1):
                    yield sheet.getCellByPosition(col, row)


def validation_info(cell: Any) -> dict[str, Any] | None:
    v = cell.Validation
    kind = v.Type.value
    if kind == "ANY" and not v.ShowInputMessage:
        return None
    return {
        "type": kind,
        "operator": v.getOperator().value,
        "formula1": v.getFormula1(),
        "formula2": v.getFormula2(),
        "ignore_blank": v.IgnoreBlankCells,
        "show_list": v.ShowList,
        "show_error": v.ShowErrorMessage,
        "error_style": v.ErrorAlertStyle.value,
        "error_title": v.ErrorTitle,
        "error_message": v.ErrorMessage,
        "show_input": v.ShowInputMessage,
        "input_title": v.InputTitle,
        "input_message": v.InputMessage,
    }


def write_cell(cell: Any, value: Any, mode: str) -> None:
    if value is None:
        cell.clearContents(CONTENT_FLAGS)
    elif mode == "string":
        cell.setString(str(value))
    elif mode == "value" or isinstance(value, int | float):
        cell.setValue(float(value))
    elif mode == "formula":
        # API grammar, English; numbers are recognised with en-US rules whatever the locale.
        cell.setFormula(str(value))
    else:
        # FormulaLocal is what the input line does: locale-aware recognition
        # ("2024/4/1" is a date in ja-JP), "50%" gets a percent format, "'007" stays text.
        cell.FormulaLocal = str(value)


# --------------------------------------------------------------------------- session


class Session:
    """Request handlers. Each cmd_<name> takes the request's arguments as keywords."""

    def __init__(self, office: Office) -> None:
        self.office = office
        self.docs: dict[str, OpenDoc] = {}
        self._next_doc = 1

    def doc(self, handle: str) -> OpenDoc:
        try:
            return self.docs[handle]
        except KeyError:
            raise RequestError(f"unknown document handle {handle!r}") from None

    # -- lifecycle

    def cmd_ping(self) -> dict[str, Any]:
        return {"pid": self.office.proc.pid, "version": self.office.version()}

    def cmd_open(self, path: str) -> dict[str, Any]:
        file = Path(path).resolve()
        if not file.is_file():
            raise RequestError(f"no such file: {file}")
        props = (
            prop("Hidden", True),
            prop("MacroExecutionMode", NEVER_EXECUTE),
            prop("UpdateDocMode", NO_UPDATE),
            prop("Silent", True),
        )
        url = uno.systemPathToFileUrl(str(file))
        component = self.office.desktop.loadComponentFromURL(url, "_blank", 0, props)
        if component is None or not hasattr(component, "Sheets"):
            if component is not None:
                component.close(True)
            raise RequestError(f"LibreOffice could not open {file} as a spreadsheet")
        handle = f"d{self._next_doc}"
        self._next_doc += 1
        self.docs[handle] = OpenDoc(component, str(file))
        return {"doc": handle, "sheets": list(component.Sheets.ElementNames)}

    def cmd_close(self, doc: str) -> None:
        opened = self.doc(doc)
        del self.docs[doc]
        opened.component.close(True)

    def close_all(self) -> None:
        for handle in list(self.docs):
            with contextlib.suppress(Exception):
                self.cmd_close(handle)

    def cmd_recalc(self, doc: str) -> None:
        self.doc(doc).component.calculateAll()

    # -- reading

    def cmd_read(self, doc: str, refs: list[str]) -> dict[str, Any]:
        opened = self.doc(doc)
        result = {}
        for ref in refs:
            cells = opened.resolve(ref)
            addr = cells.getRangeAddress()
            single = (addr.StartColumn, addr.StartRow) == (addr.EndColumn, addr.EndRow)
            cell = cells.getCellByPosition(0, 0) if single else None
            result[ref] = opened.cell_info(cell) if single else opened.range_info(cells)
        return result

    def cmd_formula_cells(self, doc: str, sheet: str | None = None) -> list[dict[str, Any]]:
        opened = self.doc(doc)
        sheets = [opened.sheet(sheet)] if sheet is not None else list(opened.sheets)
        found = []
        for each in sheets:
            addresses = each.queryContentCells(FORMULA_FLAG).getRangeAddresses()
            found.extend(opened.cell_info(cell) for cell in opened.iter_cells(addresses))
        return found

    def cmd_info(self, doc: str, ranges: list[str] | None = None) -> dict[str, Any]:
        opened = self.doc(doc)
        return {
            "sheets": [self._sheet_info(i, s) for i, s in enumerate(opened.sheets)],
            "names": self._names(opened, opened.component.NamedRanges),
            "local_names": {
                s.Name: names
                for s in opened.sheets
                if (names := self._names(opened, s.NamedRanges))
            },
            "cells": self._cells_info(opened, ranges or []),
        }

    def cmd_looks(self, doc: str, refs: list[str]) -> dict[str, Any]:
        """Per cell (defined name or Sheet!A1): its background colour (RGB int, -1 for none) and
        the text of its comment (None without one)."""
        opened = self.doc(doc)
        result = {}
        for ref in refs:
            cell = opened.resolve_cell(ref)
            annotation = cell.getAnnotation()
            text = annotation.getString() if annotation is not None else ""
            result[ref] = {"back_color": cell.CellBackColor, "comment": text or None}
        return result

    @staticmethod
    def _sheet_info(index: int, sheet: Any) -> dict[str, Any]:
        # Calc has no "veryHidden": the xlsx import maps it to hidden, so UNO can't tell.
        return {
            "name": sheet.Name,
            "index": index,
            "visible": sheet.IsVisible,
            "state": "visible" if sheet.IsVisible else "hidden",
            "protected": sheet.isProtected(),
        }

    @staticmethod
    def _names(opened: OpenDoc, names: Any) -> dict[str, str]:
        result = {}
        for name in names.ElementNames:
            named = names.getByName(name)
            result[name] = opened.excel_formula(
                named.getTokens(), named.getReferencePosition(), named.getContent()
            ).removeprefix("=")
        return result

    @staticmethod
    def _cells_info(opened: OpenDoc, refs: list[str]) -> dict[str, Any]:
        cells = {}
        for ref in refs:
            addresses = [opened.resolve(ref).getRangeAddress()]
            for cell in opened.iter_cells(addresses):
                addr = cell.CellAddress
                protection = cell.CellProtection
                cells[a1(opened.sheet_name(addr.Sheet), addr.Column, addr.Row)] = {
                    "locked": protection.IsLocked,
                    "formula_hidden": protection.IsFormulaHidden,
                    "validation": validation_info(cell),
                }
        return cells

    # -- writing

    def cmd_type(
        self,
        doc: str,
        values: dict[str, Any],
        mode: str = "input",
        force: bool = False,
        password: str = "",
    ) -> dict[str, Any]:
        if mode not in TYPE_MODES:
            raise RequestError(f"mode must be one of {TYPE_MODES}, not {mode!r}")
        opened = self.doc(doc)
        # Resolve and check every target first so a refused request writes nothing.
        targets = [(ref, opened.resolve_cell(ref), value) for ref, value in values.items()]
        # The API itself lets a script write into locked cells; a user can't, so check.
        to_unlock = {}
        for ref, cell, _ in targets:
            sheet = opened.sheets.getByIndex(cell.CellAddress.Sheet)
            if sheet.isProtected() and cell.CellProtection.IsLocked:
                if not force:
                    raise RequestError(
                        f"cell {ref} is locked and sheet {sheet.Name!r} is protected; "
                        "pass force=true to overwrite it anyway"
                    )
                to_unlock[sheet.Name] = sheet
        with self._unprotected(list(to_unlock.values()), password):
            for _, cell, value in targets:
                write_cell(cell, value, mode)
        return {ref: opened.cell_info(cell) for ref, cell, _ in targets}

    @contextlib.contextmanager
    def _unprotected(self, sheets: list[Any], password: str):
        """Unprotect, let the caller write, protect again (options are kept)."""
        for sheet in sheets:
            self._unprotect(sheet, password)
        try:
            yield
        finally:
            for sheet in sheets:
                sheet.protect(password)

    @staticmethod
    def _unprotect(sheet: Any, password: str) -> None:
        try:
            sheet.unprotect(password)
        except Exception as exc:  # wrong password is an IllegalArgumentException
            raise RequestError(
                f"cannot unprotect sheet {sheet.Name!r}: {uno_message(exc)}"
            ) from None

    def cmd_protect(self, doc: str, sheet: str, password: str = "") -> None:
        self.doc(doc).sheet(sheet).protect(password)

    def cmd_unprotect(self, doc: str, sheet: str, password: str = "") -> None:
        self._unprotect(self.doc(doc).sheet(sheet), password)

    # -- saving

    def cmd_save(
        self, doc: str, path: str, format: str | None = None, filter: str | None = None
    ) -> dict[str, Any]:
        target = Path(path).resolve()
        fmt = (format or target.suffix.lstrip(".")).lower()
        if fmt not in SAVE_FILTERS and filter is None:
            raise RequestError(f"unknown save format {fmt!r}; use one of {sorted(SAVE_FILTERS)}")
        target.parent.mkdir(parents=True, exist_ok=True)
        filter_name = filter or SAVE_FILTERS[fmt]
        props = (prop("FilterName", filter_name), prop("Overwrite", True))
        # storeToURL writes a copy; the open document keeps its original location.
        self.doc(doc).component.storeToURL(uno.systemPathToFileUrl(str(target)), props)
        return {"path": str(target), "filter": filter_name}

    def cmd_export_pdf(self, doc: str, path: str) -> dict[str, Any]:
        return self.cmd_save(doc, path, "pdf")

    # -- structure

    def cmd_rename_sheet(self, doc: str, sheet: str, name: str) -> None:
        self.doc(doc).sheet(sheet).setName(name)

    def cmd_insert_sheet(self, doc: str, name: str, position: int | None = None) -> None:
        sheets = self.doc(doc).sheets
        if sheets.hasByName(name):
            raise RequestError(f"a sheet named {name!r} already exists")
        sheets.insertNewByName(name, sheets.Count if position is None else position)

    def cmd_move_sheet(self, doc: str, sheet: str, position: int) -> None:
        opened = self.doc(doc)
        names = list(opened.sheets.ElementNames)
        if sheet not in names:
            opened.sheet(sheet)  # raises the usual "no sheet" error
        if not 0 <= position < len(names):
            raise RequestError(f"position {position} out of range 0..{len(names) - 1}")
        # moveByName inserts *before* the given index of the current order.
        current = names.index(sheet)
        opened.sheets.moveByName(sheet, position + 1 if position > current else position)

    def cmd_insert_rows(
        self,
        doc: str,
        sheet: str,
        row: int,
        count: int = 1,
        force: bool = False,
        password: str = "",
    ) -> None:
        if row < 1 or count < 1:
            raise RequestError("row is 1-based and count must be positive")
        target = self.doc(doc).sheet(sheet)
        try:
            # Unlike cell writes, this API call honours sheet protection, including the
            # "insert rows" permission of the protection options.
            target.Rows.insertByIndex(row - 1, count)
            return
        except UnoRuntimeException:
            if not target.isProtected():
                raise
        if not force:
            raise RequestError(f"sheet {sheet!r} is protected; pass force=true to insert rows")
        with self._unprotected([target], password):
            target.Rows.insertByIndex(row - 1, count)


# --------------------------------------------------------------------------- protocol


def dispatch(session: Session, request: dict[str, Any]) -> Any:
    cmd = request.get("cmd")
    handler = getattr(session, f"cmd_{cmd}", None) if isinstance(cmd, str) else None
    if handler is None:
        raise RequestError(f"unknown cmd {cmd!r}")
    args = {k: v for k, v in request.items() if k not in ("id", "cmd")}
    try:
        inspect.signature(handler).bind(**args)
    except TypeError as exc:
        raise RequestError(f"{cmd}: {exc}") from None
    return handler(**args)


def handle_line(session: Session, line: str) -> dict[str, Any]:
    request_id = None
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise RequestError("a request must be a JSON object")
        request_id = request.get("id")
        return {"id": request_id, "ok": True, "result": dispatch(session, request)}
    except RequestError as exc:
        return {"id": request_id, "ok": False, "error": str(exc), "fatal": False}
    except json.JSONDecodeError as exc:
        return {"id": request_id, "ok": False, "error": f"bad JSON: {exc}", "fatal": False}
    except Exception as exc:  # one bad request must not kill the driver
        fatal = isinstance(exc, DisposedException) or not session.office.healthy()
        log(traceback.format_exc())
        return {"id": request_id, "ok": False, "error": uno_message(exc), "fatal": fatal}


def protocol_stream():
    """Keep the real stdout for replies; anything else printing goes to stderr."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return out


def send(out: Any, message: dict[str, Any]) -> None:
    out.write(json.dumps(message, ensure_ascii=False) + "\n")
    out.flush()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soffice", help="path to soffice.bin")
    parser.add_argument("--locale", default="ja-JP", help="Calc locale for input recognition")
    parser.add_argument("--recalc-on-load", action="store_true", help="recalculate xlsx on load")
    parser.add_argument("--startup-timeout", type=float, default=90.0)
    return parser.parse_args(argv)


def serve(office: Office, out: Any) -> int:
    session = Session(office)
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            reply = handle_line(session, line)
            send(out, reply)
            if reply.get("fatal"):
                log("LibreOffice is gone; exiting")
                return 3
        return 0
    except BrokenPipeError:
        log("client went away")
        return 1
    finally:
        session.close_all()


def start_office(args: argparse.Namespace) -> Office:
    office = Office(find_soffice_bin(args.soffice), args.locale, args.recalc_on_load)
    try:
        office.start(args.startup_timeout)
    except BaseException:
        office.stop()
        raise
    return office


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    out = protocol_stream()
    # SIGTERM -> normal exit, so the finally blocks stop soffice and drop the profile.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = time.monotonic()
    try:
        office = start_office(args)
    except (FatalError, OSError, NoConnectException) as exc:
        log(traceback.format_exc())
        send(out, {"ready": False, "error": uno_message(exc)})
        return 2
    try:
        seconds = round(time.monotonic() - started, 3)
        hello = {"ready": True, "pid": office.proc.pid, "version": office.version()}
        send(out, {**hello, "seconds": seconds})
        log(f"ready after {seconds}s")
        return serve(office, out)
    finally:
        office.stop()
        log("stopped")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
