"""Checking one workbook: the steps ``sheettool.check`` lists, in order."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .. import findings, signing
from ..findings import Finding
from ..membudget import limit_text as memory_limit_text
from ..xlsx.read import Book
from ..xlsx.safety import Package, UnreadableFile, open_package, package_from_bytes
from . import rules, tamper
from .context import Context
from .read import fiscal_year, main_sheet, read_fields, read_meta, resolve_addresses, saved_time
from .result import CheckResult


def check_file(path: str | Path, *, display_name: str | None = None,
               template: str | None = None, known: Mapping[str, str] | None = None,
               key: signing.KeyArg = signing.DEFAULT) -> CheckResult:
    """Read and check one returned workbook; never raises for a bad file.

    ``template`` (a name under templates/ or a folder) overrides the one its
    ``_meta`` names, for templates generated with ``--template <folder>``; ``known`` maps
    template ids to the folders to read them by (collect reads every file by its own id).
    ``key`` verifies the signature (default: the office's key, if this machine has it;
    None: not verified).
    """
    path = Path(path)
    name = display_name or path.name
    try:
        pkg = open_package(path)
    except UnreadableFile as e:
        return CheckResult(name, None, [e.finding], readable=False)
    except OSError as e:
        return CheckResult(name, None, [findings.make("F100", file=name, detail=e.strerror or str(e))],
                           readable=False)
    except Exception as e:  # as in _check_package
        failure = _released(e)
    else:
        return _check_package(pkg, name, template, known, key)
    return CheckResult(name, None, [failure_finding(name, failure)], readable=False)


def check_bytes(data: bytes, name: str, template: str | None = None,
                known: Mapping[str, str] | None = None, key: signing.KeyArg = signing.DEFAULT) -> CheckResult:
    """``check_file`` for content already read (collect checks exactly what it archives)."""
    try:
        pkg = package_from_bytes(name, data)
    except UnreadableFile as e:
        return CheckResult(name, None, [e.finding], readable=False)
    except Exception as e:  # as in _check_package
        failure = _released(e)
    else:
        return _check_package(pkg, name, template, known, key)
    return CheckResult(name, None, [failure_finding(name, failure)], readable=False)


def _check_package(pkg: Package, name: str, template: str | None = None,
                   known: Mapping[str, str] | None = None, key: signing.KeyArg = signing.DEFAULT) -> CheckResult:
    result = CheckResult(name, None, list(pkg.warnings))
    failure = None
    try:
        pkg.scan_xml()  # a DTD in any part, even one never read, marks the file hostile (F115)
        _check_book(Book(pkg), name, result, template, known, signing.resolve(key))
    except UnreadableFile as e:  # a part that fails to parse once we get to it
        # what was said about the content so far (T201, T206, ...) is moot: the file is unreadable
        return CheckResult(name, None, [*pkg.warnings, e.finding], readable=False)
    except Exception as e:  # the last line of defence (RecursionError and MemoryError included)
        # Every known way a file can be wrong is a finding above; whatever is left must still
        # cost this one file only, and say which file and what.
        failure = _released(e)
    if failure is not None:  # outside the handler: what the failed reading held is freed by now
        return CheckResult(name, None, [*pkg.warnings, failure_finding(name, failure)], readable=False)
    return result


def _released(exc: BaseException) -> BaseException:
    """``exc`` without its traceback, whose frames hold what the failed reading allocated."""
    exc.__traceback__ = None
    exc.__context__ = exc.__cause__ = None
    return exc


def failure_finding(name: str, exc: BaseException) -> Finding:
    """One file's failure that no check foresaw, as a finding naming the file and what happened."""
    if isinstance(exc, MemoryError):
        return findings.make("F123", file=name, limit=memory_limit_text())
    if isinstance(exc, RecursionError):
        detail = "内部データの入れ子が深すぎます"
    else:
        what = str(exc)
        detail = f"内部データに想定していない値があります: {type(exc).__name__}" + (f": {what[:200]}" if what else "")
    return findings.make("F122", file=name, detail=detail)


def _check_book(book: Book, name: str, result: CheckResult, template: str | None,
                known: Mapping[str, str] | None, key: signing.Key | None) -> None:
    meta = read_meta(book)
    result.meta = meta
    result.saved_at = saved_time(book)
    if not meta:
        result.findings.append(findings.make("T201", file=name))
    result.findings.extend(signing.verify(meta, key))
    foreign = not meta and not any(n.startswith("f_") for n in book.names)
    tpl, template_findings = tamper.template_of(meta, template, known)
    result.template = tpl.id
    result.findings.extend(template_findings)
    sheet = main_sheet(book, tpl)
    if sheet is None:
        if not foreign:
            result.findings.append(findings.make("T220"))
        return
    data = book.read_sheet(sheet)  # parsed even for a foreign workbook: a hostile sheet shows here
    if foreign:
        return  # some other workbook: T201 says it all, nothing here is ours to read
    fy = fiscal_year(book, data, tpl, meta)
    if fy is None:
        result.findings.append(findings.make("T220"))
        return
    ctx = Context(name, book, tpl, tpl.place(fy), sheet.name, data, meta)
    resolve_addresses(ctx)
    tamper.check_structure(ctx)
    read_fields(ctx)
    tamper.check_formulas(ctx)
    tamper.check_locked(ctx)
    tamper.check_panel(ctx)
    record = tpl.canonical(ctx.record)
    for problem in tpl.validator.problems(record):
        placed = ctx.placement.fields.get(problem.path)
        ctx.add("S401", placed, field=problem.path or None, label=problem.label,
                at=f"（{ctx.cell(placed)}）" if placed is not None else "", problem=problem.problem)
    rules.run(ctx, record)
    result.record = record
    result.findings.extend(ctx.findings)
    result.trusted_formulas = frozenset(ctx.trusted_formulas)
