"""``sheettool check``: read one returned workbook back into a record, with findings.

Every field is found through the workbook's defined names (so a renamed
sheet or moved cell is still read), falling back to the layout spec. Cached
formula results are never trusted: 決算額 and 人件費計 are recomputed from
the inputs with the shared formula definitions (formulas.py). The checks run
in sequence and each adds findings pointing at its sheet and cell:

1. file safety (filesafety.py) — unreadable files stop here (exit code 2)
2. identity: _meta, template version, fiscal year, project number (tamper.py)
3. every field read and normalised (normalize.py)
4. formulas present and unchanged, locked content unchanged (tamper.py)
5. the record schema, then cross-field rules (rules.py)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import findings, lists, recordpath, schema, wareki
from . import meta as meta_mod
from .fieldtypes import field_type
from .filesafety import Package, UnreadableFile, open_package, package_from_bytes
from .findings import Finding
from .formulas import FORMULAS
from .layout import Layout, Placed, Placement
from .normalize import Reading, read_value
from .records import canonical
from .submission import CheckResult
from .xlsxread import Book, RawCell, SheetData, split_ref


@dataclass
class Context:
    """Everything the checks share about one workbook being read."""

    file: str
    book: Book
    layout: Layout
    placement: Placement
    sheet_name: str
    data: SheetData
    meta: dict[str, Any]
    addresses: dict[str, str] = field(default_factory=dict)  # placed name → cell actually used
    readings: dict[str, Reading] = field(default_factory=dict)  # field path → reading
    record: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def cell(self, placed: Placed) -> str:
        return self.addresses.get(placed.name, placed.cell)

    def raw(self, placed: Placed) -> RawCell | None:
        return self.data.cells.get(self.cell(placed))

    def value(self, placed: Placed) -> Any:
        return self.book.value(self.raw(placed))

    def constants(self) -> set[str]:
        """Formula cells kept as reported values (history): _meta's list, where its digest vouches."""
        locked = self.meta.get("locked_values")
        listed = self.meta.get("constant_cells")
        if not isinstance(locked, dict) or not isinstance(listed, list):
            return set()
        return {name for name in listed if isinstance(name, str) and name in locked}

    def rate(self, path: str) -> Any:
        """A rate cell's value: as recorded at generation (tampering is reported separately)."""
        placed = self.placement.computed.get(path)
        if placed is None:
            return None
        locked = self.meta.get("locked_values")
        if isinstance(locked, dict) and placed.name in locked:
            return locked[placed.name]
        value = self.value(placed)
        return value if isinstance(value, float) else None

    def add(self, code: str, placed: Placed | None = None, **params: Any) -> None:
        cell, path = params.pop("cell", None), params.pop("field", None)
        if placed is not None:  # the placed item's real cell and path win over the defaults given
            cell = self.cell(placed)
            path = placed.path if placed.kind == "field" else path
        if placed is not None and "label" not in params:
            params["label"] = label_of(placed)
        self.findings.append(findings.make(code, sheet=self.sheet_name, cell=cell, field=path, **params))


_RATE_TITLES = {"salary_per_fte": "正職員1人当たり人件費（円）", "overtime_per_hour": "時間外勤務1時間当たり単価（円）"}


def label_of(placed: Placed) -> str:
    if placed.kind == "field":
        return schema.field_label(placed.path)
    if placed.path.startswith("evaluation_text."):
        return schema.field_label("evaluation." + placed.path.split(".", 1)[1]) + "の文"
    parts = placed.path.split(".")
    if parts[0] == "rates" and len(parts) == 3 and parts[1].isdigit() and parts[2] in _RATE_TITLES:
        return f"{wareki.fiscal_label(int(parts[1]))}の{_RATE_TITLES[parts[2]]}"
    return placed.path


def check_file(path: str | Path, *, display_name: str | None = None,
               template: str | None = None) -> CheckResult:
    """Read and check one returned workbook; never raises for a bad file.

    ``template`` (a name under templates/ or a folder) overrides the one its
    ``_meta`` names, for templates generated with ``--template <folder>``.
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
    return _check_package(pkg, name, template)


def check_bytes(data: bytes, name: str, template: str | None = None) -> CheckResult:
    """``check_file`` for content already read (collect checks exactly what it archives)."""
    try:
        pkg = package_from_bytes(name, data)
    except UnreadableFile as e:
        return CheckResult(name, None, [e.finding], readable=False)
    return _check_package(pkg, name, template)


def _check_package(pkg: Package, name: str, template: str | None = None) -> CheckResult:
    try:
        book = Book(pkg)
    except UnreadableFile as e:
        return CheckResult(name, None, [e.finding], readable=False)
    result = CheckResult(name, None, list(pkg.warnings))
    try:
        _check_book(book, name, result, template)
    except UnreadableFile as e:  # a part that fails to parse once we get to it
        # what was said about the content so far (T201, T206, ...) is moot: the file is unreadable
        return CheckResult(name, None, [*pkg.warnings, e.finding], readable=False)
    return result


def _check_book(book: Book, name: str, result: CheckResult, template: str | None = None) -> None:
    from . import rules, tamper

    meta = _read_meta(book)
    result.meta = meta
    if not meta:
        result.findings.append(findings.make("T201", file=name))
    foreign = not meta and not any(n.startswith("f_") for n in book.names)
    lay, template_findings = tamper.template_of(meta, template)
    result.findings.extend(template_findings)
    sheet = _main_sheet(book, lay)
    if sheet is None:
        if not foreign:
            result.findings.append(findings.make("T220"))
        return
    data = book.read_sheet(sheet)  # parsed even for a foreign workbook: a hostile sheet shows here
    if foreign:
        return  # some other workbook: T201 says it all, nothing here is ours to read
    fy = _fiscal_year(book, data, lay, meta)
    if fy is None:
        result.findings.append(findings.make("T220"))
        return
    ctx = Context(name, book, lay, lay.place(fy), sheet.name, data, meta)
    _resolve_addresses(ctx)
    tamper.check_structure(ctx)
    _read_fields(ctx)
    tamper.check_formulas(ctx)
    tamper.check_locked(ctx)
    record = canonical(ctx.record)
    for problem in schema.validate_record(record):
        placed = ctx.placement.fields.get(problem.path)
        ctx.add("S401", placed, field=problem.path or None, label=problem.label,
                at=f"（{ctx.cell(placed)}）" if placed is not None else "", problem=problem.problem)
    rules.run(ctx, record)
    result.record = record
    result.findings.extend(ctx.findings)


def _read_meta(book: Book) -> dict[str, Any]:
    sheet = book.sheet(meta_mod.SHEET)
    if sheet is None:
        return {}
    data = book.read_sheet(sheet)
    rows: dict[str, Any] = {}
    for ref, cell in data.cells.items():
        if ref[:1] == "A" and ref[1:].isdigit():
            key = book.value(cell)
            if isinstance(key, str):
                rows[key] = book.value(data.cells.get("B" + ref[1:]))
    return meta_mod.parse(rows)


def _main_sheet(book: Book, lay: Layout):
    target = book.names.get("f_project_no")
    if target:
        sheet_name, _ = split_ref(target)
        found = book.sheet(sheet_name) if sheet_name else None
        if found:
            return found
    return book.sheet(lay.sheet_name) or next(
        (s for s in book.sheets if s.state == "visible" and not s.name.startswith("_")), None)


def _fiscal_year(book: Book, data: SheetData, lay: Layout, meta: dict[str, Any]) -> int | None:
    """The year whose layout the workbook follows: _meta's, unless its defined names say otherwise.

    An edited _meta year (reported as T208 later) must not shift every year column.
    """
    target = book.names.get("f_fiscal_year")
    cell = split_ref(target)[1] if target else None
    if cell is None:
        probe = lay.place(2000).fields.get("fiscal_year")
        cell = probe.cell if probe else None
    value = book.value(data.cells.get(cell)) if cell else None
    on_sheet = int(value) if isinstance(value, float) and value.is_integer() and 1990 <= value <= 2110 else None
    recorded = meta.get("fiscal_year") if isinstance(meta.get("fiscal_year"), int) else None
    candidates = [fy for fy in (recorded, on_sheet) if fy is not None]
    if len(candidates) < 2 or candidates[0] == candidates[1]:
        return candidates[0] if candidates else None

    def named(fy: int) -> int:
        return sum(p.name in book.names for p in lay.place(fy).fields.values())

    return max(candidates, key=named)  # a tie keeps _meta's year


def _resolve_addresses(ctx: Context) -> None:
    """Where each item really is: its defined name if it points into the main sheet."""
    for placed in ctx.placement.items:
        if placed.kind not in ("field", "computed"):
            continue
        target = ctx.book.names.get(placed.name)
        if target:
            sheet, cell = split_ref(target)
            if sheet in (None, ctx.sheet_name) and cell:
                ctx.addresses[placed.name] = cell
                continue
        if ctx.meta:
            ctx.add("T219", placed, name=placed.name, cell=placed.cell)


def _read_fields(ctx: Context) -> None:
    for placed in ctx.placement.fields.values():
        if placed.formula:
            continue  # computed from inputs in tamper.check_formulas
        ftype = field_type(placed.path, placed.format)
        raw_cell = ctx.raw(placed)
        raw = ctx.book.value(raw_cell)
        reading = read_value(raw, ftype)
        if raw_cell is not None and raw_cell.f is not None:
            # A formula typed into an input: only its stored result can be read, which we
            # never trust on its own. A readable result is a warning, none is an error.
            if raw is None:
                reading.problem = f"数式「={raw_cell.f}」が入力されていて、値を読み取れません"
            else:
                ctx.add("V303", placed, formula=raw_cell.f, value=_show(raw))
        ctx.readings[placed.path] = reading
        if reading.problem:
            ctx.add("V302", placed, problem=reading.problem, hint=_hint(ftype))
            continue
        if reading.changes:
            ctx.add("V301", placed, raw=_show(raw), value="-" if reading.dash else _show(reading.value),
                    changes="、".join(reading.changes))
        if reading.value is not None:
            recordpath.set_(ctx.record, placed.path, reading.value)


UNREADABLE = object()  # what recompute gives when an input could not be read


def recompute(ctx: Context, placed: Placed) -> Any:
    """The value of a formula cell computed from the (normalised) inputs of this workbook.

    ``UNREADABLE`` when an input could not be read (V302): a value computed
    without it would be wrong.
    """
    formula = FORMULAS[placed.formula]
    bound = formula.bind(placed.year, placed.formula_args)
    env: dict[str, Any] = {}
    for arg, path in bound.items():
        if path.startswith("rates."):
            env[arg] = ctx.rate(path)
        else:
            reading = ctx.readings.get(path)
            if reading is not None and reading.problem:
                return UNREADABLE
            env[arg] = "-" if reading is not None and reading.dash else (reading.value if reading else None)
    if "table" in placed.formula_args:
        env["table:sentence"] = ctx.layout.sentences[placed.formula_args["table"]]
    return formula.compute(env)


def _hint(ftype) -> str:
    if ftype.kind in ("integer", "number"):
        lo, hi = ftype.minimum, ftype.maximum
        what = "整数" if ftype.kind == "integer" else "数値"
        return f"半角の{what}（{_show(lo)}～{_show(hi)}）で入力してください。"
    if ftype.kind in ("enum", "yesno", "sdg", "score"):
        return "一覧から選んでください。"
    return "入力し直してください。"


def _show(value: Any) -> str:
    if value is None:
        return "（空欄）"
    if isinstance(value, bool):
        return lists.YES if value else lists.NO
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
