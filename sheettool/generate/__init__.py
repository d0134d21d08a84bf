"""``sheettool generate``: one prefilled template per record.

Each record names its template (``"template"``; none: the default, CONTRACT §5) unless
``template`` overrides it. It is checked against that template's schema, planned
(plan.py) and drawn: by the stamping renderer (xlsx/stamp.py) unless
``SHEETTOOL_RENDERER=xlsxwriter`` asks for the reference one (xlsx/render.py). A bad
record becomes findings; the others are still written. Large batches use every core.

With a key (signing.py) every workbook's ``_meta`` is signed and each one written is
added to the key's issue register. An existing file is never overwritten unless
``overwrite`` (G610), and an input file never (G611): the others are still written.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import findings, signing
from ..fileio import NAME_MAX, atomic_write_bytes, describe_os_error, safe_component
from ..findings import Finding
from ..outputs import is_input
from ..records import Item
from ..spec import DEFAULT_TEMPLATE, Template, TemplateError, load
from ..spec.rates import Rates
from ..xlsx.render import meta_values, render
from ..xlsx.stamp import render_fast
from .plan import RecordProblem, missing_rate_finding, plan_sheet, record_label

PARALLEL_MIN = 40  # below this, starting worker processes costs more than it saves
# Both draw the same workbook; "xlsxwriter" is the reference, "stamp" ~10x faster.
RENDERERS = {"stamp": render_fast, "xlsxwriter": render}
DEFAULT_RENDERER = "stamp"
RENDERER_ENV = "SHEETTOOL_RENDERER"


@dataclass
class GenerateResult:
    written: list[Path] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    failed: int = 0
    unwritten: int = 0  # of the failed: made, but the file system refused them (G607)


def output_path(out_dir: Path, record: dict[str, Any]) -> Path:
    """DIR/<department>/<division>/<project_no>_<project_name>.xlsx, each part made path-safe.

    A template whose records have no 部 (``department`` null) leaves that level out.
    """
    no = safe_component(record["project_no"], 20, 60)
    room = NAME_MAX - len(no.encode("utf-8")) - len("_.xlsx")  # bytes left for the name (long 事業名)
    name = f"{no}_{safe_component(record['project_name'], 80, room)}.xlsx"
    folder = out_dir
    if record.get("department"):
        folder = folder / safe_component(record["department"])
    return folder / safe_component(record["division"]) / name


def renderer_name(name: str | None = None) -> str:
    """``name``, else $SHEETTOOL_RENDERER, else the default; one of RENDERERS."""
    name = name or os.environ.get(RENDERER_ENV) or DEFAULT_RENDERER
    if name not in RENDERERS:
        raise ValueError(f"unknown renderer {name!r} (${RENDERER_ENV}); use one of {sorted(RENDERERS)}")
    return name


def build(record: dict[str, Any], tpl: Template, rates: Rates, label: str,
          password: str | None = None, generated_at: datetime | None = None,
          renderer: str | None = None, key: signing.Key | None = None,
          ) -> tuple[bytes | None, list[Finding], dict[str, Any] | None]:
    """The workbook bytes for one schema-valid record with its ``_meta`` values (signed with
    ``key``), or None with error findings."""
    try:
        plan = plan_sheet(record, tpl, rates, label)
    except RecordProblem as e:
        return None, e.findings, None
    generated_at = generated_at or datetime.now().astimezone()
    values = meta_values(tpl, plan, generated_at, key)
    buf = io.BytesIO()
    RENDERERS[renderer_name(renderer)](plan, tpl, buf, password=password, generated_at=generated_at,
                                       meta_override=values)
    return buf.getvalue(), plan.warnings, values


def template_of(record: dict[str, Any], override: str | Path | None = None) -> Template:
    """The template a record is for: ``override``, else the one it names, else the default."""
    name = override or record.get("template") or DEFAULT_TEMPLATE
    return load(name if isinstance(name, str | Path) else str(name))


def rates_for(tpl: Template, rates_file: str | Path | None) -> Rates:
    """The template's bundled rates, with the years of ``rates_file`` laid over them."""
    bundled = Rates.bundled(tpl)
    return bundled.merged(Rates.load(rates_file, tpl)) if rates_file else bundled


def generate(items: Iterable[Item], out_dir: str | Path, *, template: str | Path | None = None,
             rates: str | Path | None = None, password: str | None = None, jobs: int | None = None,
             renderer: str | None = None, key: signing.KeyArg = signing.DEFAULT,
             overwrite: bool = False,
             protect: frozenset[tuple[int, int]] = frozenset()) -> GenerateResult:
    """Write one template per item under ``out_dir``.

    ``template`` overrides the template each record names; ``rates`` is a rates file laid
    over each template's bundled rates; ``renderer`` names one of RENDERERS. ``key`` signs
    each workbook and registers it as issued (default: the office's key, created on first
    use; None: unsigned). An existing file is kept (a G610 finding)
    unless ``overwrite``; a file among ``protect`` (``outputs.file_ids`` of the inputs) is
    never written (G611). Raises TemplateError or RatesError when a template or the rates
    file cannot be used at all, KeyFileError when the register cannot be written.
    """
    renderer = renderer_name(renderer)
    key = signing.resolve(key, create=True)
    out_dir = Path(out_dir)
    result = GenerateResult()
    seen: dict[Path, str] = {}
    tasks: list[tuple[int, str, dict[str, Any], str, Path]] = []
    templates: dict[str, tuple[Template, Rates]] = {}
    for index, item in enumerate(items, start=1):
        label = record_label(item.data, index) if isinstance(item.data, dict) else f"{item.where}"
        if item.error or not isinstance(item.data, dict):
            result.failed += 1
            problem = item.error or "は記録（JSONオブジェクト）ではありません。"
            result.findings.append(findings.make("G601", record=label, field_label="記録", problem=problem))
            continue
        record = item.data
        try:
            tpl = template_of(record, template)
        except TemplateError as e:
            if template is not None:
                raise
            result.failed += 1
            result.findings.append(findings.make("G601", record=label, field_label="様式", field="template",
                                                 problem=f": {e}"))
            continue
        if str(tpl.directory) not in templates:
            templates[str(tpl.directory)] = (tpl, rates_for(tpl, rates))
        problems = tpl.validator.problems(record)
        if problems:
            result.failed += 1
            result.findings.extend(findings.make("G601", record=label, field=p.path or None,
                                                 field_label=p.label, problem=p.problem) for p in problems)
            continue
        path = output_path(out_dir, record)
        if path in seen:
            result.failed += 1
            result.findings.append(findings.make("G606", record=label, other=seen[path], file=str(path)))
            continue
        seen[path] = label
        tasks.append((index, str(tpl.directory), record, label, path))
    generated_at = datetime.now().astimezone()
    rates_by = {key: r for key, (_, r) in templates.items()}
    jobs = jobs or os.cpu_count() or 1
    options = _Options(rates_by, password, generated_at, renderer, key, overwrite, protect)
    if jobs > 1 and len(tasks) >= PARALLEL_MIN:
        chunks = [tasks[i::jobs] for i in range(jobs)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            outcomes = pool.map(_work, [(options, c) for c in chunks])
            merged = sorted((o for part in outcomes for o in part), key=lambda o: o[0])
    else:
        merged = _work((options, tasks))
    directory_of = {index: directory for index, directory, *_ in tasks}
    # A rate missing for a year is a problem of the run's rates, not of each record: one G602 per
    # template and year, in the place of its first occurrence, naming every record it stopped.
    missing: dict[tuple[str, int], list[tuple[str, Any]]] = {}
    shown: list[Finding | tuple[str, int]] = []
    issued = []
    for index, path, values, found in merged:
        for f in found:
            if f.code != "G602":
                shown.append(f)
                continue
            year_key = (directory_of[index], f.params["year"])
            if year_key not in missing:
                missing[year_key] = []
                shown.append(year_key)
            missing[year_key].extend(f.params["members"])
        if values is not None:
            result.written.append(path)
            if key is not None:
                issued.append(signing.issue_entry(values, path.resolve()))
        else:
            result.failed += 1
            result.unwritten += any(f.code == "G607" for f in found)
    result.findings.extend(
        missing_rate_finding(load(item[0]), item[1], missing[item]) if isinstance(item, tuple) else item
        for item in shown)
    if key is not None:
        signing.append_issued(key.register_path, issued)
    return result


@dataclass(frozen=True)
class _Options:
    """What every record of one run is written with (sent to each worker once per chunk)."""

    rates_by: dict[str, Rates]
    password: str | None
    generated_at: datetime
    renderer: str
    key: signing.Key | None
    overwrite: bool
    protect: frozenset[tuple[int, int]]


def _work(args: tuple) -> list[tuple[int, Path, dict[str, Any] | None, list[Finding]]]:
    """Build and write a chunk of records (runs in a worker process for large batches).

    Each entry: (index, path, the ``_meta`` values written or None when nothing was, findings).
    """
    options, tasks = args
    out = []
    for index, directory, record, label, path in tasks:
        refused = _refusal(path, label, options)
        if refused is not None:
            out.append((index, path, None, [refused]))
            continue
        tpl = load(directory)
        data, found, values = build(record, tpl, options.rates_by[directory], label, options.password,
                                    options.generated_at, options.renderer, options.key)
        if data is not None:
            try:
                atomic_write_bytes(path, data, overwrite=options.overwrite)
            except FileExistsError:  # appeared since _refusal looked
                found, values = [*found, findings.make("G610", record=label, file=str(path))], None
            except OSError as e:  # disk full, read-only folder: this file fails, the next may not
                found = [*found, findings.make("G607", record=label, file=str(path), detail=describe_os_error(e))]
                values = None
        out.append((index, path, values if data is not None else None, found))
    return out


def _refusal(path: Path, label: str, options: _Options) -> Finding | None:
    """G611 for a path that is an input file, G610 for an existing one (unless overwriting)."""
    if is_input(path, options.protect):
        return findings.make("G611", record=label, file=str(path))
    if not options.overwrite and os.path.lexists(path):
        return findings.make("G610", record=label, file=str(path))
    return None
