"""``sheettool generate``: one prefilled template per record.

Each record is checked against the schema and the template, then planned
(sheetplan.py) and drawn: by the stamping renderer (stamp.py) unless
``SHEETTOOL_RENDERER=xlsxwriter`` asks for the reference one (writer.py). A bad
record becomes findings; the others are still written. Large batches use every core.
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

from . import findings, schema
from . import layout as layout_mod
from .fileio import atomic_write_bytes, safe_component
from .findings import Finding
from .rates import Rates
from .records import Item
from .sheetplan import RecordProblem, plan_sheet, record_label
from .stamp import render_fast
from .writer import render

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


def output_path(out_dir: Path, record: dict[str, Any]) -> Path:
    """DIR/<department>/<division>/<project_no>_<project_name>.xlsx, each part made path-safe."""
    name = f"{safe_component(record['project_no'], 20)}_{safe_component(record['project_name'])}.xlsx"
    return out_dir / safe_component(record["department"]) / safe_component(record["division"]) / name


def renderer_name(name: str | None = None) -> str:
    """``name``, else $SHEETTOOL_RENDERER, else the default; one of RENDERERS."""
    name = name or os.environ.get(RENDERER_ENV) or DEFAULT_RENDERER
    if name not in RENDERERS:
        raise ValueError(f"unknown renderer {name!r} (${RENDERER_ENV}); use one of {sorted(RENDERERS)}")
    return name


def build(record: dict[str, Any], lay: layout_mod.Layout, rates: Rates, label: str,
          password: str | None = None, generated_at: datetime | None = None,
          renderer: str | None = None) -> tuple[bytes | None, list[Finding]]:
    """The workbook bytes for one schema-valid record, or None with error findings."""
    try:
        plan = plan_sheet(record, lay, rates, label)
    except RecordProblem as e:
        return None, e.findings
    buf = io.BytesIO()
    RENDERERS[renderer_name(renderer)](plan, lay, buf, password=password, generated_at=generated_at)
    return buf.getvalue(), plan.warnings


def generate(items: Iterable[Item], out_dir: str | Path, *, template: str = layout_mod.DEFAULT_TEMPLATE,
             rates: Rates | None = None, password: str | None = None, jobs: int | None = None,
             renderer: str | None = None) -> GenerateResult:
    """Write one template per item under ``out_dir``; ``renderer`` names one of RENDERERS."""
    renderer = renderer_name(renderer)
    out_dir = Path(out_dir)
    lay = layout_mod.load(template)
    rates = rates or Rates.load(lay.default_rates_path)
    items = list(items)
    result = GenerateResult()
    seen: dict[Path, str] = {}
    tasks: list[tuple[int, dict[str, Any], str, Path]] = []
    for index, item in enumerate(items, start=1):
        label = record_label(item.data, index) if isinstance(item.data, dict) else f"{item.where}"
        if item.error or not isinstance(item.data, dict):
            result.failed += 1
            problem = item.error or "は記録（JSONオブジェクト）ではありません。"
            result.findings.append(findings.make("G601", record=label, field_label="記録", problem=problem))
            continue
        record = item.data
        problems = schema.validate_record(record)
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
        tasks.append((index, record, label, path))
    generated_at = datetime.now().astimezone()
    jobs = jobs or os.cpu_count() or 1
    if jobs > 1 and len(tasks) >= PARALLEL_MIN:
        chunks = [tasks[i::jobs] for i in range(jobs)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            outcomes = pool.map(_work, [(template, rates, password, generated_at, renderer, c) for c in chunks])
            merged = sorted((o for part in outcomes for o in part), key=lambda o: o[0])
    else:
        merged = _work((template, rates, password, generated_at, renderer, tasks))
    for _, path, ok, found in merged:
        result.findings.extend(found)
        if ok:
            result.written.append(path)
        else:
            result.failed += 1
    return result


def _work(args: tuple) -> list[tuple[int, Path, bool, list[Finding]]]:
    """Build and write a chunk of records (runs in a worker process for large batches)."""
    template, rates, password, generated_at, renderer, tasks = args
    lay = layout_mod.load(template)
    out = []
    for index, record, label, path in tasks:
        data, found = build(record, lay, rates, label, password, generated_at, renderer)
        if data is not None:
            atomic_write_bytes(path, data)
        out.append((index, path, data is not None, found))
    return out
